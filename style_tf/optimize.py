"""The Gatys engine: style targets once per scale, a compiled loss/gradient, Adam or L-BFGS.

The image is the only variable. `tf.function` wraps the small loss/gradient and Adam step
functions; the Python loop, progress, snapshots and file I/O stay outside (`Engine`, through
`callback`). Not XLA: on CPU oneDNN's convolutions beat XLA's, so `jit_compile` is slower
(benchmarks/RESULTS.md, "Optimize engine").
Coarse-to-fine `scales` start each scale from the upsampled result of the previous one,
which is how large outputs are reached quickly and without running out of memory.
"""

import dataclasses
import hashlib
import typing
from pathlib import Path
from typing import Callable

import keras
import numpy as np
import tensorflow as tf
from absl import logging
from tqdm import tqdm

from style_tf import images, lbfgs, losses, vgg
from style_tf.errors import StyleError

TUTORIAL_STYLE_LAYERS = tuple((f"block{i}_conv1", 1.0) for i in range(1, 6))


_RUN = {"sweep": False}  # Settings of what a run leaves beside its output, not of the result.


@dataclasses.dataclass(frozen=True)
class OptimizeConfig:
    """Settings of the optimisation engine (its defaults' measurements: benchmarks/RESULTS.md)."""

    STYLE_MEASURE: typing.ClassVar[str] = "gram_relative"  # metrics.Report field it minimises.

    network: str = "vgg19"  # Feature network: "vgg19" (bundled weights) or "vgg16".
    vgg_weights: str = "bundled"  # "bundled" (VGG19), "imagenet" (Keras cache ~/.keras/models, or a
    # download) or a path to an .h5 / .weights.h5 / .npz file (VGG16's offline route).
    pooling: str = "max"  # "max" as trained; "avg" gives smoother textures.
    content_layers: tuple[tuple[str, float], ...] = (("block5_conv2", 1.0),)  # Keras layer names,
    # each with an optional :weight.
    style_layers: tuple[tuple[str, float], ...] = TUTORIAL_STYLE_LAYERS  # Keras layer names, each with
    # an optional :weight.
    content_weight: float = 1e4  # As the TensorFlow style transfer tutorial (same normalisation).
    style_weight: float = 1e-2  # As the TensorFlow tutorial.
    tv_weight: float = 30.0  # Total variation, as the TensorFlow tutorial (summed absolute differences).
    optimizer: str = "lbfgs"  # "lbfgs" (projected L-BFGS, bounded to [0, 1]) or "adam".
    steps: int = 100  # Iterations per scale.
    video_steps: int = 40  # Clips with --temporal=flow: iterations for each frame after the first, at full
    # size only, starting from the previous result warped onto it (the first frame takes --steps).
    temporal_weight: float = 1e3  # Clips with --temporal=flow: weight of the difference to the warped
    # previous result where the flow is reliable (Ruder et al. 2016's temporal loss).
    learning_rate: float = 0.02  # Adam's step (also in L-BFGS's tail, --adam_after), with beta1 0.99,
    # epsilon 0.1 as the tutorial.
    adam_after: int = dataclasses.field(  # L-BFGS iterations of a scale after which Adam takes over, its
        default=200, metadata={"only_with": ("optimizer", "lbfgs")})  # moments warmed by the gradients
    # L-BFGS saw: in a long run's tail Adam gains more a step (0: L-BFGS throughout).
    init: str = "content"  # Start image: "content", "noise", "style" or an image path.
    seed: int = 0  # Seeds the noise init and TensorFlow: same seed and flags, same output.
    style_scale: float = 1.0  # Style image's longest side relative to the output's.
    scales: tuple[int, ...] = (320,)  # Coarse sizes run before max_dim, each starting from the previous
    # result upsampled (empty: none).
    precision: str = "auto"  # Network arithmetic: "auto" (bfloat16 where the CPU computes it natively:
    # AMX or AVX512-BF16; float32 elsewhere, where bfloat16 is emulated and slower), "bfloat16", "float32".
    log_every: int = dataclasses.field(default=50, metadata=_RUN)  # Steps between log lines (0: none).
    save_every: int = dataclasses.field(  # Steps between snapshots <output>_NNNNN.png and the state
        default=0, metadata=_RUN)  # for --resume (0: none).
    plot: bool = dataclasses.field(default=False, metadata=_RUN)  # Write <output>_loss.png, the loss curve.
    resume: bool = dataclasses.field(  # Continue an interrupted run from <output>.resume.npz (Adam
        default=False, metadata=_RUN)  # exactly; L-BFGS rebuilds its memory); a folder run skips
    # the outputs already written.

    def __post_init__(self):
        if self.optimizer not in ("lbfgs", "adam"):
            raise StyleError(f"unknown optimizer {self.optimizer!r} (use lbfgs or adam)")
        if self.steps < 0 or self.video_steps < 0 or self.adam_after < 0:
            raise StyleError(f"steps, video_steps and adam_after must be >= 0, got {self.steps}, "
                             f"{self.video_steps}, {self.adam_after}")
        vgg.dtype_policy(self.precision)
        for name in ("content_weight", "style_weight", "tv_weight", "style_scale", "learning_rate",
                     "temporal_weight"):
            if not (np.isfinite(getattr(self, name)) and getattr(self, name) >= 0):
                raise StyleError(f"{name} must be a finite number >= 0, got {getattr(self, name)}")
        if not self.style_scale > 0:
            raise StyleError("style_scale must be > 0")
        if not self.content_layers or not self.style_layers:
            raise StyleError("content_layers and style_layers must not be empty")
        if self.log_every < 0 or self.save_every < 0:
            raise StyleError("log_every and save_every must be >= 0")

    def style_dim(self, max_dim: int) -> int:
        """Longest side to load style images at for outputs of `max_dim` (`style_scale` may
        ask for more)."""
        return round(max_dim * max(1.0, self.style_scale))

    def fingerprint(self) -> str:
        """Identifies this engine's results: the settings that shape them (not those of what a
        run leaves beside its output, `_RUN`) and the precision "auto" chose here."""
        shaping = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                   if f.metadata.get("sweep", True)}
        return f"{shaping!r} dtype={vgg.dtype_policy(self.precision)}"


@dataclasses.dataclass
class Resume:
    """Where an optimisation stood: enough to continue it (`--resume`)."""

    scale: int  # Index of the scale in progress.
    step: int  # Iterations done within that scale.
    total_step: int  # Iterations done over all scales.
    image: np.ndarray  # (H, W, 3) at that scale's size.
    adam: list[np.ndarray] | None = None  # Adam's variables in order (also in L-BFGS's tail); None in L-BFGS.


@dataclasses.dataclass
class Step:
    """What the engine reports after each iteration (to progress bars, logs, snapshots)."""

    scale: int  # Index into the list of sizes.
    size: tuple[int, int]  # (H, W) of this scale.
    step: int  # Iteration within this scale, from 1.
    total_step: int  # Iteration over all scales, from 1.
    loss: float
    parts: dict[str, float]
    image: Callable[[], np.ndarray]  # The current image, (H, W, 3) in [0, 1].
    resume: Callable[[], Resume]  # The state to continue from this point.


def feature_model_for(config: OptimizeConfig) -> keras.Model:
    """The frozen VGG returning every content and style layer of `config`."""
    layers = [n for n, _ in config.content_layers] + [n for n, _ in config.style_layers]
    return vgg.feature_model(layers, config.network, config.vgg_weights, config.pooling,
                             dtype=vgg.dtype_policy(config.precision))


def scale_sizes(shape: tuple[int, int], max_dim: int, scales: tuple[int, ...],
                min_side: int = 1) -> list[tuple[int, int]]:
    """(H, W) of each scale: the coarse `scales` below `max_dim`, then `max_dim` itself; no
    side below `min_side` (`vgg.min_side`: a thin image is optimised a little wider and the
    result resized to its own shape)."""
    h, w = shape
    dims = sorted({d for d in scales if d < max_dim}) + [max_dim]
    return [(max(min_side, round(h * d / max(h, w))), max(min_side, round(w * d / max(h, w))))
            for d in dims]


def min_side(config: "OptimizeConfig") -> int:
    """The smallest image side the feature layers of `config` need (`vgg.min_side`)."""
    layers = [n for n, _ in config.content_layers] + [n for n, _ in config.style_layers]
    return vgg.min_side(layers, config.network)


class Problem:
    """The loss of one scale: content/style targets computed once, a compiled loss and gradient."""

    gram = staticmethod(losses.gram_matrix)  # (B, H, W, C) features, mask -> (B, C, C) float32.
    total_variation = staticmethod(losses.total_variation)  # (B, H, W, 3) image -> scalar.

    def __init__(self, model: keras.Model, config: OptimizeConfig, content: np.ndarray,
                 styles: list[np.ndarray], style_weights: list[float],
                 masks: list[np.ndarray] | None = None,
                 temporal: tuple[np.ndarray, np.ndarray] | None = None):
        """Computes the targets.

        Args:
          model: from `feature_model_for(config)`.
          config: the engine settings.
          content: (H, W, 3) content at this scale's size.
          styles: (h, w, 3) style images at their size for this scale.
          style_weights: blend weights, one per style, summing to 1.
          masks: optional (H, W) masks in [0, 1], one per style.
          temporal: for a clip's frame, (warped, mask): the previous result warped onto this
            frame (H, W, 3) and where that is reliable (H, W); adds `temporal_loss`.
        """
        self.model, self.config = model, config
        self.temporal = None if temporal is None else (
            tf.constant(temporal[0][None], tf.float32), tf.constant(temporal[1][None, ..., None], tf.float32))
        self.content_layer_weights = dict(config.content_layers)
        self.style_layer_weights = dict(config.style_layers)
        self.style_weights = [float(w) for w in style_weights]
        features = model(content[None])
        self.content_targets = {n: features[n] for n in self.content_layer_weights}
        grams = [self._grams(model(s[None])) for s in styles]  # Per style: {layer: (1, C, C)}.
        if masks is None:
            # Blending Gram targets is equivalent to blending style losses, at a single loss cost.
            self.style_targets = [{n: sum(w * g[n] for w, g in zip(self.style_weights, grams))
                                   for n in self.style_layer_weights}]
            self.layer_masks = None
        else:
            self.style_targets = grams
            self.layer_masks = [{n: tf.image.resize(m[None, :, :, None], tf.shape(features[n])[1:3],
                                                    antialias=True)
                                 for n in self.style_layer_weights} for m in masks]

    def _grams(self, features, masks=None):
        return {n: self.gram(features[n], None if masks is None else masks[n])
                for n in self.style_layer_weights}

    def losses(self, image):
        """Total loss and its named parts for (1, H, W, 3) `image`."""
        c = self.config
        features = self.model(image)
        content, parts = losses.content_loss(features, self.content_targets, self.content_layer_weights)
        style = 0.0
        if self.layer_masks is None:
            style, style_parts = losses.style_loss(self._grams(features), self.style_targets[0],
                                                   self.style_layer_weights)
            parts.update(style_parts)
        else:
            for i, (targets, masks) in enumerate(zip(self.style_targets, self.layer_masks)):
                value, _ = losses.style_loss(self._grams(features, masks), targets,
                                             self.style_layer_weights)
                parts[f"style/mask{i}"] = value
                style += self.style_weights[i] * value
        tv = self.total_variation(image)
        parts.update({"content": content, "style": style, "tv": tv})
        total = c.content_weight * content + c.style_weight * style + c.tv_weight * tv
        if self.temporal is not None:
            parts["temporal"] = losses.temporal_loss(image, *self.temporal)
            total += c.temporal_weight * parts["temporal"]
        return total, parts

    @tf.function(reduce_retracing=True)
    def value_and_grad(self, image):
        """(loss, parts, d loss / d image) for (1, H, W, 3) `image`."""
        with tf.GradientTape() as tape:
            tape.watch(image)
            loss, parts = self.losses(image)
        return loss, parts, tape.gradient(loss, image)

    @tf.function(reduce_retracing=True)
    def adam_step(self, image: tf.Variable, optimizer: keras.optimizers.Optimizer):
        """One Adam update of `image`, kept in [0, 1]; returns the loss before it and its parts."""
        loss, parts, grad = self.value_and_grad(tf.convert_to_tensor(image))
        optimizer.apply_gradients([(grad, image)])
        image.assign(tf.clip_by_value(image, 0.0, 1.0))
        return loss, parts


def initial_image(config: OptimizeConfig, content: np.ndarray, style: np.ndarray) -> np.ndarray:
    """The starting image at the content's size, from `config.init`."""
    if config.init == "content":
        return content
    if config.init == "noise":
        rng = np.random.default_rng(config.seed)
        return rng.uniform(0, 1, content.shape).astype(np.float32)
    size = content.shape[:2]
    if config.init == "style":
        return images.resize(style, size=size)
    return images.resize(images.load_image(config.init), size=size)


def optimize(content: np.ndarray, styles: list[np.ndarray], config: OptimizeConfig,
             max_dim: int, style_weights: list[float] | None = None,
             masks: list[np.ndarray] | None = None, model: keras.Model | None = None,
             callback: Callable[[Step], bool | None] | None = None,
             init_image: np.ndarray | None = None, resume: Resume | None = None,
             temporal: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """Stylizes `content` by optimisation over coarse-to-fine scales.

    Args:
      content: (H, W, 3) content image in [0, 1], any size (resized per scale).
      styles: (h, w, 3) style images.
      config: engine settings.
      max_dim: longest side of the result.
      style_weights: blend weights, one per style (default equal); normalised to sum 1.
      masks: optional (H, W) masks in [0, 1] (white = that style applies), one per style.
      model: a feature model from `feature_model_for(config)` to reuse across images.
      callback: called with a `Step` after each iteration; returning True stops early.
      init_image: start from this (H, W, 3) image instead of `config.init` (any size).
      resume: continue from this state (from `Step.resume()` of an interrupted run with the
        same inputs and config). Adam continues exactly; L-BFGS keeps the image and step
        count but rebuilds its curvature memory.
      temporal: for a clip's frame, the previous result warped onto it and where that is
        reliable, (H, W, 3) and (H, W) (see `Problem`).

    Returns:
      (H', W', 3) float32 image in [0, 1] with longest side `max_dim`, also when `callback`
      stops it during a coarse scale (that scale's image, upsampled; `Step.resume()` keeps
      the coarse one to continue from).
    """
    if style_weights is None:
        style_weights = [1.0] * len(styles)
    if len(style_weights) != len(styles) or (masks is not None and len(masks) != len(styles)):
        raise StyleError(f"{len(styles)} styles need as many style weights and masks")
    if min(style_weights) < 0 or sum(style_weights) <= 0:
        raise StyleError("style weights must be >= 0 with a positive sum")
    style_weights = [w / sum(style_weights) for w in style_weights]
    keras.utils.set_random_seed(config.seed)
    model, model32 = model or feature_model_for(config), None
    sizes = scale_sizes(content.shape[:2], max_dim, config.scales, min_side(config))
    if resume is not None and (resume.scale >= len(sizes) or resume.image.shape[:2] != sizes[resume.scale]):
        raise StyleError("the saved state does not match these inputs and settings")
    if resume is None:
        first = images.resize(content, size=sizes[0])
        image = initial_image(config, first, styles[0]) if init_image is None else init_image
        resume = Resume(0, 0, 0, images.resize(image, size=sizes[0]))
    for index in range(resume.scale, len(sizes)):
        size = sizes[index]
        scaled_content = images.resize(content, size=size)
        scaled_styles = [style_at(s, size, config) for s in styles]
        scaled_masks = None if masks is None else [images.resize(m[..., None], size=size)[..., 0]
                                                   for m in masks]
        scaled_temporal = None if temporal is None else (
            images.resize(temporal[0], size=size), images.resize(temporal[1][..., None], size=size)[..., 0])
        problem = Problem(model, config, scaled_content, scaled_styles, style_weights, scaled_masks,
                          scaled_temporal)
        if config.optimizer == "adam" or resume.adam is not None:  # (also L-BFGS's tail, resumed)
            image, total_step, stop = _adam(problem, config, resume, size, callback)
        else:
            last = min(config.steps, config.adam_after or config.steps)  # L-BFGS's last step here.
            image, total_step, stop, squares = _lbfgs(problem, config, resume, last, size, callback)
            done = resume.step + total_step - resume.total_step
            if not stop and done < last and vgg.dtype_policy(config.precision):
                # Its line search gave up, even allowing for bfloat16's rounding of the loss
                # (`lbfgs.NOISE`): float32 goes on (benchmarks/RESULTS.md, "Optimize engine").
                logging.info("L-BFGS goes on in float32 from step %d", total_step)
                exact = dataclasses.replace(config, precision="float32")
                model32 = model32 or feature_model_for(exact)
                problem = Problem(model32, exact, scaled_content, scaled_styles, style_weights,
                                  scaled_masks, scaled_temporal)
                restart = Resume(index, done, total_step, image)
                image, total_step, stop, squares = _lbfgs(problem, exact, restart, last, size, callback)
            done = resume.step + total_step - resume.total_step
            if not stop and done < config.steps:  # The tail: Adam, warmed (benchmarks/RESULTS.md).
                logging.info("Adam goes on from step %d", total_step)
                warm = Resume(index, done, total_step, image, warm_adam(squares, config.learning_rate))
                image, total_step, stop = _adam(problem, config, warm, size, callback)
        if stop:  # The caller asked to stop (an interrupt): it says so, not "done".
            return images.resize(image, size=sizes[-1])  # A coarse scale's image, at full size.
        logging.info("scale %d (%dx%d) done after %d steps", index, size[1], size[0], total_step)
        if index + 1 == len(sizes):
            return image
        resume = Resume(index + 1, 0, total_step, images.resize(image, size=sizes[index + 1]))
    return resume.image  # Resumed after the last step of the last scale.


def style_at(style: np.ndarray, size: tuple[int, int], config: OptimizeConfig) -> np.ndarray:
    """The style image as the loss sees it for an output of `size`: longest side
    `style_scale` times the output's (scaled up or down)."""
    style = images.resize(style, max_dim=max(1, round(config.style_scale * max(size))))
    return images.at_least(style, min_side(config))


class NonFiniteLoss(StyleError):
    """The loss or the image became NaN or Inf and lowering the step did not help.

    Attributes:
      image: the last finite image (at the scale it was reached), or None when no step
        finished.
      step: the steps finished over all scales when it was reached.
    """

    def __init__(self, message: str, image: np.ndarray | None = None, step: int = 0):
        super().__init__(message)
        self.image, self.step = image, step


def _adam(problem, config, start: Resume, size, callback):
    """Adam with the tutorial's betas from `start`; on a non-finite loss, restores the last
    finite image and halves the learning rate (at most 5 times)."""
    variable = tf.Variable(start.image[None])
    lr = config.learning_rate
    optimizer = _adam_optimizer(lr, variable)
    if start.adam is not None:
        for var, value in zip(optimizer.variables, start.adam):
            var.assign(value)
    last_good, halvings, step, total_step = start.image, 0, start.step, start.total_step
    while step < config.steps:
        loss, parts = problem.adam_step(variable, optimizer)
        image = variable.numpy()[0]
        if not (np.isfinite(float(loss)) and np.isfinite(image).all()):  # Checked every step.
            halvings += 1
            if halvings > 5:
                raise NonFiniteLoss(
                    f"loss is not finite at step {total_step + 1} even at learning rate {lr:g}; "
                    "lower --learning_rate or the loss weights",
                    last_good if total_step > 0 else None, total_step)
            lr /= 2
            logging.warning("non-finite loss at step %d: back to the last finite image, "
                            "learning rate %g", total_step + 1, lr)
            variable.assign(last_good[None])
            optimizer = _adam_optimizer(lr, variable)
            continue
        step += 1
        total_step += 1
        last_good = image
        state = Resume(start.scale, step, total_step, last_good, [v.numpy() for v in optimizer.variables])
        if _report(callback, state, size, loss, parts):
            return last_good, total_step, True
    return variable.numpy()[0], total_step, False


def _report(callback, state: Resume, size, loss, parts) -> bool:
    if callback is None:
        return False
    parts = {k: float(v) for k, v in parts.items()}
    return bool(callback(Step(state.scale, size, state.step, state.total_step, float(loss), parts,
                              lambda: state.image, lambda: state)))


def _adam_optimizer(lr: float, variable: tf.Variable) -> keras.optimizers.Optimizer:
    optimizer = keras.optimizers.Adam(learning_rate=lr, beta_1=0.99, epsilon=0.1)
    optimizer.build([variable])  # Slots are created here, not inside the tf.function.
    return optimizer


def warm_adam(squares: np.ndarray, lr: float) -> list[np.ndarray]:
    """Adam's variables (as `Resume.adam`) for a start in the middle of a run: no momentum yet,
    the squared gradients L-BFGS saw as its second moments, bias corrections spent (a fresh
    Adam moves every pixel by the full step at once and undoes L-BFGS's work)."""
    return [np.array(10**6, np.int64), np.array(lr, np.float32), np.zeros_like(squares), squares]


def _lbfgs(problem, config, start: Resume, last: int, size, callback):
    """Projected L-BFGS (`lbfgs.Minimizer`) from `start` to the scale's step `last`. A failed
    line search drops the memory and tries the plain gradient; when that fails too the scale
    ends (in bfloat16, `optimize` then goes on in float32). Also returns the mean squared
    gradient of its last 100 or so steps, (1, H, W, 3), which warms Adam's moments after it."""
    shape = (1,) + start.image.shape
    if start.step >= last:
        return start.image, start.total_step, False, np.zeros(shape, np.float32)

    def fun(x):  # x: flat float32 -> (loss, parts, flat float32 gradient)
        loss, parts, grad = problem.value_and_grad(tf.constant(x.reshape(shape)))
        return float(loss), parts, grad.numpy().ravel()

    solver = lbfgs.Minimizer(fun, start.image.ravel(), lbfgs.memory_size(shape[1] * shape[2]),
                             lbfgs.NOISE[vgg.dtype_policy(config.precision)])
    if not (np.isfinite(solver.f) and np.isfinite(solver.g).all()):
        raise NonFiniteLoss(f"loss is not finite at step {start.total_step + 1}; lower the loss "
                            "weights", start.image if start.total_step > 0 else None,
                            start.total_step)
    step, total_step = start.step, start.total_step
    squares, seen = np.zeros_like(solver.g), 0  # Averaged as Adam would, over the last 100 steps.
    while step < last:
        if not solver.step():
            logging.info("L-BFGS stopped at step %d: no descent along the gradient", total_step)
            break
        step += 1
        total_step += 1
        if step > last - 100:
            squares, seen = 0.99 * squares + 0.01 * np.square(solver.g), seen + 1
        state = Resume(start.scale, step, total_step, solver.x.reshape(start.image.shape))
        if _report(callback, state, size, solver.f, solver.parts):
            return state.image, total_step, True, None
    squares = squares / (1.0 - 0.99**seen) if seen else squares  # Adam's bias correction.
    return solver.x.reshape(start.image.shape), total_step, False, squares.reshape(shape)


# --- the engine as `stylize` calls it: progress, logs, snapshots, resume, loss plot ---------


class Engine:
    """The optimisation engine over many images: the feature model built once; per image a
    progress bar, log lines, snapshots and a saved state (`<output>.resume.npz`) to resume
    from, and a loss plot."""

    Config = OptimizeConfig

    def __init__(self, config: OptimizeConfig):
        self.config = config
        self.model = feature_model_for(config)

    def skip(self, output: Path) -> bool:
        """With `resume`, a folder run skips outputs that are written and left no state."""
        return self.config.resume and output.exists() and not state_path(output).exists()

    def __call__(self, content, styles, weights, masks, job) -> np.ndarray:
        """(H, W, 3) `content` optimised (see `optimize`); stops with the image so far when
        `job.stop.requested` turns True, saving the state to resume from.

        A clip's frame with a prior (`job.clip.prior`, --temporal=flow) starts from the previous
        result warped onto it, adds the temporal loss, and runs `video_steps` at full size."""
        c, out = self.config, job.output
        prior = job.clip.prior if job.clip is not None else None
        if prior is not None:
            c = dataclasses.replace(c, scales=(), steps=c.video_steps)
        sizes = scale_sizes(content.shape[:2], max(content.shape[:2]), c.scales, min_side(c))
        state = state_path(out)
        key = _fingerprint(c, content, styles, weights, masks)
        start = load_resume(state, key) if c.resume and (job.single or state.exists()) else None
        if start is not None:
            logging.info("resuming %s from step %d (scale %dx%d)", out, start.total_step,
                         start.image.shape[1], start.image.shape[0])
        bar = tqdm(total=c.steps * len(sizes), desc=out.name, unit="step",
                   initial=start.total_step if start else 0,
                   disable=None if job.progress else True)  # None: off when not a terminal.
        history = []  # (step, loss)

        def callback(step: Step) -> bool:
            bar.update(1)
            bar.set_postfix(loss=f"{step.loss:.4g}", scale=f"{step.size[1]}x{step.size[0]}")
            history.append((step.total_step, step.loss))
            if c.log_every and step.total_step % c.log_every == 0:
                logging.info("step %d loss %.5g (%s)", step.total_step, step.loss,
                             ", ".join(f"{k} {v:.4g}" for k, v in step.parts.items() if "/" not in k))
            if c.save_every and step.total_step % c.save_every == 0:
                images.save_image(_sibling(out, f"_{step.total_step:05d}"), step.image())
                save_resume(state, key, step.resume())
            if job.on_step is not None:
                job.on_step(step)
            if job.stop.requested:
                save_resume(state, key, step.resume())
                logging.warning("interrupted at step %d: saved the current image and %s "
                                "(continue with --resume)", step.total_step, state)
            return job.stop.requested

        try:
            image = optimize(content, styles, c, max(content.shape[:2]), weights, masks,
                             model=self.model, callback=callback, resume=start,
                             init_image=None if prior is None else prior.warped,
                             temporal=None if prior is None else (prior.warped, prior.mask))
        finally:
            bar.close()
        if not job.stop.requested and state.exists():
            state.unlink()  # Finished: nothing left to resume.
        if c.plot and history:
            plot_loss(history, _sibling(out, "_loss", ".png"))
        return image


def state_path(out_path: Path) -> Path:
    """Where an interrupted optimisation of `out_path` keeps its state."""
    return out_path.with_name(out_path.name + ".resume.npz")


def _fingerprint(config: OptimizeConfig, content, styles, weights, masks) -> str:
    """Identifies the inputs and settings a saved state belongs to."""
    digest = hashlib.sha256(repr((config.fingerprint(), weights)).encode())
    for array in [content, *styles, *(masks or [])]:
        digest.update(np.ascontiguousarray(array, np.float32).tobytes())
    return digest.hexdigest()


def save_resume(path: Path, key: str, state: Resume) -> None:
    """Writes the state atomically (an interrupted write leaves the previous state)."""
    adam = {f"adam{i}": v for i, v in enumerate(state.adam or [])}
    with images.atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, key=key, position=np.array([state.scale, state.step, state.total_step]),
                 image=state.image, **adam)


def load_resume(path: Path, key: str) -> Resume:
    """Reads a state written by `save_resume` for the same inputs and settings."""
    if not path.is_file():
        raise StyleError(f"{path}: nothing to resume (no saved state for this output)")
    try:
        with np.load(path) as data:
            if str(data["key"]) != key:
                raise StyleError(f"{path}: saved for other inputs or settings; run without --resume")
            scale, step, total = (int(v) for v in data["position"])
            adam = [data[f"adam{i}"] for i in range(sum(k.startswith("adam") for k in data.files))]
            return Resume(scale, step, total, data["image"], adam or None)
    except (OSError, ValueError, KeyError) as e:
        raise StyleError(f"{path}: unreadable saved state ({e})") from None


def _sibling(path: Path, tag: str, suffix: str | None = None) -> Path:
    return path.with_name(f"{path.stem}{tag}{suffix or path.suffix}")


def plot_loss(history: list[tuple[int, float]], path: Path) -> None:
    """Writes a loss-curve PNG (log scale) of (step, loss) pairs atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps, values = zip(*history)
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    ax.plot(steps, values)
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("total loss")
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    with images.atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
