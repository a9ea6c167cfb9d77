"""`python -m export.verify`: runs every exported TFLite model in LiteRT and checks it.

    python -m export.verify                                     # what export.tflite wrote
    python -m export.verify --model_dir models --variants int8  # the shipped pair
    python -m export.verify --photos photos/ --styles a.jpg,b.jpg
    python -m export.verify --method mobile --model_dir models --variants int8  # the student's
    python -m export.verify --method adain,mobile --model_dir models --variants int8 --photos P --styles S

For each variant: file sizes, median latency of predict and transform (LiteRT, 2 threads,
XNNPACK), PSNR of the stylized output against the Keras network on the same inputs, and the
AdaIN style distance of the output, on the `--photos` and `--styles` given (paired in order;
best ones int8 calibration did not see, which by default are all but examples/). Without them
it measures seeded synthetic images and says so: the PSNR bars still apply, but the figures
are not comparable with those of benchmarks/RESULTS.md. Exit status 1 if a variant falls below
its PSNR bar. Several `--method`s are measured one after the other in one run, on the same
images, and the last ones' latency and style distance are given as ratios of the first's.
"""

from style_tf import cli  # noqa: I001 - first: silences TensorFlow's start-up

import os
import statistics
import time
from pathlib import Path

import numpy as np
from absl import flags

from export import signatures as sig
from export.tflite import DEFAULT_OUTPUT_DIR, Network
from style_tf import adain, images, losses, metrics
from style_tf.errors import StyleError, user_errors_exit_2
from style_tf.sheet import expand

PSNR_BAR = {"float32": 40.0, "float16": 35.0, "int8": 25.0}


def interpreter(path: Path, threads: int = 2):
    """A LiteRT interpreter with its XNNPACK delegate (the default CPU path), allocated.

    Allocating applies the delegate now rather than in the first timed run, and LiteRT's one
    notice of it ("Created TensorFlow Lite XNNPACK delegate"), which no log level reaches,
    is kept off the terminal unless that fails.
    """
    from ai_edge_litert.interpreter import Interpreter

    with cli.native_stderr_captured():
        model = Interpreter(model_path=str(path), num_threads=threads)
        model.allocate_tensors()
    return model


def _both_or_neither(photos, styles) -> None:
    if bool(photos) != bool(styles):
        raise StyleError("give both --photos and --styles, or neither (seeded synthetic images)")


def _missing(path: Path, model_dir: Path, method: str) -> StyleError:
    return StyleError(f"{path}: not found (write it with python -m export.tflite --method {method} "
                      f"--output_dir {os.fspath(model_dir)}; models/ holds only the int8 pairs)")


def measured_images(content_size: int, style_size: int, photos=(), styles=(), count: int = 3):
    """(contents, styles, what they are): the given files as centre squares, else seeded
    synthetic ones.

    Args:
      content_size, style_size: the models' input sizes.
      photos, styles: image files (folders already expanded); both or neither. Paired in
        order, the shorter list repeated: as many pairs as the longer one has files.
      count: synthetic pairs, when no files are given.

    Returns:
      (contents, styles, description), the description one line or one per pair, for the user.
    """
    _both_or_neither(photos, styles)
    if photos:
        pairs = [(photos[i % len(photos)], styles[i % len(styles)])
                 for i in range(max(len(photos), len(styles)))]
        lines = [f"measured on {len(pairs)} photo + style pair(s):"]
        lines += [f"  {os.fspath(p)} + {os.fspath(s)}" for p, s in pairs]
        return ([images.center_square(images.load_image(p), content_size) for p, _ in pairs],
                [images.center_square(images.load_image(s), style_size) for _, s in pairs],
                "\n".join(lines))
    rng = np.random.default_rng(0)
    smooth = lambda s: images.resize(rng.uniform(0, 1, (s // 8, s // 8, 3)), size=(s, s))  # noqa: E731
    return ([smooth(content_size) for _ in range(count)], [smooth(style_size) for _ in range(count)],
            f"measured on {count} seeded synthetic image pairs (no --photos/--styles given): style "
            "distances on them are not comparable with benchmarks/RESULTS.md's (held-out photos and "
            "paintings)")


def verify(model_dir: str, weights: str | None, variants=sig.VARIANTS, repeats: int = 5,
           threads: int = 2, photos=(), styles=(), method: str = "adain") -> tuple[list[dict], str]:
    """Measures each variant on `photos` and `styles` (files; seeded synthetic images if none).

    `weights` (None: the bundled ones) and `method` name the network the models came from
    (`tflite.Network`); the style distance is measured with the VGG encoder whatever it is.

    Returns:
      (one row per variant, a description of the images measured: `measured_images`).
    """
    _both_or_neither(photos, styles)
    model_dir = Path(model_dir)
    first = model_dir / sig.model_file(sig.TRANSFORM, variants[0], method)
    if not first.is_file():
        raise _missing(first, model_dir, method)
    probe = interpreter(first, threads)
    inputs = probe.get_signature_runner(sig.TRANSFORM).get_input_details()
    content_size = inputs[sig.CONTENT_IMAGE]["shape"][1]
    probe_p = interpreter(model_dir / sig.model_file(sig.PREDICT, variants[0], method), threads)
    style_size = probe_p.get_signature_runner(sig.PREDICT).get_input_details()[sig.STYLE_IMAGE]["shape"][1]
    net = Network(weights, method)
    vgg_encoder = net.encoder if method == "adain" else adain.encoder(layers=(adain.BOTTLENECK,))
    contents, style_images, measured = measured_images(int(content_size), int(style_size), photos, styles)
    alpha = np.array([1.0], np.float32)
    reference = []
    for c, s in zip(contents, style_images):
        v = np.asarray(net.predict(s[None]))
        reference.append((v, np.asarray(net.transform(c[None], v, alpha))))
    rows = []
    for variant in variants:
        paths = {k: model_dir / sig.model_file(k, variant, method) for k in (sig.PREDICT, sig.TRANSFORM)}
        for p in paths.values():
            if not p.is_file():
                raise _missing(p, model_dir, method)
        predict = interpreter(paths[sig.PREDICT], threads).get_signature_runner(sig.PREDICT)
        transform = interpreter(paths[sig.TRANSFORM], threads).get_signature_runner(sig.TRANSFORM)
        t_pred, t_tran, psnrs, dists = [], [], [], []
        for (c, s), (_, ref) in zip(zip(contents, style_images), reference):
            for _ in range(repeats):
                t = time.perf_counter()
                v = predict(**{sig.STYLE_IMAGE: s[None]})[sig.STYLE_VECTOR]
                t_pred.append(time.perf_counter() - t)
                t = time.perf_counter()
                out = transform(**{sig.CONTENT_IMAGE: c[None], sig.STYLE_VECTOR: v, sig.ALPHA: alpha})
                t_tran.append(time.perf_counter() - t)
            out = out[sig.STYLIZED_IMAGE]
            if not np.isfinite(out).all():
                raise StyleError(f"{paths[sig.TRANSFORM]}: output holds NaN or Inf")
            psnrs.append(metrics.psnr(out, ref))
            dists.append(float(losses.mean_std_loss(vgg_encoder(out), vgg_encoder(s[None]))[0]))
        rows.append({"variant": variant,
                     "mb": sum(p.stat().st_size for p in paths.values()) / 1e6,
                     "predict_ms": 1000 * statistics.median(t_pred),
                     "transform_ms": 1000 * statistics.median(t_tran),
                     "psnr": min(psnrs), "style_distance": statistics.mean(dists),
                     "bar": PSNR_BAR[variant], "ok": min(psnrs) >= PSNR_BAR[variant]})
    return rows, measured


def table(rows: list[dict]) -> str:
    lines = ["| variant | predict+transform MB | predict ms | transform ms | PSNR vs Keras (min) | bar "
             "| style distance |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['variant']} | {r['mb']:.1f} | {r['predict_ms']:.0f} | {r['transform_ms']:.0f} | "
                     f"{r['psnr']:.1f} dB | >= {r['bar']:.0f} {'ok' if r['ok'] else 'FAIL'} | "
                     f"{r['style_distance']:.4g} |")
    return "\n".join(lines)


def _define_flags() -> None:
    flags.DEFINE_string("model_dir", DEFAULT_OUTPUT_DIR, "Folder of .tflite files (default: where "
                        "export.tflite writes; `models` with --variants int8: the shipped pair).")
    flags.DEFINE_list("method", ["adain"], "The network(s) the models came from: adain, mobile.")
    flags.DEFINE_string("decoder_weights", None, "Decoder the models were exported from (default bundled).")
    flags.DEFINE_string("student_weights", None, "Student the models were exported from (default bundled).")
    flags.DEFINE_list("variants", list(sig.VARIANTS), "Variants to check.")
    flags.DEFINE_integer("repeats", 5, "Timed runs per image.")
    flags.DEFINE_integer("threads", 2, "LiteRT threads.")
    flags.DEFINE_list("photos", [], "Photo files or folders, not seen by int8 calibration "
                      "(default: seeded synthetic images).")
    flags.DEFINE_list("styles", [], "Style image files or folders, paired with --photos in order.")


@user_errors_exit_2
def main(argv) -> int:
    del argv
    f = flags.FLAGS
    photos = expand(f.photos) if f.photos else []
    styles = expand(f.styles) if f.styles else []
    for method in f.method:
        if method not in sig.PREFIX:
            raise StyleError(f"--method: unknown network {method!r} (use {', '.join(sig.PREFIX)})")
    results = {}
    for method in f.method:
        weights = f.student_weights if method == "mobile" else f.decoder_weights
        rows, measured = verify(f.model_dir, weights, f.variants, f.repeats, f.threads, photos, styles,
                                method)
        results[method] = rows
        print(f"{method}: {measured}")
        print(table(rows))
    first, *others = f.method
    for method in others:
        for a, b in zip(results[first], results[method]):
            ratio = {k: b[k] / a[k] for k in ("mb", "predict_ms", "transform_ms", "style_distance")}
            print(f"{method} / {first}, {a['variant']}: size {ratio['mb']:.3f}, predict "
                  f"{ratio['predict_ms']:.3f}, transform {ratio['transform_ms']:.3f}, "
                  f"style distance {ratio['style_distance']:.3f}")
    return 0 if all(r["ok"] for rows in results.values() for r in rows) else 1

if __name__ == "__main__":
    cli.run(main, _define_flags)
