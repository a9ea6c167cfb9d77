import json
import subprocess
import sys

import numpy as np
import pytest

from style_tf import metrics
from style_tf.paths import EXAMPLES


@pytest.fixture(scope="module")
def model():
    return metrics.feature_model()


def test_anchors(model, content_image, style_image):
    own = metrics.evaluate(model, content_image, style_image, content_image)
    assert own.gram_relative == pytest.approx(1.0) and own.meanstd_relative == pytest.approx(1.0)
    assert own.content == 0.0 and own.content_relative == 0.0
    assert own.ssim == pytest.approx(1.0) and own.mse == 0.0 and own.mae == 0.0
    style_as_result = metrics.evaluate(model, content_image, style_image,
                                       metrics.images.resize(style_image, size=content_image.shape[:2]))
    assert style_as_result.content_relative == pytest.approx(1.0, rel=1e-4)
    assert style_as_result.gram_relative < 0.2  # The style's own statistics (resized).


def test_style_similarity_is_symmetric_and_one_on_itself(model, content_image, style_image):
    assert metrics.style_similarity(model, style_image, style_image) == pytest.approx(1.0, abs=1e-5)
    ab = metrics.style_similarity(model, style_image, content_image)
    ba = metrics.style_similarity(model, content_image, style_image)
    assert ab == pytest.approx(ba, rel=1e-5) and ab < 0.99


def test_grid_artifact_sees_an_eight_pixel_grid_and_not_a_photo():
    photo = metrics.images.load_image(EXAMPLES / "content" / "machuPicchu.jpg", max_dim=512)
    assert 0.8 < metrics.grid_artifact(photo) < 1.2
    y, x = np.mgrid[:photo.shape[0], :photo.shape[1]]
    grid = 0.05 * ((y % 8 == 0) | (x % 8 == 0))[..., None]  # Faint lines, every 8 pixels.
    assert metrics.grid_artifact(np.clip(photo + grid, 0, 1)) > 3
    shifted = 0.05 * ((y % 7 == 0) | (x % 7 == 0))[..., None]  # Another period: not this grid.
    assert metrics.grid_artifact(np.clip(photo + shifted, 0, 1)) < 1.5
    assert np.isnan(metrics.grid_artifact(photo[:100]))  # Under 16 periods high.


def test_color_histogram_distance():
    black, white = np.zeros((4, 4, 3)), np.ones((4, 4, 3))
    assert metrics.color_histogram_distance(black, black) == 0.0
    assert metrics.color_histogram_distance(black, white) == pytest.approx(1.0)


def test_evaluate_cli_json_and_errors(tmp_path):
    content = str(EXAMPLES / "content" / "chelsea.png")
    style = str(EXAMPLES / "style" / "kandinky.png")
    args = [sys.executable, "-m", "style_tf.evaluate", f"--content={content}", f"--style={style}",
            "--max_dim=64"]
    r = subprocess.run(args + [f"--stylized={content}", "--json"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)[content]
    assert report["gram_relative"] == pytest.approx(1.0) and report["psnr"] is None
    r = subprocess.run(args + ["--stylized=/missing.png"], capture_output=True, text=True)
    errors = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
    assert r.returncode == 2 and len(errors) == 1 and "Traceback" not in r.stderr


def test_gram_distance_follows_style_weight(model, content_image, style_image):
    """More style weight gives a smaller Gram distance."""
    from style_tf import optimize

    gram = []
    for weight in (1e-4, 1e-1):
        config = optimize.OptimizeConfig(style_weight=weight, steps=15, scales=())
        out = optimize.optimize(content_image, [style_image], config, 64)
        gram.append(metrics.evaluate(model, content_image, style_image, out).gram_relative)
    assert gram[1] < 0.8 * gram[0], gram


def test_adain_alpha_trades_content_for_style(model):
    """The bundled decoder on a photo it never saw in training (chelsea.png, 256 px): raising
    alpha moves the result from the content towards the style; alpha 0 reconstructs the photo
    at >= 17 dB PSNR and alpha 1 brings the mean/std style distance under 0.25 of the photo's
    own (the shipped decoder's figures: models/MODELS.md)."""
    from style_tf import images, stylizer

    content = images.load_image(EXAMPLES / "content" / "chelsea.png", max_dim=256)
    style = images.load_image(EXAMPLES / "style" / "Van_Gogh_The_Night_Cafe_background.jpg", max_dim=256)
    engine = stylizer.Stylizer.load(precision="float32")
    outputs = [engine(content, [style], alpha=a) for a in (0.0, 0.5, 1.0)]
    reports = [metrics.evaluate(model, content, style, out) for out in outputs]
    meanstd = [r.meanstd_relative for r in reports]
    content_relative = [r.content_relative for r in reports]
    assert meanstd[0] > meanstd[1] > meanstd[2], meanstd
    assert content_relative[2] > content_relative[0] + 0.01, content_relative
    assert metrics.psnr(outputs[0], content) >= 17.0
    assert meanstd[2] <= 0.25, meanstd
