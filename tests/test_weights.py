import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import keras
import numpy as np
import pytest

from style_tf import vgg, weights
from style_tf.errors import StyleError


def test_bundled_vgg19_loads_with_all_shapes(vgg19_bundled):
    assert set(vgg.conv_shapes("vgg19")) <= set(vgg19_bundled)
    kernel, bias = vgg19_bundled["block1_conv1"]
    assert kernel.shape == (3, 3, 3, 64) and bias.shape == (64,)
    assert len(np.unique(kernel)) <= 256  # Quantised to 256 levels per layer.


def test_corrupted_bundled_copy_is_refused(tmp_path):
    copy = tmp_path / weights.BUNDLED_VGG19
    shutil.copy(weights.models_dir() / weights.BUNDLED_VGG19, copy)
    with open(copy, "r+b") as f:
        f.seek(1000)
        f.write(b"\x00\x01\x02\x03")
    with pytest.raises(StyleError, match="sha256"):
        weights.load_bundled_vgg19(copy)


def test_vgg16_has_no_bundled_weights():
    with pytest.raises(StyleError, match="no bundled vgg16"):
        weights.load_vgg_weights("vgg16", "bundled")


def _random_vgg16():
    keras.utils.set_random_seed(3)
    return keras.applications.VGG16(include_top=False, weights=None)


def _write_legacy_h5(model, path):
    """The layout of the Keras ImageNet .h5 files: layer_names, then weight_names per layer."""
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = [layer.name.encode() for layer in model.layers]
        for layer in model.layers:
            g = f.create_group(layer.name)
            names = [f"{layer.name}_W_1:0", f"{layer.name}_b_1:0"][: len(layer.get_weights())]
            g.attrs["weight_names"] = [n.encode() for n in names]
            for n, w in zip(names, layer.get_weights()):
                g.create_dataset(n, data=w)


@pytest.mark.parametrize("suffix", [".weights.h5", ".h5"])
def test_vgg16_h5_round_trip(tmp_path, suffix):
    model = _random_vgg16()
    path = tmp_path / f"vgg16{suffix}"
    if suffix == ".weights.h5":
        model.save_weights(path)
    else:
        _write_legacy_h5(model, path)
    loaded = weights.load_vgg_weights("vgg16", str(path))
    expected = model.get_layer("block3_conv2").get_weights()
    np.testing.assert_array_equal(loaded["block3_conv2"][0], expected[0])
    features = vgg.feature_model(["block5_conv3"], "vgg16", str(path))
    assert features.get_layer("block5_conv3").get_weights()[1].shape == (512,)


def test_wrong_network_file_is_refused(tmp_path):
    path = tmp_path / "vgg16.weights.h5"
    _random_vgg16().save_weights(path)
    with pytest.raises(StyleError, match="vgg19"):
        weights.load_vgg_weights("vgg19", str(path))


def test_npz_with_wrong_shape_names_layer(tmp_path, vgg19_bundled):
    arrays = {f"{k}/kernel": v[0] for k, v in vgg19_bundled.items()}
    arrays.update({f"{k}/bias": v[1] for k, v in vgg19_bundled.items()})
    arrays["block2_conv1/bias"] = np.zeros(7, np.float32)
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(StyleError, match="block2_conv1"):
        weights.load_vgg_weights("vgg19", str(path))


def test_missing_weights_file_is_one_clear_error(tmp_path):
    with pytest.raises(StyleError, match="not found"):
        weights.load_vgg_weights("vgg16", str(tmp_path / "nope.h5"))


def test_fetch_imagenet_downloads_into_cache_and_checks_hash(tmp_path):
    src = tmp_path / "src.h5"
    _write_legacy_h5(_random_vgg16(), src)
    origin = src.as_uri()
    got = weights.fetch_imagenet("vgg16", origin=origin, file_hash=weights.sha256_file(src),
                                 cache_dir=str(tmp_path / "cache"))
    assert got.parent == tmp_path / "cache" / "models" and got.is_file()
    assert weights.sha256_file(got) == weights.sha256_file(src)
    with pytest.raises(StyleError, match="cannot get vgg19"):
        weights.fetch_imagenet("vgg19", origin=origin, file_hash="0" * 64,
                               cache_dir=str(tmp_path / "cache2"))


def test_weights_imports_without_keras():
    """vgg.py (Keras) imports weights.py; weights.py takes the architecture from vgg.py only
    inside its functions, so importing it alone stays light and the two form no import cycle."""
    code = ("import style_tf.weights, sys; assert 'keras' not in sys.modules, 'keras imported'; "
            "import style_tf.vgg; assert style_tf.vgg.load_vgg_weights is style_tf.weights.load_vgg_weights")
    r = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parent.parent,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
