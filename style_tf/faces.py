"""Finding faces, for the AdaIN engine's face pass (`stylizer.Stylizer`, `face_size`).

OpenCV's frontal-face Haar cascade (in the opencv-python-headless 4.x wheels): a detector we
need not train or ship, quick on a CPU, and one that finds the small faces of a group photo,
the ones the AdaIN decoder smears. Of its cascades, "alt" gave the fewest false faces on the
training photos (benchmarks/RESULTS.md, "Face pass"); it misses
faces in profile or behind sunglasses, which are then stylized like the rest.
"""

import functools
import os

import numpy as np

from style_tf.errors import StyleError


@functools.lru_cache(maxsize=1)
def _cascade():
    import cv2

    path = os.path.join(cv2.data.haarcascades, "haarcascade_frontalface_alt.xml")
    cascade = cv2.CascadeClassifier(path)
    if cascade.empty():
        raise StyleError(f"{path}: OpenCV could not load its face detector")
    return cascade


def find(image: np.ndarray, min_size: int = 20) -> list[tuple[int, int, int, int]]:
    """Frontal faces in an image.

    Args:
      image: (H, W, 3) RGB in [0, 1].
      min_size: smallest face side looked for, in pixels.

    Returns:
      (x, y, width, height) boxes of the faces found, largest first.
    """
    gray = np.round(np.asarray(image, np.float32) @ np.float32([0.299, 0.587, 0.114]) * 255)
    boxes = _cascade().detectMultiScale(gray.astype(np.uint8), scaleFactor=1.1, minNeighbors=5,
                                        minSize=(min_size, min_size))
    return sorted((tuple(int(v) for v in b) for b in boxes), key=lambda b: -b[2] * b[3])
