"""The phone-class student against the VGG network, side by side in one run.

    python -m benchmarks.mobile [--data data/heldout] [--images 8] [--rounds 2]

`stylize()` over a folder of 512-px photos (the held-out photos, or
examples/content without them), `--method adain` and `--method mobile`, face pass off,
loading and saving counted, models loaded before (a warm-up image each). Rounds alternate so
machine noise hits both; the best round of each counts. Target: mobile >= 4x adain.

The phone pairs side by side (size, LiteRT latency, style distance): `python -m export.verify
--method adain,mobile --model_dir models --variants int8 --photos P --styles S`; the desktop
engines' quality: `python -m benchmarks.quality --method adain,mobile`.
"""

from style_tf import cli  # noqa: I001 - first: silences TensorFlow's start-up

import tempfile
import time
from pathlib import Path

from absl import flags

from benchmarks import heldout
from style_tf import images, paths, student, stylize, stylizer
from style_tf.errors import StyleError, user_errors_exit_2

METHODS = ("adain", "mobile")
ENGINES = {"adain": stylizer.AdainConfig(face_size=0), "mobile": student.MobileConfig(face_size=0)}


def _define_flags() -> None:
    flags.DEFINE_string("data", str(heldout.DEFAULT_DATA), "Folder of the held-out images of "
                        "benchmarks/heldout.txt (without them: examples/content, said so).")
    flags.DEFINE_integer("images", 8, "Photos in the desktop folder.")
    flags.DEFINE_integer("rounds", 2, "Alternating rounds per method.")


def photo_folder(folder: Path, data: str, count: int) -> None:
    """`count` photos at 512 px (longest side) in `folder`, as PNG files."""
    found = heldout.find(data).photos
    sources = list(found) or sorted((paths.EXAMPLES / "content").iterdir())
    if not found:
        print(f"no held-out photos under {data}: timing examples/content instead")
    for i in range(count):
        images.save_image(folder / f"{i:03d}.png", images.load_image(sources[i % len(sources)], max_dim=512))


def desktop(data: str, count: int, rounds: int) -> dict[str, float]:
    """Best images/s of each engine over a folder of `count` 512-px photos."""
    best = {m: 0.0 for m in METHODS}
    with tempfile.TemporaryDirectory() as tmp:
        photos, warm = Path(tmp) / "photos", Path(tmp) / "warm"
        photos.mkdir()
        warm.mkdir()
        photo_folder(photos, data, count)
        photo_folder(warm, data, 1)

        def run(method: str, folder: Path) -> float:
            out = Path(tmp) / f"out-{method}"
            config = stylize.StylizeConfig(content=str(folder), output=str(out), method=method,
                                           progress=False, engine=ENGINES[method])
            start = time.perf_counter()
            result = stylize.stylize(config)
            if result.failed:
                raise StyleError(f"{method}: {result.failed[0][1]}")
            return len(result.written) / (time.perf_counter() - start)

        for method in METHODS:
            run(method, warm)
        for _ in range(rounds):
            for method in METHODS:
                best[method] = max(best[method], run(method, photos))
    return best


@user_errors_exit_2
def main(argv) -> int:
    del argv
    f = flags.FLAGS
    speed = desktop(f.data, f.images, f.rounds)
    print(f"\ndesktop, {f.images} photos at 512 px, face pass off, best of {f.rounds} rounds\n")
    print("| engine | images/s |\n|---|---|")
    for method in METHODS:
        print(f"| {method} | {speed[method]:.2f} |")
    print(f"| mobile / adain | {speed['mobile'] / speed['adain']:.2f}x (target >= 4) |")
    return 0


if __name__ == "__main__":
    cli.run(main, _define_flags)
