"""The one place pixels enter and leave: loading, resizing, atomic saving, colour transfer.

Images inside the project are float32 numpy arrays or tensors `(H, W, 3)` of RGB in [0, 1].
"""

import contextlib
import io
import json
import os
import tempfile
import warnings
from pathlib import Path
from typing import Iterator

import numpy as np
from keras import ops
from PIL import Image, ImageOps, PngImagePlugin, UnidentifiedImageError

from style_tf.errors import StyleError

MAX_PIXELS = 50_000_000  # Larger images are refused as decompression bombs (about 7000 x 7000).
_BACKGROUND = (255, 255, 255)  # Transparent pixels are composited on white, as a viewer shows them.
_SAVE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".bmp": "BMP",
                 ".tif": "TIFF", ".tiff": "TIFF"}
_NOTE_KEY = "style_tf"  # The PNG text key (and JPEG comment prefix) of `encode_image`'s note.


def load_image(path: str | os.PathLike, max_dim: int | None = None) -> np.ndarray:
    """Loads any image PIL opens as RGB float32 in [0, 1], upright, optionally downsized.

    EXIF orientation is applied; palette, alpha (composited on white), grayscale, 1-bit,
    16-bit, float, CMYK images become RGB; animated files give their first frame.

    Args:
      path: the image file.
      max_dim: if given, the longest side is scaled down to this (never up).

    Returns:
      (H, W, 3) float32 array in [0, 1].

    Raises:
      StyleError: the file is missing (or a folder), unreadable, not an image, empty or too large.
    """
    path = Path(path)
    if path.is_dir():
        raise StyleError(f"{path}: is a folder, not an image file")
    if not path.is_file():
        raise StyleError(f"{path}: no such file")
    return _decode(path, path, max_dim)


def decode_image(data: bytes, name: str, max_dim: int | None = None) -> np.ndarray:
    """`load_image` for an image's bytes (read from a filesystem other than the local one).

    Args:
      data: the file's contents.
      name: what error messages call it (its path or URL).
      max_dim: if given, the longest side is scaled down to this (never up).

    Raises:
      StyleError: the bytes are not an image, are empty or too large.
    """
    return _decode(io.BytesIO(data), name, max_dim)


def _decode(source, path, max_dim: int | None) -> np.ndarray:
    """(H, W, 3) float32 of the image in `source` (a path or a file object) called `path`."""
    too_large = StyleError(f"{path}: image is larger than {MAX_PIXELS} pixels")
    try:
        with warnings.catch_warnings():
            # PIL's own limit (its global MAX_IMAGE_PIXELS, left as the process has it) still
            # applies: over it, opening warns or raises, and both are the same user error.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(source) as img:  # Reads the header only: the size, not the pixels.
                if img.width * img.height > MAX_PIXELS:
                    raise too_large
                img.seek(0)
                array = _to_rgb(ImageOps.exif_transpose(img))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise too_large from None
    except UnidentifiedImageError:
        raise StyleError(f"{path}: not an image PIL can read") from None
    except (OSError, SyntaxError, ValueError, EOFError, TypeError, IndexError, KeyError,
            AttributeError, ZeroDivisionError, MemoryError) as e:
        # PIL raises many types for truncated or malformed data.
        raise StyleError(f"{path}: cannot decode image ({type(e).__name__}: {e})") from None
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise StyleError(f"{path}: image has zero size")
    if max_dim:
        array = resize(array, max_dim=max_dim, upscale=False)
    return array


def from_pixels(pixels) -> np.ndarray:
    """(H, W, 3) float32 in [0, 1] of 8-bit pixels handed over in memory (a browser's webcam
    frame): (H, W) grey, (H, W, 3) RGB or (H, W, 4) RGBA (composited on white) uint8."""
    return _to_rgb(Image.fromarray(np.asarray(pixels, np.uint8)))


def _to_rgb(img: Image.Image) -> np.ndarray:
    """Converts an opened PIL image of any mode to (H, W, 3) float32 in [0, 1]."""
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        a = np.asarray(img, dtype=np.float64)
        scale = 65535.0 if a.max() > 255 or img.mode.startswith("I;16") else 255.0
        a = np.clip(a / scale, 0, 1)
        return np.repeat(a[..., None], 3, axis=-1).astype(np.float32)
    if img.mode == "F":
        a = np.nan_to_num(np.asarray(img, dtype=np.float64))
        if a.max() > 1.0:  # Float images in 0..255 or 0..65535 rather than 0..1.
            a = a / (65535.0 if a.max() > 255 else 255.0)
        a = np.clip(a, 0, 1)
        return np.repeat(a[..., None], 3, axis=-1).astype(np.float32)
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, _BACKGROUND + (255,))
        img = Image.alpha_composite(background, rgba)
    img = img.convert("RGB")
    return np.asarray(img, dtype=np.float32) / 255.0


def resize(image, max_dim: int | None = None, size: tuple[int, int] | None = None,
           upscale: bool = True) -> np.ndarray:
    """Resizes `(H, W, 3)` keeping the aspect ratio (longest side `max_dim`) or to `size`.

    Args:
      image: (H, W, C) array or tensor.
      max_dim: longest side of the result.
      size: exact (height, width), instead of `max_dim`.
      upscale: if False, an image already smaller than `max_dim` is returned as is.

    Returns:
      (H', W', C) float32 numpy array, clipped to [0, 1].
    """
    h, w = int(image.shape[0]), int(image.shape[1])
    if size is None:
        scale = max_dim / max(h, w)
        if scale >= 1 and not upscale:
            return np.asarray(image, dtype=np.float32)
        size = (max(1, round(h * scale)), max(1, round(w * scale)))
    if tuple(size) == (h, w):
        return np.asarray(image, dtype=np.float32)
    out = ops.image.resize(ops.convert_to_tensor(image, "float32"), size, interpolation="bicubic",
                           antialias=True)
    return np.clip(ops.convert_to_numpy(out), 0.0, 1.0)


def at_least(image, side: int) -> np.ndarray:
    """`image` enlarged (aspect kept) until its shorter side is at least `side` pixels.

    The networks need a few pixels a side (`vgg.min_side`); a tiny or thin image (a 1x1
    colour, a 600x8 strip) is enlarged for them instead of failing. Larger images are
    returned unchanged.
    """
    h, w = int(image.shape[0]), int(image.shape[1])
    if min(h, w) >= side:
        return np.asarray(image, dtype=np.float32)
    scale = side / min(h, w)
    return resize(image, size=(max(side, round(h * scale)), max(side, round(w * scale))))


def center_square(image: np.ndarray, size: int) -> np.ndarray:
    """The centre square of `image` resized to size x size: what a phone app does to camera
    frames, so the fixed-size exported models and their benchmarks see images as the app does."""
    h, w = image.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    return resize(image[top:top + side, left:left + side], size=(size, size))


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[str]:
    """Yields a temporary path beside `path`; renames it onto `path` only on success.

    An existing file at `path` is either kept whole or replaced whole, never half-written.
    """
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise StyleError(f"{folder}: output folder does not exist")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + path.suffix, dir=folder)
    except OSError as e:  # Not writable, read-only or special file system, full disk.
        raise StyleError(f"{folder}: cannot write there ({e.strerror})") from None
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file the usual mode.
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def save_image(path: str | os.PathLike, image, note: dict | None = None) -> None:
    """Saves `(H, W, 3)` RGB in [0, 1] atomically; the format follows the file suffix.

    Args:
      path: the file to write.
      image: the pixels.
      note: what made the image (JSON-able), stored in the file (`encode_image`).

    Raises:
      StyleError: unknown suffix, or the folder is missing or not writable.
      ValueError: the image holds NaN or Inf (a bug upstream; never written).
    """
    path = Path(path)
    data = encode_image(image, path, note)
    try:
        with atomic_path(path) as tmp:
            Path(tmp).write_bytes(data)
    except PermissionError:
        raise StyleError(f"{path}: output folder is not writable") from None
    except OSError as e:  # Full disk, a file system that refuses the rename.
        raise StyleError(f"{path}: cannot write it ({e.strerror})") from None


def encode_image(image, name: str | os.PathLike, note: dict | None = None) -> bytes:
    """The contents of the image file `name` of `(H, W, 3)` RGB in [0, 1] (its suffix picks the
    format).

    `note`, a JSON-able record of what made the image, is stored in the file itself (a PNG
    text chunk, a JPEG comment; other formats do not keep it) and `read_note` gives it back:
    a batch run that finds the image done learns from the image how it was made.

    Raises:
      StyleError: unknown suffix.
      ValueError: the image holds NaN or Inf (a bug upstream; never written).
    """
    fmt = _SAVE_FORMATS.get(Path(name).suffix.lower())
    if fmt is None:
        raise StyleError(f"{name}: unknown image suffix (use one of {', '.join(_SAVE_FORMATS)})")
    array = np.asarray(image, dtype=np.float32)
    if not np.all(np.isfinite(array)):
        raise ValueError(f"refusing to save a non-finite image to {name}")
    pixels = np.round(np.clip(array, 0, 1) * 255).astype(np.uint8)
    options = {}
    if note is not None and fmt == "PNG":
        options["pnginfo"] = PngImagePlugin.PngInfo()
        options["pnginfo"].add_text(_NOTE_KEY, json.dumps(note, sort_keys=True))
    elif note is not None and fmt == "JPEG":
        options["comment"] = f"{_NOTE_KEY} {json.dumps(note, sort_keys=True)}".encode()
    buffer = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(buffer, format=fmt, **options)
    return buffer.getvalue()


def read_note(source) -> tuple[tuple[int, int], dict | None]:
    """((width, height), note) of an image file written by `encode_image`, from its header.

    Args:
      source: a path or a binary file object.

    Returns:
      The size, and the note (None where the file holds none).

    Raises:
      StyleError: not an image PIL can read.
    """
    try:
        with Image.open(source) as img:
            # The chunks before the pixels: PIL writes the text chunk there (`img.text` would
            # decode the whole image to look for more after them).
            text = img.info.get(_NOTE_KEY) if img.format == "PNG" else None
            comment = img.info.get("comment", b"") if img.format == "JPEG" else b""
            if comment.startswith(f"{_NOTE_KEY} ".encode()):
                text = comment[len(_NOTE_KEY) + 1:].decode()
            return img.size, (json.loads(text) if text else None)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise StyleError(f"{source}: cannot read the image's header ({type(e).__name__}: {e})") from None


def list_images(folder: str | os.PathLike) -> list[Path]:
    """Regular, non-hidden files in `folder`, sorted; loading decides which are images."""
    folder = Path(folder)
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))


# --- colour -------------------------------------------------------------------------------

_RGB_TO_YIQ = np.array([[0.299, 0.587, 0.114],
                        [0.596, -0.274, -0.322],
                        [0.211, -0.523, 0.312]], np.float32)


def keep_luminance(stylized: np.ndarray, content: np.ndarray) -> np.ndarray:
    """Takes the luminance of `stylized` and the colour (chroma) of `content` (same size)."""
    yiq_s = stylized @ _RGB_TO_YIQ.T
    yiq_c = content @ _RGB_TO_YIQ.T
    yiq = np.concatenate([yiq_s[..., :1], yiq_c[..., 1:]], axis=-1)
    return np.clip(yiq @ np.linalg.inv(_RGB_TO_YIQ).T, 0, 1).astype(np.float32)


def match_color(source: np.ndarray, target: np.ndarray, eps: float = 1e-5) -> np.ndarray:
    """Recolours `source` so its RGB mean and covariance match `target`'s.

    Used to move a style image into the content's palette before transfer (colour
    preservation by histogram matching, Gatys et al. 2016).
    """
    src = source.reshape(-1, 3).astype(np.float64)
    tgt = target.reshape(-1, 3).astype(np.float64)
    mu_s, mu_t = src.mean(0), tgt.mean(0)
    cov_s = np.cov(src, rowvar=False) + eps * np.eye(3)
    cov_t = np.cov(tgt, rowvar=False) + eps * np.eye(3)
    # x -> cov_t^1/2 cov_s^-1/2 (x - mu_s) + mu_t, with symmetric square roots.
    transform = _sqrtm(cov_t) @ np.linalg.inv(_sqrtm(cov_s))
    out = (src - mu_s) @ transform.T + mu_t
    return np.clip(out, 0, 1).reshape(source.shape).astype(np.float32)


def _sqrtm(matrix: np.ndarray) -> np.ndarray:
    values, vectors = np.linalg.eigh(matrix)
    return vectors @ np.diag(np.sqrt(np.maximum(values, 0))) @ vectors.T
