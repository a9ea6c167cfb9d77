"""Losses as pure functions of tensors, written with `keras.ops` (any Keras backend).

Normalisation follows the TensorFlow style transfer tutorial, so its published weights mean
the same here: Gram matrices are divided by the number of positions, style and content
losses are means of squared differences averaged over their layers, and total variation is
the summed absolute difference of neighbouring pixels (`tf.image.total_variation`).
Functions that sum over layers return named parts (`{"style/block1_conv1": ...}`) for logging.
"""

from keras import ops


def gram_matrix(features, mask=None):
    """Gram matrix of features, divided by the number of (masked) positions.

    The product runs in the features' own dtype (bfloat16 features stay bfloat16, the
    engine's fast path; float32 stays float32) and returns float32.

    Args:
      features: (B, H, W, C).
      mask: optional (B, H, W, 1) weights in [0, 1]; the Gram of the masked region.

    Returns:
      (B, C, C) float32.
    """
    shape = ops.shape(features)
    if mask is None:
        count = ops.cast(shape[1] * shape[2], "float32")
    else:
        mask = ops.cast(mask, "float32")
        features = features * ops.cast(mask, features.dtype)
        count = ops.maximum(ops.sum(mask, axis=(1, 2, 3)), 1.0)[:, None, None]
    return _gram_sum(ops.reshape(features, (shape[0], shape[1] * shape[2], shape[3]))) / count


@ops.custom_gradient
def _gram_sum(flat):
    """F^T F of (B, N, C) `flat` as float32, with the gradient F (dG + dG^T): one matrix
    product where differentiating F^T F as a product of two tensors takes two, in the
    features' dtype: the engine's fast path (benchmarks/RESULTS.md, "Optimize engine")."""

    def grad(*args, upstream=None):
        upstream = args[0] if upstream is None else upstream
        sym = upstream + ops.transpose(upstream, (0, 2, 1))
        return ops.matmul(flat, ops.cast(sym, flat.dtype))

    return ops.cast(ops.matmul(ops.transpose(flat, (0, 2, 1)), flat), "float32"), grad


def mean_std(features, eps: float = 1e-5):
    """Per-channel mean and standard deviation over positions: two (B, 1, 1, C) tensors."""
    features = ops.cast(features, "float32")
    mean = ops.mean(features, axis=(1, 2), keepdims=True)
    var = ops.mean(ops.square(features - mean), axis=(1, 2), keepdims=True)
    return mean, ops.sqrt(var + eps)


def weighted_layer_mean(parts: dict, layer_weights: dict, prefix: str):
    """Names each layer's loss `prefix/layer` and returns (sum_l w_l * loss_l / n_layers, parts)."""
    named = {f"{prefix}/{name}": value for name, value in parts.items()}
    total = ops.sum(ops.stack([layer_weights.get(n, 1.0) * v for n, v in parts.items()]))
    return total / len(parts), named


def content_loss(features: dict, targets: dict, layer_weights: dict | None = None):
    """Mean squared feature difference averaged over layers.

    Args:
      features, targets: `{layer: (B, H, W, C)}` with the same keys.
      layer_weights: optional `{layer: weight}` (default 1).

    Returns:
      (scalar loss, `{"content/<layer>": scalar}`).
    """
    parts = {name: ops.mean(ops.square(ops.cast(features[name], "float32") -
                                       ops.cast(targets[name], "float32")))
             for name in targets}
    return weighted_layer_mean(parts, layer_weights or {}, "content")


def style_loss(grams: dict, targets: dict, layer_weights: dict | None = None):
    """Mean squared Gram difference averaged over layers.

    Args:
      grams: `{layer: (B, C, C)}` Gram matrices of the image.
      targets: `{layer: (1 or B, C, C)}` target Gram matrices.
      layer_weights: optional `{layer: weight}` (default 1).

    Returns:
      (scalar loss, `{"style/<layer>": scalar}`).
    """
    parts = {name: ops.mean(ops.square(grams[name] - targets[name])) for name in targets}
    return weighted_layer_mean(parts, layer_weights or {}, "style")


@ops.custom_gradient
def total_variation(images):
    """Sum of absolute differences of neighbouring pixels: (B, H, W, C) -> scalar (batch sum).

    Its gradient, the differences' signs scattered back by two padded subtractions, is written
    out: TensorFlow's own, through the slices' gradients, is slower (benchmarks/RESULTS.md,
    "Optimize engine")."""
    dy = images[:, 1:, :, :] - images[:, :-1, :, :]
    dx = images[:, :, 1:, :] - images[:, :, :-1, :]

    def grad(*args, upstream=None):
        upstream = args[0] if upstream is None else upstream
        sy, sx = ops.sign(dy) * upstream, ops.sign(dx) * upstream
        before, after, none = (1, 0), (0, 1), (0, 0)
        return (ops.pad(sy, (none, before, none, none)) - ops.pad(sy, (none, after, none, none))
                + ops.pad(sx, (none, none, before, none)) - ops.pad(sx, (none, none, after, none)))

    return ops.sum(ops.abs(dy)) + ops.sum(ops.abs(dx)), grad


def temporal_loss(images, warped, mask):
    """Ruder et al. (2016)'s short-term temporal loss: the mean squared difference to the
    previous frame's result warped onto this one, where the flow is reliable.

    Args:
      images: (B, H, W, 3) the frame being optimised.
      warped: (B, H, W, 3) the previous result warped by the input frames' flow.
      mask: (B, H, W, 1) 1 where that flow is reliable, 0 where occluded.

    Returns:
      Scalar float32: mean over pixels and channels of mask * (images - warped)^2.
    """
    images = ops.cast(images, "float32")
    return ops.mean(ops.cast(mask, "float32") * ops.square(images - ops.cast(warped, "float32")))


def mean_std_loss(features: dict, targets: dict, eps: float = 1e-5):
    """AdaIN style loss: squared distance of per-channel means and stds, summed over layers.

    Args:
      features: `{layer: (B, H, W, C)}` of the stylized image.
      targets: `{layer: (B, H, W, C)}` of the style image.

    Returns:
      (scalar loss summed over layers, `{"style/<layer>": scalar}`).
    """
    parts = {}
    for name in targets:
        mean, std = mean_std(features[name], eps)
        t_mean, t_std = mean_std(targets[name], eps)
        # Means over batch and channels, as the AdaIN reference code, so style weight 10 holds.
        parts[f"style/{name}"] = (ops.mean(ops.square(mean - t_mean)) +
                                  ops.mean(ops.square(std - t_std)))
    return ops.sum(ops.stack(list(parts.values()))), parts


def grid_loss(images, period: int = 8):
    """Penalty on a regular `period`-pixel grid (the decoder's cross-hatch), as a loss.

    The training form of `metrics.grid_artifact`: the luminance power spectrum along each axis,
    averaged over the batch (a grid sits at the same place in every image of the batch, their
    texture does not, so the average keeps the grid's peaks and smooths the rest); for each axis
    and harmonic of the grid (periods 8, 4, 8/3 and 2 for 8), the log of the power at the
    harmonic over the mean power of nearby frequencies, counted only where above 0 (a peak).
    Photos and paintings score near 0 (benchmarks/RESULTS.md, "Decoder training"), so the term
    asks for no grid and nothing else of the texture.

    Args:
      images: (B, H, W, 3) float32 RGB with H and W at least 16 periods.

    Returns:
      scalar, the mean over axes and harmonics.
    """
    y = ops.sum(images * ops.convert_to_tensor([0.299, 0.587, 0.114], images.dtype), axis=-1)
    y = y - ops.mean(y, axis=(1, 2), keepdims=True)
    h, w = ops.shape(y)[1], ops.shape(y)[2]
    y = y * ops.hanning(h)[:, None] * ops.hanning(w)[None, :]
    terms = []
    for lines in (y, ops.transpose(y, (0, 2, 1))):  # Frequencies along x, then along y.
        n = ops.shape(lines)[2]
        real, imag = ops.rfft(lines)
        power = ops.mean(real * real + imag * imag, axis=(0, 1))  # (n // 2 + 1,)
        for harmonic in range(1, period // 2 + 1):
            k = round(harmonic * n / period)
            near = ops.concatenate([power[max(k - 8, 1):k - 2], power[k + 3:k + 9]])
            peak = ops.max(power[k - 1:k + 2])
            terms.append(ops.relu(ops.log(peak + 1e-12) - ops.log(ops.mean(near) + 1e-12)))
    return ops.mean(ops.stack(terms))
