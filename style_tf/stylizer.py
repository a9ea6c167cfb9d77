"""The AdaIN engine: stylizes whole images of any size with the network of `adain.py`.

Models are built once, each style is encoded once (style vectors are cached), the transform
is compiled (tf.function under TensorFlow, jax.jit under JAX), and around the network it
adds what a user expects of a photo: any size (resized to the decoder's multiple of 8 and
back), style blending and masks, alpha, and the face pass (faces found by `faces.find` are
stylized again enlarged, with the whole image's content statistics, and blended back).
Backend-neutral, like `adain.py`.
"""

import dataclasses
import functools
import hashlib
import typing
from pathlib import Path

import cv2
import keras
import numpy as np
from keras import ops

from style_tf import faces, vgg, video
from style_tf.adain import (
    BOTTLENECK,
    MIN_SIDE,
    border_for,
    decoder_path,
    encoder,
    load_decoder,
    style_vector,
    transform_with_stats,
)
from style_tf.errors import StyleError

# The face pass enlarges a face at most this much: faces enlarged much more come out almost
# photographic beside the painted rest (benchmarks/RESULTS.md, "Face pass").
MAX_FACE_SCALE = 3.0
# A clip's content statistics are a running average: a frame's own count this much at least
# (the first frames average equally), about the last five frames. A longer memory (1/25) kept
# the statistics of a scene the camera had left, and its style came out weaker
# (benchmarks/RESULTS.md, "Video").
CLIP_STATS_SHARE = 0.2
# ... and more as its channel means move from the average: all of it at a mean shift of this many
# of the average's stds, in proportion below, so that a new scene is not normalised by the one
# the camera left. A still camera's frames shift 0.01-0.02, a camera moving over changing
# scenes 0.04 at the median and up to 0.7 (benchmarks/RESULTS.md, "Video").
CLIP_STATS_FOLLOW = 0.1
# The decoder upsamples by 8: it paints the image in cells of 8x8 pixels.
GRID = 8
# A clip's frame moved on the grid by a fraction of a pixel is resampled, and its result moved
# back, with this: Lanczos keeps the strokes sharper than bicubic (benchmarks/RESULTS.md, "Video").
SHIFT_INTERP = cv2.INTER_LANCZOS4
# The detail bands (Gaussian sigmas, px) a result moved back by a fraction keeps the energy of.
UNSHIFT_SIGMAS = (1.0, 2.0)


@dataclasses.dataclass(frozen=True)
class NetworkConfig:
    """Settings shared by the engines of one network pass (adain, and mobile in student.py)."""

    STYLE_MEASURE: typing.ClassVar[str] = "meanstd_relative"  # metrics.Report field it minimises.

    alpha: float = 1.0  # Content-style trade-off: 0 = the photo's own features decoded, 1 = full style.
    precision: str = "auto"  # Network arithmetic: "auto" (bfloat16 where the CPU computes it natively:
    # AMX or AVX512-BF16; float32 elsewhere, where bfloat16 is emulated and slower), "bfloat16", "float32".
    face_size: int = 480  # Faces found smaller than 0.8x this (px) are stylized again, enlarged to it
    # (3x at most), and blended in: eyes and mouths the decoder would smear; 0 = off (always off
    # for clips: a box found anew in each frame jumps, and its blended face flickers).
    temporal_blend: float = 0.5  # Clips with --temporal=flow: how much of the previous stylized frame,
    # warped along the flow, each frame takes where the flow is reliable (0 = none, 1 = frozen);
    # where the picture only moves with the camera, whose strokes stay by themselves, 0.4x that.

    def __post_init__(self):
        if not 0.0 <= self.alpha <= 1.0:
            raise StyleError(f"alpha must be in 0..1, got {self.alpha}")
        if self.face_size < 0:
            raise StyleError(f"face_size must be >= 0, got {self.face_size}")
        if not 0.0 <= self.temporal_blend <= 1.0:
            raise StyleError(f"temporal_blend must be in 0..1, got {self.temporal_blend}")
        vgg.dtype_policy(self.precision)

    def style_dim(self, max_dim: int) -> int:
        """Longest side to load style images at for outputs of `max_dim`."""
        return max_dim

    def weights_file(self) -> Path:
        """The network's weights file."""
        raise NotImplementedError

    def fingerprint(self) -> str:
        """Identifies this engine's results: the settings, the weights file's contents and the
        precision "auto" chose on this machine."""
        digest = hashlib.sha256(self.weights_file().read_bytes()).hexdigest()
        return f"{self!r} weights={digest} dtype={vgg.dtype_policy(self.precision)}"


@dataclasses.dataclass(frozen=True)
class AdainConfig(NetworkConfig):
    """Settings of the AdaIN engine."""

    decoder_weights: str = "bundled"  # "bundled" (models/adain_decoder.weights.h5) or a .weights.h5 file.

    def weights_file(self) -> Path:
        return decoder_path(self.decoder_weights)


class Engine:
    """The AdaIN engine as `stylize` calls it: one forward pass per image."""

    Config = AdainConfig

    def __init__(self, config: AdainConfig):
        """Loads the models (kept for the next engine with the same decoder file and precision)."""
        self.config = config
        path = decoder_path(config.decoder_weights)
        self.stylizer = _load(str(path), config.precision, (path.stat().st_mtime_ns, path.stat().st_size))

    def skip(self, output) -> bool:
        """Whether a folder run may skip `output` as done (never: nothing to resume)."""
        return False

    def __call__(self, content, styles, weights, masks, job) -> np.ndarray:
        """(H, W, 3) stylized `content`; see `Stylizer.__call__`.

        A clip's frame (`job.clip`) has no face pass; with `job.clip.steady` it is normalised
        by the clip's running content statistics, kept in place on the decoder's grid as the
        camera moves (`video.grid_offset`), and blended with the previous result warped onto it
        (`video.blend`, `temporal_blend`)."""
        clip = job.clip
        if clip is None:
            return self.stylizer(content, styles, weights, self.config.alpha, masks, self.config.face_size)
        if not clip.steady:
            return self.stylizer(content, styles, weights, self.config.alpha, masks, 0)
        h, w = content.shape[:2]
        size = network_size(h, w)
        camera = None if clip.prior is None else video.camera_motion(clip.prior)
        offset = video.grid_offset(clip.state, camera, (size[0] / h, size[1] / w), GRID)
        out = self.stylizer(content, styles, weights, self.config.alpha, masks, 0, running=clip.state,
                            offset=offset)
        if clip.prior is not None and self.config.temporal_blend > 0:
            strength = video.blend_strength(clip.prior, self.config.temporal_blend)
            out = video.blend(out, clip.prior, strength)
        return out


@functools.lru_cache(maxsize=1)
def _load(decoder_file: str, precision: str, stamp) -> "Stylizer":
    """The models of one decoder file, kept for the next call (`stamp`: the file's mtime and size,
    so a retrained decoder is reloaded): a contact sheet's cells share one."""
    del stamp  # Part of the cache key only.
    return Stylizer.load(decoder_file, precision)


class Stylizer:
    """The AdaIN engine over many images: models built once, each style encoded once, the
    transform compiled (tf.function under TensorFlow, jax.jit under JAX)."""

    def __init__(self, enc: keras.Model, dec: keras.Model):
        """Args: enc, dec: encoder (with `block4_conv1`) and decoder."""
        self.encoder, self.decoder = enc, dec
        self._vectors = {}  # sha1 of a style's pixels -> its style vector.
        self._transforms = {}  # (border, already mirrored, follow) -> the compiled transform.

    def _transform(self, x, vector, alpha, masks, stats=None, own=0.0, mirrored=None, follow=0.0):
        """`transform_with_stats`, compiled; `mirrored`: the border `x` already has (`_shift`)."""
        border = border_for(x.shape[1:3]) if mirrored is None else mirrored
        key = (border, mirrored is not None, follow)
        if key not in self._transforms:
            self._transforms[key] = _compile(lambda x, v, a, m, s, o: transform_with_stats(
                self.encoder, self.decoder, x, v, a, m, border, s, o, mirrored=key[1], follow=follow))
        return self._transforms[key](x, vector, alpha, masks, stats, np.float32(own))

    @classmethod
    def load(cls, decoder_weights: str = "bundled", precision: str = "auto") -> "Stylizer":
        """The bundled (or given) decoder with the bundled encoder, in `precision` (see
        `vgg.dtype_policy`: bfloat16 where the CPU computes it natively, AMX or AVX512-BF16)."""
        dtype = vgg.dtype_policy(precision)
        return cls(encoder(layers=(BOTTLENECK,), dtype=dtype),
                   load_decoder(str(decoder_path(decoder_weights)), dtype))

    def style_vector(self, style):
        """(1, 1, 1, 1024) float32 numpy vector of an (h, w, 3) style image, cached."""
        style = np.ascontiguousarray(style, np.float32)
        h, w = style.shape[:2]
        if min(h, w) < MIN_SIDE:  # A tiny or thin style is enlarged for the encoder's pools.
            scale = MIN_SIDE / min(h, w)
            size = (max(MIN_SIDE, round(h * scale)), max(MIN_SIDE, round(w * scale)))
            style = np.clip(ops.convert_to_numpy(_batch(style, size))[0], 0.0, 1.0)
        key = hashlib.sha1(style.tobytes() + str(style.shape).encode()).hexdigest()
        if key not in self._vectors:
            feats = ops.cast(self.encoder(style[None])[BOTTLENECK], "float32")
            self._vectors[key] = ops.convert_to_numpy(style_vector(feats))
        return self._vectors[key]

    def __call__(self, content, styles, weights=None, alpha: float = 1.0, masks=None,
                 face_size: int = 0, vectors=None, running: dict | None = None,
                 offset: tuple[float, float] = (0, 0)):
        """Stylizes one image.

        Args:
          content: (H, W, 3) RGB in [0, 1].
          styles: list of (h, w, 3) style images (ignored when `vectors` are given).
          weights: interpolation weights, one per style (default equal); normalised to sum 1.
          alpha: content-style trade-off in 0..1.
          masks: optional list of (H, W) masks, one per style (white = that style applies);
            normalised to sum 1 at each pixel (equal shares where all are black).
          face_size: faces found (`faces.find`) smaller than 0.8x this many pixels are
            stylized again, enlarged to this size (MAX_FACE_SCALE at most), and blended back;
            0 turns it off. The decoder rebuilds the image from features 8 times coarser,
            which smears a face a few dozen pixels wide and the eyes of a larger one
            (benchmarks/RESULTS.md, "Face pass").
          vectors: the styles' `style_vector`s, instead of the images: a caller with many
            styles (a batch run draws one of thousands per photo) keeps these, not the images.
          running: a clip's running content statistics (a dict kept across its frames, empty
            at the first): the frame is normalised by their average with its own
            (CLIP_STATS_SHARE, more where they differ: CLIP_STATS_FOLLOW), which is stored back.
          offset: (rows, columns), each in [0, GRID): how far the image is moved down and right
            on a canvas of mirrored pixels (a whole cell larger), which moves it on the
            decoder's grid (fractions resampled, SHIFT_INTERP); a clip's frames follow the
            camera with it (`video.grid_offset`).

        Returns:
          (H, W, 3) float32 numpy array in [0, 1].
        """
        if vectors is None:
            vectors = [self.style_vector(s) for s in styles]
        weights = np.asarray(weights if weights is not None else [1.0] * len(vectors), np.float32)
        if len(weights) != len(vectors) or weights.min() < 0 or weights.sum() <= 0:
            raise StyleError("style weights must be one per style, >= 0, with a positive sum")
        weights = weights / weights.sum()
        h, w = content.shape[:2]
        size = network_size(h, w)
        alpha = np.float32(alpha)
        stack = None
        if masks is None:
            vector, region = sum(float(wt) * v for wt, v in zip(weights, vectors)), None
        else:
            stack = np.stack(masks, axis=-1).astype(np.float32)  # (H, W, S)
            total = stack.sum(-1, keepdims=True)
            stack = np.where(total > 1e-6, stack / np.maximum(total, 1e-6), 1.0 / len(masks))
            vector, region = vectors, _resize_masks(stack, size)
        x, mirrored = _batch(content, size), None
        if any(offset):
            mirrored = border_for(size)
            x = _shift(x, offset, mirrored)
            region = None if region is None else [_shift(m, offset, mirrored) for m in region]
        if running is None:
            out, stats = self._transform(x, vector, alpha, region, mirrored=mirrored)
        else:
            count = running.get("frames", 0)
            share = max(1.0 / (count + 1), CLIP_STATS_SHARE)
            out, stats = self._transform(x, vector, alpha, region, running.get("stats"), share, mirrored,
                                         CLIP_STATS_FOLLOW)
            running.update(stats=[ops.convert_to_numpy(s) for s in stats], frames=count + 1)
        out = _image(_unshift(out, offset, size), (h, w))
        for box in faces.find(content) if face_size else []:
            out = self._face_pass(content, out, box, face_size, vector, alpha, stack, stats)
        return out

    def _face_pass(self, content, out, box, face_size, vector, alpha, stack, stats):
        """`out` with the face in `box` (x, y, width, height) stylized again, enlarged."""
        fx, fy, fw, fh = box
        if max(fw, fh) * 1.25 > face_size:  # Large enough already.
            return out
        h, w = content.shape[:2]
        side = min(2 * max(fw, fh), h, w)  # A square crop of the face and as much round it.
        cx, cy = fx + fw / 2, fy + fh / 2
        x0 = int(np.clip(round(cx - side / 2), 0, w - side))
        y0 = int(np.clip(round(cy - side / 2), 0, h - side))
        window = np.s_[y0:y0 + side, x0:x0 + side]
        scale = min(face_size / max(fw, fh), MAX_FACE_SCALE)
        n = max(GRID, round(side * scale / GRID) * GRID)
        region = None if stack is None else _resize_masks(stack[window], (n, n))
        # The whole image's content statistics, so that the face keeps the image's tones.
        face, _ = self._transform(_batch(content[window], (n, n)), vector, alpha, region, stats)
        face = _image(face, (side, side))
        yy, xx = np.mgrid[y0:y0 + side, x0:x0 + side] + 0.5
        t = np.clip((1.0 - np.hypot(xx - cx, yy - cy) / (side / 2)) / 0.4, 0.0, 1.0)[..., None]
        t = t * t * (3.0 - 2.0 * t)  # 1 out to 0.6 of the half-side, then smoothly to 0.
        out = out.copy()
        out[window] = t * face + (1.0 - t) * out[window]
        return out


def network_size(h: int, w: int) -> tuple[int, int]:
    """The size an (h, w) image is stylized at: the nearest multiple of GRID on each side."""
    return max(GRID, round(h / GRID) * GRID), max(GRID, round(w / GRID) * GRID)


def _shift(batch, offset, border):
    """(1, H, W, C) moved `offset` (rows, columns) pixels down and right on a canvas of mirrored
    pixels that ends on a whole GRID cell, (1, H + GRID, W + GRID, C) where both are non-zero,
    with `border` more mirrored pixels round that (the transform's, `mirrored`). One mirror, about
    the image's own edges: mirroring the canvas again folded its few mirrored pixels into a thin
    band along each edge, which the decoder painted as a stripe there (benchmarks/RESULTS.md,
    "Video"). A fractional offset is resampled (SHIFT_INTERP)."""
    if _whole(offset):
        pad = [(0, 0)] + [(border + int(o), border + (GRID - int(o)) % GRID) for o in offset] + [(0, 0)]
        return ops.pad(batch, pad, mode="reflect")
    size = (batch.shape[1] + GRID + 2 * border, batch.shape[2] + GRID + 2 * border)
    return _translate(batch, (-offset[0] - border, -offset[1] - border), size)


def _unshift(batch, offset, size):
    """The (1, size..., C) image that `_shift(..., offset)` moved, taken back from its canvas.

    A fractional offset is resampled, which softens the strokes; their detail bands get back the
    energy they have on the canvas (`video.keep_detail`, UNSHIFT_SIGMAS)."""
    if _whole(offset):
        oy, ox = int(offset[0]), int(offset[1])
        return batch[:, oy:oy + size[0], ox:ox + size[1]]
    batch, oy, ox = ops.convert_to_numpy(batch), round(offset[0]), round(offset[1])
    canvas = batch[0, oy:oy + size[0], ox:ox + size[1]]
    return video.keep_detail(_translate(batch, offset, size)[0], canvas, UNSHIFT_SIGMAS)[None]


def _whole(offset) -> bool:
    return all(float(o).is_integer() for o in offset)


def _translate(batch, shift, size):
    """(1, size..., C) float32 numpy: `batch` sampled at each pixel + `shift` (rows, columns),
    SHIFT_INTERP, mirrored beyond its edges."""
    x = ops.convert_to_numpy(batch)[0].astype(np.float32)
    move = np.float32([[1, 0, shift[1]], [0, 1, shift[0]]])
    out = cv2.warpAffine(x, move, (size[1], size[0]), flags=SHIFT_INTERP | cv2.WARP_INVERSE_MAP,
                         borderMode=cv2.BORDER_REFLECT_101)
    return out.reshape(1, size[0], size[1], x.shape[-1])


def _batch(image, size):
    """(H, W, C) -> (1, size..., C) float32 tensor (bicubic, antialiased)."""
    x = np.asarray(image, np.float32)[None]
    return ops.image.resize(x, size, interpolation="bicubic", antialias=True)


def _image(batch, size):
    """(1, H, W, C) -> (size..., C) float32 numpy in [0, 1] (bicubic, antialiased)."""
    out = ops.image.resize(batch, size, interpolation="bicubic", antialias=True)
    return np.clip(ops.convert_to_numpy(out)[0], 0.0, 1.0)


def _resize_masks(stack, size):
    """(H, W, S) masks -> list of S (1, size..., 1) masks (bilinear)."""
    return [ops.image.resize(stack[None, :, :, i:i + 1], size) for i in range(stack.shape[-1])]


def _compile(fn):
    """`fn` compiled for the Keras backend in use (left as is on others)."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.function(fn, reduce_retracing=True)
    if backend == "jax":
        import jax

        return jax.jit(fn)
    return fn
