"""How much style and how much content a result has: distances on VGG features and pixels.

All style and content distances use the optimize engine's own definitions (losses.py), with
anchors that make them readable without knowing VGG's scale:

- `gram_relative`: Gram distance of the result to the style image, divided by the content
  image's own Gram distance to the style (1.0 = no style transferred, 0 = the style's Grams).
- `meanstd_relative`: the same with the AdaIN mean/std distance.
- `content_relative`: feature distance of the result to the content at `content_layer`,
  divided by the style image's distance to the content (0 = the content's features,
  1 = as far as the style image).
- `grid`: how strongly a regular 8-pixel grid shows in the result (`grid_artifact`; about 1
  when none does), the trace a decoder's three 2x upsamplings can leave.

For clips, `warping_error` (Lai et al., ECCV 2018) measures flicker, and `video_report` adds
the style and content distances of a few frames.
"""

import dataclasses
import itertools
from typing import Iterable

import keras
import numpy as np
import tensorflow as tf

from style_tf import images, losses, vgg, video

STYLE_LAYERS = tuple(f"block{i}_conv1" for i in range(1, 6))
CONTENT_LAYER = "block5_conv2"


@dataclasses.dataclass(frozen=True)
class Report:
    """Every metric of one result; `rows()` gives a stable table order."""

    gram: float
    gram_relative: float
    meanstd: float
    meanstd_relative: float
    content: float
    content_relative: float
    ssim: float
    psnr: float
    mse: float
    mae: float
    color_histogram: float  # Distance of the result's colour histogram to the style's, 0..1.
    grid: float  # grid_artifact() of the result.

    def rows(self) -> list[tuple[str, float]]:
        return [(f.name, getattr(self, f.name)) for f in dataclasses.fields(self)]


def feature_model(network: str = "vgg19", weights: str = "bundled") -> keras.Model:
    """The VGG model that metrics read (float32, every style layer and the content layer)."""
    return vgg.feature_model(STYLE_LAYERS + (CONTENT_LAYER,), network, weights)


def gram_distance(feats_a: dict, feats_b: dict, layers=STYLE_LAYERS) -> float:
    """Mean over layers of the mean squared Gram difference (the engine's style loss)."""
    grams_a = {n: losses.gram_matrix(feats_a[n]) for n in layers}
    grams_b = {n: losses.gram_matrix(feats_b[n]) for n in layers}
    return float(losses.style_loss(grams_a, grams_b)[0])


def meanstd_distance(feats_a: dict, feats_b: dict, layers=STYLE_LAYERS) -> float:
    """AdaIN style distance: summed over layers, mean/std squared differences."""
    return float(losses.mean_std_loss({n: feats_a[n] for n in layers},
                                      {n: feats_b[n] for n in layers})[0])


def feature_distance(feats_a: dict, feats_b: dict, layer: str = CONTENT_LAYER) -> float:
    return float(tf.reduce_mean(tf.square(feats_a[layer] - feats_b[layer])))


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB of two images in [0, 1] (inf when equal)."""
    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(1.0 / mse)


def color_histogram_distance(a: np.ndarray, b: np.ndarray, bins: int = 32) -> float:
    """Half the L1 distance of per-channel colour histograms, averaged over RGB (0..1)."""
    total = 0.0
    for c in range(3):
        ha, _ = np.histogram(a[..., c], bins=bins, range=(0, 1))
        hb, _ = np.histogram(b[..., c], bins=bins, range=(0, 1))
        total += 0.5 * np.abs(ha / ha.sum() - hb / hb.sum()).sum()
    return total / 3


def grid_artifact(image: np.ndarray, period: int = 8) -> float:
    """Spectral power of the luminance at the harmonics of a `period`-pixel grid (periods 8,
    4, 8/3 and 2 for 8) over the median power of nearby frequencies, averaged over the
    harmonics and both axes. About 1 where no grid shows; NaN for images too small to tell
    (under 16 periods a side)."""
    y = np.asarray(image, np.float64)[..., :3] @ np.array([0.299, 0.587, 0.114])
    y = (y - y.mean()) * np.outer(np.hanning(y.shape[0]), np.hanning(y.shape[1]))
    ratios = []
    for axis in (0, 1):
        n = y.shape[axis]
        if n < 16 * period:
            return float("nan")
        power = np.mean(np.abs(np.fft.rfft(y, axis=axis)) ** 2, axis=1 - axis)  # By frequency.
        for harmonic in range(1, period // 2 + 1):
            k = round(harmonic * n / period)
            near = np.r_[power[max(k - 8, 1):k - 2], power[k + 3:k + 9]]
            ratios.append(power[k - 1:k + 2].max() / max(np.median(near), 1e-30))
    return float(np.mean(ratios))


def evaluate(model: keras.Model, content: np.ndarray, style: np.ndarray,
             stylized: np.ndarray) -> Report:
    """Measures a stylized image against its content and style.

    Args:
      model: from `feature_model()`.
      content: (H, W, 3) in [0, 1]; resized to the stylized image's size.
      style: (h, w, 3) in [0, 1], any size.
      stylized: (H', W', 3) in [0, 1].
    """
    side = vgg.min_side(STYLE_LAYERS + (CONTENT_LAYER,))  # Tiny images are measured enlarged.
    stylized, style = images.at_least(stylized, side), images.at_least(style, side)
    size = stylized.shape[:2]
    content = images.resize(content, size=size)
    f_x, f_c, f_s = (model(np.asarray(i, np.float32)[None]) for i in (stylized, content, style))
    f_s_content_size = model(images.resize(style, size=size)[None])
    gram_x, gram_c = gram_distance(f_x, f_s), gram_distance(f_c, f_s)
    ms_x, ms_c = meanstd_distance(f_x, f_s), meanstd_distance(f_c, f_s)
    content_x = feature_distance(f_x, f_c)
    content_s = feature_distance(f_s_content_size, f_c)
    x, c = tf.constant(stylized[None], tf.float32), tf.constant(content[None], tf.float32)
    return Report(
        gram=gram_x, gram_relative=gram_x / max(gram_c, 1e-12),
        meanstd=ms_x, meanstd_relative=ms_x / max(ms_c, 1e-12),
        content=content_x, content_relative=content_x / max(content_s, 1e-12),
        ssim=float(tf.image.ssim(x, c, max_val=1.0)[0]),
        psnr=psnr(stylized, content),
        mse=float(np.mean((stylized - content) ** 2)), mae=float(np.mean(np.abs(stylized - content))),
        color_histogram=color_histogram_distance(stylized, style), grid=grid_artifact(stylized))


def style_similarity(model: keras.Model, a: np.ndarray, b: np.ndarray) -> float:
    """Similarity of two style images: mean over style layers of the cosine of their Grams.

    1.0 for the same style statistics; symmetric; near 0 for unrelated textures.
    """
    f_a, f_b = model(np.asarray(a, np.float32)[None]), model(np.asarray(b, np.float32)[None])
    cosines = []
    for n in STYLE_LAYERS:
        g_a = tf.reshape(losses.gram_matrix(f_a[n]), [-1])
        g_b = tf.reshape(losses.gram_matrix(f_b[n]), [-1])
        cosines.append(float(tf.reduce_sum(g_a * g_b) / (tf.norm(g_a) * tf.norm(g_b) + 1e-12)))
    return float(np.mean(cosines))


# --- clips ------------------------------------------------------------------------------


def warping_error(inputs: Iterable[np.ndarray], outputs: Iterable[np.ndarray]) -> float:
    """The warping error of Lai et al. (ECCV 2018): how much a stylized clip flickers.

    For each pair of consecutive frames, the previous stylized frame is warped onto the
    current one along the optical flow of the *input* frames; the error is the mean, over the
    pixels where that flow is reliable (`video.reliable`: not occluded), of the squared RGB
    distance between the stylized frame and the warped one, averaged over the pairs. 0 for a
    clip that moves exactly as its input does.

    Args:
      inputs: the input frames, (H, W, 3) in [0, 1] (resized to the outputs' size).
      outputs: the stylized frames, as many, (H', W', 3) in [0, 1].

    Returns:
      The mean error (NaN for fewer than two frames).
    """
    errors, previous = [], None
    for x, y in zip(inputs, outputs):
        if x.shape[:2] != y.shape[:2]:
            x = images.resize(x, size=y.shape[:2])
        if previous is not None:
            errors.append(pair_warping_error(previous[0], x, previous[1], y))
        previous = (x, y)
    return float(np.mean(errors)) if errors else float("nan")


def pair_warping_error(input_a: np.ndarray, input_b: np.ndarray, output_a: np.ndarray,
                       output_b: np.ndarray) -> float:
    """`warping_error` of one pair of frames (a, then b), all (H, W, 3) in [0, 1]."""
    backward = video.optical_flow(input_b, input_a)
    mask = video.reliable(backward, video.optical_flow(input_a, input_b))  # (H, W)
    warped = video.warp(output_a, backward)
    squared = np.sum(np.square(np.asarray(output_b, np.float64) - warped), axis=-1)
    return float(np.sum(mask * squared) / max(np.sum(mask), 1.0))


def video_report(model: keras.Model, content: str, style: np.ndarray, stylized: str,
                 start: float = 0.0, samples: int = 3) -> dict[str, float]:
    """Measures a stylized clip against its input clip and style.

    Args:
      model: from `feature_model()`.
      content: the input clip's path (read from `start` seconds, as the stylized clip was).
      style: (h, w, 3) the style image.
      stylized: the stylized clip's path.
      start: where in `content` the stylized clip starts (its --start).
      samples: frames evenly spread from the first to the last (first, middle and last for
        3) on which the style and content distances are measured.

    Returns:
      {"warping_error", "frames", and the mean over the sampled frames of each `Report`
      field (e.g. "meanstd_relative", "content_relative")}.
    """
    info = video.probe(stylized)
    size = (info.height, info.width)
    wanted = {round(i * (info.frames - 1) / max(samples - 1, 1)) for i in range(samples)}
    reports, pairs, last, count = [], [], None, 0

    def frames():
        nonlocal last, count
        for i, (x, y) in enumerate(zip(video.read(content, size, start), video.read(stylized, size))):
            last, count = (i, x.image, y.image), i + 1
            if i in wanted:
                reports.append(evaluate(model, x.image, style, y.image))
                pairs.append(i)
            yield x.image, y.image

    error = warping_error(*_unzip(frames()))
    if last is not None and last[0] not in pairs and len(reports) < samples:  # Fewer frames than said.
        reports.append(evaluate(model, last[1], style, last[2]))
    out = {"warping_error": error, "frames": float(count)}
    for name, _ in reports[0].rows() if reports else []:
        out[name] = float(np.mean([getattr(r, name) for r in reports]))
    return out


def _unzip(pairs):
    """Two iterators over the firsts and the seconds of `pairs`, consumed in step."""
    a, b = itertools.tee(pairs)
    return (x for x, _ in a), (y for _, y in b)
