import numpy as np
import pytest

from style_tf import vgg
from style_tf.errors import StyleError


@pytest.mark.parametrize("network,last_block4", [("vgg19", "block4_conv4"), ("vgg16", "block4_conv3")])
def test_layer_shapes(network, last_block4):
    model = vgg.feature_model(["block1_conv1", "block3_conv2", last_block4, "block5_pool"],
                              network, weights=None)
    out = model(np.zeros((1, 64, 96, 3), np.float32))
    assert tuple(out["block1_conv1"].shape) == (1, 64, 96, 64)
    assert tuple(out["block3_conv2"].shape) == (1, 16, 24, 256)
    assert tuple(out[last_block4].shape) == (1, 8, 12, 512)
    assert tuple(out["block5_pool"].shape) == (1, 2, 3, 512)


@pytest.mark.parametrize("network", ["vgg16", "vgg19"])
def test_conv_shapes_are_those_of_keras_applications(network):
    import keras

    builder = {"vgg16": keras.applications.VGG16, "vgg19": keras.applications.VGG19}[network]
    model = builder(include_top=False, weights=None)
    expected = {layer.name: tuple(tuple(w.shape) for w in layer.weights)
                for layer in model.layers if layer.weights}
    assert vgg.conv_shapes(network) == expected


def test_model_is_truncated_at_deepest_layer():
    model = vgg.feature_model(["block2_conv1"], "vgg19", weights=None)
    names = [layer.name for layer in model.layers]
    assert "block2_conv1" in names and "block2_conv2" not in names


def test_unknown_layer_and_pooling_are_user_errors():
    with pytest.raises(StyleError, match="block9_conv1"):
        vgg.feature_model(["block9_conv1"], weights=None)
    with pytest.raises(StyleError, match="vgg16 layer 'block5_conv4'"):
        vgg.feature_model(["block5_conv4"], "vgg16", weights=None)
    with pytest.raises(StyleError, match="pooling"):
        vgg.feature_model(["block1_conv1"], pooling="min", weights=None)


def test_caffe_preprocessing():
    rgb = np.array([[[[1.0, 0.5, 0.0]]]], np.float32)
    out = vgg.CaffePreprocess()(rgb).numpy()[0, 0, 0]
    np.testing.assert_allclose(out, [0.0 - 103.939, 127.5 - 116.779, 255.0 - 123.68], rtol=1e-5)


def test_avg_pooling_and_bundled_weights_give_features(content_image):
    model = vgg.feature_model(["block5_conv1"], pooling="avg")
    assert type(model.get_layer("block4_pool")).__name__ == "AveragePooling2D"
    feats = model(content_image[None])["block5_conv1"].numpy()
    assert np.isfinite(feats).all() and (feats > 0).mean() > 0.01


def test_precision_auto_follows_the_cpu(monkeypatch):
    assert vgg.dtype_policy("bfloat16") == "mixed_bfloat16"
    assert vgg.dtype_policy("float32") is None
    for native, policy in ((True, "mixed_bfloat16"), (False, None)):
        monkeypatch.setattr(vgg, "native_bfloat16", lambda native=native: native)
        assert vgg.dtype_policy("auto") == policy
    with pytest.raises(StyleError, match="unknown precision 'half'"):
        vgg.dtype_policy("half")
