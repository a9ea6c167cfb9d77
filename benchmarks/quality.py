"""Result quality on held-out photos and artworks (not in the repository, not trained on).

    python -m benchmarks.quality [--method optimize|adain] [--pairs 3] [--max_dim 512]
                                 [--decoder_weights runs/adain/decoder.weights.h5]
                                 [--photos data/heldout_people] [--face_size 0]

Stylizes each held-out photo with a held-out artwork using the method's defaults, and prints
metrics.py's relative style and content distances per pair with their mean:
`gram_relative` / `meanstd_relative` (result's style distance over the content image's own;
the optimize target is <= 0.05 for Gram, the AdaIN one <= 0.30 for mean/std) and
`content_relative` (0 = the content's block5_conv2 features, 1 = as far as the style image),
and `grid` (metrics.grid_artifact: about 1 when no regular 8-pixel grid shows).
`--photos DIR` takes the photos from a folder instead, e.g. the held-out photos of people that
`models/people_photos.sh` writes (the shared pool has none), with the held-out artworks.
"""

from style_tf import cli  # noqa: I001 - first: silences TensorFlow's start-up

import dataclasses
import tempfile
from pathlib import Path

import numpy as np
from absl import flags

from benchmarks.heldout import SHARED, heldout_paths
from style_tf import images, metrics, stylize, stylizer

flags.DEFINE_enum("method", "optimize", ["optimize", "adain"], "Engine.")
flags.DEFINE_integer("pairs", 3, "How many (photo, artwork) pairs.")
flags.DEFINE_integer("max_dim", 512, "Output size.")
flags.DEFINE_string("decoder_weights", "bundled", "AdaIN decoder: bundled, or a checkpoint's weights.")
flags.DEFINE_string("photos", None, "Folder of photos to use instead of the held-out ones.")
flags.DEFINE_integer("face_size", stylizer.AdainConfig.face_size, "AdaIN face pass (0: off).")
FLAGS = flags.FLAGS


def heldout_pairs(count: int, photo_dir: str | None = None) -> list[tuple[Path, Path]]:
    photos, styles = heldout_paths()
    if photo_dir:
        photos = images.list_images(photo_dir) if Path(photo_dir).is_dir() else []
    if not photos:
        raise SystemExit(f"no photos under {photo_dir or SHARED}")
    if not styles:
        raise SystemExit(f"held-out artworks not found under {SHARED}")
    return [(photos[i % len(photos)], styles[i % len(styles)]) for i in range(count)]


def main(argv):
    del argv
    model = metrics.feature_model()
    rows = []
    engine = (stylizer.AdainConfig(decoder_weights=FLAGS.decoder_weights, face_size=FLAGS.face_size)
              if FLAGS.method == "adain" else None)  # None: the engine's defaults.
    with tempfile.TemporaryDirectory() as tmp:
        for content, style in heldout_pairs(FLAGS.pairs, FLAGS.photos):
            out = Path(tmp) / f"{content.stem}.png"
            config = dataclasses.replace(stylize.StylizeConfig(), content=str(content), styles=(str(style),),
                                         output=str(out), method=FLAGS.method, max_dim=FLAGS.max_dim,
                                         progress=False, engine=engine)
            result = stylize.stylize(config)
            report = metrics.evaluate(model, images.load_image(content, max_dim=FLAGS.max_dim),
                                      images.load_image(style, max_dim=FLAGS.max_dim),
                                      images.load_image(out))
            rows.append((f"{content.name} x {style.name}", report, result.seconds))
    print(f"\nmethod {FLAGS.method}, {FLAGS.max_dim} px, defaults\n")
    print("| pair | gram_relative | meanstd_relative | content_relative | ssim | grid | seconds |")
    print("|---|---|---|---|---|---|---|")
    for name, r, s in rows:
        print(f"| {name} | {r.gram_relative:.4f} | {r.meanstd_relative:.4f} | "
              f"{r.content_relative:.4f} | {r.ssim:.3f} | {r.grid:.2f} | {s:.0f} |")
    mean = lambda k: np.mean([getattr(r, k) for _, r, _ in rows])  # noqa: E731
    print(f"| mean | {mean('gram_relative'):.4f} | {mean('meanstd_relative'):.4f} | "
          f"{mean('content_relative'):.4f} | {mean('ssim'):.3f} | {mean('grid'):.2f} | |")


if __name__ == "__main__":
    cli.run(main)
