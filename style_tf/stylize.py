"""The library face: one call that takes a config, picks the engine, handles files and folders.

`run.py`, `sheet.py` and the tests all go through `stylize()`. It loads the inputs (failing
before any work on bad ones), builds the feature model once, runs the engine per content
image with a progress bar, writes snapshots and a loss plot if asked, and saves every output
atomically. Ctrl-C or SIGTERM during an optimisation stops within one step and saves the
current image.
"""

import collections
import dataclasses
import functools
import hashlib
import os
import signal
import time
from pathlib import Path

import numpy as np
from absl import logging
from tqdm import tqdm

from style_tf import adain, images, optimize, paths, vgg
from style_tf.errors import StyleError
from style_tf.optimize import OptimizeConfig

MIN_USEFUL_SIDE = 16  # Contents thinner than this are stylized (enlarged for the network), with a warning.


@dataclasses.dataclass(frozen=True)
class AdainConfig:
    """Settings of the AdaIN engine."""

    alpha: float = 1.0  # 0 = content only, 1 = full style.
    decoder_weights: str = "bundled"  # "bundled" (models/adain_decoder.weights.h5) or a path.
    precision: str = "auto"  # "auto" (bfloat16 on AMX/AVX512-BF16 CPUs), "bfloat16" or "float32".
    face_size: int = 480  # Faces below 0.8x this (px) are stylized again enlarged to it; 0 = off.

    def __post_init__(self):
        if not 0.0 <= self.alpha <= 1.0:
            raise StyleError(f"alpha must be in 0..1, got {self.alpha}")
        if self.face_size < 0:
            raise StyleError(f"face_size must be >= 0, got {self.face_size}")
        vgg.dtype_policy(self.precision)


@dataclasses.dataclass(frozen=True)
class StylizeConfig:
    """What to stylize, with which engine, and where to write."""

    content: str = str(paths.EXAMPLE_CONTENT)  # Image file or folder.
    styles: tuple[str, ...] = (str(paths.EXAMPLE_STYLE),)
    style_weights: tuple[float, ...] = ()  # Blend weights, one per style (default equal).
    style_masks: tuple[str, ...] = ()  # One mask image per style; white = that style applies.
    output: str = "stylized.png"  # File, or folder when `content` is a folder.
    method: str = "adain"  # "adain" (one forward pass) or "optimize" (Gatys: slower, finer).
    max_dim: int = 512  # Longest side of the output (smaller contents keep their size).
    preserve_color: str = "none"  # "none", "luminance" or "histogram".
    log_every: int = 50  # Steps between log lines (optimize).
    save_every: int = 0  # Steps between snapshot images (optimize; 0 = none).
    plot: bool = False  # Write <output>_loss.png (optimize).
    resume: bool = False  # Continue from <output>.resume.npz, left by an interrupted run.
    progress: bool = True  # Progress bar on stderr.
    optimize: OptimizeConfig = OptimizeConfig()
    adain: AdainConfig = AdainConfig()

    def __post_init__(self):
        if self.method not in ("optimize", "adain"):
            raise StyleError(f"unknown method {self.method!r} (use optimize or adain)")
        if self.preserve_color not in ("none", "luminance", "histogram"):
            raise StyleError(f"unknown preserve_color {self.preserve_color!r} "
                             "(use none, luminance or histogram)")
        if not self.styles:
            raise StyleError("at least one style image is needed")
        if self.style_weights and len(self.style_weights) != len(self.styles):
            raise StyleError(f"{len(self.styles)} styles but {len(self.style_weights)} style weights")
        if self.style_masks and len(self.style_masks) != len(self.styles):
            raise StyleError(f"{len(self.styles)} styles but {len(self.style_masks)} style masks")
        if self.max_dim < 16:
            raise StyleError(f"max_dim must be >= 16, got {self.max_dim}")
        if self.log_every < 0 or self.save_every < 0:
            raise StyleError("log_every and save_every must be >= 0")


@dataclasses.dataclass
class Result:
    """What a `stylize()` call wrote, and what it could not do."""

    written: list[Path] = dataclasses.field(default_factory=list)
    failed: list[tuple[Path, str]] = dataclasses.field(default_factory=list)
    interrupted: bool = False
    seconds: float = 0.0
    history: list[tuple[int, float, float]] = dataclasses.field(default_factory=list)  # (step, s, loss)


def output_jobs(config: StylizeConfig) -> list[tuple[Path, Path]]:
    """(content file, output file) pairs; checks paths before any work is done.

    Raises:
      StyleError: a missing content, an output folder that is missing or not writable, an
        unknown output suffix, or an output that would overwrite one of the inputs.
    """
    jobs = _jobs(config)
    inputs = {Path(p).resolve() for p in [*config.styles, *config.style_masks]}
    inputs |= {c.resolve() for c, _ in jobs}
    for _, out in jobs:
        if out.resolve() in inputs:
            raise StyleError(f"{out}: the output would overwrite an input image; choose another --output")
    return jobs


def _jobs(config: StylizeConfig) -> list[tuple[Path, Path]]:
    content = Path(config.content)
    if content.is_dir():
        out_dir = Path(config.output)
        if out_dir.suffix.lower() in (".png", ".jpg", ".jpeg") and not out_dir.is_dir():
            raise StyleError(f"--content is a folder, so --output must be a folder, not {out_dir}")
        if not out_dir.parent.is_dir():
            raise StyleError(f"{out_dir.parent}: output folder does not exist")
        files = images.list_images(content)
        if not files:
            raise StyleError(f"{content}: folder holds no files")
        out_dir.mkdir(exist_ok=True)
        stems = collections.Counter(f.stem for f in files)  # a.jpg and a.png: a_jpg.png, a_png.png.
        return [(f, out_dir / (f"{f.stem}.png" if stems[f.stem] == 1 else
                               f"{f.stem}_{f.suffix.lstrip('.').lower()}.png")) for f in files]
    if not content.exists():
        raise StyleError(f"{content}: no such file or folder")
    out = Path(config.output)
    if out.is_dir():
        out = out / f"{content.stem}.png"
    if out.suffix.lower() not in (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff"):
        raise StyleError(f"{out}: output must end in .png, .jpg, .webp, .bmp or .tif")
    if not out.parent.is_dir():
        raise StyleError(f"{out.parent}: output folder does not exist")
    if not os.access(out.parent, os.W_OK):
        raise StyleError(f"{out.parent}: output folder is not writable")
    return [(content, out)]


class _Interrupt:
    """SIGINT/SIGTERM set a flag the engines poll each step; a second signal aborts."""

    def __init__(self):
        self.requested = False
        self._old = {}

    def __enter__(self):
        for s in (signal.SIGINT, signal.SIGTERM):
            self._old[s] = signal.signal(s, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc):
        for s, handler in self._old.items():
            signal.signal(s, handler)


def stylize(config: StylizeConfig) -> Result:
    """Stylizes `config.content` (file or folder) with `config.styles`.

    Returns:
      A `Result` with the written files and the files that failed (folder runs skip bad
      files and go on).

    Raises:
      StyleError: bad styles, masks, flags or output paths (nothing is written), or a bad
        content file in a single-file run.
    """
    start = time.time()
    jobs = output_jobs(config)
    style_dim = round(config.max_dim * max(1.0, config.optimize.style_scale))
    styles = [images.load_image(s, max_dim=style_dim) for s in config.styles]
    masks = [_load_mask(m) for m in config.style_masks] or None
    single = len(jobs) == 1 and not Path(config.content).is_dir()
    loaded = {}
    if single:  # A bad content file fails before any model is built.
        loaded[jobs[0][0]] = images.load_image(jobs[0][0], max_dim=config.max_dim)
    engine = _Engine(config)
    result = Result()
    engine.strict_resume = single  # A folder run resumes the files that have a state.
    with _Interrupt() as interrupt:
        for content_path, out_path in jobs:
            if config.resume and not single and out_path.exists() and not state_path(out_path).exists():
                logging.info("%s: already done", out_path)
                continue
            try:
                content = loaded.pop(content_path, None)
                if content is None:
                    content = images.load_image(content_path, max_dim=config.max_dim)
                if min(content.shape[:2]) < MIN_USEFUL_SIDE:
                    logging.warning("%s: only %dx%d px, too small to show a style; stylized anyway",
                                    content_path, content.shape[1], content.shape[0])
                image = engine.run(content, styles, masks, out_path, interrupt, result)
            except StyleError as e:
                last = getattr(e, "image", None)  # NonFiniteLoss: the last finite image, if any.
                if single and last is None:
                    raise  # Nothing written.
                why = str(e)
                if last is not None:
                    last = images.resize(last, size=content.shape[:2])  # A coarse scale's, upsampled.
                    images.save_image(out_path, _finish(config, last, content))
                    why += f"; saved the last finite image (step {e.step}) to {out_path}"
                # Said once, here, as it happens; entry points only count the failures.
                logging.error("%s", why if str(content_path) in why else f"{content_path}: {why}")
                result.failed.append((content_path, why))
                continue
            images.save_image(out_path, image)
            result.written.append(out_path)
            if interrupt.requested:
                result.interrupted = True
                break
    result.seconds = time.time() - start
    return result


def _load_mask(path: str) -> np.ndarray:
    """A mask image as (H, W) float32 in [0, 1] (mean of its RGB)."""
    return images.load_image(path).mean(axis=-1)


def _prepare_styles(config: StylizeConfig, content: np.ndarray, styles: list[np.ndarray]):
    if config.preserve_color == "histogram":
        return [images.match_color(s, content) for s in styles]
    return styles


def _finish(config: StylizeConfig, image: np.ndarray, content: np.ndarray) -> np.ndarray:
    if config.preserve_color == "luminance":
        return images.keep_luminance(image, images.resize(content, size=image.shape[:2]))
    return image


class _Engine:
    """Builds the engine's models once and stylizes one content image at a time."""

    def __init__(self, config: StylizeConfig):
        self.config = config
        self.strict_resume = True  # --resume without a saved state is an error.
        if config.method == "optimize":
            self.model = optimize.feature_model_for(config.optimize)
        else:
            a = config.adain
            path = adain.decoder_path(a.decoder_weights)
            stamp = (path.stat().st_mtime_ns, path.stat().st_size)
            self.stylizer = _stylizer(a.decoder_weights, a.precision, stamp)

    def run(self, content, styles, masks, out_path: Path, interrupt: _Interrupt, result: Result):
        styles = _prepare_styles(self.config, content, styles)
        weights = list(self.config.style_weights) or None
        if masks is not None:
            masks = [images.resize(m[..., None], size=content.shape[:2])[..., 0] for m in masks]
        if self.config.method == "adain":
            a = self.config.adain
            image = self.stylizer(content, styles, weights, a.alpha, masks, a.face_size)
        else:
            image = self._optimize(content, styles, weights, masks, out_path, interrupt, result)
        if image.shape[:2] != content.shape[:2]:  # A thin image optimised wider (vgg.min_side).
            image = images.resize(image, size=content.shape[:2])
        return _finish(self.config, image, content)

    def _optimize(self, content, styles, weights, masks, out_path, interrupt, result):
        c = self.config
        max_dim = max(content.shape[:2])
        sizes = optimize.scale_sizes(content.shape[:2], max_dim, c.optimize.scales)
        state = state_path(out_path)
        key = _fingerprint(c, content, styles, weights, masks)
        start = load_resume(state, key) if c.resume and (self.strict_resume or state.exists()) else None
        if start is not None:
            logging.info("resuming %s from step %d (scale %dx%d)", out_path, start.total_step,
                         start.image.shape[1], start.image.shape[0])
        bar = tqdm(total=c.optimize.steps * len(sizes), desc=out_path.name, unit="step",
                   initial=start.total_step if start else 0,
                   disable=None if c.progress else True)  # None: off when not a terminal.
        t0 = time.time()
        history = []

        def callback(step: optimize.Step) -> bool:
            bar.update(1)
            bar.set_postfix(loss=f"{step.loss:.4g}", scale=f"{step.size[1]}x{step.size[0]}")
            history.append((step.total_step, time.time() - t0, step.loss))
            if c.log_every and step.total_step % c.log_every == 0:
                logging.info("step %d loss %.5g (%s)", step.total_step, step.loss,
                             ", ".join(f"{k} {v:.4g}" for k, v in step.parts.items()
                                       if "/" not in k))
            if c.save_every and step.total_step % c.save_every == 0:
                images.save_image(_sibling(out_path, f"_{step.total_step:05d}"), step.image())
                save_resume(state, key, step.resume())
            if interrupt.requested:
                save_resume(state, key, step.resume())
                logging.warning("interrupted at step %d: saved the current image and %s "
                                "(continue with --resume)", step.total_step, state)
            return interrupt.requested

        try:
            image = optimize.optimize(content, styles, c.optimize, max_dim, weights, masks,
                                      model=self.model, callback=callback, resume=start)
        finally:
            bar.close()
        if not interrupt.requested and state.exists():
            state.unlink()  # Finished: nothing left to resume.
        result.history = history
        if c.plot and history:
            plot_loss(history, _sibling(out_path, "_loss", ".png"))
        return image


@functools.lru_cache(maxsize=1)
def _stylizer(decoder_weights: str, precision: str, stamp) -> adain.Stylizer:
    """The AdaIN models, kept for the next call with the same decoder file (`stamp`: its
    mtime and size, so a retrained decoder is reloaded): a contact sheet's cells share one."""
    del stamp  # Part of the cache key only.
    return adain.Stylizer.load(decoder_weights, precision)


def state_path(out_path: Path) -> Path:
    """Where an interrupted optimisation of `out_path` keeps its state."""
    return out_path.with_name(out_path.name + ".resume.npz")


def _fingerprint(config: StylizeConfig, content, styles, weights, masks) -> str:
    """Identifies the inputs and settings a saved state belongs to."""
    digest = hashlib.sha256(repr((config.optimize, config.preserve_color, weights)).encode())
    for array in [content, *styles, *(masks or [])]:
        digest.update(np.ascontiguousarray(array, np.float32).tobytes())
    return digest.hexdigest()


def save_resume(path: Path, key: str, state: optimize.Resume) -> None:
    """Writes the state atomically (an interrupted write leaves the previous state)."""
    adam = {f"adam{i}": v for i, v in enumerate(state.adam or [])}
    with images.atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, key=key, position=np.array([state.scale, state.step, state.total_step]),
                 image=state.image, **adam)


def load_resume(path: Path, key: str) -> optimize.Resume:
    """Reads a state written by `save_resume` for the same inputs and settings."""
    if not path.is_file():
        raise StyleError(f"{path}: nothing to resume (no saved state for this output)")
    try:
        with np.load(path) as data:
            if str(data["key"]) != key:
                raise StyleError(f"{path}: saved for other inputs or settings; run without --resume")
            scale, step, total = (int(v) for v in data["position"])
            adam = [data[f"adam{i}"] for i in range(sum(k.startswith("adam") for k in data.files))]
            return optimize.Resume(scale, step, total, data["image"], adam or None)
    except (OSError, ValueError, KeyError) as e:
        raise StyleError(f"{path}: unreadable saved state ({e})") from None


def _sibling(path: Path, tag: str, suffix: str | None = None) -> Path:
    return path.with_name(f"{path.stem}{tag}{suffix or path.suffix}")


def plot_loss(history: list[tuple[int, float, float]], path: Path) -> None:
    """Writes a loss-curve PNG (log scale) atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps, _, values = zip(*history)
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
