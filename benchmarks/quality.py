"""Result quality on held-out photos and artworks (not in the repository, not trained on).

    python -m benchmarks.quality [--data data/heldout] [--method optimize|adain|mobile] [--pairs 3]
                                 [--max_dim 512] [--decoder_weights runs/adain/decoder.weights.h5]
                                 [--student_weights runs/student/student.weights.h5]
                                 [--photos data/heldout_people] [--face_size 0]
    python -m benchmarks.quality --method adain,mobile --pairs 6   # side by side, with ratios

Stylizes each held-out photo with a held-out artwork using the method's defaults, and prints
metrics.py's relative style and content distances per pair with their mean:
`gram_relative` / `meanstd_relative` (result's style distance over the content image's own;
the optimize target is <= 0.05 for Gram, the AdaIN one <= 0.30 for mean/std) and
`content_relative` (0 = the content's block5_conv2 features, 1 = as far as the style image),
and `grid` (metrics.grid_artifact: about 1 when no regular 8-pixel grid shows).
The held-out images are read from `--data` (benchmarks/heldout.py; `bash benchmarks/heldout.sh
data/heldout` makes the default folder); with only some of them there, the pairs are made of
those and a warning names the others. `--photos DIR` takes the photos from a folder instead,
e.g. the held-out photos of people that `models/people_photos.sh` writes (the training pool
has almost none), with the held-out artworks. With several methods, each stylizes the same
pairs in the same run, and a last table gives each one's means over the first method's.
"""

from style_tf import cli  # noqa: I001 - first: silences TensorFlow's start-up

import dataclasses
import tempfile
from pathlib import Path

import numpy as np
from absl import flags

from benchmarks import heldout
from style_tf import images, metrics, student, stylize, stylizer
from style_tf.errors import StyleError, user_errors_exit_2


def _define_flags() -> None:
    flags.DEFINE_string("data", str(heldout.DEFAULT_DATA), "Folder of the held-out images of "
                        "benchmarks/heldout.txt, under the names listed there.")
    flags.DEFINE_list("method", ["optimize"], "Engine(s), comma-separated: optimize, adain, mobile.")
    flags.DEFINE_integer("pairs", 3, "How many (photo, artwork) pairs.")
    flags.DEFINE_integer("max_dim", 512, "Output size.")
    flags.DEFINE_string("decoder_weights", "bundled", "AdaIN decoder: bundled, or a checkpoint's weights.")
    flags.DEFINE_string("photos", None, "Folder of photos to use instead of the held-out ones.")
    flags.DEFINE_string("student_weights", "bundled", "The mobile engine's student: bundled, or a run's "
                        "weights.")
    flags.DEFINE_integer("face_size", stylizer.AdainConfig.face_size, "AdaIN and mobile face pass (0: off).")


def heldout_pairs(count: int, data: str, photo_dir: str | None = None) -> list[tuple[Path, Path]]:
    """`count` (photo, artwork) pairs, cycling through the held-out photos (or those of
    `photo_dir`) and artworks.

    Raises:
      StyleError: no held-out artworks under `data`, or no photos.
    """
    found = heldout.require(data)
    photos = found.photos
    if photo_dir:
        photos = images.list_images(photo_dir) if Path(photo_dir).is_dir() else []
        if not photos:
            raise StyleError(f"--photos {photo_dir}: no images there")
    if not photos:
        raise StyleError(f"--data {data}: none of the held-out photos are there (`{heldout.REBUILD} "
                         f"{data}` makes them)")
    if not found.artworks:
        raise StyleError(f"--data {data}: none of the held-out artworks are there (`{heldout.REBUILD} "
                         f"{data}` makes them)")
    return [(photos[i % len(photos)], found.artworks[i % len(found.artworks)]) for i in range(count)]


COLUMNS = ("gram_relative", "meanstd_relative", "content_relative", "ssim", "grid")


def engine_config(method: str, f):
    """The engine settings the flags give `method` (None: the engine's defaults)."""
    if method == "adain":
        return stylizer.AdainConfig(decoder_weights=f.decoder_weights, face_size=f.face_size)
    if method == "mobile":
        return student.MobileConfig(student_weights=f.student_weights, face_size=f.face_size)
    if method == "optimize":
        return None
    raise StyleError(f"--method: unknown engine {method!r} (use optimize, adain or mobile)")


def measure(method: str, pairs, f, model) -> list[tuple[str, metrics.Report, float]]:
    """(pair name, report, seconds) of each pair stylized by `method`."""
    rows = []
    engine = engine_config(method, f)
    with tempfile.TemporaryDirectory() as tmp:
        for content, style in pairs:
            out = Path(tmp) / f"{content.stem}.png"
            config = dataclasses.replace(stylize.StylizeConfig(), content=str(content), styles=(str(style),),
                                         output=str(out), method=method, max_dim=f.max_dim,
                                         progress=False, engine=engine)
            result = stylize.stylize(config)
            report = metrics.evaluate(model, images.load_image(content, max_dim=f.max_dim),
                                      images.load_image(style, max_dim=f.max_dim),
                                      images.load_image(out))
            rows.append((f"{content.name} x {style.name}", report, result.seconds))
    return rows


@user_errors_exit_2
def main(argv) -> int:
    del argv
    f = flags.FLAGS
    pairs = heldout_pairs(f.pairs, f.data, f.photos)
    for method in f.method:
        engine_config(method, f)  # A bad method or weights file fails before any work.
    model = metrics.feature_model()
    means = {}
    for method in f.method:
        rows = measure(method, pairs, f, model)
        print(f"\nmethod {method}, {f.max_dim} px, defaults\n")
        print("| pair | " + " | ".join(COLUMNS) + " | seconds |")
        print("|---|---|---|---|---|---|---|")
        for name, r, s in rows:
            print(f"| {name} | {r.gram_relative:.4f} | {r.meanstd_relative:.4f} | "
                  f"{r.content_relative:.4f} | {r.ssim:.3f} | {r.grid:.2f} | {s:.0f} |")
        means[method] = {k: float(np.mean([getattr(r, k) for _, r, _ in rows])) for k in COLUMNS}
        m = means[method]
        print(f"| mean | {m['gram_relative']:.4f} | {m['meanstd_relative']:.4f} | "
              f"{m['content_relative']:.4f} | {m['ssim']:.3f} | {m['grid']:.2f} | |")
    if len(means) > 1:
        first = f.method[0]
        print(f"\nmeans over {first}'s (same pairs, same run)\n")
        print("| method | " + " | ".join(COLUMNS) + " |")
        print("|---|---|---|---|---|---|")
        for method, m in means.items():
            print(f"| {method} | " + " | ".join(f"{m[k] / means[first][k]:.3f}" for k in COLUMNS) + " |")
    return 0


if __name__ == "__main__":
    cli.run(main, _define_flags)
