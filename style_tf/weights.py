"""Where VGG weights come from: the bundled file (sha256-checked), the Keras cache or download, a path.

Every source returns the same thing: `{layer_name: (kernel (3, 3, in, out), bias (out,))}` as
float32 numpy arrays, checked against the shapes of the network (`vgg.conv_shapes`). The
network itself lives in vgg.py, which imports Keras and this module; this module imports it
only inside the functions that need it, so that importing this one imports no Keras.
"""

import hashlib
import os
from pathlib import Path

import h5py
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
    """Reads the layers of a Keras `.h5` file (the ImageNet files' layout: `layer_names`, then
    `weight_names` per layer) or Keras 3 `.weights.h5` file by name, with h5py.

    Not loaded into a Keras VGG: a file of another model would then print a Keras warning per
    layer before an error about Keras's internals; read by name, `_check_shapes` says in one
    line which layer is missing and what the file holds.
    """
    try:
        with h5py.File(path, "r") as f:
            return _keras3_layers(f, network) if "layers" in f else _legacy_layers(f)
    except OSError as e:
        raise StyleError(f"{path}: not an HDF5 weights file ({_first_line(e)})") from None
    except (KeyError, ValueError, TypeError) as e:
        raise StyleError(f"{path}: not a readable Keras weights file ({_first_line(e)})") from None


def _legacy_layers(f) -> Weights:
    """`{layer: (kernel, bias)}` of the layers with two weights, in the Keras 2 layout."""
    if "layer_names" not in f.attrs and "model_weights" in f:  # A whole model, not its weights.
        f = f["model_weights"]
    weights = {}
    for name in _h5_strings(f.attrs, "layer_names"):
        arrays = [f[name][w] for w in _h5_strings(f[name].attrs, "weight_names")]
        if len(arrays) == 2:
            weights[name] = tuple(np.asarray(a, np.float32) for a in arrays)
    return weights


def _h5_strings(attrs, name: str) -> list[str]:
    """A list-of-names attribute, also one Keras split into `name0`, `name1`, ... for size."""
    chunks = [attrs[name]] if name in attrs else []
    while f"{name}{len(chunks)}" in attrs:
        chunks.append(attrs[f"{name}{len(chunks)}"])
    return [v.decode() if isinstance(v, bytes) else str(v) for chunk in chunks for v in chunk]


def _keras3_layers(f, network: str) -> Weights:
    """`{layer: (kernel, bias)}` in the Keras 3 layout: `layers/<group>/vars/{0,1}`, the layer's
    name in the `name` attribute of `vars`. Keras versions that wrote no names numbered the
    groups per class in model order (conv2d, conv2d_1, ...): those are taken in that order."""
    named, numbered = {}, {}
    for key, group in f["layers"].items():
        variables = group.get("vars") if isinstance(group, h5py.Group) else None
        if not isinstance(variables, h5py.Group) or sorted(variables) != ["0", "1"]:
            continue
        arrays = tuple(np.asarray(variables[i], np.float32) for i in ("0", "1"))
        if variables.attrs.get("name"):
            named[str(variables.attrs["name"])] = arrays
        elif key == "conv2d" or (key.startswith("conv2d_") and key[7:].isdigit()):
            numbered[int(key[7:] or 0)] = arrays
    if named or not numbered:
        return named
    from style_tf.vgg import conv_shapes  # Here: vgg.py imports Keras and this file (see the top).

    return dict(zip(conv_shapes(network), (numbered[i] for i in sorted(numbered))))


def _first_line(e) -> str:
    """The first line of an error or message (its type's name when it has no text)."""
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def _check_shapes(network: str, weights: Weights, path) -> Weights:
    from style_tf.vgg import conv_shapes  # Here: vgg.py imports Keras and this file (see the top).

    for layer, (kernel_shape, bias_shape) in conv_shapes(network).items():
        if layer not in weights:
            held = sorted(weights)
            some = ", ".join(held[:3]) + (f" and {len(held) - 3} more" if len(held) > 3 else "")
            raise StyleError(f"{path}: not {network} weights: no layer {layer} "
                             f"(the file has {some or 'no layers'})")
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
    except Exception as e:  # Keras raises a bare Exception for URL errors, ValueError for hashes.
        raise StyleError(f"cannot get {network} ImageNet weights from {origin} ({_download_error(e)}); "
                         f"offline, put {fname} in ~/.keras/models or pass --vgg_weights=PATH") from None


def _download_error(e: BaseException) -> str:
    """Why `keras.utils.get_file` failed, in a few words: the reason of the URL error it wraps
    (HTTP status, "Name or service not known", "No such file or directory"), or the hash."""
    import urllib.error

    cause = e.__cause__ or e.__context__
    if isinstance(cause, urllib.error.HTTPError):
        return f"HTTP {cause.code} {cause.reason}"
    if isinstance(cause, urllib.error.URLError):
        reason = cause.reason
        return _first_line(getattr(reason, "strerror", None) or reason)
    if isinstance(e, ValueError) and "hash" in str(e):
        return "the downloaded file's hash differs from the expected one: incomplete or corrupted"
    return _first_line(e)
