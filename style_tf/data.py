"""tf.data pipelines for decoder training: image folders, globs (local or gs://) or TFRecords.

Each element is a float32 (B, size, size, 3) RGB batch in [0, 1]: decoded, the shorter side
resized to `resize_to`, randomly cropped to `size`, shuffled, repeated and prefetched.
Files that cannot be decoded are skipped, and named in a warning, when the file list is built.
"""

import io
import os
from collections import defaultdict

import numpy as np
import tensorflow as tf
from absl import logging
from PIL import Image

from style_tf.errors import StyleError

_TF_FORMATS = {"JPEG", "PNG", "GIF", "BMP", "WEBP"}  # What tf.io.decode_image reads.


def is_tfrecord_pattern(pattern: str) -> bool:
    return ".tfrecord" in os.path.basename(pattern)


def list_files(source: str) -> list[str]:
    """Files of a folder (recursive), a glob pattern, or a TFRecord pattern; sorted."""
    gfile = tf.io.gfile
    if gfile.isdir(source):
        files = [os.path.join(root, name) for root, _, names in gfile.walk(source)
                 for name in names if not name.startswith(".")]
    else:
        files = gfile.glob(source)
    return sorted(files)


def readable_images(files: list[str]) -> tuple[list[str], list[str]]:
    """Splits files into those PIL can verify in a format TensorFlow decodes and the others;
    returns (kept, skipped)."""
    kept, skipped = [], []
    for path in files:
        try:
            with tf.io.gfile.GFile(path, "rb") as f, Image.open(io.BytesIO(f.read())) as img:
                fmt = img.format
                img.verify()
        except Exception:  # Any failure means "not a usable image": skipped, not fatal.
            fmt = None
        (kept if fmt in _TF_FORMATS else skipped).append(path)
    return kept, skipped


def _some(paths: list[str], source: str, shown: int = 3) -> str:
    """The first `shown` of `paths` (relative to a `source` folder), and how many more."""
    folder = tf.io.gfile.isdir(source)
    names = [os.path.relpath(p, source) if folder else p for p in paths[:shown]]
    return ", ".join(names) + (f" and {len(paths) - shown} more" if len(paths) > shown else "")


def _readable(source: str, files: list[str]) -> list[str]:
    """The readable images of `files`; names the skipped ones in a warning.

    Raises:
      StyleError: none is readable.
    """
    files, skipped = readable_images(files)
    what = (f"{len(skipped)} unreadable or unsupported file{'s' if len(skipped) > 1 else ''}: "
            f"{_some(skipped, source)}")
    if not files:
        raise StyleError(f"{source}: no readable images" + (f", only {what}" if skipped else ""))
    if skipped:
        logging.warning("%s: skipped %s", source, what)
    return files


def source_of(path: str, root: str) -> str:
    """The first folder under `root` that holds `path` (its package or collection)."""
    rel = os.path.relpath(path, root)
    return rel.split(os.sep, 1)[0] if os.sep in rel else "."


def _decode_crop(data, size: int, resize_to: int, seed=None):
    image = tf.io.decode_image(data, channels=3, expand_animations=False, dtype=tf.float32)
    shape = tf.cast(tf.shape(image)[:2], tf.float32)
    scale = tf.maximum(float(resize_to) / tf.reduce_min(shape), float(size) / tf.reduce_min(shape))
    new = tf.cast(tf.math.ceil(shape * scale), tf.int32)
    image = tf.image.resize(image, new, antialias=True)
    image = tf.image.random_crop(image, (size, size, 3), seed=seed)
    return tf.clip_by_value(image, 0.0, 1.0)


def image_dataset(source: str, batch_size: int, size: int = 256, resize_to: int = 512,
                  balance: bool = False, upweight: dict[str, float] | None = None,
                  shuffle: bool = True, seed: int | None = None, repeat: bool = True) -> tf.data.Dataset:
    """Batches of random crops from a folder, glob pattern or TFRecord pattern.

    Args:
      source: folder (searched recursively), glob, or `*.tfrecord*` pattern (local or gs://).
      batch_size: batch size (global, or per replica: the caller decides).
      size: crop size.
      resize_to: the shorter side is resized to this before cropping (at least `size`).
      balance: sample each top-level subfolder (source) of a folder equally often.
      upweight: `{subfolder: factor}` multiplying those sources' sampling weights.
      shuffle, seed, repeat: as in tf.data.

    Raises:
      StyleError: no files, no readable images, or `upweight` names no subfolder of a folder
        or has a factor <= 0.
    """
    files = list_files(source)
    if not files:
        raise StyleError(f"{source}: no files found")
    if upweight and not tf.io.gfile.isdir(source):
        raise StyleError(f"{source}: upweighting needs a folder of source subfolders")
    if any(not factor > 0 for factor in (upweight or {}).values()):
        raise StyleError(f"{source}: upweight factors must be > 0, got {upweight}")
    if is_tfrecord_pattern(source):
        ds = tf.data.TFRecordDataset(files, num_parallel_reads=tf.data.AUTOTUNE)
        spec = {"image": tf.io.FixedLenFeature([], tf.string)}
        ds = ds.map(lambda record: tf.io.parse_single_example(record, spec)["image"])
        return _finish(ds, batch_size, size, resize_to, shuffle, seed, repeat)
    files = _readable(source, files)
    logging.info("%s: %d images", source, len(files))
    if not (balance or upweight) or not tf.io.gfile.isdir(source):
        return _finish(_reader(files, shuffle, seed), batch_size, size, resize_to, shuffle, seed, repeat)
    groups = defaultdict(list)
    for path in files:
        groups[source_of(path, source)].append(path)
    names = sorted(groups)
    unknown = sorted(set(upweight or {}) - set(names))
    if unknown:
        raise StyleError(f"{source}: no source folder {', '.join(unknown)} to upweight "
                         f"(it has {', '.join(names)})")
    weights = np.array([(1.0 if balance else len(groups[n])) * (upweight or {}).get(n, 1.0)
                        for n in names])
    parts = [_reader(groups[n], shuffle, seed).repeat() for n in names]
    ds = tf.data.Dataset.sample_from_datasets(parts, weights / weights.sum(), seed=seed)
    return _finish(ds, batch_size, size, resize_to, shuffle, seed, repeat)


def _reader(files: list[str], shuffle: bool, seed) -> tf.data.Dataset:
    ds = tf.data.Dataset.from_tensor_slices(files)
    if shuffle:
        ds = ds.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
    return ds.map(tf.io.read_file, num_parallel_calls=tf.data.AUTOTUNE)


def _finish(ds, batch_size, size, resize_to, shuffle, seed, repeat):
    if repeat:
        ds = ds.repeat()
    ds = ds.map(lambda d: _decode_crop(d, size, resize_to, seed), num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.ignore_errors()  # A file that verified but fails to decode is dropped, not fatal.
    if shuffle:
        ds = ds.shuffle(64, seed=seed)
    return ds.batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)


def write_tfrecords(source: str, output_prefix: str, shards: int = 8) -> tuple[list[str], int]:
    """Packs the readable images of `source` into `<prefix>-0000N-of-0000M.tfrecord` shards.

    Each record holds the original encoded bytes under "image". Returns (paths, number of
    files skipped: those `readable_images` refuses, named in a warning).
    """
    all_files = list_files(source)
    if not all_files:
        raise StyleError(f"{source}: no files found")
    files = _readable(source, all_files)
    shards = max(1, min(shards, len(files)))
    paths = [f"{output_prefix}-{i:05d}-of-{shards:05d}.tfrecord" for i in range(shards)]
    for i, path in enumerate(paths):
        tmp = path + ".tmp"
        with tf.io.TFRecordWriter(tmp) as writer:
            for name in files[i::shards]:
                data = tf.io.gfile.GFile(name, "rb").read()
                feature = {"image": tf.train.Feature(bytes_list=tf.train.BytesList(value=[data]))}
                example = tf.train.Example(features=tf.train.Features(feature=feature))
                writer.write(example.SerializeToString())
        tf.io.gfile.rename(tmp, path, overwrite=True)
    return paths, len(all_files) - len(files)
