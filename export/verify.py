"""`python -m export.verify`: runs every exported TFLite model in LiteRT and checks it.

For each variant: file sizes, median latency of predict and transform (LiteRT, 2 threads,
XNNPACK), PSNR of the stylized output against the Keras network on the same inputs, and the
AdaIN style distance of the output, on photos and styles not used for int8 calibration
(the held-out images of benchmarks/heldout.txt when ../shared is present, else generated
ones). Exit status 1 if a variant falls below its PSNR bar.
"""

from style_tf import cli  # noqa: I001 - first: silences TensorFlow's start-up

import statistics
import time
from pathlib import Path

import numpy as np
from absl import flags

from benchmarks.heldout import heldout_paths
from export import signatures as sig
from export.tflite import Network, square
from style_tf import images, losses, metrics
from style_tf.errors import StyleError, user_errors_exit_2

PSNR_BAR = {"float32": 40.0, "float16": 35.0, "int8": 25.0}


def interpreter(path: Path, threads: int = 2):
    """A LiteRT interpreter with its XNNPACK delegate (the default CPU path)."""
    from ai_edge_litert.interpreter import Interpreter

    return Interpreter(model_path=str(path), num_threads=threads)


def test_images(content_size: int, style_size: int, count: int = 3):
    """(contents, styles): held-out images if present, else seeded synthetic ones."""
    photos, arts = (paths[:count] for paths in heldout_paths())
    if photos and arts:
        return ([square(images.load_image(p), content_size) for p in photos],
                [square(images.load_image(p), style_size) for p in arts])
    rng = np.random.default_rng(0)
    smooth = lambda s: images.resize(rng.uniform(0, 1, (s // 8, s // 8, 3)), size=(s, s))  # noqa: E731
    return [smooth(content_size) for _ in range(count)], [smooth(style_size) for _ in range(count)]


def verify(model_dir: str, decoder_weights: str, variants=sig.VARIANTS, repeats: int = 5,
           threads: int = 2) -> list[dict]:
    """Measures each variant; returns one row per variant."""
    model_dir = Path(model_dir)
    first = model_dir / sig.model_file(sig.TRANSFORM, variants[0])
    if not first.is_file():
        raise StyleError(f"{first}: not found (run python -m export.tflite first)")
    probe = interpreter(first, threads)
    inputs = probe.get_signature_runner(sig.TRANSFORM).get_input_details()
    content_size = inputs[sig.CONTENT_IMAGE]["shape"][1]
    probe_p = interpreter(model_dir / sig.model_file(sig.PREDICT, variants[0]), threads)
    style_size = probe_p.get_signature_runner(sig.PREDICT).get_input_details()[sig.STYLE_IMAGE]["shape"][1]
    net = Network(decoder_weights)
    contents, styles = test_images(int(content_size), int(style_size))
    alpha = np.array([1.0], np.float32)
    reference = []
    for c, s in zip(contents, styles):
        v = np.asarray(net.predict(s[None]))
        reference.append((v, np.asarray(net.transform(c[None], v, alpha))))
    rows = []
    for variant in variants:
        paths = {k: model_dir / sig.model_file(k, variant) for k in (sig.PREDICT, sig.TRANSFORM)}
        for p in paths.values():
            if not p.is_file():
                raise StyleError(f"{p}: not found (run python -m export.tflite first)")
        predict = interpreter(paths[sig.PREDICT], threads).get_signature_runner(sig.PREDICT)
        transform = interpreter(paths[sig.TRANSFORM], threads).get_signature_runner(sig.TRANSFORM)
        t_pred, t_tran, psnrs, dists = [], [], [], []
        for (c, s), (_, ref) in zip(zip(contents, styles), reference):
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
            enc = net.encoder
            dists.append(float(losses.mean_std_loss(enc(out), enc(s[None]))[0]))
        rows.append({"variant": variant,
                     "mb": sum(p.stat().st_size for p in paths.values()) / 1e6,
                     "predict_ms": 1000 * statistics.median(t_pred),
                     "transform_ms": 1000 * statistics.median(t_tran),
                     "psnr": min(psnrs), "style_distance": statistics.mean(dists),
                     "bar": PSNR_BAR[variant], "ok": min(psnrs) >= PSNR_BAR[variant]})
    return rows


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
    flags.DEFINE_string("model_dir", str(Path(__file__).resolve().parent.parent / "models"),
                        "Folder of .tflite files.")
    flags.DEFINE_string("decoder_weights", None, "Decoder the models were exported from (default bundled).")
    flags.DEFINE_list("variants", list(sig.VARIANTS), "Variants to check.")
    flags.DEFINE_integer("repeats", 5, "Timed runs per image.")
    flags.DEFINE_integer("threads", 2, "LiteRT threads.")


@user_errors_exit_2
def main(argv) -> int:
    del argv
    from style_tf import adain

    f = flags.FLAGS
    rows = verify(f.model_dir, f.decoder_weights or str(adain.decoder_path()), f.variants,
                  f.repeats, f.threads)
    print(table(rows))
    return 0 if all(r["ok"] for r in rows) else 1


if __name__ == "__main__":
    cli.run(main, _define_flags)
