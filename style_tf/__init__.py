"""style_tf: neural style transfer in TensorFlow/Keras (Gatys optimisation and AdaIN).

Importing the package imports nothing heavy: each module imports what it needs.
"""

from style_tf.errors import StyleError

__all__ = ["StyleError"]
__version__ = "0.1.0"
