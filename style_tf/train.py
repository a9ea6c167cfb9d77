"""Trains the AdaIN decoder under a tf.distribute strategy; `python -m style_tf.train`.

One CPU, several GPUs (MirroredStrategy) or a Colab TPU (TPUStrategy) run the same code:
the models and optimiser are built under `strategy.scope()`, each step runs `strategy.run`
inside a `tf.function`, and the per-replica losses (means over the local batch) are scaled
by 1/replicas so the summed gradients are those of the global batch mean.

Checkpoints (tf.train.CheckpointManager) go to `<model_dir>/ckpt`; a restart with the same
`--model_dir` resumes. TensorBoard scalars and images go to `<model_dir>/train`, a CSV log
to `<model_dir>/log.csv`, and on every save the decoder to `<model_dir>/decoder.weights.h5`:
the exponential moving average of its weights (`ema_decay`; the last step's weights go to
`decoder_last.weights.h5`), or with `ema_decay` 0 the last step's.
"""

from style_tf import cli  # noqa: I001 - first: silences TensorFlow's start-up

import dataclasses
import os
import signal
import sys
import time

import keras
import numpy as np
import tensorflow as tf
from absl import flags, logging
from tqdm import tqdm

from style_tf import adain, data, vgg
from style_tf.errors import StyleError, user_errors_exit_2


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Decoder training settings (defaults as the AdaIN paper where it gives them)."""

    content_dir: str  # Photos: a folder, glob or TFRecord pattern (local or gs://).
    style_dir: str  # Artworks: a folder, glob or TFRecord pattern (local or gs://).
    model_dir: str  # Checkpoints, TensorBoard logs and decoder.weights.h5; a run there resumes.
    steps: int = 160_000  # Total optimiser steps (a resumed run continues to this number).
    batch_size: int = 8  # Per replica; the global batch is this times the replicas.
    image_size: int = 256  # Random crop size (a multiple of 8).
    resize_to: int = 512  # Shorter side before cropping.
    learning_rate: float = 1e-4  # Adam's, decayed as learning_rate / (1 + lr_decay * step).
    lr_decay: float = 5e-5  # The decay of learning_rate per step.
    style_weight: float = 10.0  # Weight of the mean/std style loss (as the paper).
    content_weight: float = 1.0  # Weight of the content loss (as the paper).
    identity_weight: float = 0.0  # Pixel error of the alpha-0 reconstruction of half the batch (not in
    # the paper); 0: off.
    grid_weight: float = 0.0  # Penalty on an 8-pixel grid in the stylized batch (losses.grid_loss; not
    # in the paper); 0: off.
    identity_feature_weight: float = 0.0  # Encoder-feature error of the alpha-0 reconstruction; 0: off.
    ema_decay: float = 0.999  # Per-step decay of the moving average of the decoder weights; 0: off.
    strategy: str = "auto"  # "auto", "default", "mirrored" (GPUs, or logical CPUs) or "tpu".
    tpu: str | None = None  # TPU name, or "local" for a Colab TPU.
    precision: str = "auto"  # "auto" (bfloat16 on TPUs and on CPUs that compute it natively), "bfloat16"
    # or "float32".
    save_every: int = 500  # Steps between checkpoints (the most a kill -9 can lose).
    log_every: int = 50  # Steps between TensorBoard scalars and log lines.
    style_balance: bool = True  # Each top-level style subfolder equally likely.
    style_upweight: tuple[tuple[str, float], ...] = ()  # subfolder=factor pairs making those style
    # sources more likely.
    content_upweight: tuple[tuple[str, float], ...] = ()  # The same for content sources.
    init_decoder: str | None = None  # Start from these decoder weights (when there is no checkpoint).
    seed: int = 0  # Data shuffling seed.
    threads: int = 0  # CPU threads for TensorFlow's ops (0: all cores).

    def __post_init__(self):
        if self.threads < 0:
            raise StyleError(f"threads must be >= 0, got {self.threads}")
        for name in ("steps", "batch_size", "image_size", "save_every", "log_every"):
            if getattr(self, name) < 1:
                raise StyleError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("style_weight", "content_weight", "identity_weight", "grid_weight",
                     "identity_feature_weight"):
            if getattr(self, name) < 0:
                raise StyleError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not 0 <= self.ema_decay < 1:
            raise StyleError(f"ema_decay must be in [0, 1), got {self.ema_decay}")
        if self.image_size % 8:
            raise StyleError(f"image_size must be a multiple of 8, got {self.image_size}")
        if self.strategy not in ("auto", "default", "mirrored", "tpu"):
            raise StyleError(f"unknown strategy {self.strategy!r} (auto, default, mirrored, tpu)")
        vgg.dtype_policy(self.precision)  # Refuses an unknown precision.


def make_strategy(name: str, tpu: str | None = None) -> tf.distribute.Strategy:
    """The distribution strategy: TPU, mirrored over GPUs (or logical CPUs), or default."""
    if name == "tpu" or (name == "auto" and tpu):
        try:
            resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu or "local")
            tf.config.experimental_connect_to_cluster(resolver)
            tf.tpu.experimental.initialize_tpu_system(resolver)
        except (ValueError, tf.errors.NotFoundError) as e:
            raise StyleError(f"no TPU {tpu or 'local'!r} found ({e})") from None
        return tf.distribute.TPUStrategy(resolver)
    gpus = tf.config.list_logical_devices("GPU")
    if name == "mirrored" or (name == "auto" and len(gpus) > 1):
        devices = [d.name for d in gpus] or [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices)
    return tf.distribute.get_strategy()


class Trainer:
    """Models, optimiser, checkpoints and the distributed step for one training run."""

    def __init__(self, config: TrainConfig, strategy: tf.distribute.Strategy):
        self.config, self.strategy = config, strategy
        tpu = isinstance(strategy, tf.distribute.TPUStrategy)
        dtype = vgg.dtype_policy("bfloat16" if tpu and config.precision == "auto" else config.precision)
        with strategy.scope():
            self.encoder = adain.encoder(dtype=dtype)
            self.decoder = adain.decoder(dtype=dtype)
            schedule = keras.optimizers.schedules.InverseTimeDecay(
                config.learning_rate, decay_steps=1, decay_rate=config.lr_decay)
            self.optimizer = keras.optimizers.Adam(schedule)
            self.optimizer.build(self.decoder.trainable_variables)
            self.average = (WeightAverage(self.decoder.trainable_variables, config.ema_decay)
                            if config.ema_decay else None)
        self.schedule = schedule
        self.export = adain.decoder()  # Float32, outside the strategy: what the files hold.
        self.checkpoint = tf.train.Checkpoint(decoder=self.decoder, optimizer=self.optimizer)
        if self.average:
            self.checkpoint.average = self.average
        self.manager = tf.train.CheckpointManager(
            self.checkpoint, os.path.join(config.model_dir, "ckpt"), max_to_keep=3)

    @property
    def step(self) -> int:
        return int(self.optimizer.iterations.numpy())

    def restore(self) -> int:
        """Resumes from the latest checkpoint (or the init decoder); returns the step."""
        path = self.manager.latest_checkpoint
        if path:
            checkpoint = self.checkpoint
            if self.average and not any(n.startswith("average/") for n, _ in tf.train.list_variables(path)):
                checkpoint = tf.train.Checkpoint(decoder=self.decoder, optimizer=self.optimizer)
                logging.info("the checkpoint has no weight average; it starts here")
            checkpoint.restore(path).assert_existing_objects_matched()
            logging.info("resumed from step %d", self.step)
        elif self.config.init_decoder:
            self.decoder.load_weights(self.config.init_decoder)
            logging.info("decoder initialised from %s", self.config.init_decoder)
        return self.step

    @tf.function
    def train_step(self, iterator):
        """One optimiser step on the next global batch; returns replica-mean losses."""
        c = self.config
        replicas = self.strategy.num_replicas_in_sync

        def step_fn(content, style):
            with tf.GradientTape() as tape:
                loss, parts, _ = adain.training_losses(self.encoder, self.decoder, content, style,
                                                       c.content_weight, c.style_weight,
                                                       c.identity_weight, c.grid_weight,
                                                       c.identity_feature_weight)
                scaled = loss / replicas  # Gradients are summed across replicas.
            variables = self.decoder.trainable_variables
            grads = tape.gradient(scaled, variables)
            self.optimizer.apply_gradients(zip(grads, variables))
            parts["total"] = loss
            parts["batch"] = tf.cast(tf.shape(content)[0], tf.float32)
            return parts

        content, style = next(iterator)
        parts = self.strategy.run(step_fn, args=(content, style))
        if self.average:  # Cross-replica context: updates every replica's copy alike.
            self.average.update(self.decoder.trainable_variables)
        mean = tf.distribute.ReduceOp.MEAN
        out = {k: self.strategy.reduce(mean, v, axis=None) for k, v in parts.items() if k != "batch"}
        out["batch"] = self.strategy.reduce(tf.distribute.ReduceOp.SUM, parts["batch"], axis=None)
        return out

    def save(self) -> None:
        """Checkpoint plus the decoder files (each written to a temporary file, then renamed)."""
        self.manager.save(checkpoint_number=self.step)
        last = [v.numpy() for v in self.decoder.trainable_variables]
        files = {"decoder.weights.h5": last}
        if self.average:
            files = {"decoder.weights.h5": self.average.values(), "decoder_last.weights.h5": last}
        for name, values in files.items():
            for variable, value in zip(self.export.trainable_variables, values):
                variable.assign(value)
            tmp = os.path.join(self.config.model_dir, ".tmp-" + name)
            self.export.save_weights(tmp)
            os.replace(tmp, os.path.join(self.config.model_dir, name))


class WeightAverage(tf.Module):
    """Exponential moving average of variables, corrected for its zero start as Adam's moments
    are, so that it is a weighted mean of the steps it has seen (a run resumed from a checkpoint
    without one starts it there)."""

    def __init__(self, variables, decay: float):
        super().__init__()
        self.decay = decay
        self.sums = [tf.Variable(tf.zeros(v.shape, v.dtype), trainable=False) for v in variables]
        self.count = tf.Variable(0.0, trainable=False)

    def update(self, variables) -> None:
        for s, v in zip(self.sums, variables):
            s.assign(self.decay * s + (1.0 - self.decay) * v.value)
        self.count.assign_add(1.0)

    def values(self) -> list[np.ndarray]:
        weight = 1.0 - self.decay ** max(float(self.count.numpy()), 1.0)
        return [s.numpy() / weight for s in self.sums]


def datasets(config: TrainConfig, global_batch: int):
    content = data.image_dataset(config.content_dir, global_batch, config.image_size,
                                 config.resize_to, upweight=dict(config.content_upweight),
                                 seed=config.seed)
    style = data.image_dataset(config.style_dir, global_batch, config.image_size, config.resize_to,
                               balance=config.style_balance, upweight=dict(config.style_upweight),
                               seed=None if config.seed is None else config.seed + 1)
    return tf.data.Dataset.zip((content, style))


def train(config: TrainConfig) -> dict[str, float]:
    """Trains until `config.steps`, resuming from `model_dir`; returns the last logged losses."""
    if config.threads:  # Before the strategy starts TensorFlow's runtime.
        tf.config.threading.set_intra_op_parallelism_threads(config.threads)
        tf.config.threading.set_inter_op_parallelism_threads(config.threads)
    strategy = make_strategy(config.strategy, config.tpu)
    global_batch = config.batch_size * strategy.num_replicas_in_sync
    ds = datasets(config, global_batch)  # Checks the data first: bad folders leave no model_dir.
    tf.io.gfile.makedirs(config.model_dir)
    logging.info("strategy %s, %d replicas, global batch %d", type(strategy).__name__,
                 strategy.num_replicas_in_sync, global_batch)
    trainer = Trainer(config, strategy)
    start = trainer.restore()
    iterator = iter(strategy.experimental_distribute_dataset(ds))
    preview = next(iter(ds.take(1)))
    writer = tf.summary.create_file_writer(os.path.join(config.model_dir, "train"))
    stop = _StopOnSignal()
    last, tick, tick_step = {}, time.time(), start
    bar = tqdm(total=config.steps, initial=start, desc="train", unit="step", disable=None)
    try:
        while trainer.step < config.steps and not stop.requested:
            parts = trainer.train_step(iterator)
            step = trainer.step
            bar.update(1)
            if step % config.log_every == 0 or step == config.steps:
                last = {k: float(v) for k, v in parts.items()}
                last["steps_per_s"] = (step - tick_step) / max(time.time() - tick, 1e-9)
                last["learning_rate"] = float(trainer.schedule(step))
                tick, tick_step = time.time(), step
                _log(config.model_dir, writer, step, last)
                bar.set_postfix(loss=f"{last['total']:.3g}")
                if not np.isfinite(last["total"]):
                    raise StyleError(f"loss is not finite at step {step}; lower --learning_rate")
            if step % config.save_every == 0:
                trainer.save()
                _preview(writer, trainer, preview, step)
    finally:
        bar.close()
        stop.restore()
    if trainer.step > start or not os.path.exists(os.path.join(config.model_dir, "decoder.weights.h5")):
        trainer.save()
        logging.info("saved step %d to %s", trainer.step, config.model_dir)
    if stop.requested:
        raise KeyboardInterrupt
    return last


def _log(model_dir: str, writer, step: int, values: dict[str, float]) -> None:
    with writer.as_default(step=step):
        for name, value in values.items():
            if name != "batch":
                tf.summary.scalar(name, value)
    path = os.path.join(model_dir, "log.csv")
    columns, rows = [], []
    if tf.io.gfile.exists(path):  # A resumed run keeps the file's columns and adds new ones.
        with tf.io.gfile.GFile(path) as f:
            columns = f.readline().strip().split(",")[1:]
    added = sorted(set(values) - set(columns))
    row = ",".join([str(step)] + [f"{values[n]:.6g}" if n in values else "" for n in columns + added])
    if added:  # Rewritten whole, earlier rows blank in the new columns, then swapped in.
        if columns:
            with tf.io.gfile.GFile(path) as f:
                rows = [line + "," * len(added) for line in f.read().splitlines()[1:]]
        text = "\n".join([",".join(["step"] + columns + added)] + rows + [row]) + "\n"
        with tf.io.gfile.GFile(path + ".tmp", "w") as f:
            f.write(text)
        tf.io.gfile.rename(path + ".tmp", path, overwrite=True)
    else:
        with tf.io.gfile.GFile(path, "a") as f:
            f.write(row + "\n")
    logging.info("step %d: %s", step, ", ".join(f"{n} {values[n]:.4g}" for n in sorted(values)))


def _preview(writer, trainer: Trainer, batch, step: int, count: int = 3) -> None:
    """TensorBoard image: content | style | stylized, for a few fixed pairs."""
    content, style = batch[0][:count], batch[1][:count]
    _, _, stylized = adain.training_losses(trainer.encoder, trainer.decoder, content, style)
    grid = tf.concat([content, style, tf.clip_by_value(stylized, 0.0, 1.0)], axis=2)
    with writer.as_default(step=step):
        tf.summary.image("content | style | stylized", grid, max_outputs=count)


class _StopOnSignal:
    """Turns SIGINT/SIGTERM into a request to stop after the current step (then save)."""

    def __init__(self):
        self.requested = False
        self._old = {s: signal.signal(s, self._handle) for s in (signal.SIGINT, signal.SIGTERM)}

    def _handle(self, signum, frame):
        if self.requested:  # A second signal stops at once.
            raise KeyboardInterrupt
        self.requested = True
        logging.warning("stopping after this step (signal %d); send again to stop now", signum)

    def restore(self):
        for s, handler in self._old.items():
            signal.signal(s, handler)


def _define_flags() -> None:
    cli.define_flags(TrainConfig)


@user_errors_exit_2
def main(argv) -> int:
    del argv
    f = flags.FLAGS
    try:
        config = cli.config_from_flags(TrainConfig, f)
        train(config)
    except KeyboardInterrupt:
        print("interrupted; checkpoint saved, run again with the same --model_dir to resume",
              file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    cli.run(main, _define_flags)
