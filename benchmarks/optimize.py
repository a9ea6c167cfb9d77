"""Optimize engine against the TensorFlow tutorial's loop, side by side in one process.

    python -m benchmarks.optimize [--data data/heldout] [--tutorial_steps 1000] [--max_dim 512]
    python -m benchmarks.optimize --pairs 6 [--data data/heldout]   # over pairs not tuned on

On one held-out photo and painting (not in the repository: `--data`, benchmarks/heldout.py;
`--content` and `--style` take other files), the style scaled to the content's longest side
as both loops see it:
  1. the tutorial loop: float32 VGG19, the tutorial's Gram (a float32 einsum), Adam(lr 0.02,
     beta1 0.99, eps 0.1), clipped, at full size;
  2. this engine with its defaults, run until it reaches the tutorial loop's final loss;
  3. ms per Adam step of both, interleaved, at full size;
  4. ms per loss-and-gradient evaluation of the engine with and without XLA (`jit_compile`).
Both use the same loss (the tutorial's layers, weights and normalisation). Prints tables
with the ratios; the targets are time-to-loss <= 1/8 and Adam step <= 0.7x.

With `--pairs N`: 1 and 2 on each of N held-out pairs other than the one the defaults were
tuned on (benchmarks.quality's pairs, in order), the tutorial loop and the engine side by side
on each; a row per pair (time-to-loss ratio, the engine's full-size steps and loss-and-gradient
evaluations, the float32 check of its image), then the median and the worst ratio. Targets:
median <= 1/8, worst <= 1/4, every pair reaching the loss (float32 check within 1%).
A pair takes 20-30 minutes, so each row is also appended to `--record` (JSON lines) with the
engine's code and the machine: run again after a stop, and the pairs measured by the same code
on the same kind of machine are read back (marked so) instead of measured again;
`--from_pair K` measures from the K-th pair on.

Results, dated and with the machine: benchmarks/RESULTS.md, "Optimize engine".
"""

from style_tf import cli  # noqa: I001 - first: silences TensorFlow's start-up

import dataclasses
import hashlib
import json
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from absl import flags

from benchmarks import heldout
from benchmarks.quality import heldout_pairs
from style_tf import images, optimize, vgg
from style_tf.errors import user_errors_exit_2

CONTENT = "train_content/lxqt-themes/Valendas.jpg"  # The held-out pair, under --data.
STYLE = "train_style/gcompris-details/Gogh4_background.jpg"


def _define_flags() -> None:
    flags.DEFINE_string("data", str(heldout.DEFAULT_DATA), "Folder of the held-out images of "
                        "benchmarks/heldout.txt, under the names listed there.")
    flags.DEFINE_string("content", None, f"Photo (default: --data's {CONTENT}).")
    flags.DEFINE_string("style", None, f"Style (default: --data's {STYLE}).")
    flags.DEFINE_integer("tutorial_steps", 1000, "Steps of the tutorial loop (1000 in the tutorial).")
    flags.DEFINE_integer("max_dim", 512, "Longest side.")
    flags.DEFINE_integer("timing_steps", 10, "Adam steps timed per side for ms/step.")
    flags.DEFINE_integer("pairs", 0, "Held-out pairs to measure time-to-loss on (0: the tuned pair, "
                         "with the step timings).")
    flags.DEFINE_integer("from_pair", 0, "With --pairs: measure from this pair on, then wrap round "
                         "(the order of the table stays).")
    flags.DEFINE_string("record", "runs/optimize_pairs.jsonl", "With --pairs: JSON lines, a pair's row "
                        "each, read back for the same engine code and kind of machine ('' : none).")


def tutorial_gram(features, mask=None):
    """The tutorial's Gram: a float32 einsum over positions, differentiated as written."""
    del mask  # The benchmark has no masks.
    features = tf.cast(features, tf.float32)
    positions = tf.cast(tf.shape(features)[1] * tf.shape(features)[2], tf.float32)
    return tf.einsum("bijc,bijd->bcd", features, features) / positions


def tutorial_total_variation(image):
    """The tutorial's total variation, `tf.image.total_variation`, differentiated as written."""
    return tf.reduce_sum(tf.image.total_variation(image))


class TutorialProblem(optimize.Problem):
    """The engine's loss computed as the tutorial computes it: float32, the tutorial's Gram
    and total variation."""

    gram = staticmethod(tutorial_gram)
    total_variation = staticmethod(tutorial_total_variation)

    def __init__(self, content, style):
        config = optimize.OptimizeConfig(precision="float32", optimizer="adam", scales=())
        super().__init__(optimize.feature_model_for(config), config, content, [style], [1.0])


def adam(start):
    """The tutorial's optimizer over a variable holding `start`."""
    variable = tf.Variable(start[None])
    opt = keras.optimizers.Adam(0.02, beta_1=0.99, epsilon=0.1)
    opt.build([variable])
    return variable, opt


def tutorial_loop(content, style, steps):
    """The tutorial's loop from the content image: returns (final loss, seconds, losses)."""
    log, t0 = [], time.time()
    problem = TutorialProblem(content, style)
    variable, opt = adam(content)
    for _ in range(steps):
        loss, _ = problem.adam_step(variable, opt)
        log.append((time.time() - t0, float(loss)))
    return log[-1][1], log[-1][0], log


class Counted:
    """Counts the engine's loss-and-gradient evaluations while it is entered (an Adam step is one)."""

    def __enter__(self):
        self.calls, self.originals = 0, (optimize.Problem.value_and_grad, optimize.Problem.adam_step)
        value_and_grad, adam_step = self.originals

        def counted(problem, image):
            self.calls += not tf.inside_function()  # Not when an Adam step's trace calls it.
            return value_and_grad(problem, image)

        def counted_step(problem, image, optimizer):
            self.calls += 1
            return adam_step(problem, image, optimizer)

        optimize.Problem.value_and_grad, optimize.Problem.adam_step = counted, counted_step
        return self

    def __exit__(self, *exc):
        optimize.Problem.value_and_grad, optimize.Problem.adam_step = self.originals


def engine_to_loss(content, style, target):
    """Engine defaults: the coarse scales as configured, then the final scale until loss <= target.

    Returns (seconds to target or inf, steps, final image, full-size steps, full-size
    loss-and-gradient evaluations)."""
    defaults = optimize.OptimizeConfig()
    dim = max(content.shape[:2])
    model = optimize.feature_model_for(defaults)
    t0, steps = time.time(), 0
    coarse = None
    for d in sorted(x for x in defaults.scales if x < dim):
        coarse = optimize.optimize(content, [style], dataclasses.replace(defaults, scales=()), d,
                                   model=model, init_image=coarse)
        steps += defaults.steps
    log = []

    def callback(step):
        log.append(time.time() - t0)
        return step.loss <= target

    final = dataclasses.replace(defaults, scales=(), steps=20 * defaults.steps)
    with Counted() as evaluations:
        image = optimize.optimize(content, [style], final, dim, model=model, init_image=coarse,
                                  callback=callback)
    reached = fp32_loss(content, style, image) <= target * 1.01
    return (log[-1] if reached else float("inf")), steps + len(log), image, len(log), evaluations.calls


def fp32_loss(content, style, image):
    """The tutorial objective, computed as the tutorial does, for an image (checks the bfloat16
    engine's claim)."""
    problem = TutorialProblem(content, style)  # Named: the compiled method holds it weakly.
    return float(problem.value_and_grad(tf.constant(image[None]))[0])


def adam_ms(problem, content, steps):
    variable, opt = adam(content)
    problem.adam_step(variable, opt)  # Trace.
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        float(problem.adam_step(variable, opt)[0])
        times.append(time.perf_counter() - t)
    return 1000 * float(np.median(times))


def eval_ms(problem, content, jit, steps):
    """ms per loss-and-gradient evaluation, compiled by `tf.function` alone or by XLA too."""

    def body(image):
        with tf.GradientTape() as tape:
            tape.watch(image)
            loss, _ = problem.losses(image)
        return loss, tape.gradient(loss, image)

    fn = tf.function(body, jit_compile=jit)
    image = tf.constant(content[None])
    float(fn(image)[0])  # Trace and compile.
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        float(fn(image)[0])
        times.append(time.perf_counter() - t)
    return 1000 * float(np.median(times))


def load_pair(content_path, style_path, max_dim: int):
    """The content at `max_dim` and the style at the content's longest side, as both loops see them."""
    content = images.load_image(content_path, max_dim=max_dim)
    style = optimize.style_at(images.load_image(style_path), content.shape[:2], optimize.OptimizeConfig())
    return content, style


ENGINE_CODE = ("style_tf/optimize.py", "style_tf/lbfgs.py", "style_tf/losses.py", "style_tf/vgg.py",
               "benchmarks/optimize.py")


def conditions(f) -> dict:
    """What a recorded row must share with this run to be read back: the engine's code (a
    digest of its files), the machine's CPU and arithmetic, the settings."""
    root = Path(__file__).resolve().parent.parent
    code = hashlib.sha256(b"".join((root / name).read_bytes() for name in ENGINE_CODE)).hexdigest()[:16]
    info = Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []
    field = {line.split(":", 1)[0].strip(): line.split(":", 1)[1].strip() for line in info if ":" in line}
    bf16 = [f for f in ("amx_bf16", "avx512_bf16") if f in field.get("flags", "").split()]
    # A virtual machine's model name can be as vague as "AMD EPYC": family and model tell them apart.
    cpu = " ".join([field.get("model name", "unknown"), f"family {field.get('cpu family', '?')}",
                    f"model {field.get('model', '?')}", *bf16])
    return {"code": code, "cpu": cpu, "dtype": vgg.dtype_policy("auto") or "float32",
            "tutorial_steps": f.tutorial_steps, "max_dim": f.max_dim}


def recorded(path: str, keep: dict) -> dict:
    """{(content name, style name): row} of the rows of `path` measured under `keep`."""
    if not path or not Path(path).exists():
        return {}
    rows = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
    return {tuple(r["pair"]): r for r in rows if all(r.get(k) == v for k, v in keep.items())}


def over_pairs(f) -> None:
    """Time-to-loss on `f.pairs` held-out pairs other than the tuned one, a row each."""
    tuned = (Path(CONTENT).name, Path(STYLE).name)
    pairs = [(c, s) for c, s in heldout_pairs(f.pairs + 1, f.data) if (c.name, s.name) != tuned][:f.pairs]
    keep = conditions(f)
    done, started = recorded(f.record, keep), time.strftime("%Y-%m-%d %H:%M:%S")
    print(f"engine code {keep['code']}, {keep['cpu']}, {keep['dtype']}; rows marked * were measured by "
          f"an earlier run of this code on this kind of machine ({f.record})\n")
    order = [(i + f.from_pair) % len(pairs) for i in range(len(pairs))]
    for i in order:
        content_path, style_path = pairs[i]
        if (content_path.name, style_path.name) not in done:
            content, style = load_pair(content_path, style_path, f.max_dim)
            target, tutorial_s, _ = tutorial_loop(content, style, f.tutorial_steps)
            ours_s, _, image, steps, evaluations = engine_to_loss(content, style, target)
            row = dict(keep, pair=[content_path.name, style_path.name], size=list(content.shape[1::-1]),
                       target=target, tutorial_s=tutorial_s, engine_s=ours_s, steps=steps,
                       evaluations=evaluations, check=fp32_loss(content, style, image) / target,
                       date=time.strftime("%Y-%m-%d %H:%M:%S"))
            done[tuple(row["pair"])] = row
            print(f"measured {row['pair']}: ratio {ours_s / tutorial_s:.3f}", flush=True)
            if f.record:
                Path(f.record).parent.mkdir(parents=True, exist_ok=True)
                with open(f.record, "a") as out:
                    out.write(json.dumps(row) + "\n")
    print(f"| pair | size | tutorial ({f.tutorial_steps} Adam steps) | engine | ratio | full-size steps, "
          "evaluations | float32 loss / tutorial's |\n|---|---|---|---|---|---|---|")
    ratios = []
    for content_path, style_path in pairs:
        row = done[(content_path.name, style_path.name)]
        mark = "" if row["date"] >= started else "*"
        ratios.append(row["engine_s"] / row["tutorial_s"])
        print(f"| {mark}{row['pair'][0]} x {row['pair'][1]} | {row['size'][0]}x{row['size'][1]} | "
              f"{row['tutorial_s']:.1f} s | {row['engine_s']:.1f} s | {ratios[-1]:.3f} | {row['steps']}, "
              f"{row['evaluations']} | {row['check']:.4f} |", flush=True)
    print(f"\nmedian ratio {np.median(ratios):.3f} (target <= 0.125), worst {max(ratios):.3f} "
          f"(target <= 0.25); inf: the loss was not reached")


@user_errors_exit_2
def main(argv) -> int:
    del argv
    f = flags.FLAGS
    if f.pairs:
        over_pairs(f)
        return 0
    content_path = f.content or heldout.path(f.data, CONTENT)
    style_path = f.style or heldout.path(f.data, STYLE)
    content, style = load_pair(content_path, style_path, f.max_dim)
    print(f"content {Path(content_path).name} {content.shape[1]}x{content.shape[0]}, "
          f"style {Path(style_path).name}")
    target, tutorial_s, _ = tutorial_loop(content, style, f.tutorial_steps)
    ours_s, our_steps, image, _, _ = engine_to_loss(content, style, target)
    check = fp32_loss(content, style, image)
    # Interleave the two step timings so machine noise hits both.
    ours = optimize.OptimizeConfig(optimizer="adam", scales=())
    problems = {"tutorial": TutorialProblem(content, style),
                "ours": optimize.Problem(optimize.feature_model_for(ours), ours, content, [style], [1.0])}
    ms = {name: [] for name in problems}
    for _ in range(2):
        for name, problem in problems.items():
            ms[name].append(adam_ms(problem, content, f.timing_steps))
    tut_ms, our_ms = min(ms["tutorial"]), min(ms["ours"])
    print("\n| measure | tutorial loop | this engine | ratio | target |\n|---|---|---|---|---|")
    print(f"| time to the tutorial's final loss {target:.4g} | {tutorial_s:.1f} s "
          f"({f.tutorial_steps} Adam steps) | {ours_s:.1f} s ({our_steps} L-BFGS steps) | "
          f"{ours_s / tutorial_s:.3f} | <= 0.125 |")
    print(f"| ms per Adam step at full size | {tut_ms:.0f} | {our_ms:.0f} | {our_ms / tut_ms:.3f} | <= 0.7 |")
    print(f"\nfloat32 loss of the engine's image: {check:.4g} (target {target:.4g})")
    print("\n| ms per loss-and-gradient evaluation | tf.function | with XLA (jit_compile) |\n|---|---|---|")
    for precision in ("bfloat16", "float32"):
        config = optimize.OptimizeConfig(precision=precision)
        problem = optimize.Problem(optimize.feature_model_for(config), config, content, [style], [1.0])
        plain, xla = (eval_ms(problem, content, jit, f.timing_steps) for jit in (False, True))
        print(f"| engine, {precision} | {plain:.0f} | {xla:.0f} |")
    return 0


if __name__ == "__main__":
    cli.run(main, _define_flags)
