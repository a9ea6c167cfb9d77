"""The AdaIN engine over whole images: blending, masks and the face pass."""

import cv2
import keras
import numpy as np
import pytest

from style_tf import adain, faces, images, stylizer
from style_tf.paths import EXAMPLES


@pytest.fixture(scope="module")
def nets():
    keras.utils.set_random_seed(0)
    return adain.encoder(layers=(adain.BOTTLENECK,)), adain.decoder()


def test_one_hot_interpolation_equals_single_style(nets, content_image, style_image):
    run = stylizer.Stylizer(*nets)
    single = run(content_image, [style_image])
    blend = run(content_image, [style_image, content_image], [1.0, 0.0])
    np.testing.assert_allclose(single, blend, atol=1e-5)
    assert single.shape == content_image.shape


def test_style_vectors_stand_for_their_images(nets, content_image, style_image):
    run = stylizer.Stylizer(*nets)
    from_image = run(content_image, [style_image], alpha=0.5)
    other = run(content_image, [content_image], alpha=0.5)
    from_vector = run(content_image, [], alpha=0.5, vectors=[run.style_vector(style_image)])
    np.testing.assert_allclose(from_vector, from_image, atol=1e-6)
    assert np.abs(other - from_image).max() > 0.05  # The style matters here.


def test_masks_with_one_full_region_equal_plain_style(nets, content_image, style_image):
    run = stylizer.Stylizer(*nets)
    h, w = content_image.shape[:2]
    ones, zeros = np.ones((h, w), np.float32), np.zeros((h, w), np.float32)
    plain = run(content_image, [style_image])
    masked = run(content_image, [style_image, content_image], masks=[ones, zeros])
    np.testing.assert_allclose(plain, masked, atol=1e-4)


def test_faces_are_found():
    astronaut = images.load_image(EXAMPLES / "content" / "astronaut.png", max_dim=512)
    [(x, y, w, h)] = faces.find(astronaut)
    assert 160 < x + w / 2 < 290 and 60 < y + h / 2 < 170 and 70 < w < 130  # Her face.
    assert faces.find(images.load_image(EXAMPLES / "content" / "chelsea.png", max_dim=512)) == []


def test_the_face_pass_changes_only_round_small_faces(style_image):
    run = stylizer.Stylizer.load(precision="float32")  # A random decoder's output is mostly black.
    astronaut = images.load_image(EXAMPLES / "content" / "astronaut.png", max_dim=384)
    [(x, y, w, h)] = faces.find(astronaut)
    plain = run(astronaut, [style_image])
    refined = run(astronaut, [style_image], face_size=4 * w)
    changed = np.abs(refined - plain).max(-1) > 1e-4
    ys, xs = np.nonzero(changed)
    assert changed[y + h // 2, x + w // 2] and changed.mean() > 0.01
    # Within the square crop of twice the face's side round the face's centre.
    assert xs.min() >= x + w / 2 - w and xs.max() <= x + w / 2 + w
    assert ys.min() >= y + h / 2 - h and ys.max() <= y + h / 2 + h
    np.testing.assert_array_equal(run(astronaut, [style_image], face_size=w), plain)
    # With masks the faces take each region's statistics from the whole image too.
    ones = np.ones(astronaut.shape[:2], np.float32)
    masked = run(astronaut, [style_image, astronaut], masks=[ones, 0 * ones], face_size=4 * w)
    np.testing.assert_allclose(masked, refined, atol=2e-3)


def test_a_result_moved_back_by_a_fraction_keeps_its_strokes_sharp():
    canvas = np.random.default_rng(0).uniform(size=(1, 72, 88, 3)).astype(np.float32)  # Strokes.
    size, offset = (64, 80), (3.5, 2.5)
    out = np.asarray(stylizer._unshift(canvas, offset, size))[0]
    plain = stylizer._translate(canvas, offset, size)[0]  # Resampled alone.
    fine = lambda x: x - cv2.GaussianBlur(x, (0, 0), 1.0)  # noqa: E731
    sharp = fine(canvas[0, 4:68, 2:82]).std()  # The nearest whole-pixel crop.
    assert fine(plain).std() < 0.8 * sharp
    assert fine(out).std() == pytest.approx(sharp, rel=0.1)
    assert np.corrcoef(out.ravel(), plain.ravel())[0, 1] > 0.9  # The same picture, in the same place.
    np.testing.assert_array_equal(stylizer._unshift(canvas, (3, 2), size), canvas[:, 3:67, 2:82])


@pytest.mark.parametrize("offset", [(3, 5), (3, 5.5)])
def test_a_moved_image_is_mirrored_once_about_its_own_edges(offset):
    x = np.random.default_rng(0).uniform(size=(1, 40, 48, 3)).astype(np.float32)
    canvas = np.asarray(stylizer._shift(x, offset, 16))
    assert canvas.shape == (1, 40 + 8 + 32, 48 + 8 + 32, 3)
    top = 16 + offset[0]  # The image's first row; the canvas above it mirrors the rows below it.
    for k in range(1, top + 1):
        np.testing.assert_allclose(canvas[:, top - k], canvas[:, top + k], atol=1e-5)
    if float(offset[1]).is_integer():
        np.testing.assert_allclose(canvas[:, top:top + 40, 21:69], x, atol=1e-5)
