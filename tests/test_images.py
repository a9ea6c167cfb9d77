import os

import numpy as np
import pytest
from PIL import Image

from style_tf import images
from style_tf.errors import StyleError
from style_tf.paths import EXAMPLES


def _gradient(w=40, h=24):
    x = np.linspace(0, 255, w, dtype=np.uint8)[None, :, None]
    return np.broadcast_to(x, (h, w, 3)).copy()


@pytest.mark.parametrize("mode", ["RGB", "L", "1", "P", "CMYK", "I;16", "F", "LA", "RGBA"])
def test_every_mode_loads_as_rgb(tmp_path, mode):
    img = Image.fromarray(_gradient()).convert(mode if mode not in ("I;16", "F") else "L")
    if mode == "I;16":
        img = Image.fromarray((np.asarray(img, np.uint16) * 257).astype(np.uint16))
    elif mode == "F":
        img = Image.fromarray(np.asarray(img, np.float32) / 255.0, "F")
    suffix = {"CMYK": ".jpg", "F": ".tif", "I;16": ".png"}.get(mode, ".png")
    path = tmp_path / f"x{suffix}"
    img.save(path)
    out = images.load_image(path)
    assert out.shape == (24, 40, 3) and out.dtype == np.float32
    assert 0.0 <= out.min() and out.max() <= 1.0
    assert out[:, -1].mean() > out[:, 0].mean() + 0.5  # The gradient survived.


def test_transparency_is_composited_on_white(tmp_path):
    rgba = np.zeros((4, 4, 4), np.uint8)  # Fully transparent black.
    Image.fromarray(rgba, "RGBA").save(tmp_path / "t.png")
    np.testing.assert_allclose(images.load_image(tmp_path / "t.png"), 1.0)
    pal = Image.new("P", (4, 4), 0)
    pal.putpalette([0, 0, 0] * 256)
    pal.info["transparency"] = 0
    pal.save(tmp_path / "p.png", transparency=0)
    np.testing.assert_allclose(images.load_image(tmp_path / "p.png"), 1.0)


def test_exif_orientation_is_applied(tmp_path):
    img = Image.fromarray(_gradient(40, 24))
    exif = img.getexif()
    exif[0x0112] = 6  # Rotate 90 degrees clockwise to display.
    img.save(tmp_path / "o.jpg", exif=exif)
    assert images.load_image(tmp_path / "o.jpg").shape == (40, 24, 3)


def test_animated_gif_gives_first_frame_and_missing_extension(tmp_path):
    frames = [Image.new("RGB", (8, 8), c) for c in ((255, 0, 0), (0, 0, 255))]
    frames[0].save(tmp_path / "anim", format="GIF", save_all=True, append_images=frames[1:])
    out = images.load_image(tmp_path / "anim")
    assert out[..., 0].mean() > 0.9 and out[..., 2].mean() < 0.1
    Image.new("RGB", (8, 8)).save(tmp_path / "UPPER.PNG")
    assert images.load_image(tmp_path / "UPPER.PNG").shape == (8, 8, 3)


@pytest.mark.parametrize("data,match", [(b"", "not an image"), (b"hello world", "not an image"),
                                        (None, "cannot decode")])
def test_broken_files_are_user_errors(tmp_path, data, match):
    path = tmp_path / "bad.png"
    if data is None:  # A truncated PNG (of noise, so 200 bytes cannot hold it).
        noise = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
        Image.fromarray(noise).save(path)
        data = path.read_bytes()[:200]
    path.write_bytes(data)
    with pytest.raises(StyleError, match=match):
        images.load_image(path)
    with pytest.raises(StyleError, match="no such file"):
        images.load_image(tmp_path / "missing.png")
    with pytest.raises(StyleError, match="is a folder, not an image file"):
        images.load_image(tmp_path)


def test_decompression_bomb_is_refused(tmp_path, monkeypatch):
    Image.new("RGB", (100, 100)).save(tmp_path / "big.png")
    monkeypatch.setattr(images, "MAX_PIXELS", 1000)
    with pytest.raises(StyleError, match="larger than 1000 pixels"):
        images.load_image(tmp_path / "big.png")
    # Refused from its header, before decoding: a truncated file over the limit is too large.
    noise = np.random.default_rng(0).integers(0, 255, (100, 100, 3), dtype=np.uint8)
    Image.fromarray(noise).save(tmp_path / "cut.png")
    (tmp_path / "cut.png").write_bytes((tmp_path / "cut.png").read_bytes()[:200])
    with pytest.raises(StyleError, match="larger than 1000 pixels"):
        images.load_image(tmp_path / "cut.png")


def test_loading_leaves_pil_global_limit_alone(tmp_path, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 123_456_789)  # Whatever the process set.
    images.load_image(EXAMPLES / "content" / "chelsea.png")
    with pytest.raises(StyleError):
        images.load_image(tmp_path / "missing.png")
    assert Image.MAX_IMAGE_PIXELS == 123_456_789


def test_pil_own_decompression_bomb_error_is_the_same_user_error(tmp_path, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # PIL refuses over 2x this, warns over 1x.
    for size in ((100, 100), (40, 40)):  # 10,000 pixels: PIL's error; 1,600: its warning.
        Image.new("RGB", size).save(tmp_path / "big.png")
        with pytest.raises(StyleError, match=f"larger than {images.MAX_PIXELS} pixels"):
            images.load_image(tmp_path / "big.png")


def test_resize_keeps_aspect_and_never_upscales_when_asked():
    img = np.random.default_rng(0).uniform(size=(30, 60, 3)).astype(np.float32)
    assert images.resize(img, max_dim=20).shape == (10, 20, 3)
    assert images.resize(img, max_dim=100, upscale=False).shape == (30, 60, 3)


def test_save_is_atomic_and_keeps_old_file_on_failure(tmp_path):
    out = tmp_path / "o.png"
    images.save_image(out, np.zeros((4, 4, 3)))
    before = out.read_bytes()
    with pytest.raises(ValueError):
        images.save_image(out, np.full((4, 4, 3), np.nan))
    assert out.read_bytes() == before
    assert os.listdir(tmp_path) == ["o.png"]  # No temporary file left behind.
    with pytest.raises(StyleError, match="suffix"):
        images.save_image(tmp_path / "o.xyz", np.zeros((4, 4, 3)))
    with pytest.raises(StyleError, match="does not exist"):
        images.save_image(tmp_path / "nope" / "o.png", np.zeros((4, 4, 3)))
    with pytest.raises(StyleError, match="cannot write there"):  # A folder no file can be made in.
        images.save_image("/proc/o.png", np.zeros((4, 4, 3)))


@pytest.mark.parametrize("suffix,kept", [(".png", True), (".jpg", True), (".bmp", False)])
def test_a_note_travels_inside_the_image_file(tmp_path, suffix, kept):
    note = {"style": "a/b.jpg", "alpha": 0.25}
    pixels = np.random.default_rng(0).uniform(size=(6, 9, 3))
    images.save_image(tmp_path / f"o{suffix}", pixels, note)
    assert images.read_note(tmp_path / f"o{suffix}") == ((9, 6), note if kept else None)
    data = images.encode_image(pixels, f"x{suffix}", note)
    assert data == (tmp_path / f"o{suffix}").read_bytes()
    np.testing.assert_allclose(images.decode_image(data, "x"), images.load_image(tmp_path / f"o{suffix}"))
    with pytest.raises(StyleError, match="x.png: not an image"):
        images.decode_image(b"not an image", "x.png")


def test_match_color_moves_mean_and_covariance():
    rng = np.random.default_rng(0)
    src = rng.uniform(0.2, 0.4, (20, 20, 3)).astype(np.float32)
    tgt = np.clip(rng.normal([0.7, 0.3, 0.5], 0.05, (20, 20, 3)), 0, 1).astype(np.float32)
    out = images.match_color(src, tgt)
    np.testing.assert_allclose(out.reshape(-1, 3).mean(0), tgt.reshape(-1, 3).mean(0), atol=0.01)
    np.testing.assert_allclose(np.cov(out.reshape(-1, 3), rowvar=False),
                               np.cov(tgt.reshape(-1, 3), rowvar=False), atol=1e-3)


def test_keep_luminance_takes_colour_from_content():
    gray = np.full((4, 4, 3), 0.5, np.float32)
    red = np.zeros((4, 4, 3), np.float32)
    red[..., 0] = 1.0
    out = images.keep_luminance(gray, red)
    assert out[..., 0].mean() > out[..., 1].mean() + 0.3  # Reddish, at gray's brightness.
