"""The web app: its settings in-process, then a real server (a subprocess, as a user starts it)
driven by headless Chromium and by Gradio's client.

The browser is Debian's Chromium (`apt-get install chromium`; .ci/run installs it), driven by
Playwright's driver: Playwright's own browser download needs the network. Without it the
browser tests are skipped, saying so. `STYLE_TF_APP_SCREENSHOT=<file.png>` keeps a screenshot
of the page with its result (examples/make_gallery.sh makes the README's).
"""

import dataclasses
import io
import os
import re
import shlex
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from absl import flags
from PIL import Image

from style_tf import app, cli, images, paths, run, student
from style_tf.errors import StyleError
from style_tf.paths import EXAMPLES

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
# Chromium in a container without a GPU, a sandbox or the network: no first-run, sync or update
# traffic (nothing but the app may be asked for anything).
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  # A synthetic camera (a moving pattern), allowed without asking: the live tab.
                  "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]
PHOTO = EXAMPLES / "content" / "chelsea.png"
SCREENSHOT = os.environ.get("STYLE_TF_APP_SCREENSHOT")
SIZE = 384 if SCREENSHOT else 128  # Output side in these tests: small, for a 2-core CPU.


def request(**changed) -> app.Request:
    values = dict(content=str(PHOTO), style=str(EXAMPLES / "style" / "kandinky.png"), style2=None,
                  blend=0.5, method="adain", alpha=1.0, max_dim=SIZE, preserve_color="none", face=True,
                  steps=100, style_weight=1e-2)
    return app.Request(**{**values, **changed})


@pytest.mark.parametrize("changed", [
    dict(),
    dict(alpha=0.25, face=False, preserve_color="luminance", style2=str(EXAMPLES / "style" / "GreatWave.png"),
         blend=0.25),
    dict(method="optimize", steps=7, style_weight=0.5, max_dim=256),
    dict(method="mobile", alpha=0.5, face=False),
], ids=["adain", "adain-blend", "optimize", "mobile"])
def test_the_command_shown_rebuilds_the_same_settings(changed, tmp_path):
    upload = tmp_path / "gradio" / "cat.png"  # Gradio keeps an upload's name in a folder of its own.
    upload.parent.mkdir()
    upload.write_bytes(PHOTO.read_bytes())
    config = request(content=str(upload), **changed).config()
    words = shlex.split(app.command(config))
    assert words[:3] == ["python", "-m", "style_tf.run"]
    values = flags.FlagValues()
    cli.define_flags(type(config), *(e.Config for e in app.stylize.ENGINES.values()), flag_values=values)
    values(["run", *words[3:]])
    # The upload by its name, the bundled paintings as a checkout spells them.
    names = {"content": "cat.png", "styles": tuple(f"examples/style/{Path(s).name}" for s in config.styles)}
    assert run.config_from_flags(values) == dataclasses.replace(config, **names)


def test_the_page_offers_the_engines_that_run_here():
    assert app.usable("adain") and app.usable("optimize")
    assert app.usable("mobile") == (paths.models_dir() / student.WEIGHTS_FILE).is_file()


def test_a_request_without_a_photo_or_painting_is_a_user_error():
    with pytest.raises(StyleError, match="choose a photo"):
        request(content=None).config()
    with pytest.raises(StyleError, match="choose a painting"):
        request(style=None).config()
    with pytest.raises(StyleError, match="port"):
        app.AppConfig(port=70000)


# --- a running server -------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`python -m style_tf.app` in a subprocess; its output kept in `lines`."""

    def __init__(self, tmp: Path, *args):
        env = {**os.environ, "GRADIO_TEMP_DIR": str(tmp / "gradio"), "TF_CPP_MIN_LOG_LEVEL": "3"}
        self.proc = subprocess.Popen([sys.executable, "-m", "style_tf.app", f"--port={_free_port()}", *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        self.lines = []
        threading.Thread(target=lambda: self.lines.extend(self.proc.stdout), daemon=True).start()
        deadline = time.time() + 180
        while not any("open http" in line for line in self.lines):
            assert self.proc.poll() is None, "".join(self.lines)
            assert time.time() < deadline, "".join(self.lines)
            time.sleep(0.2)
        self.url = re.search(r"open (http\S+)", "".join(self.lines)).group(1)

    def rss_mb(self) -> float:
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        return int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1)) / 1024

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = Server(tmp_path_factory.mktemp("app"), "--max_size=512", "--max_upload_mb=1", "--progress_every=2")
    yield s
    s.stop()  # SIGTERM: it ends as on Ctrl-C, its temporary files removed.
    assert s.proc.returncode == 0 and "Traceback" not in "".join(s.lines), "".join(s.lines)[-2000:]


def test_the_server_listens_on_localhost_only_by_default(server):
    assert server.url.startswith("http://127.0.0.1:")
    port = int(server.url.rstrip("/").rsplit(":", 1)[1])
    socket.create_connection(("127.0.0.1", port), timeout=2).close()
    other = socket.gethostbyname(socket.gethostname())
    if other.startswith("127."):
        pytest.skip("this machine has no address but loopback to try")
    with pytest.raises(OSError):  # Not on this machine's network address.
        socket.create_connection((other, port), timeout=2).close()


def _client(server):
    from gradio_client import Client

    return Client(server.url, verbose=False)


def _api_args(path, **changed):
    from gradio_client import handle_file

    r = request(**changed)
    return [handle_file(str(path)), handle_file(r.style), None, r.blend, r.method, r.alpha, r.max_dim,
            r.preserve_color, r.face, r.steps, r.style_weight]


def _pixels(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"), np.float32) / 255


def test_ten_requests_at_once_all_complete_and_memory_settles(server, tmp_path):
    client = _client(server)
    first, status, line = client.predict(*_api_args(PHOTO), api_name="/stylize")  # Warm-up.
    assert status.startswith("done") and "--style=examples/style/kandinky.png" in line
    warm = server.rss_mb()
    jobs = [client.submit(*_api_args(PHOTO, alpha=a), api_name="/stylize") for a in np.linspace(0, 1, 10)]
    results = [job.result(timeout=120) for job in jobs]
    assert all(status.startswith("done") for _, status, _ in results)
    outputs = [_pixels(path) for path, _, _ in results]
    assert outputs[0].shape == _pixels(first).shape
    assert np.abs(outputs[0] - outputs[-1]).mean() > 0.02  # Alpha reached the engine.
    assert server.proc.poll() is None
    after = server.rss_mb()
    assert after < 1.2 * warm, f"RSS {warm:.0f} MB after the warm-up request, {after:.0f} MB after ten more"


def test_a_bad_file_through_the_api_is_one_line_and_the_server_goes_on(server, tmp_path):
    from gradio_client.exceptions import AppError

    broken = tmp_path / "broken.png"
    broken.write_bytes(PHOTO.read_bytes()[:300])
    client = _client(server)
    with pytest.raises(AppError, match=r"^broken\.png: cannot decode image \(.*\)$"):
        client.predict(*_api_args(broken), api_name="/stylize")
    _, status, _ = client.predict(*_api_args(PHOTO), api_name="/stylize")
    assert status.startswith("done")


# --- in a browser -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium): browser tests skipped")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, server):
    """The app's page, loaded; every request it makes elsewhere than the app is recorded."""
    context = browser.new_context(viewport={"width": 1400, "height": 1050}, permissions=["camera"])
    page = context.new_page()
    page.elsewhere = []
    page.on("request", lambda r: None if r.url.startswith((server.url, "data:", "blob:"))
            else page.elsewhere.append(r.url))
    page.goto(server.url)
    page.wait_for_selector("#run")
    yield page
    context.close()


def _upload(page, target: str, name: str, data: bytes, wait: bool = True):
    """Sets a file of the page's image input `target`; with `wait`, until the page holds it."""
    page.locator(f"#{target} input[type=file]").set_input_files(
        files=[{"name": name, "mimeType": "image/png", "buffer": data}])
    if wait:  # Uploaded and shown (broken, for a file that is not an image): its value now.
        page.wait_for_function(f"[...document.querySelectorAll('#{target} img')].some("
                               f"img => img.src.endsWith('/{name}'))", timeout=30_000)


def _wait_status(page, prefix: str, timeout: float = 60):
    page.wait_for_function(f"document.querySelector('#status textarea').value.startsWith({prefix!r})",
                           timeout=timeout * 1000)
    return page.locator("#status textarea").input_value()


def _result(page) -> np.ndarray:
    src = page.locator("#result img").first.get_attribute("src")
    return _pixels(io.BytesIO(page.request.get(src).body()))


def test_in_a_browser_upload_pick_slide_run_and_a_bad_upload(page):
    _photo_at(page, SIZE)
    page.locator("#gallery button.thumbnail-item").nth(2).click()  # Kandinsky.
    page.wait_for_function("document.querySelector('#style img').src.includes('kandinky')")
    slider = page.locator("#alpha input[type=range]")
    box = slider.bounding_box()
    page.mouse.click(box["x"] + 0.5 * box["width"], box["y"] + box["height"] / 2)  # Alpha about 0.5:
    status = _wait_status(page, "done")  # the adain result follows the slider.
    first = _result(page)
    alpha = float(page.locator("#alpha input[type=number]").input_value())
    photo = images.load_image(PHOTO, max_dim=SIZE)
    assert 0.3 < alpha < 0.7 and f"({photo.shape[1]}x{photo.shape[0]} px)" in status
    assert first.shape == photo.shape and np.abs(first - photo).mean() > 0.03  # Stylized, not the photo.
    line = page.locator("#command textarea").input_value()
    assert f"--alpha={alpha:g}" in line and "--content=cat.png" in line
    assert "--style=examples/style/kandinky.png" in line  # A bundled painting as a checkout spells it.
    shown = page.locator("#result img").first.get_attribute("src")
    box = page.locator("#alpha input[type=number]")
    box.fill("1")  # Typed, and the box left: the result follows too.
    box.press("Tab")
    page.wait_for_function(f"document.querySelector('#result img').src != {shown!r}", timeout=60_000)
    assert np.abs(_result(page) - first).mean() > 0.01  # Full style now.
    assert "--alpha" not in page.locator("#command textarea").input_value()  # 1 is run's default.
    if SCREENSHOT:
        page.screenshot(path=SCREENSHOT, full_page=True)
    for name, data, message in [
            ("broken.png", PHOTO.read_bytes()[:300], "broken.png: cannot decode image"),
            ("notes.png", b"not a picture\n" * 10, "notes.png: not an image PIL can read")]:
        _upload(page, "content", name, data)
        page.locator("#run").click()
        toast = page.locator(".toast-body", has_text=message)
        toast.wait_for(timeout=120_000)
        assert len(toast.inner_text().strip().splitlines()) <= 3  # "Error", "x", the one line.
        toast.locator("button").first.click()
    assert "Traceback" not in page.inner_text("body")
    assert page.elsewhere == [], page.elsewhere  # Nothing fetched from the network.


def test_in_a_browser_an_upload_over_the_limit_is_refused(page):
    pixels = np.random.default_rng(0).uniform(0, 1, (700, 700, 3))  # About 1.5 MB as a PNG.
    data = images.encode_image(pixels, "noise.png")
    assert len(data) > 1024 * 1024
    _upload(page, "content", "noise.png", data, wait=False)  # Refused.
    page.get_by_text(re.compile("exceed|too large|maximum", re.I)).first.wait_for(timeout=30_000)
    assert "Traceback" not in page.inner_text("body")


def _open(browser, server):
    """A page of the app in a browser context (a session) of its own."""
    page = browser.new_context(viewport={"width": 1400, "height": 1050}).new_page()
    page.goto(server.url)
    page.wait_for_selector("#run")
    return page


def _photo_at(page, size: int):
    _upload(page, "content", "cat.png", PHOTO.read_bytes())
    box = page.locator("#size input[type=number]")
    box.fill(str(size))
    box.press("Tab")


def test_in_a_browser_optimize_shows_progress_queues_others_and_stop_keeps_the_image(page, browser, server):
    _photo_at(page, SIZE)
    page.get_by_label("optimize").check()
    steps = page.locator("#steps input[type=number]")
    steps.fill("500")  # Enough to be running still when Stop is clicked.
    steps.press("Enter")
    page.locator("#run").click()
    _wait_status(page, "step", timeout=90)  # A progress image, while it works.
    assert page.locator("#result img").count() == 1
    other = _open(browser, server)  # Another visitor meanwhile: in line, told so.
    _photo_at(other, 64)
    other.locator("#run").click()
    other.locator("#result", has_text=re.compile(r"queue: 1/1")).wait_for(timeout=30_000)
    page.locator("#stop").click()
    status = _wait_status(page, "stopped", timeout=60)
    done = int(re.search(r"after (\d+) steps", status).group(1))
    assert 1 <= done < 500 and page.locator("#result img").count() == 1
    assert "--method=optimize" in page.locator("#command textarea").input_value()
    _wait_status(other, "done", timeout=60)  # Its turn came.
    other.context.close()


def test_in_a_browser_the_live_tab_stylizes_the_camera_and_shows_frames_per_second(page):
    page.get_by_role("tab", name="Live webcam (adain)").click()
    page.get_by_text("Click to Access Webcam").click()
    page.locator("#webcam button[aria-label='capture photo']").click()  # Starts streaming.
    rate = "/[0-9.]+ frames\\/s at [0-9]+x[0-9]+/"
    page.wait_for_function(f"{rate}.test(document.querySelector('#fps textarea').value)", timeout=90_000)
    size = re.search(r"at (\d+)x(\d+)", page.locator("#fps textarea").input_value()).groups()
    assert max(int(v) for v in size) == 256  # --live_size's default.
    live = _pixels(io.BytesIO(page.request.get(page.locator("#live img").first.get_attribute("src")).body()))
    assert live.shape[:2] == (int(size[1]), int(size[0])) and live.std() > 0.02  # A stylized frame.
