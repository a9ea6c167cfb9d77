import numpy as np
import tensorflow as tf

from style_tf import losses


def test_gram_is_symmetric_and_normalised_by_positions():
    f = np.random.default_rng(0).normal(size=(2, 5, 7, 4)).astype(np.float32)
    g = losses.gram_matrix(f).numpy()
    assert g.shape == (2, 4, 4)
    np.testing.assert_allclose(g, np.transpose(g, (0, 2, 1)), rtol=1e-6)
    flat = f[0].reshape(-1, 4)
    np.testing.assert_allclose(g[0], flat.T @ flat / 35, rtol=1e-5)


def test_masked_gram_equals_gram_of_region():
    f = np.random.default_rng(1).normal(size=(1, 4, 6, 3)).astype(np.float32)
    mask = np.zeros((1, 4, 6, 1), np.float32)
    mask[:, :, :3] = 1
    np.testing.assert_allclose(losses.gram_matrix(f, mask).numpy(),
                               losses.gram_matrix(f[:, :, :3]).numpy(), rtol=1e-5)


def test_gram_gradient_matches_the_product_rule():
    """The Gram's own gradient, F (dG + dG^T), against differentiating the einsum as written,
    through a weighting that makes dG asymmetric; and bfloat16 features give a float32 Gram."""
    f = tf.constant(np.random.default_rng(2).normal(size=(2, 6, 5, 4)).astype(np.float32))
    mask = tf.constant((np.arange(30).reshape(1, 6, 5, 1) % 3 > 0).astype(np.float32))
    w = tf.constant(np.random.default_rng(3).normal(size=(1, 4, 4)).astype(np.float32))

    def grad(gram):
        with tf.GradientTape() as tape:
            tape.watch(f)
            value = tf.reduce_sum(w * gram(f))
        return tape.gradient(value, f).numpy()

    def plain(x):
        return tf.einsum("bijc,bijd->bcd", x * mask, x * mask) / tf.reduce_sum(mask)

    np.testing.assert_allclose(grad(lambda x: losses.gram_matrix(x, mask)), grad(plain),
                               rtol=1e-5, atol=1e-6)
    low = losses.gram_matrix(tf.cast(f, tf.bfloat16))
    assert low.dtype == tf.float32
    np.testing.assert_allclose(low.numpy(), losses.gram_matrix(f).numpy(), rtol=0.05, atol=0.02)


def test_total_variation_zero_on_constant_and_matches_tf():
    assert float(losses.total_variation(tf.fill((1, 8, 8, 3), 0.3))) == 0.0
    x = tf.random.uniform((2, 9, 11, 3), seed=1)
    x = tf.concat([x[:, :, :5], x[:, :, 4:5], x[:, :, 6:]], axis=2)  # Equal neighbours: sign 0.
    np.testing.assert_allclose(float(losses.total_variation(x)),
                               float(tf.reduce_sum(tf.image.total_variation(x))), rtol=1e-5)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        ours, theirs = 3.0 * losses.total_variation(x), 3.0 * tf.reduce_sum(tf.image.total_variation(x))
    np.testing.assert_array_equal(tape.gradient(ours, x).numpy(), tape.gradient(theirs, x).numpy())


def test_content_loss_zero_for_identical_and_named_parts():
    f = {"block4_conv2": tf.random.uniform((1, 4, 4, 8))}
    total, parts = losses.content_loss(f, f)
    assert float(total) == 0.0 and list(parts) == ["content/block4_conv2"]
    other = {"block4_conv2": f["block4_conv2"] + 1.0}
    assert abs(float(losses.content_loss(other, f)[0]) - 1.0) < 1e-6


def test_style_loss_averages_weighted_layers():
    a = {"x": tf.zeros((1, 2, 2)), "y": tf.zeros((1, 2, 2))}
    b = {"x": tf.ones((1, 2, 2)), "y": 2 * tf.ones((1, 2, 2))}
    total, parts = losses.style_loss(a, b, {"x": 1.0, "y": 0.5})
    assert set(parts) == {"style/x", "style/y"}
    assert abs(float(total) - (1.0 + 0.5 * 4.0) / 2) < 1e-6


def test_mean_std_and_mean_std_loss():
    f = tf.random.normal((2, 6, 6, 3), mean=2.0, stddev=3.0, seed=2)
    mean, std = losses.mean_std(f)
    np.testing.assert_allclose(mean.numpy()[:, 0, 0], f.numpy().mean((1, 2)), rtol=1e-5)
    np.testing.assert_allclose(std.numpy()[:, 0, 0], f.numpy().std((1, 2)), rtol=1e-3)
    assert float(losses.mean_std_loss({"a": f}, {"a": f})[0]) == 0.0
    assert float(losses.mean_std_loss({"a": f}, {"a": f * 2})[0]) > 1.0


def test_grid_loss_sees_an_eight_pixel_grid_and_pushes_it_down():
    from style_tf import images
    from style_tf.paths import EXAMPLES

    photos = np.stack([images.load_image(EXAMPLES / "content" / name, max_dim=512)[:256, :256]
                       for name in ("machuPicchu.jpg", "chelsea.png")]).astype(np.float32)
    assert float(losses.grid_loss(photos)) < 0.1
    y, x = np.mgrid[:256, :256]
    grid = 0.05 * ((y % 8 == 0) | (x % 8 == 0))[..., None].astype(np.float32)  # Faint lines.
    assert float(losses.grid_loss(photos + grid)) > 1.0
    assert float(losses.grid_loss(photos + np.roll(grid, 3, axis=(0, 1)))) > 1.0  # Any phase.
    other = 0.05 * ((y % 7 == 0) | (x % 7 == 0))[..., None].astype(np.float32)
    assert float(losses.grid_loss(photos + other)) < 0.2  # Another period: not this grid.
    strength = tf.Variable(1.0)
    with tf.GradientTape() as tape:
        loss = losses.grid_loss(photos + strength * grid)
    assert float(tape.gradient(loss, strength)) > 0  # Less grid, less loss.
