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


def _write_legacy_h5(model, path, whole_model=False):
    """The layout of the Keras ImageNet .h5 files: layer_names, then weight_names per layer.
    `whole_model`: as Keras 2's model.save wrote it, under model_weights, with layer_names
    split in two attributes as Keras splits long ones."""
    with h5py.File(path, "w") as root:
        names = [layer.name.encode() for layer in model.layers]
        f = root.create_group("model_weights") if whole_model else root
        if whole_model:
            f.attrs["layer_names0"], f.attrs["layer_names1"] = names[:5], names[5:]
        else:
            f.attrs["layer_names"] = names
        for layer in model.layers:
            g = f.create_group(layer.name)
            names = [f"{layer.name}_W_1:0", f"{layer.name}_b_1:0"][: len(layer.get_weights())]
            g.attrs["weight_names"] = [n.encode() for n in names]
            for n, w in zip(names, layer.get_weights()):
                g.create_dataset(n, data=w)


@pytest.mark.parametrize("layout", ["keras3", "keras3 unnamed", "legacy", "legacy whole model"])
def test_vgg16_h5_round_trip(tmp_path, layout):
    model = _random_vgg16()
    path = tmp_path / ("vgg16.weights.h5" if layout.startswith("keras3") else "vgg16.h5")
    if layout.startswith("keras3"):
        model.save_weights(path)
        if layout == "keras3 unnamed":  # As Keras versions that wrote no layer names: conv2d, conv2d_1, ...
            with h5py.File(path, "a") as f:
                for group in f["layers"].values():
                    if "vars" in group and "name" in group["vars"].attrs:
                        del group["vars"].attrs["name"]
    else:
        _write_legacy_h5(model, path, whole_model=layout == "legacy whole model")
    loaded = weights.load_vgg_weights("vgg16", str(path))
    expected = model.get_layer("block3_conv2").get_weights()
    np.testing.assert_array_equal(loaded["block3_conv2"][0], expected[0])
    features = vgg.feature_model(["block5_conv3"], "vgg16", str(path))
    assert features.get_layer("block5_conv3").get_weights()[1].shape == (512,)


def test_wrong_network_file_is_refused(tmp_path):
    path = tmp_path / "vgg16.weights.h5"
    _random_vgg16().save_weights(path)
    with pytest.raises(StyleError, match="not vgg19 weights: no layer block3_conv4"):
        weights.load_vgg_weights("vgg19", str(path))


def test_another_models_h5_is_one_line_without_warnings(tmp_path, recwarn):
    decoder = weights.models_dir() / "adain_decoder.weights.h5"  # Keras 3 weights of another model.
    with pytest.raises(StyleError) as error:
        weights.load_vgg_weights("vgg19", str(decoder))
    message = str(error.value)
    assert "not vgg19 weights: no layer block1_conv1 (the file has decoder_conv1" in message
    assert "\n" not in message and not recwarn.list  # Keras warned once per layer.
    text = tmp_path / "text.h5"
    text.write_text("not HDF5")
    with pytest.raises(StyleError, match="text.h5: not an HDF5 weights file"):
        weights.load_vgg_weights("vgg19", str(text))


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
    with pytest.raises(StyleError, match="cannot get vgg19 .* hash differs"):
        weights.fetch_imagenet("vgg19", origin=origin, file_hash="0" * 64,
                               cache_dir=str(tmp_path / "cache2"))


def test_fetch_imagenet_failure_gives_the_reason_in_one_line(tmp_path):
    missing = (tmp_path / "missing.h5").as_uri()  # A bad local URL: no network needed.
    with pytest.raises(StyleError) as error:
        weights.fetch_imagenet("vgg16", origin=missing, cache_dir=str(tmp_path / "cache"))
    message = str(error.value)
    assert f"cannot get vgg16 ImageNet weights from {missing} (No such file or directory)" in message
    assert "\n" not in message and "--vgg_weights=PATH" in message


def test_weights_imports_without_keras():
    """vgg.py (Keras) imports weights.py; weights.py takes the architecture from vgg.py only
    inside its functions, so importing it alone stays light and the two form no import cycle."""
    code = ("import style_tf.weights, sys; assert 'keras' not in sys.modules, 'keras imported'; "
            "import style_tf.vgg; assert style_tf.vgg.load_vgg_weights is style_tf.weights.load_vgg_weights")
    r = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parent.parent,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
