"""AdaIN engine throughput against a plain float32 forward, and training speed, in one process.

    python -m benchmarks.adain [--data data/heldout] [--images 4] [--rounds 3] [--train_steps 4]

1. Stylization of 512x512 photos (centre squares of the held-out photos under `--data`, see
   benchmarks/heldout.py, or of examples/content when there are none) with one style, warm:
   - plain: a `tf.function` float32 Keras forward of the whole network per image (encode the
     content and the style, AdaIN, decode), as a straightforward implementation does it;
   - this engine: `stylizer.Stylizer` as `python -m style_tf.run --method=adain` uses it (style
     encoded once and cached, bfloat16 where the CPU has AMX/AVX512-BF16, compiled transform,
     a 16-px mirrored border stylized and cropped: 13% more pixels at 512x512, which
     the plain forward does not pay and leaves a frame for, and the face pass: a photo
     with small faces pays for stylizing each again, one without for looking).
   Rounds alternate between the two so machine noise hits both; the best round of each counts.
   The PSNR of the engine's images against the plain forward's shows what bfloat16 costs.
2. The face pass's cost on a photo with one small face (examples/content/astronaut.png), the
   engine with and without it, alternating rounds as above.
3. Training steps/s at 256 px, batch 8, float32 and bfloat16 (`--precision`), on the
   real input pipeline over examples/.
Targets: engine >= 1.5x the plain forward's images/s.
"""

from style_tf import cli  # noqa: I001 - first: silences TensorFlow's start-up

import tempfile
import time

import numpy as np
import tensorflow as tf
from absl import flags

from benchmarks import heldout
from style_tf import adain, faces, images, metrics, stylizer, train
from style_tf.errors import user_errors_exit_2
from style_tf.paths import EXAMPLES


def _define_flags() -> None:
    flags.DEFINE_string("data", str(heldout.DEFAULT_DATA), "Folder of the held-out images of "
                        "benchmarks/heldout.txt, under the names listed there (without them: "
                        "examples/content).")
    flags.DEFINE_integer("images", 4, "Photos per round.")
    flags.DEFINE_integer("rounds", 3, "Alternating rounds per side.")
    flags.DEFINE_integer("size", 512, "Square image side.")
    flags.DEFINE_integer("train_steps", 4, "Timed training steps per precision (0: skip training).")


def photos(data: str, count: int, size: int) -> list[np.ndarray]:
    """`count` centre squares of the held-out photos under `data`, or of examples/content's
    photos if there are none there (said on stdout, since the figures then differ)."""
    if heldout.find(data).photos:
        paths = heldout.require(data).photos  # Warns about any that are missing.
    else:
        paths = sorted((EXAMPLES / "content").iterdir())
        print(f"no held-out photos under {data} (`{heldout.REBUILD} {data}` makes them): "
              "timing examples/content instead")
    return [images.center_square(images.load_image(paths[i % len(paths)]), size) for i in range(count)]


def plain_forward():
    """The whole network as one float32 tf.function: content and style in, image out."""
    enc = adain.encoder(layers=(adain.BOTTLENECK,))
    dec = adain.load_decoder(str(adain.decoder_path()))

    @tf.function
    def forward(content, style):
        target = adain.adaptive_instance_norm(enc(content)[adain.BOTTLENECK], enc(style)[adain.BOTTLENECK])
        return tf.clip_by_value(dec(target), 0.0, 1.0)

    return lambda content, style: forward(content[None], style[None]).numpy()[0]


def timed(fn, contents, style) -> tuple[float, list[np.ndarray]]:
    t = time.perf_counter()
    out = [fn(c, style) for c in contents]
    return len(contents) / (time.perf_counter() - t), out


def train_steps_per_s(precision: str, steps: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        config = train.TrainConfig(content_dir=str(EXAMPLES / "content"), style_dir=str(EXAMPLES / "style"),
                                   model_dir=tmp, batch_size=8, image_size=256, precision=precision,
                                   strategy="default")
        strategy = train.make_strategy("default")
        trainer = train.Trainer(config, strategy)
        iterator = iter(strategy.experimental_distribute_dataset(train.datasets(config, 8)))
        float(trainer.train_step(iterator)["total"])  # Trace and warm up.
        t = time.perf_counter()
        for _ in range(steps):
            float(trainer.train_step(iterator)["total"])
        return steps / (time.perf_counter() - t)


def race(fns: dict, contents, style, rounds: int) -> tuple[dict, dict]:
    """Best images/s of each function over alternating rounds, and each one's last images."""
    for fn in fns.values():
        fn(contents[0], style)  # Trace and warm up.
    rates, outs = {k: [] for k in fns}, {}
    for _ in range(rounds):
        for k, fn in fns.items():
            rate, outs[k] = timed(fn, contents, style)
            rates[k].append(rate)
    return {k: max(v) for k, v in rates.items()}, outs


@user_errors_exit_2
def main(argv) -> int:
    del argv
    f = flags.FLAGS
    contents = photos(f.data, f.images, f.size)
    style = images.load_image(sorted((EXAMPLES / "style").iterdir())[0], max_dim=f.size)
    engine = stylizer.Stylizer.load("bundled", "auto")  # As style_tf.run uses it.
    face_size = stylizer.AdainConfig.face_size
    best, outs = race({"plain": plain_forward(),
                       "ours": lambda content, s: engine(content, [s], face_size=face_size)},
                      contents, style, f.rounds)
    psnr = np.mean([metrics.psnr(a, b) for a, b in zip(outs["ours"], outs["plain"])])
    print(f"\n{f.images} photos {f.size}x{f.size}, one style, best of {f.rounds} rounds\n")
    print("| measure | plain fp32 forward | this engine | ratio | target |\n|---|---|---|---|---|")
    ratio = best["ours"] / best["plain"]
    print(f"| images/s | {best['plain']:.3f} | {best['ours']:.3f} | {ratio:.2f}x | >= 1.5x |")
    print(f"| PSNR of the engine's images vs the plain forward's | | {psnr:.1f} dB | | |")
    # What the face pass costs on a photo with a small face (the photos above have none).
    astronaut = images.load_image(EXAMPLES / "content" / "astronaut.png", max_dim=f.size)
    best, _ = race({size: lambda content, s, size=size: engine(content, [s], face_size=size)
                    for size in (0, face_size)}, [astronaut], style, f.rounds)
    print(f"\nface pass on astronaut.png at {f.size} px ({len(faces.find(astronaut))} face): "
          f"{best[0]:.2f} images/s without, {best[face_size]:.2f} with ({best[face_size] / best[0]:.2f}x)")
    if f.train_steps:
        fp32 = train_steps_per_s("float32", f.train_steps)
        bf16 = train_steps_per_s("bfloat16", f.train_steps)
        print(f"\ntraining at 256 px, batch 8 ({f.train_steps} steps each): float32 {fp32:.3f} steps/s, "
              f"bfloat16 {bf16:.3f} steps/s ({bf16 / fp32:.2f}x)")
    return 0


if __name__ == "__main__":
    cli.run(main, _define_flags)
