"""style_tf: neural style transfer in TensorFlow/Keras (Gatys optimisation and AdaIN)."""

from style_tf.errors import StyleError

__all__ = ["StyleError"]
__version__ = "0.1.0"
