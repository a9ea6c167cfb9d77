"""Where VGG weights come from: the bundled file (sha256-checked), the Keras cache or download, a path.

Every source returns the same thing: `{layer_name: (kernel (3, 3, in, out), bias (out,))}` as
float32 numpy arrays, checked against the shapes of the network (`vgg.conv_shapes`). The
network itself lives in vgg.py, which imports Keras and this module; this module imports it
only inside the functions that need it, so that importing this one imports no Keras.
"""

import hashlib
import os
from pathlib import Path

import numpy as np

from style_tf.errors import StyleError
from style_tf.paths import models_dir

BUNDLED_VGG19 = "vgg19_notop_q8.npz"
BUNDLED_VGG19_SHA256 = "9fb0764e1b44e121d8f3ca80e323fa17505fde1709b5b99ac7392276602f417c"

# The Keras "notop" ImageNet files (origin and md5, as keras.applications uses them).
_IMAGENET = {
    "vgg16": ("https://storage.googleapis.com/tensorflow/keras-applications/vgg16/"
              "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
              "6d6bbae143d832006294945121d1f1fc"),
    "vgg19": ("https://storage.googleapis.com/tensorflow/keras-applications/vgg19/"
              "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5",
              "253f8cb515780f3b799900260a226db6"),
}

Weights = dict[str, tuple[np.ndarray, np.ndarray]]


def sha256_file(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def load_vgg_weights(network: str, source: str = "bundled") -> Weights:
    """Loads VGG convolution weights.

    Args:
      network: "vgg19" or "vgg16".
      source: "bundled" (VGG19 only, from models/), "imagenet" (Keras cache or download),
        or a path to an `.h5` / `.weights.h5` / `.npz` file.

    Raises:
      StyleError: unknown network, missing or corrupted file, or shapes that do not match.
    """
    from style_tf.vgg import BLOCKS  # Here: vgg.py imports Keras and this file (see the top).

    if network not in BLOCKS:
        raise StyleError(f"unknown network {network!r} (use vgg19 or vgg16)")
    if source == "bundled":
        if network != "vgg19":
            raise StyleError(f"no bundled {network} weights: use --vgg_weights=imagenet (online or "
                             f"Keras cache) or a path to a {network} .h5 file")
        return load_bundled_vgg19()
    path = fetch_imagenet(network) if source == "imagenet" else Path(source)
    if not Path(path).is_file():
        raise StyleError(f"{path}: weights file not found")
    if str(path).endswith(".npz"):
        return _check_shapes(network, _read_npz(path), path)
    return _check_shapes(network, _read_keras_h5(network, path), path)


def load_bundled_vgg19(path: str | os.PathLike | None = None,
                       sha256: str = BUNDLED_VGG19_SHA256) -> Weights:
    """Loads the bundled quantised VGG19 after checking its sha256."""
    path = Path(path or models_dir() / BUNDLED_VGG19)
    if not path.is_file():
        raise StyleError(f"{path}: bundled VGG19 weights are missing (reinstall, or set STYLE_TF_MODELS)")
    actual = sha256_file(path)
    if actual != sha256:
        raise StyleError(f"{path}: sha256 {actual[:12]}... differs from the expected {sha256[:12]}... "
                         "(corrupted or replaced file; restore it from the repository)")
    return _check_shapes("vgg19", _read_npz(path), path)


def _read_npz(path) -> Weights:
    """Reads `{layer}/indices|table|bias` (quantised) or `{layer}/kernel|bias` arrays."""
    try:
        with np.load(path) as data:
            arrays = {key: data[key] for key in data.files}
    except (OSError, ValueError) as e:
        raise StyleError(f"{path}: not a readable .npz weights file ({e})") from None
    weights = {}
    for key in arrays:
        layer, part = key.split("/", 1)
        if part == "indices":
            kernel = arrays[f"{layer}/table"][arrays[key]]
        elif part == "kernel":
            kernel = arrays[key]
        else:
            continue
        weights[layer] = (kernel.astype(np.float32), arrays[f"{layer}/bias"].astype(np.float32))
    return weights


def _read_keras_h5(network: str, path) -> Weights:
    """Reads a Keras `.h5` or `.weights.h5` file of the full notop network."""
    import keras  # Deferred: the bundled route needs no Keras model.

    builder = {"vgg16": keras.applications.VGG16, "vgg19": keras.applications.VGG19}[network]
    try:
        model = builder(include_top=False, weights=str(path))
    except (ValueError, OSError, KeyError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise StyleError(f"{path}: not {network} notop weights ({first})") from None
    return {layer.name: tuple(w.astype(np.float32) for w in layer.get_weights())
            for layer in model.layers if layer.get_weights()}


def _check_shapes(network: str, weights: Weights, path) -> Weights:
    from style_tf.vgg import conv_shapes  # Here: vgg.py imports Keras and this file (see the top).

    for layer, (kernel_shape, bias_shape) in conv_shapes(network).items():
        if layer not in weights:
            raise StyleError(f"{path}: layer {layer} is missing")
        kernel, bias = weights[layer]
        if kernel.shape != kernel_shape or bias.shape != bias_shape:
            raise StyleError(f"{path}: {layer} has shapes {kernel.shape}, {bias.shape}; "
                             f"{network} needs {kernel_shape}, {bias_shape}")
    return weights


def fetch_imagenet(network: str, origin: str | None = None, file_hash: str | None = None,
                   cache_dir: str | None = None) -> Path:
    """Returns the Keras ImageNet notop file, from the Keras cache or downloaded into it.

    Args:
      network: "vgg16" or "vgg19".
      origin, file_hash: override the Keras origin and its md5/sha256 (tests use a local file).
      cache_dir: the Keras cache root (default `~/.keras`); files go to `<cache_dir>/models`.

    Raises:
      StyleError: not cached and the download failed (offline).
    """
    import keras

    default_origin, default_hash = _IMAGENET[network]
    origin = origin or default_origin
    fname = default_origin.rsplit("/", 1)[1]
    if cache_dir:  # Keras falls back to /tmp/.keras for a folder that does not exist yet.
        os.makedirs(os.path.join(cache_dir, "models"), exist_ok=True)
    try:
        return Path(keras.utils.get_file(fname, origin, file_hash=file_hash or default_hash,
                                         cache_subdir="models", cache_dir=cache_dir))
    except Exception as e:  # urllib, HTTP and hash errors all mean the same to the user.
        raise StyleError(f"cannot get {network} ImageNet weights from {origin} ({type(e).__name__}); "
                         f"offline, put {fname} in ~/.keras/models or pass --vgg_weights=PATH") from None
