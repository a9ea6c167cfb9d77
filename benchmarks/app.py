"""The web app against the library, side by side in one run, warm.

    python -m benchmarks.app [--size 512] [--rounds 5] [--optimize_size 512]

1. adain at `--size`: in headless Chromium, on the page of `python -m style_tf.app` (a
   subprocess, as a user starts it) with the photo and painting already there, a click on
   Stylize until the result is shown (decoded in the page); against `stylize.stylize()` of the
   same files in this process, PNG written. Rounds alternate; the median of each side counts.
   Target: the page within 1.5x the library.
2. optimize at `--optimize_size` (defaults, so a 320 px scale first): a click on Stylize until
   the page shows its first progress image, against the library's first 10 steps
   (`optimize.optimize` with its VGG built, from the call to the 10th step). The page's run is
   stopped there. Target: the first image within the time of the 10 steps.
Needs Debian's Chromium at /usr/bin/chromium (`apt-get install chromium`).
"""

from style_tf import cli  # noqa: I001 - first: silences TensorFlow's start-up

import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from absl import flags

from style_tf import images, optimize, stylize
from style_tf.errors import StyleError, user_errors_exit_2
from style_tf.paths import EXAMPLES

PHOTO = EXAMPLES / "content" / "astronaut.png"  # 512x512, with a face: the face pass runs on both sides.
STYLE = EXAMPLES / "style" / "Van_Gogh_The_Night_Cafe_background.jpg"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SHOWN = "(img => img && img.complete && img.naturalWidth > 0 && img.src != {old!r})" \
        "(document.querySelector('#result img'))"


def _define_flags() -> None:
    flags.DEFINE_integer("size", 512, "adain: longest side of the output.")
    flags.DEFINE_integer("rounds", 5, "adain: alternating rounds per side.")
    flags.DEFINE_integer("optimize_size", 512, "optimize: longest side of the output.")


def start_app(folder: Path) -> tuple[subprocess.Popen, str]:
    """`python -m style_tf.app` on a free port; (process, address)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "GRADIO_TEMP_DIR": str(folder / "gradio")}
    proc = subprocess.Popen([sys.executable, "-m", "style_tf.app", f"--port={port}"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True).start()
    while not any("open http" in line for line in lines):
        if proc.poll() is not None:
            raise StyleError("the app did not start: " + "".join(lines)[-500:])
        time.sleep(0.2)
    return proc, re.search(r"open (http\S+)", "".join(lines)).group(1)


def click_until(page, done_js: str) -> float:
    """Seconds from a click on Stylize until `done_js` holds in the page."""
    start = time.perf_counter()
    page.locator("#run").click()
    page.wait_for_function(done_js, timeout=600_000, polling=20)
    return time.perf_counter() - start


def page_adain(page) -> float:
    shown = page.locator("#result img")
    old = shown.first.get_attribute("src") if shown.count() else ""
    return click_until(page, SHOWN.format(old=old or ""))


def library_adain(size: int, out: Path) -> float:
    start = time.perf_counter()
    stylize.stylize(stylize.StylizeConfig(content=str(PHOTO), styles=(str(STYLE),), output=str(out),
                                          max_dim=size, progress=False))
    return time.perf_counter() - start


def set_size(page, size: int) -> None:
    box = page.locator("#size input[type=number]")
    box.fill(str(size))
    box.press("Enter")


def library_ten_steps(size: int) -> float:
    """Seconds from `optimize.optimize`'s call to its 10th step, its VGG built beforehand."""
    config = optimize.OptimizeConfig()
    model = optimize.feature_model_for(config)
    content, style = images.load_image(PHOTO, max_dim=size), images.load_image(STYLE, max_dim=size)
    start, seen = time.perf_counter(), {}

    def callback(step):
        if step.total_step == 10:
            seen["t"] = time.perf_counter() - start
            return True  # Stop there.

    optimize.optimize(content, [style], config, size, model=model, callback=callback)
    return seen["t"]


def page_first_progress(page) -> float:
    seconds = click_until(page, "document.querySelector('#status textarea').value.startsWith('step')")
    page.locator("#stop").click()
    page.wait_for_function("document.querySelector('#status textarea').value.startsWith('stopped')",
                           timeout=600_000)
    return seconds


@user_errors_exit_2
def main(argv) -> int:
    from playwright.sync_api import sync_playwright

    f = flags.FLAGS
    folder = Path(tempfile.mkdtemp(prefix="bench_app_"))
    proc, url = start_app(folder)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1050})
            page.goto(url)
            page.locator("#content input[type=file]").set_input_files(str(PHOTO))
            page.wait_for_selector("#content img")
            set_size(page, f.size)
            page_adain(page), library_adain(f.size, folder / "lib.png")  # Warm-up: compiles.
            web, lib = [], []
            for _ in range(f.rounds):
                web.append(page_adain(page))
                lib.append(library_adain(f.size, folder / "lib.png"))
            page_s, lib_s = statistics.median(web), statistics.median(lib)
            listed = [", ".join(f"{t:.2f}" for t in side) for side in (web, lib)]
            h, w = images.load_image(PHOTO, max_dim=f.size).shape[:2]
            print(f"adain, {PHOTO.name} at {w}x{h} px, median of {f.rounds}: page {page_s:.2f} s (click to "
                  f"shown), library stylize() {lib_s:.2f} s: {page_s / lib_s:.2f}x (target <= 1.5x); "
                  f"page {listed[0]}; library {listed[1]}")
            page.get_by_label("optimize").check()
            set_size(page, f.optimize_size)
            page_first_progress(page)  # Warm-up: the app builds its VGG once per settings.
            first, ten = page_first_progress(page), library_ten_steps(f.optimize_size)
            print(f"optimize, {PHOTO.name} at {f.optimize_size} px (a 320 px scale first): first progress "
                  f"image shown {first:.2f} s after the click; the library's first 10 steps {ten:.2f} s: "
                  f"{first / ten:.2f}x (target <= 1x)")
            browser.close()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    return 0


if __name__ == "__main__":
    cli.run(main, _define_flags)
