"""VGG16/VGG19 feature models that return `{keras_layer_name: features}` for named layers.

The model takes RGB in [0, 1] and applies Keras "caffe" preprocessing itself (RGB -> BGR,
x255, minus the ImageNet channel means), so callers never see BGR. Only the layers up to
the deepest requested one are built: a style model ending at `block5_conv1` skips the rest.
Written with Keras layers and `keras.ops`, so it runs under any Keras backend.
"""

import functools
import pathlib

import keras
from keras import ops

from style_tf.errors import StyleError
from style_tf.weights import load_vgg_weights

# Convolutions per block and filters per block, as in keras.applications.
BLOCKS = {"vgg16": (2, 2, 3, 3, 3), "vgg19": (2, 2, 4, 4, 4)}
FILTERS = (64, 128, 256, 512, 512)
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
PRECISIONS = ("auto", "bfloat16", "float32")


@functools.cache
def native_bfloat16() -> bool:
    """Whether this CPU computes bfloat16 in hardware (AMX or AVX512-BF16). Elsewhere bfloat16
    is emulated and several times slower than float32."""
    try:
        flags = pathlib.Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return any(f in flags.split() for f in ("amx_bf16", "avx512_bf16"))


def dtype_policy(precision: str) -> str | None:
    """Keras dtype policy for a `--precision` value: "bfloat16" -> mixed bfloat16, "float32" ->
    None, "auto" -> bfloat16 where the CPU has it natively, else float32.

    Raises:
      StyleError: unknown precision.
    """
    if precision not in PRECISIONS:
        raise StyleError(f"unknown precision {precision!r} (use {', '.join(PRECISIONS)})")
    if precision == "auto":
        precision = "bfloat16" if native_bfloat16() else "float32"
    return "mixed_bfloat16" if precision == "bfloat16" else None


def conv_shapes(network: str) -> dict[str, tuple[tuple[int, ...], tuple[int, ...]]]:
    """`{layer_name: (kernel_shape, bias_shape)}` of the convolutions of `network`: what
    weights.py checks every weights file against."""
    shapes, channels = {}, 3
    for block, (convs, filters) in enumerate(zip(BLOCKS[network], FILTERS), start=1):
        for conv in range(1, convs + 1):
            shapes[f"block{block}_conv{conv}"] = ((3, 3, channels, filters), (filters,))
            channels = filters
    return shapes


def layer_names(network: str = "vgg19") -> list[str]:
    """All feature layer names of `network` in forward order (convolutions and pools)."""
    names = []
    for block, convs in enumerate(BLOCKS[network], start=1):
        names += [f"block{block}_conv{i}" for i in range(1, convs + 1)] + [f"block{block}_pool"]
    return names


def min_side(layers, network: str = "vgg19") -> int:
    """The smallest image side for which every layer of `layers` has at least one pixel.

    Each 2x2 pooling before the deepest layer halves the image (rounding down), so an image
    needs 2 ** pools pixels a side: 8 for `block4_conv1`, 16 for `block5_conv1`. Smaller
    images are enlarged to this (`images.at_least`) rather than refused.
    """
    order = layer_names(network)
    last = max(order.index(n) for n in layers)
    return 2 ** sum(n.endswith("pool") for n in order[:last])


@keras.saving.register_keras_serializable(package="style_tf")
class CaffePreprocess(keras.layers.Layer):
    """RGB in [0, 1] -> BGR in 0..255 minus the ImageNet means, as the VGG weights expect."""

    def call(self, rgb):  # (B, H, W, 3)
        bgr = ops.flip(rgb, axis=-1) * 255.0
        return bgr - ops.convert_to_tensor(CAFFE_MEAN_BGR, dtype=bgr.dtype)


def feature_model(layers, network: str = "vgg19", weights: str = "bundled", pooling: str = "max",
                  dtype: str | None = None, name: str | None = None,
                  scale: dict | None = None) -> keras.Model:
    """Builds a frozen VGG feature model.

    Args:
      layers: Keras layer names whose outputs to return (e.g. "block4_conv1").
      network: "vgg19" or "vgg16".
      weights: "bundled", "imagenet", a path to a weights file, or None (random; tests).
      pooling: "max" (as trained) or "avg" (smoother results, Gatys et al.).
      dtype: Keras dtype policy of the convolutions, e.g. "mixed_bfloat16"; None for float32.
      name: model name.
      scale: optional {layer_name: factor} applied to those outputs (a weightless Rescaling).

    Returns:
      A model mapping (B, H, W, 3) RGB in [0, 1] to `{layer_name: (B, h, w, c)}`.

    Raises:
      StyleError: unknown network, layer name or pooling, or weights that cannot be loaded.
    """
    if network not in BLOCKS:
        raise StyleError(f"unknown network {network!r} (use vgg19 or vgg16)")
    if pooling not in ("max", "avg"):
        raise StyleError(f"unknown pooling {pooling!r} (use max or avg)")
    order = layer_names(network)
    layers = list(dict.fromkeys(layers))
    unknown = [n for n in layers if n not in order]
    if unknown:
        raise StyleError(f"unknown {network} layer {unknown[0]!r} (known: {', '.join(order)})")
    if not layers:
        raise StyleError("no feature layers requested")
    last = max(order.index(n) for n in layers)
    params = None if weights is None else load_vgg_weights(network, weights)

    inputs = keras.Input((None, None, 3), name="rgb")
    x = CaffePreprocess(name="caffe_preprocess")(inputs)
    outputs = {}
    for layer_name in order[: last + 1]:
        block = int(layer_name[5])
        if layer_name.endswith("pool"):
            pool = keras.layers.MaxPooling2D if pooling == "max" else keras.layers.AveragePooling2D
            x = pool(2, strides=2, name=layer_name, dtype=dtype)(x)
        else:
            conv = keras.layers.Conv2D(FILTERS[block - 1], 3, padding="same", activation="relu",
                                       name=layer_name, dtype=dtype, trainable=False)
            x = conv(x)
            if params is not None:
                conv.set_weights(list(params[layer_name]))
        if layer_name in layers:
            outputs[layer_name] = x
            if scale and layer_name in scale:
                outputs[layer_name] = keras.layers.Rescaling(
                    scale[layer_name], name=f"scale_{layer_name}", dtype=dtype)(x)
    model = keras.Model(inputs, outputs, name=name or f"{network}_features")
    model.trainable = False
    return model
