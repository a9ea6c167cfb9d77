import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from style_tf import adain, losses
from style_tf.errors import StyleError


@pytest.fixture(scope="module")
def nets():
    keras.utils.set_random_seed(0)
    return adain.encoder(layers=(adain.BOTTLENECK,)), adain.decoder()


def test_adain_output_has_style_mean_and_std():
    rng = np.random.default_rng(0)
    c = rng.normal(1.0, 2.0, (2, 6, 5, 8)).astype(np.float32)
    s = rng.normal(-3.0, 0.5, (2, 4, 4, 8)).astype(np.float32)
    out = adain.adaptive_instance_norm(c, s)
    m_out, s_out = losses.mean_std(out)
    m_s, s_s = losses.mean_std(s)
    np.testing.assert_allclose(m_out, m_s, atol=1e-4)
    np.testing.assert_allclose(s_out, s_s, rtol=1e-3)


def test_masked_adain_uses_region_statistics():
    rng = np.random.default_rng(1)
    c = rng.normal(0, 1, (1, 4, 8, 3)).astype(np.float32)
    c[:, :, 4:] += 10.0  # The right half has very different statistics.
    v = np.concatenate([np.full((1, 1, 1, 3), 5.0), np.full((1, 1, 1, 3), 2.0)], -1).astype(np.float32)
    mask = np.zeros((1, 4, 8, 1), np.float32)
    mask[:, :, :4] = 1
    out = np.asarray(adain.apply_style_vector(c, v, mask=mask))[:, :, :4]
    np.testing.assert_allclose(out.mean((0, 1, 2)), 5.0, atol=1e-3)
    np.testing.assert_allclose(out.std((0, 1, 2)), 2.0, rtol=1e-2)


def test_encoder_features_are_of_order_one(content_image, style_image):
    # Without FEATURE_SCALE the mean activations run from about 20 (block1) to 400 (block4).
    enc = adain.encoder()
    for image in (content_image, style_image):
        for name, feats in enc(image[None]).items():
            assert 0.4 < float(np.mean(feats)) < 2.5, name


def test_alpha_zero_decodes_the_content_features(nets, content_image):
    enc, dec = nets
    x = content_image[None, :64, :96]
    v = adain.style_vector(enc(x[:, ::-1])[adain.BOTTLENECK])
    out = adain.transform(enc, dec, x, v, alpha=0.0, border=0)
    expected = np.clip(dec(enc(x)[adain.BOTTLENECK]), 0, 1)
    np.testing.assert_allclose(out, expected, atol=1e-5)


def test_the_border_is_mirrored_stylized_and_cropped(nets, content_image):
    enc, dec = nets
    x = content_image[None, :64, :96]
    v = adain.style_vector(enc(x[:, ::-1])[adain.BOTTLENECK])
    out = adain.transform(enc, dec, x, v, alpha=0.0)
    b = adain.BORDER
    padded = np.pad(x, ((0, 0), (b, b), (b, b), (0, 0)), mode="reflect")
    expected = np.clip(dec(enc(padded)[adain.BOTTLENECK]), 0, 1)[:, b:-b, b:-b]
    assert out.shape == x.shape
    np.testing.assert_allclose(out, expected, atol=1e-5)


def test_given_content_statistics_replace_the_images_own(nets, content_image):
    enc, dec = nets
    x = content_image[None, :64, :96]
    v = adain.style_vector(enc(x[:, ::-1])[adain.BOTTLENECK])
    out, used = adain.transform_with_stats(enc, dec, x, v)
    np.testing.assert_allclose(out, adain.transform(enc, dec, x, v), atol=1e-5)
    same, _ = adain.transform_with_stats(enc, dec, x, v, stats=used)
    np.testing.assert_allclose(same, out, atol=1e-5)
    # Normalising by the statistics of a darker image brightens the features, so the output.
    _, dark = adain.transform_with_stats(enc, dec, x * 0.3, v)
    other, _ = adain.transform_with_stats(enc, dec, x, v, stats=dark)
    assert np.abs(np.asarray(other) - np.asarray(out)).mean() > 0.01


def test_statistics_follow_an_image_far_from_them(nets, content_image):
    enc, dec = nets
    x = content_image[None, :64, :96]
    v = adain.style_vector(enc(x[:, ::-1])[adain.BOTTLENECK])
    _, own = adain.transform_with_stats(enc, dec, x, v)
    _, dark = adain.transform_with_stats(enc, dec, x * 0.3, v)
    # A darker scene's statistics are far from this one's: the image's own are taken whole.
    _, used = adain.transform_with_stats(enc, dec, x, v, stats=dark, own=0.2, follow=0.1)
    np.testing.assert_allclose(used[0], own[0], atol=1e-5)
    # Without `follow`, or with one far above the shift, the share stays `own`.
    for follow in (0.0, 1e3):
        _, used = adain.transform_with_stats(enc, dec, x, v, stats=dark, own=0.2, follow=follow)
        np.testing.assert_allclose(used[0], 0.2 * np.asarray(own[0]) + 0.8 * np.asarray(dark[0]), atol=1e-3)


def test_decoder_round_trip_and_bad_file(tmp_path, nets):
    _, dec = nets
    path = tmp_path / "d.weights.h5"
    dec.save_weights(path)
    loaded = adain.load_decoder(str(path))
    np.testing.assert_array_equal(loaded.get_weights()[0], dec.get_weights()[0])
    with pytest.raises(StyleError, match="not found"):
        adain.load_decoder(str(tmp_path / "missing.weights.h5"))
    (tmp_path / "bad.weights.h5").write_bytes(b"nonsense")
    with pytest.raises(StyleError, match="not AdaIN decoder weights"):
        adain.load_decoder(str(tmp_path / "bad.weights.h5"))


def test_identity_term_is_the_pixel_error_of_decoding_the_content_features(content_image, style_image):
    keras.utils.set_random_seed(0)
    enc, dec = adain.encoder(), adain.decoder()
    content = np.stack([content_image[:64, :64], content_image[-64:, -64:], content_image[:64, -64:]])
    style = np.repeat(style_image[None, :64, :64], 3, 0)
    plain, plain_parts, plain_out = adain.training_losses(enc, dec, content, style)
    total, parts, out = adain.training_losses(enc, dec, content, style, identity_weight=2.0)
    rebuilt = dec(enc(content[:2])[adain.BOTTLENECK])  # The first half, rounded up.
    np.testing.assert_allclose(parts["identity"], np.mean(np.abs(rebuilt - content[:2])), rtol=1e-4)
    np.testing.assert_allclose(total, plain + 2.0 * parts["identity"], rtol=1e-4)
    np.testing.assert_allclose(out, plain_out, atol=1e-4)
    assert "identity" not in plain_parts
    # The feature form: the same reconstructions through the encoder, against the content's.
    total, parts, out = adain.training_losses(enc, dec, content, style, identity_feature_weight=0.5)
    got, want = enc(rebuilt), enc(content[:2])
    expected = sum(np.mean(np.square(np.asarray(got[k]) - np.asarray(want[k])))
                   for k in adain.ENCODER_LAYERS)
    assert expected > 0.01
    np.testing.assert_allclose(parts["identity_features"], expected, rtol=1e-3)
    np.testing.assert_allclose(total, plain + 0.5 * parts["identity_features"], rtol=1e-4)
    np.testing.assert_allclose(out, plain_out, atol=1e-4)
    assert "identity" not in parts and "identity_features" not in plain_parts


def test_the_package_leaves_tensorflow_alone_under_another_backend():
    # The AdaIN network is trained under JAX on machines without TensorFlow.
    code = "import sys, style_tf; print('tensorflow' in sys.modules)"
    env = {**os.environ, "KERAS_BACKEND": "jax"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.strip() == "False", out.stderr
