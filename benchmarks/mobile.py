"""The phone-class student against the VGG network, side by side in one run.

    python -m benchmarks.mobile [--data data/heldout] [--images 8] [--rounds 2] [--pairs 6]

1. Desktop: `stylize()` over a folder of 512-px photos (the held-out photos, or
   examples/content without them), `--method adain` and `--method mobile`, face pass off,
   loading and saving counted, models loaded before (a warm-up image each). Rounds alternate
   so machine noise hits both; the best round of each counts. Target: mobile >= 4x adain.
2. Phone: the shipped int8 pairs of models/ in LiteRT (2 threads, XNNPACK, 384x384 content),
   median transform and predict times, alternating rounds. Target: student transform <= 1/4.
3. Phone quality: each int8 pair on held-out pairs (photo centre square 384, artwork 256), the
   mean/std style distance and the content distance of metrics.py, and the student's means over
   the VGG pair's. Target: each ratio <= 1.15 (the desktop engines: benchmarks.quality
   --method adain,mobile).
"""

from style_tf import cli  # noqa: I001 - first: silences TensorFlow's start-up

import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from absl import flags

from benchmarks import heldout
from benchmarks.quality import heldout_pairs
from export import signatures as sig
from export import verify
from style_tf import images, metrics, paths, student, stylize, stylizer
from style_tf.errors import StyleError, user_errors_exit_2

METHODS = ("adain", "mobile")
ENGINES = {"adain": stylizer.AdainConfig(face_size=0), "mobile": student.MobileConfig(face_size=0)}


def _define_flags() -> None:
    flags.DEFINE_string("data", str(heldout.DEFAULT_DATA), "Folder of the held-out images of "
                        "benchmarks/heldout.txt (without them: examples/content, said so).")
    flags.DEFINE_integer("images", 8, "Photos in the desktop folder.")
    flags.DEFINE_integer("rounds", 2, "Alternating rounds per method.")
    flags.DEFINE_integer("pairs", 6, "Held-out pairs for the phone quality (0: skip it).")
    flags.DEFINE_string("model_dir", str(paths.models_dir()), "Folder of both int8 pairs.")


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


def phone_latency(model_dir: str, rounds: int) -> dict[str, dict[str, float]]:
    """Best median predict and transform milliseconds of each int8 pair in LiteRT."""
    best = {m: {"predict_ms": float("inf"), "transform_ms": float("inf"), "mb": 0.0} for m in METHODS}
    for _ in range(rounds):
        for method in METHODS:
            rows, _ = verify.verify(model_dir, None, ("int8",), repeats=5, method=method)
            for key in ("predict_ms", "transform_ms"):
                best[method][key] = min(best[method][key], rows[0][key])
            best[method]["mb"] = rows[0]["mb"]
    return best


def phone_quality(model_dir: str, data: str, count: int) -> dict[str, dict[str, float]]:
    """Mean meanstd_relative and content_relative of each int8 pair on held-out pairs."""
    model = metrics.feature_model()
    pairs = [(images.center_square(images.load_image(p), sig.CONTENT_SIZE),
              images.center_square(images.load_image(s), sig.STYLE_SIZE))
             for p, s in heldout_pairs(count, data)]
    out = {}
    for method in METHODS:
        folder = Path(model_dir)
        predict = verify.interpreter(folder / sig.model_file(sig.PREDICT, "int8", method))
        transform = verify.interpreter(folder / sig.model_file(sig.TRANSFORM, "int8", method))
        predict, transform = (predict.get_signature_runner(sig.PREDICT),
                              transform.get_signature_runner(sig.TRANSFORM))
        reports = []
        for content, style in pairs:
            vector = predict(**{sig.STYLE_IMAGE: style[None]})[sig.STYLE_VECTOR]
            image = transform(**{sig.CONTENT_IMAGE: content[None], sig.STYLE_VECTOR: vector,
                                 sig.ALPHA: np.ones(1, np.float32)})[sig.STYLIZED_IMAGE][0]
            reports.append(metrics.evaluate(model, content, style, image))
        out[method] = {k: statistics.mean(getattr(r, k) for r in reports)
                       for k in ("meanstd_relative", "content_relative", "grid")}
    return out


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
    phone = phone_latency(f.model_dir, f.rounds)
    print("\nphone models, int8, LiteRT 2 threads, content 384x384\n")
    print("| pair | MB | predict ms | transform ms |\n|---|---|---|---|")
    for method in METHODS:
        p = phone[method]
        print(f"| {sig.PREFIX[method]} | {p['mb']:.2f} | {p['predict_ms']:.0f} | {p['transform_ms']:.0f} |")
    ratio = phone["mobile"]["transform_ms"] / phone["adain"]["transform_ms"]
    print(f"| student / adain transform | | | {ratio:.3f} (target <= 0.25) |")
    if f.pairs:
        quality = phone_quality(f.model_dir, f.data, f.pairs)
        print(f"\nphone models, int8, {f.pairs} held-out pairs (photo 384, artwork 256)\n")
        print("| pair | meanstd_relative | content_relative | grid |\n|---|---|---|---|")
        for method in METHODS:
            q = quality[method]
            print(f"| {sig.PREFIX[method]} | {q['meanstd_relative']:.4f} | {q['content_relative']:.4f} | "
                  f"{q['grid']:.2f} |")
        a, m = quality["adain"], quality["mobile"]
        print(f"| student / adain | {m['meanstd_relative'] / a['meanstd_relative']:.3f} | "
              f"{m['content_relative'] / a['content_relative']:.3f} | (targets <= 1.15) |")
    return 0


if __name__ == "__main__":
    cli.run(main, _define_flags)
