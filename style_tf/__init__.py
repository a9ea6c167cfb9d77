"""style_tf: neural style transfer in TensorFlow/Keras (Gatys optimisation and AdaIN)."""

import os
import sys


def _quiet_tensorflow_import() -> None:
    """Imports TensorFlow with its C++ start-up notices kept off the terminal.

    TensorFlow prints oneDNN and CUDA-probe notices to file descriptor 2 while it loads,
    which would bury our one-line user errors. Later C++ logs at ERROR and below are
    filtered by TF_CPP_MIN_LOG_LEVEL (a value the user set is kept); Python errors and
    warnings are untouched. Under another Keras backend (`KERAS_BACKEND=jax` on a machine
    without TensorFlow, DESIGN.md) nothing is imported: the AdaIN network runs there.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if ("tensorflow" in sys.modules or os.environ["TF_CPP_MIN_LOG_LEVEL"] == "0"
            or os.environ.get("KERAS_BACKEND", "tensorflow") != "tensorflow"):
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            import tensorflow  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)


_quiet_tensorflow_import()

from style_tf.errors import StyleError  # noqa: E402

__all__ = ["StyleError"]
__version__ = "0.1.0"
