"""The loader sees random and mutated bytes: only StyleError or a valid RGB array may come out."""

import io

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from style_tf import images
from style_tf.errors import StyleError


def _seed_files() -> list[bytes]:
    out = []
    pixels = np.random.default_rng(0).integers(0, 255, (12, 16, 3), dtype=np.uint8)
    for fmt, mode in [("PNG", "RGB"), ("JPEG", "RGB"), ("GIF", "P"), ("BMP", "RGB"),
                      ("TIFF", "RGB"), ("WEBP", "RGB"), ("PNG", "LA")]:
        buf = io.BytesIO()
        Image.fromarray(pixels).convert(mode).save(buf, format=fmt)
        out.append(buf.getvalue())
    return out


SEEDS = _seed_files()


def _check(tmp_path, data: bytes) -> None:
    path = tmp_path / "fuzz"
    path.write_bytes(data)
    try:
        array = images.load_image(path, max_dim=32)
    except StyleError:
        return
    assert array.ndim == 3 and array.shape[2] == 3 and array.dtype == np.float32
    assert np.isfinite(array).all() and array.min() >= 0.0 and array.max() <= 1.0


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.sampled_from(range(len(SEEDS))),
       edits=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=8),
       cut=st.integers(0, 10_000))
def test_mutated_images(tmp_path, seed, edits, cut):
    data = bytearray(SEEDS[seed])
    for pos, value in edits:
        data[pos % len(data)] = value
    _check(tmp_path, bytes(data[: max(1, len(data) - cut % len(data))]))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=512))
def test_random_bytes(tmp_path, data):
    _check(tmp_path, data)
