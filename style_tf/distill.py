"""Trains the phone-class student (`student.py`) by distillation; `python -m style_tf.distill`.

The teacher is the AdaIN engine with the bundled decoder. Its stylized images are computed
once and stored in a *pack* (a folder), so a training step pays for the student alone:

  pack/sources.npz       the photos and artworks as JPEGs, shorter side SOURCE_SIDE (small
                         enough to carry to a lent GPU machine, see BUILD.md)
  pack/targets-NNNNN.npz  PAIRS_PER_SHARD teacher results: which photo and artwork, where
                         they were cut, and the teacher's stylized crop as a JPEG

Making a pack resumes shard by shard. Training fits the student's output to the teacher's
(L1 on pixels and on their horizontal and vertical differences, which carry the strokes).
With `targets="teacher"` the teacher stylizes each batch instead (a GPU's way: the pack then
needs no target shards, and every step sees a new pair). Training uses Keras `fit` and numpy
data, no TensorFlow, so it runs under `KERAS_BACKEND=jax` as well; `model_dir` keeps a backup
each epoch (`keras.callbacks.BackupAndRestore`) and a run there resumes.
"""

from style_tf import cli  # noqa: I001 - first: silences TensorFlow's start-up

import dataclasses
import io
import json
import os
import signal
import sys
from pathlib import Path

import keras
import numpy as np
from absl import flags, logging
from keras import ops
from PIL import Image
from tqdm import tqdm

from style_tf import adain, losses, student
from style_tf.errors import StyleError, user_errors_exit_2

SOURCE_SIDE = 288  # Shorter side of the pack's photos and artworks (training crops are cut from them).
PAIRS_PER_SHARD = 128
TEACHER_BATCH = 16  # Pairs the teacher stylizes at once while a pack is made.
WEIGHTS = "student.weights.h5"  # In model_dir, written at every epoch's end.


@dataclasses.dataclass(frozen=True)
class DistillConfig:
    """Student distillation settings."""

    pack: str  # The pack folder (made by `make_pack` from content_dir and style_dir if missing).
    model_dir: str  # Backups, log.csv and student.weights.h5; a run there resumes.
    content_dir: str = ""  # Photos to make the pack from (a folder; subfolders are sources).
    style_dir: str = ""  # Artworks to make the pack from; each top-level subfolder equally likely.
    pairs: int = 2048  # Teacher results the pack holds (more are added to an existing pack).
    steps: int = 20_000  # Total optimiser steps (a resumed run continues to this number).
    steps_per_epoch: int = 100  # Steps between backups (the most an interruption can lose).
    batch_size: int = 8  # Pairs per step.
    crop: int = 256  # Side of the training crops (a multiple of 8, at most 288); a pack's targets are
    # made at one crop size.
    learning_rate: float = 5e-4  # Adam's, decayed as learning_rate / (1 + lr_decay * step).
    lr_decay: float = 2e-4  # The decay of learning_rate per step.
    pixel_weight: float = 1.0  # L1 between the student's and the teacher's pixels.
    edge_weight: float = 1.0  # L1 between their horizontal and vertical pixel differences.
    feature_weight: float = 0.0  # Squared error of the teacher encoder's block4_conv1 features of the
    # student's result against those of the teacher's (0: off).
    style_weight: float = 0.0  # Mean/std distance of the teacher encoder's features (block1..4) of the
    # student's result against the teacher's (adain's style loss; 0: off).
    targets: str = "pack"  # "pack" (the teacher's stored results) or "teacher" (it stylizes each batch).
    seed: int = 0  # Seed of the pack's pairs and crops and of the training order.

    def __post_init__(self):
        if self.targets not in ("pack", "teacher"):
            raise StyleError(f"unknown targets {self.targets!r} (use pack or teacher)")
        if not (self.pixel_weight or self.edge_weight or self.feature_weight or self.style_weight):
            raise StyleError("every loss weight is 0")
        for name in ("pairs", "steps", "steps_per_epoch", "batch_size"):
            if getattr(self, name) < 1:
                raise StyleError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.crop % 8 or not 8 <= self.crop <= SOURCE_SIDE:
            raise StyleError(f"crop must be a multiple of 8 in 8..{SOURCE_SIDE}, got {self.crop}")


# The pack.


def _jpeg(image: np.ndarray, quality: int = 95) -> bytes:
    out = io.BytesIO()
    Image.fromarray(np.round(np.clip(image, 0, 1) * 255).astype(np.uint8)).save(out, "JPEG", quality=quality)
    return out.getvalue()


def _unjpeg(blob: np.ndarray) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(blob.tobytes())).convert("RGB"), np.float32) / 255.0


def _pack_blobs(blobs: list[bytes]) -> dict[str, np.ndarray]:
    """Many byte strings as one uint8 array and their end offsets (npz without pickles)."""
    return {"bytes": np.frombuffer(b"".join(blobs), np.uint8),
            "ends": np.cumsum([len(b) for b in blobs], dtype=np.int64)}


def _unpack_blobs(data: np.ndarray, ends: np.ndarray) -> list[np.ndarray]:
    starts = np.concatenate([[0], ends[:-1]])
    return [data[s:e] for s, e in zip(starts, ends)]


def _save_npz(path: Path, **arrays) -> None:
    """Written whole or not at all (a stopped pack resumes at the first missing shard)."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        np.savez(f, **arrays)
    os.replace(tmp, path)


def make_sources(pack: Path, content_dir: str, style_dir: str) -> None:
    """Writes `pack/sources.npz`: every readable photo and artwork, shorter side SOURCE_SIDE."""
    from style_tf import data, images  # TensorFlow's: making a pack runs the teacher here.

    parts = {}
    for kind, folder in (("content", content_dir), ("style", style_dir)):
        if not folder or not os.path.isdir(folder):
            raise StyleError(f"{folder or '--' + kind + '_dir'}: no such folder (needed to make the pack)")
        files = [str(p) for p in sorted(Path(folder).rglob("*")) if p.is_file()]
        blobs, groups = [], []
        for path in tqdm(files, desc=f"pack {kind}", unit="image", disable=None):
            try:
                image = images.load_image(path)
            except StyleError:  # Not an image (licences, notes) or broken: not for training.
                continue
            if min(image.shape[:2]) < SOURCE_SIDE // 2:  # Icons and thumbnails.
                continue
            scale = SOURCE_SIDE / min(image.shape[:2])
            size = (round(image.shape[0] * scale), round(image.shape[1] * scale))
            blobs.append(_jpeg(images.resize(image, size=size), quality=90))
            groups.append(data.source_of(path, folder))
        if not blobs:
            raise StyleError(f"{folder}: no readable images")
        packed = _pack_blobs(blobs)
        parts.update({f"{kind}_bytes": packed["bytes"], f"{kind}_ends": packed["ends"],
                      f"{kind}_group": np.asarray(groups)})
    pack.mkdir(parents=True, exist_ok=True)
    _save_npz(pack / "sources.npz", **parts)


class Sources:
    """The pack's photos and artworks, decoded once, and the crops training cuts from them."""

    def __init__(self, pack: Path):
        path = pack / "sources.npz"
        if not path.is_file():
            raise StyleError(f"{path}: no such file (make the pack with --content_dir and --style_dir)")
        with np.load(path) as f:
            self.contents = [_unjpeg(b) for b in _unpack_blobs(f["content_bytes"], f["content_ends"])]
            self.styles = [_unjpeg(b) for b in _unpack_blobs(f["style_bytes"], f["style_ends"])]
            groups = f["style_group"]
        # Each style source (top-level folder) equally likely: the pool is lopsided.
        names, index = np.unique(groups, return_inverse=True)
        self.style_p = 1.0 / np.bincount(index)[index] / len(names)

    def draw(self, rng: np.random.Generator, count: int, crop: int) -> np.ndarray:
        """(count, 7) int rows: content, style, content y, x, style y, x (crop corners), crop."""
        rows = []
        for _ in range(count):
            c = rng.integers(len(self.contents))
            s = rng.choice(len(self.styles), p=self.style_p)
            (ch, cw), (sh, sw) = self.contents[c].shape[:2], self.styles[s].shape[:2]
            rows.append([c, s, rng.integers(ch - crop + 1), rng.integers(cw - crop + 1),
                         rng.integers(sh - crop + 1), rng.integers(sw - crop + 1), crop])
        return np.asarray(rows, np.int64)

    def crops(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(B, crop, crop, 3) contents and styles of `draw`'s rows."""
        content = [self.contents[c][y:y + n, x:x + n] for c, _, y, x, _, _, n in rows]
        style = [self.styles[s][y:y + n, x:x + n] for _, s, _, _, y, x, n in rows]
        return np.stack(content), np.stack(style)


def make_pack(config: DistillConfig) -> None:
    """Makes (or completes) `config.pack`: its sources, then (`targets="pack"`) target shards up
    to `config.pairs`."""
    pack = Path(config.pack)
    if not (pack / "sources.npz").is_file():
        make_sources(pack, config.content_dir, config.style_dir)
    if config.targets != "pack":
        return
    sources = Sources(pack)
    shards = -(-config.pairs // PAIRS_PER_SHARD)
    todo = [i for i in range(shards) if not (pack / f"targets-{i:05d}.npz").is_file()]
    if not todo:
        return
    if todo[0] > 0:
        with np.load(pack / "targets-00000.npz") as f:
            if f["rows"][0, 6] != config.crop:
                raise StyleError(f"{pack}: its targets are {f['rows'][0, 6]}-px crops, not {config.crop}: "
                                 "use its crop size or a new pack")
    teacher = _teacher()
    bar = tqdm(total=len(todo) * PAIRS_PER_SHARD, desc="teacher", unit="pair", disable=None)
    for i in todo:
        rows = sources.draw(np.random.default_rng([config.seed, i]), PAIRS_PER_SHARD, config.crop)
        contents, styles = sources.crops(rows)
        blobs = []
        for start in range(0, len(rows), TEACHER_BATCH):
            batch = np.s_[start:start + TEACHER_BATCH]
            for image in ops.convert_to_numpy(teacher(contents[batch], styles[batch])):
                blobs.append(_jpeg(image))
            bar.update(len(contents[batch]))
        packed = _pack_blobs(blobs)
        _save_npz(pack / f"targets-{i:05d}.npz", rows=rows, bytes=packed["bytes"], ends=packed["ends"])
    bar.close()


def _teacher():
    """The AdaIN engine's network as it stylizes (bundled decoder, mirrored border, alpha 1, no
    face pass), compiled: (B, n, n, 3) contents and styles -> (B, n, n, 3) results."""
    from style_tf.stylizer import _compile

    enc = adain.encoder(layers=(adain.BOTTLENECK,))
    dec = adain.load_decoder(adain.decoder_path())

    def stylize(content, style):
        vector = adain.style_vector(ops.cast(enc(style)[adain.BOTTLENECK], "float32"))
        return adain.transform(enc, dec, content, vector, border=adain.border_for(content.shape[1:3]))

    return _compile(stylize)


class Pairs(keras.utils.PyDataset):
    """Training batches ((content, style), target) from a pack, numpy only (any backend).

    With stored targets it draws pairs from the shards; otherwise fresh random pairs, which the
    teacher stylizes (`_teacher`, compiled: on a GPU under JAX). Random left-right flips.
    """

    def __init__(self, config: DistillConfig, epoch_offset: int = 0):
        super().__init__()
        pack = Path(config.pack)
        self.sources = Sources(pack)
        self.config = config
        self.rows, self.targets = np.zeros((0, 7), np.int64), []
        if config.targets == "pack":
            for path in sorted(pack.glob("targets-*.npz")):
                with np.load(path) as f:
                    self.rows = np.concatenate([self.rows, f["rows"]])
                    self.targets += [b.copy() for b in _unpack_blobs(f["bytes"], f["ends"])]
            if not self.targets:
                raise StyleError(f"{pack}: no target shards (make the pack first)")
            if set(self.rows[:, 6]) != {config.crop}:
                raise StyleError(f"{pack}: its targets are {sorted(set(self.rows[:, 6]))}-px crops, "
                                 f"not {config.crop}")
        self.epoch = epoch_offset
        self.teacher = None if self.targets else _teacher()

    def __len__(self):
        return self.config.steps_per_epoch

    def on_epoch_end(self):
        self.epoch += 1

    def __getitem__(self, index):
        rng = np.random.default_rng([self.config.seed, self.epoch, index])
        b = self.config.batch_size
        if self.targets:
            picked = rng.integers(len(self.targets), size=b)
            rows = self.rows[picked]
            target = np.stack([_unjpeg(self.targets[i]) for i in picked])
        else:
            rows = self.sources.draw(rng, b, self.config.crop)
        content, style = self.sources.crops(rows)
        if not self.targets:
            target = np.asarray(ops.convert_to_numpy(self.teacher(content, style)), np.float32)
        flip = rng.random(b) < 0.5
        content[flip], target[flip] = content[flip, :, ::-1], target[flip, :, ::-1]
        return (content, style), target


# Training.


def distill_model(enc: keras.Model, dec: keras.Model, crop: int) -> keras.Model:
    """(content, style) -> the student's stylized image (alpha 1, no border), as trained: the
    same model whatever the targets, so a run goes on from either kind."""
    content = keras.Input((crop, crop, 3), name="content")
    style = keras.Input((crop, crop, 3), name="style")
    c = enc(content)[student.BOTTLENECK]
    s = enc(style)[student.BOTTLENECK]
    return keras.Model([content, style], dec(adain.adaptive_instance_norm(c, s)), name="distill")


class Objective:
    """The distillation loss as a Keras loss (y_true: the teacher's image, y_pred: the
    student's)."""

    def __init__(self, config: DistillConfig):
        self.config = config
        # The teacher's frozen encoder, for the feature terms: a pixel error alone is met by the
        # average of the brushwork a result could have, a blur (RESULTS.md, "Student").
        self.encoder = adain.encoder() if config.feature_weight or config.style_weight else None

    def __call__(self, target, stylized):
        c = self.config
        total = c.pixel_weight * ops.mean(ops.abs(stylized - target))
        if c.edge_weight:
            dx = lambda x: x[:, :, 1:] - x[:, :, :-1]  # noqa: E731
            dy = lambda x: x[:, 1:] - x[:, :-1]  # noqa: E731
            total += c.edge_weight * (ops.mean(ops.abs(dx(stylized) - dx(target)))
                                      + ops.mean(ops.abs(dy(stylized) - dy(target))))
        if self.encoder is not None:
            ours, theirs = self.encoder(stylized), self.encoder(target)
            theirs = {k: ops.stop_gradient(v) for k, v in theirs.items()}
            if c.feature_weight:
                gap = ours[adain.BOTTLENECK] - theirs[adain.BOTTLENECK]
                total += c.feature_weight * ops.mean(ops.square(gap))
            if c.style_weight:
                total += c.style_weight * losses.mean_std_loss(ours, theirs)[0]
        return total


def train(config: DistillConfig) -> dict[str, float]:
    """Makes the pack if needed, then trains until `config.steps`, resuming from `model_dir`."""
    make_pack(config)
    model_dir = Path(config.model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    net = student.network()
    weights = model_dir / WEIGHTS
    backup = model_dir / "backup"
    if not backup.exists():  # A new run starts from the teacher, pruned.
        student.prune_from_teacher(net, adain.load_decoder(adain.decoder_path()))
        logging.info("new run: the student starts from the teacher's largest filters")
    model = distill_model(*student.parts(net), config.crop)
    schedule = keras.optimizers.schedules.InverseTimeDecay(config.learning_rate, 1, config.lr_decay)
    # XLA: JAX's way (a step is faster than TensorFlow's here); TensorFlow's own kernels were
    # faster than its XLA on these CPUs (RESULTS.md, "Student").
    model.compile(optimizer=keras.optimizers.Adam(schedule), loss=Objective(config),
                  jit_compile=keras.backend.backend() != "tensorflow")
    epochs = -(-config.steps // config.steps_per_epoch)
    pairs = Pairs(config, _epochs_done(backup))  # A resumed run draws new batches.
    stop = _StopAtEpochEnd()
    callbacks = [keras.callbacks.BackupAndRestore(str(backup), delete_checkpoint=False),
                 _SaveStudent(net, weights),
                 keras.callbacks.CSVLogger(str(model_dir / "log.csv"), append=True), stop]
    try:
        history = model.fit(pairs, epochs=epochs, callbacks=callbacks, verbose=2)
    finally:
        stop.restore()
    if stop.requested:
        raise KeyboardInterrupt
    return {k: float(v[-1]) for k, v in history.history.items()}


def _epochs_done(backup: Path) -> int:
    """Epochs a BackupAndRestore folder has recorded (0 for none)."""
    path = backup / "training_metadata.json"
    return json.loads(path.read_text())["epoch"] if path.is_file() else 0


class _SaveStudent(keras.callbacks.Callback):
    """Writes the student's weights (whole or not at all) at every epoch's end."""

    def __init__(self, net: keras.Model, path: Path):
        super().__init__()
        self.net, self.path = net, path

    def on_epoch_end(self, epoch, logs=None):
        tmp = self.path.with_name(".tmp-" + self.path.name)  # Keras wants the .weights.h5 ending.
        self.net.save_weights(tmp)
        os.replace(tmp, self.path)


class _StopAtEpochEnd(keras.callbacks.Callback):
    """SIGINT/SIGTERM: stop at the end of this epoch (after its backup); a second one at once."""

    def __init__(self):
        super().__init__()
        self.requested = False
        self._old = {s: signal.signal(s, self._handle) for s in (signal.SIGINT, signal.SIGTERM)}

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        logging.warning("stopping at the end of this epoch (signal %d); send again to stop now", signum)

    def on_epoch_end(self, epoch, logs=None):
        if self.requested:
            self.model.stop_training = True

    def restore(self):
        for s, handler in self._old.items():
            signal.signal(s, handler)


def _define_flags() -> None:
    cli.define_flags(DistillConfig)


@user_errors_exit_2
def main(argv) -> int:
    del argv
    try:
        train(cli.config_from_flags(DistillConfig, flags.FLAGS))
    except KeyboardInterrupt:
        print("interrupted; backup saved, run again with the same --model_dir to resume", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    cli.run(main, _define_flags)
