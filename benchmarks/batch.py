"""`python -m style_tf.batch` against `python -m style_tf.run`'s folder mode, in one run.

    python -m benchmarks.batch [--photos folder] [--count 200] [--max_dim 256] [--workers 1,2]
        [--rounds 1] [--offline]

The same photos (those of `--photos`, or `--count` random crops of examples/content written
to a temporary folder, said on stdout), one style, the engines' defaults, at `--max_dim`:
- run: `python -m style_tf.run --content <folder> --output <new folder>`;
- batch, N: `python -m style_tf.batch --input <folder> --output <new folder>` on the
  DirectRunner (its FnApiRunner) with N workers (1: in this process; more: processes).
Each is a whole command, timed from start to exit (TensorFlow's start-up and the model's
loading included, as a user waits for them), into a new folder; rounds alternate between the
commands so machine noise hits all; the best round of each counts. `--offline` runs every
command with the network off (`unshare -n`, as root on Linux: a network namespace with only
the loopback up, over which the worker processes talk to the runner).
Target: batch >= 0.9x run's images/s, with the number of workers fastest here.
"""

from style_tf import cli  # noqa: I001 - first: silences TensorFlow's start-up

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from absl import flags
from PIL import Image

from style_tf.errors import StyleError, user_errors_exit_2
from style_tf.paths import EXAMPLE_STYLE, EXAMPLES


def _define_flags() -> None:
    flags.DEFINE_string("photos", None, "Folder of photos (default: --count random crops of "
                        "examples/content).")
    flags.DEFINE_integer("count", 200, "Random crops to make when --photos is not given.")
    flags.DEFINE_integer("max_dim", 256, "Longest side of the outputs.")
    flags.DEFINE_list("workers", ["1", "2"], "Worker counts of the batch pipeline to time.")
    flags.DEFINE_integer("rounds", 1, "Alternating rounds per command.")
    flags.DEFINE_bool("offline", False, "Run the commands with the network off (unshare -n; Linux, root).")


def crops(folder: Path, count: int, seed: int = 0) -> None:
    """`count` JPEGs, random crops (a third to all of each side) of examples/content's photos."""
    rng = np.random.default_rng(seed)
    sources = [Image.open(p).convert("RGB") for p in sorted((EXAMPLES / "content").iterdir())]
    for i in range(count):
        img = sources[i % len(sources)]
        w, h = (int(rng.uniform(img.width / 3, img.width)), int(rng.uniform(img.height / 3, img.height)))
        x, y = int(rng.integers(0, img.width - w + 1)), int(rng.integers(0, img.height - h + 1))
        img.crop((x, y, x + w, y + h)).save(folder / f"crop{i:04d}.jpg", quality=92)


def timed(command: list[str], offline: bool) -> float:
    """Wall seconds of `command` (raises on failure)."""
    if offline:  # A network namespace of its own, with only the loopback (the workers talk over it).
        command = ["unshare", "-n", "sh", "-c", 'ip link set lo up && exec "$0" "$@"', *command]
    t = time.perf_counter()
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    r = subprocess.run(command, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - t
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited {r.returncode}:\n{r.stderr[-2000:]}")
    last = r.stdout.strip().splitlines()[-1][:160]
    print(f"  {seconds:6.1f} s  {' '.join(command[-6:])}\n          {last}")
    return seconds


@user_errors_exit_2
def main(argv) -> int:
    del argv
    f = flags.FLAGS
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if f.photos:
            photos = Path(f.photos)
            if not photos.is_dir():
                raise StyleError(f"--photos: {photos} is not a folder")
        else:
            photos = tmp / "photos"
            photos.mkdir()
            crops(photos, f.count)
            print(f"{f.count} random crops of examples/content (no --photos given)")
        count = sum(1 for p in photos.iterdir() if p.is_file() and not p.name.startswith("."))
        common = [f"--max_dim={f.max_dim}"]
        commands = {"run": lambda out: [sys.executable, "-m", "style_tf.run", f"--content={photos}",
                                        f"--style={EXAMPLE_STYLE}", f"--output={out}", "--noprogress",
                                        *common]}
        for n in map(int, f.workers):
            mode = "in_memory" if n == 1 else "multi_processing"
            commands[f"batch, {n} worker(s)"] = lambda out, n=n, mode=mode: [
                sys.executable, "-m", "style_tf.batch", f"--input={photos}", f"--styles={EXAMPLE_STYLE}",
                f"--output={out}", *common, f"--direct_num_workers={n}", f"--direct_running_mode={mode}"]
        best = {name: float("inf") for name in commands}
        for r in range(f.rounds):
            for i, (name, command) in enumerate(commands.items()):
                best[name] = min(best[name], timed(command(tmp / f"out_{r}_{i}"), f.offline))
        print(f"\n{count} photos at {f.max_dim} px, one style, engine defaults, "
              f"best of {f.rounds} round(s), whole commands{', network off' if f.offline else ''}\n")
        print("| command | wall s | images/s | vs run |\n|---|---|---|---|")
        for name, seconds in best.items():
            print(f"| {name} | {seconds:.1f} | {count / seconds:.2f} | {best['run'] / seconds:.2f}x |")
    return 0


if __name__ == "__main__":
    cli.run(main, _define_flags)
