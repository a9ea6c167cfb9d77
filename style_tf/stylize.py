"""The library face: lists the files, loads them, calls an engine, saves.

`run.py`, `sheet.py` and the tests all go through `stylize()`. It checks the paths and loads
the inputs before any work (a bad one fails with nothing written), builds the engine chosen
from `ENGINES` once, hands it each content image, and saves every output atomically.
Ctrl-C or SIGTERM stops the engine at its next step with the current image saved.

A clip (`video.is_clip`) with an output named like one (`video.FORMATS`) is stylized frame
by frame, streamed: `video.py` reads, writes, and follows the motion; each frame goes to the
engine with a `video.ClipFrame` in its `Job`, which an engine uses to keep the clip steady.

An engine is a class with
  - `Config`: its frozen settings dataclass (every field a flag, see `style_tf.cli`), with
    `style_dim(max_dim)`, the longest side to load style images at, and `fingerprint()`,
    what identifies its results (settings, model files, the precision "auto" chose);
  - `__init__(config)`: loads its models and resolves its precision once;
  - `skip(output)`: whether a folder run may skip an output as already done;
  - `__call__(content, styles, weights, masks, job) -> (H', W', 3) image`, where `job` is a
    `Job` (where the result goes, whether to stop, and for a clip's frame its `ClipFrame`).
"""

import collections
import dataclasses
import os
import signal
import time
from pathlib import Path
from typing import Callable

import numpy as np
from absl import logging
from tqdm import tqdm

from style_tf import images, optimize, paths, student, stylizer, video
from style_tf.errors import StyleError

# The engines `--method` chooses from: name -> engine class.
ENGINES = {"adain": stylizer.Engine, "optimize": optimize.Engine, "mobile": student.Engine}
MIN_USEFUL_SIDE = 16  # Contents thinner than this are stylized (enlarged for the network), with a warning.


@dataclasses.dataclass(frozen=True)
class StylizeConfig:
    """What to stylize, with which engine, and where to write."""

    content: str = str(paths.EXAMPLE_CONTENT)  # Content image, or a folder of them.
    styles: tuple[str, ...] = dataclasses.field(  # Style image(s), comma-separated.
        default=(str(paths.EXAMPLE_STYLE),), metadata={"flag": "style"})
    style_weights: tuple[float, ...] = ()  # Blend weights, one per style (default: equal).
    style_masks: tuple[str, ...] = ()  # One mask image per style: white = where that style applies.
    output: str = "stylized.png"  # Output file (.png, .jpg, .webp, .bmp, .tif; for a clip .mp4, .webm,
    # .mov, .mkv, .avi or .gif), or a folder for a folder of contents (<name>.png each, <name>.mp4 for
    # clips; a.jpg and a.png become a_jpg.png and a_png.png).
    method: str = "adain"  # Engine: "adain" (one pass of a trained network, seconds), "optimize" (the
    # image optimised against VGG losses, minutes, finer) or "mobile" (the phone-class network, faster).
    max_dim: int = 512  # Longest side of the output (smaller images keep their size).
    preserve_color: str = "none"  # "luminance" (keep the content's colours), "histogram" (recolour the
    # styles to the content's palette first) or "none".
    progress: bool = True  # Progress bar on stderr (off when it is not a terminal).
    temporal: str = "flow"  # Clips: "flow" (each frame follows the previous result along the optical
    # flow; steady textures) or "none" (each frame stylized alone; flickers).
    start: float = 0.0  # Clips: seconds into the clip to start from.
    duration: float = 0.0  # Clips: seconds to stylize from --start (0: to the end).
    resume: bool = False  # Clips: continue an interrupted clip from <output>.partial.<ext> (either
    # engine). With --method=optimize, also an interrupted image (see its --resume).
    engine: object = dataclasses.field(  # The engine's settings, ENGINES[method].Config; None: defaults.
        default=None, metadata={"flag": None})

    def __post_init__(self):
        if self.method not in ENGINES:
            raise StyleError(f"unknown method {self.method!r} (use {' or '.join(ENGINES)})")
        wanted = ENGINES[self.method].Config
        if self.engine is None:
            object.__setattr__(self, "engine", wanted())
        elif not isinstance(self.engine, wanted):
            raise StyleError(f"method {self.method} takes {wanted.__name__}, "
                             f"not {type(self.engine).__name__}")
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
        if self.temporal not in ("flow", "none"):
            raise StyleError(f"unknown temporal {self.temporal!r} (use flow or none)")
        if self.start < 0 or self.duration < 0:
            raise StyleError(f"start and duration must be >= 0, got {self.start} and {self.duration}")


@dataclasses.dataclass
class Job:
    """What an engine is told about the image it is working on."""

    output: Path  # Where the result will be saved (engines keep their snapshots and state beside it).
    single: bool  # One content file (not a folder): a missing resume state is an error.
    progress: bool  # Show a progress bar.
    stop: "_Interrupt"  # `stop.requested` turns True on Ctrl-C/SIGTERM: return the image so far.
    clip: video.ClipFrame | None = None  # For a frame of a clip: its place and the previous result.
    on_step: Callable | None = None  # Called with each `optimize.Step` (the web app's live progress).


@dataclasses.dataclass
class Result:
    """What a `stylize()` call wrote, and what it could not do."""

    written: list[Path] = dataclasses.field(default_factory=list)
    failed: list[tuple[Path, str]] = dataclasses.field(default_factory=list)
    interrupted: bool = False
    seconds: float = 0.0


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
        return [(f, out_dir / ((f.stem if stems[f.stem] == 1 else f"{f.stem}_{f.suffix.lstrip('.').lower()}")
                               + (".mp4" if video.is_clip(f, animated_images=False) else ".png")))
                for f in files]
    if not content.exists():
        raise StyleError(f"{content}: no such file or folder")
    out = Path(config.output)
    if out.is_dir():
        out = out / f"{content.stem}{'.mp4' if video.is_clip(content, animated_images=False) else '.png'}"
    if video.is_video_name(out):
        if not video.is_clip(content):
            video.probe(content)  # Not a clip FFmpeg reads, or one without video: says which.
            raise StyleError(f"{out}: output must end in .png, .jpg, .webp, .bmp or .tif for an "
                             f"image ({content} is not a clip)")
    elif out.suffix.lower() not in (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff"):
        raise StyleError(f"{out}: output must end in .png, .jpg, .webp, .bmp or .tif "
                         f"(for a clip {', '.join(video.FORMATS)})")
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
    engine_class = ENGINES[config.method]
    single = len(jobs) == 1 and not Path(config.content).is_dir()
    loaded = {}
    if single and video.is_video_name(jobs[0][1]):  # A bad clip fails before any model is built.
        video.probe(jobs[0][0])
    elif single:  # A bad content file fails before any model is built.
        loaded[jobs[0][0]] = _load_content(jobs[0][0], config.max_dim)
    styles = [images.load_image(s, max_dim=config.engine.style_dim(config.max_dim)) for s in config.styles]
    masks = [_load_mask(m) for m in config.style_masks] or None
    engine = engine_class(config.engine)  # After the inputs: a bad one fails before the models load.
    result = Result()
    with _Interrupt() as interrupt:
        for content_path, out_path in jobs:
            if not single and engine.skip(out_path):
                logging.info("%s: already done", out_path)
                continue
            job = Job(out_path, single, config.progress, interrupt)
            if video.is_video_name(out_path):
                try:
                    if _stylize_clip(config, engine, content_path, styles, masks, job):
                        result.written.append(out_path)
                except StyleError as e:
                    if single:
                        raise
                    logging.error("%s", e if str(content_path) in str(e) else f"{content_path}: {e}")
                    result.failed.append((content_path, str(e)))
                if interrupt.requested:
                    result.interrupted = True
                    break
                continue
            try:
                content = loaded.pop(content_path, None)
                if content is None:
                    content = _load_content(content_path, config.max_dim)
                image = stylize_image(config, engine, content, styles, masks, job)
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


def stylize_image(config: StylizeConfig, engine, content: np.ndarray, styles: list[np.ndarray],
                  masks: list[np.ndarray] | None, job: Job) -> np.ndarray:
    """One content image through the engine, with the colour options around it.

    `stylize()` calls it for each file; the web app calls it with the images it was sent.

    Args:
      config: the settings (`content`, `styles` and `output` are not read here).
      engine: `ENGINES[config.method](config.engine)`.
      content: (H, W, 3) in [0, 1], at the size wanted.
      styles: (h, w, 3) style images, loaded at `config.engine.style_dim(...)`.
      masks: (h, w) masks, one per style, or None.
      job: where the result goes and whether to stop.

    Returns:
      (H, W, 3) float32 in [0, 1].
    """
    if min(content.shape[:2]) < MIN_USEFUL_SIDE:
        logging.warning("%s: only %dx%d px, too small to show a style; stylized anyway",
                        job.output, content.shape[1], content.shape[0])
    if config.preserve_color == "histogram":
        styles = [images.match_color(s, content) for s in styles]
    if masks is not None:
        masks = [images.resize(m[..., None], size=content.shape[:2])[..., 0] for m in masks]
    image = engine(content, styles, list(config.style_weights) or None, masks, job)
    if image.shape[:2] != content.shape[:2]:  # A thin image worked on wider (vgg.min_side).
        image = images.resize(image, size=content.shape[:2])
    return _finish(config, image, content)


def _load_content(path: Path, max_dim: int) -> np.ndarray:
    """An image, or the first frame of a clip (its output names an image)."""
    try:
        return images.load_image(path, max_dim=max_dim)
    except StyleError:
        if not video.is_clip(path):
            raise
        return video.first_frame(path, max_dim)


def _stylize_clip(config: StylizeConfig, engine, path: Path, styles, masks, job: Job) -> bool:
    """Stylizes the clip at `path` frame by frame into `job.output` (see `video.Writer`).

    Returns:
      Whether the clip was finished (False: interrupted, its frames so far in the partial file).

    Raises:
      StyleError: a bad clip, no frames in the piece asked for, a partial file that cannot be
        resumed, or an output that cannot be written (nothing left at the output path).
    """
    info = video.probe(path)
    size = video.frame_size(info, config.max_dim)
    note = f"style_tf {config.styles} {engine.config.fingerprint()} {size}"  # What --resume checks.
    done = _resumed(config, job.output, size, note)
    frames = video.read(path, size, config.start, config.duration or None)
    track, state = video.Track(), {}
    writer = video.Writer(job.output, path, info, size, note)
    total = round((config.duration or max(info.duration - config.start, 0)) * info.rate) or None
    bar = tqdm(total=total, unit="frame", desc=job.output.name, disable=None if job.progress else True)
    index = 0
    try:
        for index, frame in enumerate(frames):
            image = next(done, None) if done is not None else None
            if image is None:
                prior = track.prior(frame.image) if config.temporal == "flow" else None
                clip = video.ClipFrame(index, config.temporal == "flow", prior, state)
                frame_job = dataclasses.replace(job, single=False, progress=False, clip=clip)
                image = stylize_image(config, engine, frame.image, styles, masks, frame_job)
                if job.stop.requested:  # The frame may be unfinished (optimize): left out.
                    break
            writer.write(image, frame.time)
            track.update(frame.image, image)
            bar.update(1)
    except BaseException:
        writer.discard()
        raise
    finally:
        bar.close()
    if writer.frames == 0 and not job.stop.requested:
        writer.discard()
        raise StyleError(f"{path}: no frames from {config.start:g} s"
                         + (f" for {config.duration:g} s" if config.duration else ""))
    if not job.stop.requested:
        _check_length(info, config, writer, path)
    if job.stop.requested:
        writer.close()
        logging.warning("interrupted: %d frames in %s (continue with --resume)", writer.frames, writer.path)
        return False
    writer.finish()
    logging.info("%s: %d frames", job.output, index + 1)
    return True


def _check_length(info: video.Info, config: StylizeConfig, writer: video.Writer, path: Path) -> None:
    """Raises StyleError (the partial file removed) if the frames ended well before the clip's
    header said: a truncated file without an index (WebM, MKV) ends early without an error."""
    end = info.duration if not config.duration else min(info.duration, config.start + config.duration)
    last = writer.last_time if writer.last_time is not None else config.start
    if not info.duration or last + 1 / float(info.rate) >= end - 0.5:
        return
    writer.discard()
    raise StyleError(f"{path}: the clip is truncated (frames end at {last:.2f} s of {end:.2f} s)")


def _resumed(config: StylizeConfig, output: Path, size, note: str):
    """With --resume, the frames of the partial clip left by an interrupted run (moved aside,
    as an iterator of images), else None.

    Raises:
      StyleError: no partial clip, or one made with other inputs or settings.
    """
    if not config.resume:
        return None
    partial = video.partial_path(output)
    if not partial.exists():
        raise StyleError(f"{partial}: nothing to resume (no partial clip for this output)")
    if not video.matches(partial, note):
        raise StyleError(f"{partial}: made with other styles or settings; run without --resume")
    old = partial.with_name(f".{partial.name}.resumed{partial.suffix}")
    os.replace(partial, old)
    return _frames_then_remove(old, size)


def _frames_then_remove(path: Path, size):
    """The images of the clip at `path`, which is removed once they are all read."""
    for frame in video.read(path, size):
        yield frame.image
    path.unlink()


def _load_mask(path: str) -> np.ndarray:
    """A mask image as (H, W) float32 in [0, 1] (mean of its RGB)."""
    return images.load_image(path).mean(axis=-1)


def _finish(config: StylizeConfig, image: np.ndarray, content: np.ndarray) -> np.ndarray:
    if config.preserve_color == "luminance":
        return images.keep_luminance(image, images.resize(content, size=image.shape[:2]))
    return image
