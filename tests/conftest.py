"""Shared fixtures. Two logical CPU devices are configured before TensorFlow starts, so the
training tests can run a real MirroredStrategy over them."""

import os
import shutil
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

_cpus = tf.config.list_physical_devices("CPU")
tf.config.set_logical_device_configuration(
    _cpus[0], [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()])

from style_tf import images  # noqa: E402
from style_tf.paths import EXAMPLES  # noqa: E402


@pytest.fixture(scope="session")
def content_image() -> np.ndarray:
    return images.load_image(EXAMPLES / "content" / "chelsea.png", max_dim=96)


@pytest.fixture(scope="session")
def style_image() -> np.ndarray:
    return images.load_image(EXAMPLES / "style" / "Van_Gogh_The_Night_Cafe_background.jpg", max_dim=96)


@pytest.fixture(scope="session")
def vgg19_bundled():
    from style_tf.weights import load_vgg_weights

    return load_vgg_weights("vgg19", "bundled")


REPO = Path(__file__).resolve().parent.parent
# What a wheel is built from: the package, its metadata and the folders it carries.
SOURCE = ("setup.cfg", "pyproject.toml", "README.md", "style_tf", "models", "examples")


@pytest.fixture(scope="session")
def clean_source(tmp_path_factory) -> Path:
    """A copy of what `pip install <checkout>` builds from, without build leftovers."""
    root = tmp_path_factory.mktemp("source") / "style_tf"
    root.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "build")
    for name in SOURCE:
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, root / name, ignore=ignore)
        else:
            shutil.copy2(REPO / name, root / name)
    return root


def pip_env(target: Path) -> dict:
    """An environment in which `pip install X` installs X alone into `target`, offline, and
    Python imports `target` before anything else (the checkout's editable install included).
    PIP_NO_BUILD_ISOLATION=0 turns build isolation off (pip reads that variable inverted)."""
    target.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k != "STYLE_TF_MODELS"}
    return {**env, "PIP_TARGET": str(target), "PIP_NO_DEPS": "1", "PIP_NO_INDEX": "1",
            "PIP_NO_BUILD_ISOLATION": "0", "PYTHONPATH": str(target), "TF_CPP_MIN_LOG_LEVEL": "3"}
