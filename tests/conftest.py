"""Shared fixtures. Two logical CPU devices are configured before TensorFlow starts, so the
training tests can run a real MirroredStrategy over them."""

import os

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
