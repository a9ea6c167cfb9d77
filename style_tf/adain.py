"""AdaIN (Huang & Belongie 2017): VGG19 encoder, adaptive instance norm, trained decoder.

Written with Keras layers and `keras.ops` so the network runs under any Keras backend (the
decoder can be trained under JAX on a GPU and loaded back into TensorFlow for export).

A style is summarised by its *style vector*: the per-channel means then standard deviations
of its `block4_conv1` features, `(B, 1, 1, 1024)`. Because AdaIN is linear in the style
statistics, the paper's interpolation between styles (a weighted sum of AdaIN outputs)
equals AdaIN with the weighted sum of style vectors, which is what the phone models do.
"""

from pathlib import Path

import keras
from keras import ops

from style_tf import losses, vgg
from style_tf.errors import StyleError

ENCODER_LAYERS = ("block1_conv1", "block2_conv1", "block3_conv1", "block4_conv1")
BOTTLENECK = "block4_conv1"
MIN_SIDE = vgg.min_side((BOTTLENECK,))  # 8: the encoder's three poolings need 8 px a side.
CHANNELS = 512  # Channels of the bottleneck; a style vector has 2 * CHANNELS values.
EPS = 1e-5
# The encoder divides each layer's features by its mean activation (over 256-px crops of the
# training photos and artworks, rounded), so that every layer and the decoder's input are of
# order 1, as in the "normalised" VGG the paper trained with: with raw activations the style
# loss ignores the colour-carrying first layer and the decoder learns slower
# (benchmarks/RESULTS.md, "Decoder training").
FEATURE_SCALE = {"block1_conv1": 20.0, "block2_conv1": 100.0, "block3_conv1": 100.0,
                 "block4_conv1": 400.0}

# Pixels of mirrored content added round an image while it is stylized and cropped after: the
# zero-padded convolutions draw a frame at the borders of what they see, which then falls
# outside the image (a multiple of 8, the decoder's upsampling). The trained decoder's frame
# reaches about 24 px in: 16 px left coloured stripes along the image's edges. Its cost and its
# effect on the scores: benchmarks/RESULTS.md, "AdaIN quality".
BORDER = 32


def border_for(size) -> int:
    """The mirrored border an image of `size` (rows, columns) is stylized with: BORDER where the
    image is wider than that (mirroring needs it), else none."""
    return BORDER if min(size) > BORDER else 0

# The decoder mirrors VGG19 up to block4_conv1: (filters, upsample after) per 3x3 conv.
DECODER_PLAN = ((256, True), (256, False), (256, False), (256, False), (128, True),
                (128, False), (64, True), (64, False))


def adaptive_instance_norm(content_feat, style_feat, eps: float = EPS):
    """Re-normalises content features to the style's per-channel mean and std.

    Args:
      content_feat: (B, H, W, C).
      style_feat: (B, h, w, C).

    Returns:
      (B, H, W, C) float32.
    """
    return apply_style_vector(content_feat, style_vector(style_feat, eps), eps)


def style_vector(features, eps: float = EPS):
    """(B, H, W, C) -> (B, 1, 1, 2C): channel means then channel stds."""
    mean, std = losses.mean_std(features, eps)
    return ops.concatenate([mean, std], axis=-1)


def content_vector(content_feat, mask=None, crop: int = 0, eps: float = EPS):
    """(B, 1, 1, 2C): the content's channel means then stds, over `mask` (B, H, W, 1) if given.

    `crop` feature pixels at each edge are left out (a border added for the convolutions, see
    `transform`).
    """
    stats = ops.cast(content_feat, "float32")
    stats = stats[:, crop:-crop, crop:-crop] if crop else stats
    if mask is None:
        return style_vector(stats, eps)
    mask = ops.cast(mask, "float32")
    mask = mask[:, crop:-crop, crop:-crop] if crop else mask
    area = ops.maximum(ops.sum(mask, axis=(1, 2), keepdims=True), 1.0)
    mean = ops.sum(stats * mask, axis=(1, 2), keepdims=True) / area
    var = ops.sum(ops.square(stats - mean) * mask, axis=(1, 2), keepdims=True) / area
    return ops.concatenate([mean, ops.sqrt(var + eps)], axis=-1)


def apply_style_vector(content_feat, vector, eps: float = EPS, mask=None, crop: int = 0,
                       stats=None):
    """AdaIN with a style vector; the content's statistics are `stats` (a `content_vector`)
    if given, else the features' own (over `mask`, less `crop` edge pixels: `content_vector`).

    Returns:
      (B, H, W, C) float32: `std_s * (x - mean_c) / std_c + mean_s`.
    """
    content_feat = ops.cast(content_feat, "float32")
    if stats is None:
        stats = content_vector(content_feat, mask, crop, eps)
    channels = ops.shape(vector)[-1] // 2
    s_mean, s_std = vector[..., :channels], vector[..., channels:]
    c_mean, c_std = stats[..., :channels], stats[..., channels:]
    return s_std * (content_feat - c_mean) / c_std + s_mean


def encoder(weights: str | None = "bundled", dtype: str | None = None,
            layers=ENCODER_LAYERS) -> keras.Model:
    """Frozen VGG19 up to `block4_conv1` (shared with the optimize engine via vgg.py), each
    layer's features divided by its FEATURE_SCALE."""
    return vgg.feature_model(layers, "vgg19", weights, dtype=dtype, name="adain_encoder",
                             scale={n: 1.0 / FEATURE_SCALE[n] for n in layers})


def decoder(dtype: str | None = None, width: int = 1, name: str = "adain_decoder") -> keras.Model:
    """The mirror of the encoder: (B, H/8, W/8, 512) normalised features -> (B, H, W, 3) RGB
    (unclipped); with `width` > 1 every layer but the last has 1/width of the channels (the
    student's).

    Nearest-neighbour upsampling, no normalisation, zero ("same") padding: in TFLite,
    reflection padding (MIRROR_PAD) is slow on phone-class CPUs, and a decoder trained with
    zero padding learns its borders.
    """
    inputs = keras.Input((None, None, CHANNELS // width), name="features")
    x = inputs
    for i, (filters, upsample) in enumerate(DECODER_PLAN, start=1):
        x = keras.layers.Conv2D(filters // width, 3, padding="same", activation="relu",
                                name=f"decoder_conv{i}", dtype=dtype)(x)
        if upsample:
            x = keras.layers.UpSampling2D(2, interpolation="nearest", name=f"decoder_up{i}",
                                          dtype=dtype)(x)
    x = keras.layers.Conv2D(3, 3, padding="same", name="decoder_rgb", dtype=dtype)(x)
    outputs = keras.layers.Activation("linear", dtype="float32", name="rgb")(x)
    return keras.Model(inputs, outputs, name=name)


def load_decoder(path, dtype: str | None = None) -> keras.Model:
    """A decoder with weights from a `.weights.h5` file.

    Raises:
      StyleError: the file is missing or does not hold this decoder's weights.
    """
    return load_weights(decoder(dtype), decoder_path(str(path)), "AdaIN decoder")


def load_weights(model: keras.Model, path, what: str) -> keras.Model:
    """`model` with its weights read from `path`; StyleError "not <what> weights (...)" if the
    file does not hold them."""
    try:
        model.load_weights(path)
    except (ValueError, OSError, KeyError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise StyleError(f"{path}: not {what} weights ({first})") from None
    return model


def transform(enc: keras.Model, dec: keras.Model, content, vector, alpha=1.0, masks=None,
              border: int = BORDER):
    """Stylizes content images with style vectors.

    Args:
      enc, dec: encoder (returning at least `block4_conv1`) and decoder.
      content: (B, H, W, 3) RGB in [0, 1]; H and W multiples of 8 keep the size exact.
      vector: (B, 1, 1, 1024) style vector, or a list of them when `masks` is given.
      alpha: 0 = the content's own features decoded, 1 = full style.
      masks: optional list of (B, H, W, 1) region masks in [0, 1] (summing to 1), one per vector.
      border: pixels of mirrored content stylized round the image and cropped (BORDER, a
        multiple of 8); H and W must exceed it.

    Returns:
      (B, H, W, 3) RGB, clipped to [0, 1].
    """
    return transform_with_stats(enc, dec, content, vector, alpha, masks, border)[0]


def transform_with_stats(enc: keras.Model, dec: keras.Model, content, vector, alpha=1.0,
                         masks=None, border: int = BORDER, stats=None, own=0.0,
                         mirrored: bool = False, follow: float = 0.0):
    """`transform`, normalising the content by `stats` if given, and returning what it used.

    Args:
      stats: content statistics to use instead of the image's own: a list of
        `content_vector`s, one per mask (one without masks). A crop stylized with the
        statistics of the image it was cut from takes on the same tones.
      own: with `stats`, the share (0..1) of the image's own statistics mixed into them: a
        clip's frame keeps a running average of the clip's statistics, so that its
        brightness and palette do not pump from frame to frame.
      follow: with `stats`, the image's own statistics count more where they are far from
        them: their share is at least the channels' mean shift, in `stats`' stds, over `follow`
        (a new scene is not normalised by the last one's); 0: `own` alone.
      mirrored: the content has its `border` of mirrored pixels already (not added again).
      (the rest as in `transform`)

    Returns:
      (stylized images, the list of content statistics used).
    """
    if border and not mirrored:
        pad = [(0, 0), (border, border), (border, border), (0, 0)]
        content = ops.pad(content, pad, mode="reflect")
        masks = None if masks is None else [ops.pad(m, pad, mode="reflect") for m in masks]
    feat = ops.cast(enc(content)[BOTTLENECK], "float32")  # (B, H/8, W/8, 512)
    crop = border // 8  # The content's statistics come from the image, not its mirrored border.
    if masks is None:
        used = [_mixed(content_vector(feat, crop=crop), stats, 0, own, follow)]
        target = apply_style_vector(feat, vector, stats=used[0])
    else:
        size = ops.shape(feat)[1:3]
        target, used = 0.0, []
        for i, (v, m) in enumerate(zip(vector, masks)):
            m = ops.image.resize(ops.cast(m, "float32"), size, interpolation="bilinear")
            used.append(_mixed(content_vector(feat, m, crop), stats, i, own, follow))
            target = target + m * apply_style_vector(feat, v, stats=used[-1])
    target = alpha * target + (1.0 - alpha) * feat
    out = ops.clip(ops.cast(dec(target), "float32"), 0.0, 1.0)
    return (out[:, border:-border, border:-border] if border else out), used


def _mixed(own_stats, stats, index: int, own, follow: float = 0.0):
    """The statistics `transform_with_stats` uses: the image's own, or `stats[index]` with a
    share `own` of the image's own mixed in (more where they differ, `follow`)."""
    if stats is None:
        return own_stats
    given = stats[index]
    if follow:
        c = given.shape[-1] // 2  # Means, then stds.
        shift = ops.mean(ops.abs(own_stats[..., :c] - given[..., :c]) / (given[..., c:] + 1e-3))
        own = ops.maximum(own, ops.minimum(shift / follow, 1.0))
    return own * own_stats + (1.0 - own) * given


def training_losses(enc: keras.Model, dec: keras.Model, content, style,
                    content_weight: float = 1.0, style_weight: float = 10.0,
                    identity_weight: float = 0.0, grid_weight: float = 0.0,
                    identity_feature_weight: float = 0.0):
    """The AdaIN training objective for one batch (shared by training and evaluation).

    Args:
      enc: encoder returning all of ENCODER_LAYERS.
      dec: decoder being trained.
      content, style: (B, H, W, 3) RGB in [0, 1].
      identity_weight: weight of an identity term (not in the paper): the mean absolute pixel
        error of the decoder on the plain content features of the first half of the batch
        (alpha 0); with it the decoder paints less texture where the features ask for none.
      grid_weight: weight of `losses.grid_loss` on the stylized images (not in the paper): it
        asks the decoder not to lay its texture on the 8-pixel grid of its upsampling.
      identity_feature_weight: weight of the same reconstructions' error in feature space (not
        in the paper): the mean squared error of their encoder features against the content's,
        summed over ENCODER_LAYERS; it asks for the edges and shapes (eyes, mouths) that a
        pixel error lets blur.

    Returns:
      (total loss, {"content": ..., "style": ..., "style/<layer>": ..., "identity": ...,
      "identity_features": ..., "grid": ...}, stylized images).
    """
    c_feats = enc(content)
    s_feats = enc(style)
    target = adaptive_instance_norm(c_feats[BOTTLENECK], s_feats[BOTTLENECK])
    batch = ops.shape(content)[0]
    half = (batch + 1) // 2
    if identity_weight or identity_feature_weight:  # One decoder call: stylized, then rebuilt.
        decoded = ops.cast(dec(ops.concatenate([target, c_feats[BOTTLENECK][:half]], 0)), "float32")
        stylized, rebuilt = decoded[:batch], decoded[batch:]
    else:
        stylized = decoded = ops.cast(dec(target), "float32")
    if identity_feature_weight:  # One encoder call for both as well.
        both = enc(decoded)
        g_feats = {k: v[:batch] for k, v in both.items()}
        r_feats = {k: v[batch:] for k, v in both.items()}
    else:
        g_feats = enc(stylized)
    content_loss = ops.mean(ops.square(ops.cast(g_feats[BOTTLENECK], "float32") - target))
    style_loss, parts = losses.mean_std_loss(g_feats, s_feats)
    parts.update({"content": content_loss, "style": style_loss})
    total = content_weight * content_loss + style_weight * style_loss
    if identity_weight:
        parts["identity"] = ops.mean(ops.abs(rebuilt - ops.cast(content[:half], "float32")))
        total = total + identity_weight * parts["identity"]
    if identity_feature_weight:
        errors = [ops.cast(r_feats[k], "float32") - ops.cast(c_feats[k][:half], "float32")
                  for k in ENCODER_LAYERS]
        parts["identity_features"] = sum(ops.mean(ops.square(e)) for e in errors)
        total = total + identity_feature_weight * parts["identity_features"]
    if grid_weight:
        parts["grid"] = losses.grid_loss(stylized)
        total = total + grid_weight * parts["grid"]
    return total, parts, stylized


def decoder_path(weights: str = "bundled") -> Path:
    """The file of `weights`: "bundled" is models/adain_decoder.weights.h5 (see
    models/MODELS.md, its card), anything else a path.

    Raises:
      StyleError: there is no such file.
    """
    from style_tf.paths import models_dir

    path = models_dir() / "adain_decoder.weights.h5" if weights == "bundled" else Path(weights)
    if not path.is_file():
        raise StyleError(f"{path}: decoder weights not found")
    return path
