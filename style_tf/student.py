"""The phone-class AdaIN network: VGG19's encoder and our decoder, a quarter of the width.

The same interface as `adain.py`: an encoder returning `{BOTTLENECK: features}`, adaptive
instance norm at the bottleneck, a mirrored decoder, and a style vector (the bottleneck's
channel means then stds) that the student's own encoder computes, so blending, alpha, masks,
colour preservation and the face pass of `stylizer.Stylizer` work on it unchanged. A quarter
of the channels is a sixteenth of the multiply-adds (about 4.6 GMAC at 384x384 against 71).

It starts from the teacher pruned (`prune_from_teacher`: each layer keeps the filters with
the largest kernel norms, and the next layer the matching input channels) and is trained by
distillation (`distill.py`). Written with Keras layers and `keras.ops`: it trains under JAX.
"""

import dataclasses
import functools
from pathlib import Path

import keras
import numpy as np

from style_tf import adain, stylizer, vgg
from style_tf.errors import StyleError

WIDTH = 4  # The student has 1/WIDTH of the teacher's channels in every layer.
BOTTLENECK = adain.BOTTLENECK  # The pruned block4_conv1: the engine's vocabulary stays the same.
# (name, teacher filters) of VGG19's convolutions up to the bottleneck, in order.
ENCODER_CONVS = tuple((name, shape[0][-1]) for name, shape in vgg.conv_shapes("vgg19").items()
                      if vgg.layer_names().index(name) <= vgg.layer_names().index(BOTTLENECK))
CHANNELS = adain.CHANNELS // WIDTH  # Bottleneck channels; a style vector has 2 * CHANNELS values.
WEIGHTS_FILE = "student.weights.h5"


def encoder(dtype: str | None = None) -> keras.Model:
    """(B, H, W, 3) RGB in [0, 1] -> {BOTTLENECK: (B, H/8, W/8, CHANNELS)}, scaled as adain's."""
    inputs = keras.Input((None, None, 3), name="rgb")
    x = vgg.CaffePreprocess(name="caffe_preprocess")(inputs)
    for name, filters in ENCODER_CONVS:
        if name.endswith("conv1") and name != "block1_conv1":  # VGG's pool ends the block before.
            x = keras.layers.MaxPooling2D(2, name=f"block{int(name[5]) - 1}_pool", dtype=dtype)(x)
        x = keras.layers.Conv2D(filters // WIDTH, 3, padding="same", activation="relu", name=name,
                                dtype=dtype)(x)
    x = keras.layers.Rescaling(1.0 / adain.FEATURE_SCALE[BOTTLENECK], name="scale", dtype=dtype)(x)
    return keras.Model(inputs, {BOTTLENECK: x}, name="student_encoder")


def decoder(dtype: str | None = None) -> keras.Model:
    """(B, H/8, W/8, CHANNELS) -> (B, H, W, 3) RGB (unclipped): adain.DECODER_PLAN at 1/WIDTH."""
    return adain.decoder(dtype, WIDTH, "student_decoder")


def network(dtype: str | None = None) -> keras.Model:
    """Encoder and decoder in one model (content -> its own features decoded), which is what
    the weights file holds; `parts(model)` gives the two back."""
    enc, dec = encoder(dtype), decoder(dtype)
    inputs = keras.Input((None, None, 3), name="content")
    return keras.Model(inputs, dec(enc(inputs)[BOTTLENECK]), name="student")


def parts(model: keras.Model) -> tuple[keras.Model, keras.Model]:
    """(encoder, decoder) of a `network()`."""
    return model.get_layer("student_encoder"), model.get_layer("student_decoder")


def prune_from_teacher(model: keras.Model, teacher_decoder: keras.Model,
                       vgg_weights: str = "bundled") -> None:
    """Sets `model`'s weights to the teacher's largest filters (by the L1 norm of their kernels).

    Each layer keeps the output channels whose kernels have the largest L1 norms, and reads the
    input channels its predecessor kept; the decoder's first layer reads the bottleneck channels
    the encoder kept, so the pruned network starts as a rough copy of the teacher.
    """
    enc, dec = parts(model)
    teacher = vgg.load_vgg_weights("vgg19", vgg_weights)
    kept = np.arange(3)  # The RGB input.
    for name, _ in ENCODER_CONVS:
        kept = _prune(enc.get_layer(name), *teacher[name], kept)
    for layer in [*(f"decoder_conv{i}" for i in range(1, len(adain.DECODER_PLAN) + 1)), "decoder_rgb"]:
        kept = _prune(dec.get_layer(layer), *teacher_decoder.get_layer(layer).get_weights(), kept)


def _prune(layer, kernel: np.ndarray, bias: np.ndarray, inputs: np.ndarray) -> np.ndarray:
    """Copies the strongest `layer.filters` filters of (kernel, bias), reading `inputs`; returns
    the indices kept."""
    norms = np.abs(kernel[:, :, inputs, :]).sum(axis=(0, 1, 2))
    kept = np.sort(np.argsort(-norms)[:layer.filters])
    layer.set_weights([kernel[:, :, inputs][..., kept], bias[kept]])
    return kept


def weights_path(weights: str = "bundled"):
    """The file of `weights`: "bundled" is models/student.weights.h5, anything else a path.

    Raises:
      StyleError: there is no such file.
    """
    from style_tf.paths import models_dir

    path = models_dir() / WEIGHTS_FILE if weights == "bundled" else Path(weights)
    if weights == "bundled" and not path.is_file():
        raise StyleError(f"{path}: no student is bundled yet; train one (python -m style_tf.distill, "
                         "BUILD.md) and pass --student_weights")
    if not path.is_file():
        raise StyleError(f"{path}: student weights not found")
    return path



def load(weights: str = "bundled", dtype: str | None = None) -> tuple[keras.Model, keras.Model]:
    """(encoder, decoder) with weights from a `.weights.h5` file.

    Raises:
      StyleError: the file is missing or does not hold this network's weights.
    """
    return parts(adain.load_weights(network(dtype), weights_path(weights), "student network"))


@dataclasses.dataclass(frozen=True)
class MobileConfig(stylizer.NetworkConfig):
    """Settings of the phone-class engine (`--method=mobile`): adain's, the weights the student's."""

    student_weights: str = "bundled"  # "bundled" (models/student.weights.h5) or a .weights.h5 file.

    def weights_file(self) -> Path:
        return weights_path(self.student_weights)


class Engine(stylizer.Engine):
    """The student as `stylize` calls it: the AdaIN engine's `Stylizer` around the small network
    (blending, masks, alpha and the face pass as there)."""

    Config = MobileConfig

    def __init__(self, config: MobileConfig):
        self.config = config
        path = weights_path(config.student_weights)
        self.stylizer = _load(str(path), config.precision, (path.stat().st_mtime_ns, path.stat().st_size))


@functools.lru_cache(maxsize=1)
def _load(weights_file: str, precision: str, stamp) -> stylizer.Stylizer:
    """The models of one weights file, kept for the next call (`stamp`: mtime and size)."""
    del stamp  # Part of the cache key only.
    return stylizer.Stylizer(*load(weights_file, vgg.dtype_policy(precision)))
