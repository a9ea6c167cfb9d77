"""A corpus of odd-but-valid and broken image files, made here, through `python -m style_tf.run`
with both engines: valid files are stylized upright; broken ones end in one line, exit 2, no
output, and an older output at that path is left as it was."""

import io
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from style_tf import stylize
from style_tf.optimize import OptimizeConfig
from style_tf.paths import EXAMPLES

STYLE = str(EXAMPLES / "style" / "Van_Gogh_The_Night_Cafe_background.jpg")
ENGINES = {"optimize": ["--method=optimize", "--steps=2", "--scales="], "adain": ["--method=adain"]}
W, H = 36, 24  # Every valid file displays as this, landscape.


def run(*args):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run([sys.executable, "-m", "style_tf.run", *args, "--max_dim=36",
                           "--noprogress"], capture_output=True, text=True, env=env, timeout=300)


def quadrants() -> Image.Image:
    """Red top-left, green top-right, blue bottom-left, gray bottom-right: any turn or flip shows."""
    a = np.full((H, W, 3), 128, np.uint8)
    a[: H // 2, : W // 2] = (230, 20, 20)
    a[: H // 2, W // 2:] = (20, 230, 20)
    a[H // 2:, : W // 2] = (20, 20, 230)
    return Image.fromarray(a)


def _exif(img: Image.Image, orientation: int, undo) -> tuple[Image.Image, dict]:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return img.transpose(undo) if undo is not None else img, {"exif": exif}


def valid_corpus(folder) -> dict[str, bool]:
    """Writes the odd-but-valid files; returns {output stem: whether its colours are checkable}."""
    T = Image.Transpose
    img = quadrants()
    gray = img.convert("L")
    files = {
        # EXIF orientation: stored turned or flipped, displayed upright.
        "exif3.jpg": _exif(img, 3, T.ROTATE_180),
        "exif6.jpg": _exif(img, 6, T.ROTATE_90),
        "exif8.jpg": _exif(img, 8, T.ROTATE_270),
        "exif2.jpg": _exif(img, 2, T.FLIP_LEFT_RIGHT),
        "palette.png": (img.convert("P"), {"transparency": 255}),
        "rgba.png": (img.convert("RGBA"), {}),
        "cmyk.jpg": (img.convert("CMYK"), {}),
        "progressive.jpg": (img, {"progressive": True}),
        "UPPER.PNG": (img, {}),
        "bitmap.bmp": (img, {}),
        "anim.gif": (img, {"save_all": True, "append_images": [Image.new("RGB", (W, H))]}),
        "anim.webp": (img, {"save_all": True, "append_images": [Image.new("RGB", (W, H))],
                            "lossless": True}),
        "gray.png": (gray, {}),
        "la.png": (gray.convert("LA"), {}),
        "onebit.png": (gray.convert("1"), {}),
        "sixteen.png": (Image.fromarray(np.asarray(gray, np.uint16) * 257), {}),
        "float.tif": (Image.fromarray(np.asarray(gray, np.float32) / 255, "F"), {}),
    }
    for name, (image, kwargs) in files.items():
        image.save(folder / name, **kwargs)
    png = io.BytesIO()
    img.save(png, format="PNG")
    (folder / "noextension").write_bytes(png.getvalue())
    stems = {name: name.split(".")[0] for name in files}
    stems.update({"anim.gif": "anim_gif", "anim.webp": "anim_webp"})  # Same stem: told apart.
    return {**{stems[name]: image.mode not in ("L", "LA", "1", "I;16", "F")
               for name, (image, _) in files.items()}, "noextension": True}


def broken_corpus(folder) -> list:
    """Writes the broken files (each one should end in one error line)."""
    png = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(png, "PNG")
    jpeg = io.BytesIO()
    quadrants().resize((200, 200)).save(jpeg, "JPEG")
    files = {"empty.png": b"", "text.jpg": b"just some words, not pixels\n",
             "truncated.png": png.getvalue()[:200], "truncated.jpg": jpeg.getvalue()[:300],
             "html.webp": b"<!DOCTYPE html><html><body>404</body></html>"}
    for name, data in files.items():
        (folder / name).write_bytes(data)
    Image.new("1", (8000, 8000)).save(folder / "bomb.png")  # 64 Mpx in a few kB.
    return sorted(files) + ["bomb.png"]


def mean_colour(a: np.ndarray, rows: slice, cols: slice) -> int:
    """Index of the strongest channel in a quadrant (0 red, 1 green, 2 blue)."""
    return int(np.argmax(a[rows, cols].reshape(-1, 3).mean(0)))


@pytest.mark.parametrize("method", ENGINES)
def test_valid_corpus_is_stylized_upright(tmp_path, method):
    folder, out = tmp_path / "in", tmp_path / "out"
    folder.mkdir()
    colour = valid_corpus(folder)
    r = run(f"--content={folder}", f"--style={STYLE}", f"--output={out}", "--preserve_color=luminance",
            *ENGINES[method])
    assert r.returncode == 0, r.stderr
    assert sorted(p.stem for p in out.iterdir()) == sorted(colour)
    top, bottom, left, right = slice(2, H // 2 - 2), slice(H // 2 + 2, H - 2), slice(2, W // 2 - 2), \
        slice(W // 2 + 2, W - 2)
    for stem, checkable in colour.items():
        a = np.asarray(Image.open(out / f"{stem}.png").convert("RGB"))
        assert a.shape == (H, W, 3), stem
        if checkable:  # Luminance preservation keeps the content's colours, so they show orientation.
            assert [mean_colour(a, top, left), mean_colour(a, top, right),
                    mean_colour(a, bottom, left)] == [0, 1, 2], stem


@pytest.mark.parametrize("method", ENGINES)
def test_broken_corpus_one_line_exit_2_old_output_kept(tmp_path, method):
    names = broken_corpus(tmp_path)
    for name in names:
        out = tmp_path / f"out_{name}.png"
        out.write_bytes(b"old result")
        r = run(f"--content={tmp_path / name}", f"--style={STYLE}", f"--output={out}", *ENGINES[method])
        assert r.returncode == 2, (name, r.stderr)
        errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and name in errors[0], (name, r.stderr)
        assert "Traceback" not in r.stderr, name
        assert out.read_bytes() == b"old result", name
    left = {p.name for p in tmp_path.iterdir()} - set(names) - {f"out_{n}.png" for n in names}
    assert not left  # No new or temporary file anywhere.


# Tiny, thin and degenerate shapes (height, width): below the networks' 8 and 16 px a side.
SHAPES = {"1x1": (1, 1), "2x2": (2, 2), "600x8": (8, 600), "8x600": (600, 8), "17x3": (3, 17)}
LIBRARY_ENGINES = {"optimize": {"method": "optimize", "engine": OptimizeConfig(steps=2, scales=())},
                   "adain": {"method": "adain"}}


def _save_noise(path, shape, seed=0):
    pixels = np.random.default_rng(seed).integers(0, 255, (*shape, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return path


@pytest.mark.parametrize("method", LIBRARY_ENGINES)
def test_tiny_and_thin_contents_keep_their_shape(tmp_path, method):
    folder = tmp_path / "in"
    folder.mkdir()
    for name, shape in SHAPES.items():
        _save_noise(folder / f"{name}.png", shape)
    config = stylize.StylizeConfig(content=str(folder), styles=(STYLE,), output=str(tmp_path / "out"),
                                   max_dim=64, progress=False, **LIBRARY_ENGINES[method])
    result = stylize.stylize(config)
    assert not result.failed and len(result.written) == len(SHAPES)
    for name, (h, w) in SHAPES.items():
        scale = min(1.0, 64 / max(h, w))
        expected = (max(1, round(w * scale)), max(1, round(h * scale)))
        assert Image.open(tmp_path / "out" / f"{name}.png").size == expected, name


@pytest.mark.parametrize("method", LIBRARY_ENGINES)
def test_tiny_and_thin_styles_and_masks_stylize(tmp_path, method):
    photo = _save_noise(tmp_path / "photo.png", (24, 36), seed=1)
    for name, shape in SHAPES.items():
        odd = _save_noise(tmp_path / f"odd_{name}.png", shape, seed=2)
        as_masks = [((STYLE, STYLE), (str(odd), str(odd)))] if name in ("1x1", "600x8") else []
        for styles, masks in [((str(odd),), ()), *as_masks]:  # Masks are resized: two shapes show it.
            out = tmp_path / f"out_{name}_{len(styles)}.png"
            config = stylize.StylizeConfig(content=str(photo), styles=styles, style_masks=masks,
                                           output=str(out), max_dim=36, progress=False,
                                           **LIBRARY_ENGINES[method])
            assert stylize.stylize(config).written == [out], name
            assert Image.open(out).size == (36, 24), name


def test_a_tiny_style_scale_still_stylizes(tmp_path):
    out = tmp_path / "out.png"
    config = stylize.StylizeConfig(styles=(STYLE,), output=str(out), max_dim=48, progress=False,
                                   method="optimize",
                                   engine=OptimizeConfig(steps=2, scales=(), style_scale=0.01))
    assert stylize.stylize(config).written == [out]
