"""`python -m style_tf.app`: a web page in front of the library (Gradio). flags -> AppConfig -> serve().

The page sends a photo (upload, paste, webcam snapshot or a bundled one) and one or two
paintings (a gallery of the bundled ones, or uploads) with the settings a person changes
(engine, alpha, size, colour, face pass; steps and style weight of optimize) to `stylize()`'s
own path, `stylize.stylize_image`, and shows the result as a PNG to download with the
equivalent `python -m style_tf.run` command. The optimize engine shows its image every few
steps and stops with the image so far; a live webcam tab stylizes frames with adain.

One heavy job runs at a time (Gradio's queue; the page shows its place in line); uploads are
size-limited and decoded by `images.load_image`, so a bad one is a one-line message in the
page. Gradio is the `[app]` extra: without it this entry point says so in one line.
"""

from style_tf import cli  # noqa: I001 - first: silences TensorFlow's start-up

import atexit
import dataclasses
import logging as std_logging
import os
import queue
import shutil
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from absl import flags, logging

from style_tf import images, paths, stylize, stylizer
from style_tf.errors import StyleError, user_errors_exit_2

# No call home: Gradio's usage analytics off before it is imported (the page works offline).
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
CONTENTS = images.list_images(paths.EXAMPLES / "content")  # The bundled photos, one click away.
STYLES = images.list_images(paths.EXAMPLES / "style")  # The bundled paintings of the gallery.
_HEAVY = "stylize"  # Gradio's concurrency group of every event that runs an engine.


@dataclasses.dataclass(frozen=True)
class AppConfig:
    """Where the web app listens and what it accepts."""

    host: str = "127.0.0.1"  # Address to listen on: 127.0.0.1 = this machine only, 0.0.0.0 = all networks.
    port: int = 7860  # Port to listen on (Gradio's usual one).
    share: bool = False  # Also serve through a public *.gradio.live link (Gradio's relay; needs the network).
    max_upload_mb: float = 20.0  # Larger uploads are refused before they are read.
    max_size: int = 1024  # Largest output side the page offers (the time of a result grows with its square).
    queue_size: int = 32  # Requests that may wait behind the one running; more are refused until one ends.
    progress_every: int = 5  # Optimize: steps between the images the page shows while it works.
    live_size: int = 256  # Longest side of the live webcam frames (the frames/s follow its square).

    def __post_init__(self):
        if not 0 < self.port < 65536:
            raise StyleError(f"port must be in 1..65535, got {self.port}")
        if self.max_upload_mb <= 0 or self.queue_size < 1 or self.progress_every < 1:
            raise StyleError("max_upload_mb, queue_size and progress_every must be positive")
        if self.max_size < 64 or self.live_size < 16:
            raise StyleError("max_size must be >= 64 and live_size >= 16")


@dataclasses.dataclass(frozen=True)
class Request:
    """What the page sends with a click on Stylize (file paths are Gradio's copies of uploads)."""

    content: str | None
    style: str | None
    style2: str | None
    blend: float  # Share of the second style, 0..1.
    method: str
    alpha: float
    max_dim: int
    preserve_color: str
    face: bool
    steps: int
    style_weight: float

    def config(self) -> stylize.StylizeConfig:
        """The library's settings for this request (raises StyleError on a missing image)."""
        if not self.content:
            raise StyleError("choose a photo first (upload one, or click a bundled one)")
        if not self.style:
            raise StyleError("choose a painting first (click one of the gallery, or upload one)")
        engine = stylize.ENGINES[self.method].Config
        if one_pass(self.method):
            settings = dict(alpha=self.alpha, face_size=engine().face_size if self.face else 0)
        else:
            settings = dict(steps=int(self.steps), style_weight=self.style_weight)
        styles, weights = (self.style,), ()
        if self.style2 and 0 < self.blend:
            styles, weights = (self.style, self.style2), (1.0 - self.blend, self.blend)
        return stylize.StylizeConfig(content=self.content, styles=styles, style_weights=weights,
                                     method=self.method, max_dim=int(self.max_dim),
                                     preserve_color=self.preserve_color, engine=engine(**settings))


def one_pass(method: str) -> bool:
    """Whether `method` is a network's single pass (adain, mobile), with alpha and the face pass."""
    return issubclass(stylize.ENGINES[method].Config, stylizer.NetworkConfig)


def usable(method: str) -> bool:
    """Whether `method` runs with its defaults here (a network's bundled weights are present)."""
    if not one_pass(method):
        return True
    try:
        stylize.ENGINES[method].Config().weights_file()
    except StyleError:
        return False
    return True


def command(config: stylize.StylizeConfig) -> str:
    """The `python -m style_tf.run` line that makes the same image from the same files."""
    shown = dataclasses.replace(config, content=_shown(config.content),
                                styles=tuple(_shown(s) for s in config.styles), progress=True)
    return cli.command_line("style_tf.run", shown, config.engine)


def _shown(path: str) -> str:
    """A bundled file as the checkout spells it (also Gradio's copy of one, picked in the page);
    an upload by its own name (Gradio keeps it)."""
    path = Path(path)
    bundled = next((p for p in [*CONTENTS, *STYLES] if p.name == path.name), None)
    if bundled and (path == bundled or path.read_bytes() == bundled.read_bytes()):
        return str(bundled.relative_to(paths.EXAMPLES.parent))
    return path.name


def _load(path: str, max_dim: int) -> np.ndarray:
    """`images.load_image`, its message naming the upload as the user named it."""
    try:
        return images.load_image(path, max_dim=max_dim)
    except StyleError as e:
        raise StyleError(str(e).replace(str(path), Path(path).name)) from None


class Studio:
    """The page's work: requests in, images out, one at a time (Gradio's queue sees to that)."""

    def __init__(self, config: AppConfig):
        self.config = config
        self.folder = Path(tempfile.mkdtemp(prefix="style_tf_app_"))  # Results until Gradio has them.
        atexit.register(shutil.rmtree, self.folder, ignore_errors=True)
        self.stops = {}  # Gradio session -> the `Job.stop` of its running optimisation.
        self.live_clock = {}  # Gradio session -> (time of its last live frame, frames/s).

    def warm_up(self) -> None:
        """Loads the adain models before the first visitor waits for them."""
        stylize.ENGINES["adain"](stylize.ENGINES["adain"].Config())

    def run(self, request: Request, session: str):
        """Yields (image, status, command line): optimize's progress, then the result as a PNG."""
        config = request.config()
        content = _load(config.content, config.max_dim)
        styles = [_load(s, config.engine.style_dim(config.max_dim)) for s in config.styles]
        stop = self.stops[session] = _Stop()
        start, line = time.time(), command(config)
        # A folder per request, gone when Gradio has its copy of the result (or the page closed):
        # the result, and what optimize leaves beside it when stopped.
        with tempfile.TemporaryDirectory(dir=self.folder) as work:
            job = stylize.Job(Path(work) / "stylized.png", single=True, progress=False, stop=stop)
            try:
                image = yield from self._stylize(config, content, styles, job, line)
            finally:
                stop.requested = True  # The page closed: the engine ends at its next step.
                self.stops.pop(session, None)
            images.save_image(job.output, image, note={"command": line})
            said = f"stopped: the image after {stop.steps} steps" if stop.clicked else "done"
            size = f"{image.shape[1]}x{image.shape[0]} px"
            yield str(job.output), f"{said} in {time.time() - start:.1f} s ({size})", line

    def _stylize(self, config, content, styles, job, line):
        """The engine in a thread; every `progress_every` steps its image is yielded."""
        engine = _engine(config.method, config.engine)
        if one_pass(config.method):  # Nothing to show on the way.
            return stylize.stylize_image(config, engine, content, styles, None, job)
        shown, done, result = queue.Queue(), threading.Event(), {}
        every = self.config.progress_every

        def on_step(step):
            job.stop.steps = step.total_step
            if step.total_step == 1 or step.total_step % every == 0:
                shown.put((step.image(), f"step {step.total_step} of about {_total_steps(config, content)}"))

        def work():
            try:
                result["image"] = stylize.stylize_image(config, engine, content, styles, None, job)
            except BaseException as e:  # noqa: BLE001 - handed to the request's thread.
                result["error"] = e
            done.set()

        job.on_step = on_step
        threading.Thread(target=work, daemon=True).start()
        while not (done.is_set() and shown.empty()):
            try:
                image, status = shown.get(timeout=0.1)
            except queue.Empty:
                continue
            yield image, status, line
        if "error" in result:
            raise result["error"]
        return result["image"]

    def stop(self, session: str) -> str:
        """The Stop button: the running optimisation returns its image so far."""
        stop = self.stops.get(session)
        if stop is None:
            return "nothing is running"
        stop.requested = stop.clicked = True
        return "stopping after this step..."

    def live(self, frame, request: Request, session: str):
        """One webcam frame stylized with adain at `live_size`; returns (image, frames/s)."""
        if frame is None:
            return None, ""
        config = dataclasses.replace(request, content="webcam").config()
        content = images.resize(images.from_pixels(frame), max_dim=config.max_dim, upscale=False)
        styles = [_load(s, config.max_dim) for s in config.styles]
        job = stylize.Job(self.folder / "live.png", single=True, progress=False, stop=_Stop())  # Unwritten.
        image = stylize.stylize_image(config, _engine("adain", config.engine), content, styles, None, job)
        now = time.time()
        last, rate = self.live_clock.get(session, (None, 0.0))
        if last is not None and now > last:  # Smoothed over a few frames.
            rate = 1.0 / (now - last) if not rate else 0.7 * rate + 0.3 / (now - last)
        self.live_clock[session] = (now, rate)
        return image, f"{rate:.1f} frames/s at {image.shape[1]}x{image.shape[0]}" if rate else "starting..."


class _Stop:
    """`Job.stop` of a page's request: `requested` ends the engine at its next step."""

    def __init__(self):
        self.requested = self.clicked = False
        self.steps = 0  # Steps done so far (optimize).


_ENGINES = {}  # (method, engine settings) -> engine: optimize's VGG is built once per settings.


def _engine(method: str, settings):
    if (method, settings) not in _ENGINES:
        if len(_ENGINES) > 4:  # Settings change with every steps or style weight tried.
            _ENGINES.clear()
        _ENGINES[method, settings] = stylize.ENGINES[method](settings)
    return _ENGINES[method, settings]


def _total_steps(config: stylize.StylizeConfig, content: np.ndarray) -> int:
    coarse = [d for d in getattr(config.engine, "scales", ()) if d < max(content.shape[:2])]
    return config.engine.steps * (len(set(coarse)) + 1)


# --- the page ------------------------------------------------------------------------------


def _gradio():
    try:
        import gradio
    except ImportError:
        raise StyleError("the web app needs Gradio: pip install 'style_tf[app]'") from None
    return gradio


def build(config: AppConfig):
    """The page: a queued `gr.Blocks` over a `Studio` (`serve` starts it)."""
    gr = _gradio()
    std_logging.getLogger("httpx").setLevel(std_logging.WARNING)  # Gradio's own requests, one a line.
    studio = Studio(config)
    studio.warm_up()
    with gr.Blocks(title="style_tf", analytics_enabled=False, delete_cache=(3600, 3600)) as demo:
        gr.Markdown("## style_tf: neural style transfer\nA photo, one or two paintings, Stylize.")
        with gr.Row():
            with gr.Column():
                with gr.Tab("Photo"):
                    content = _upload(gr, label="Photo", sources=["upload", "clipboard", "webcam"],
                                      elem_id="content", height=320)
                    gr.Examples([[str(p)] for p in CONTENTS], [content], label="Bundled photos")
                with gr.Tab("Live webcam (adain)"):
                    webcam = gr.Image(label="Webcam", sources=["webcam"], streaming=True, elem_id="webcam")
                    live = gr.Image(label="Live", interactive=False, elem_id="live")
                    fps = gr.Textbox(label="Speed", interactive=False, elem_id="fps")
                with gr.Row():
                    style = _upload(gr, label="Painting", value=str(paths.EXAMPLE_STYLE), elem_id="style",
                                    height=200)
                    style2 = _upload(gr, label="Second painting (optional)", elem_id="style2", height=200)
                gallery = gr.Gallery([str(p) for p in STYLES], label="Bundled paintings: a click picks one",
                                     columns=4, height=160, allow_preview=False, elem_id="gallery")
                target = gr.Radio(["painting", "second painting"], value="painting", label="A click sets")
                blend = gr.Slider(0, 1, 0.5, step=0.05, label="Blend: share of the second painting")
            with gr.Column():
                methods = [m for m in stylize.ENGINES if usable(m)]
                method = gr.Radio(methods, value="adain", label="Engine (optimize: minutes)")
                alpha_slider = gr.Slider(0, 1, 1, step=0.05, label="Alpha: style strength (adain)",
                                         elem_id="alpha")
                size = gr.Slider(64, config.max_size, min(512, config.max_size), step=32,
                                 label="Output size (longest side, px)", elem_id="size")
                colour = gr.Radio(["none", "luminance", "histogram"], value="none",
                                  label="Preserve the photo's colours")
                face = gr.Checkbox(True, label="Face pass (adain): faces stylized again, enlarged")
                with gr.Row(visible=False) as optimize_row:
                    steps = gr.Slider(1, 500, 100, step=1, label="Steps per scale (optimize)",
                                      elem_id="steps")
                    weight = gr.Number(1e-2, label="Style weight (optimize)", minimum=0)
                with gr.Row():
                    go = gr.Button("Stylize", variant="primary", elem_id="run")
                    stop = gr.Button("Stop (keeps the image so far)", elem_id="stop")
                result = gr.Image(label="Result (PNG)", type="filepath", format="png", interactive=False,
                                  buttons=["download", "fullscreen"], elem_id="result", height=420)
                status = gr.Textbox(label="Status", interactive=False, elem_id="status")
                line = gr.Textbox(label="The same from the command line", interactive=False,
                                  elem_id="command")
        form = [content, style, style2, blend, method, alpha_slider, size, colour, face, steps, weight]

        def run(content, style, style2, blend, method, alpha, max_dim, preserve_color, face, steps,
                style_weight, request: gr.Request, event: gr.EventData):  # Named as `Request`'s fields
            # (the API's parameter names).
            if event.target is alpha_slider and (not one_pass(method) or not content):
                yield gr.skip(), gr.skip(), gr.skip()  # The slider follows adain; optimize waits for a click.
                return
            asked = Request(content, style, style2, blend, method, alpha, max_dim, preserve_color, face,
                            steps, style_weight)
            try:
                yield from studio.run(asked, request.session_hash)
            except StyleError as e:
                raise gr.Error(str(e), print_exception=False) from None

        def live_frame(frame, style, style2, blend, alpha, preserve_color, request: gr.Request):
            asked = Request(None, style, style2, blend, "adain", alpha, config.live_size, preserve_color,
                            False, 0, 0.0)
            try:
                return studio.live(frame, asked, request.session_hash)
            except StyleError as e:
                return gr.skip(), f"error: {e}"

        def pick(which, event: gr.SelectData):
            chosen = str(STYLES[event.index])
            return (chosen, gr.skip()) if which == "painting" else (gr.skip(), chosen)

        def engine_changed(name):
            network = one_pass(name)  # Alpha and the face pass; optimize's steps and weight otherwise.
            return (gr.update(visible=not network), gr.update(interactive=network),
                    gr.update(interactive=network))

        def stop_clicked(request: gr.Request):
            return studio.stop(request.session_hash)

        outputs = [result, status, line]
        # "minimal": the place in line and a timer, without the full overlay's animation, which in a
        # browser without a GPU takes as much CPU as the engine it waits for (benchmarks/app.py).
        heavy = dict(concurrency_id=_HEAVY, show_progress="minimal")
        go.click(run, form, outputs, api_name="stylize", **heavy)
        alpha_slider.release(run, form, outputs, api_name=False, **heavy)
        stop.click(stop_clicked, None, status, api_name=False, queue=False)
        webcam.stream(live_frame, [webcam, style, style2, blend, alpha_slider, colour], [live, fps],
                      api_name=False, stream_every=0.2, time_limit=600, **heavy)
        gallery.select(pick, target, [style, style2], api_name=False, queue=False)
        method.change(engine_changed, method, [optimize_row, alpha_slider, face], api_name=False, queue=False)
    return demo.queue(default_concurrency_limit=1, max_size=config.queue_size)


def launch_options(config: AppConfig) -> dict:
    """`gr.Blocks.launch` settings: nothing fetched from the network (system fonts, no SSR, no
    MCP), uploads capped, the bundled examples servable."""
    import gradio as gr

    fonts = dict(font=["ui-sans-serif", "system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"])
    return dict(server_name=config.host, server_port=config.port, share=config.share, quiet=True,
                max_file_size=f"{config.max_upload_mb:g}mb", allowed_paths=[str(paths.EXAMPLES)],
                theme=gr.themes.Default(**fonts), ssr_mode=False, mcp_server=False, show_error=False,
                footer_links=["api"])


def _upload(gr, **options):
    """A gr.Image that hands an uploaded file over undecoded: gr.Image would open it with PIL
    first and fail there, with no message, on a file that is not an image; `images.load_image`
    decodes it instead, with its size limit and its one-line errors. (An instance's method, not
    a subclass: Gradio writes a .pyi stub beside the module of every Image subclass.)"""
    image = gr.Image(type="filepath", image_mode=None, **options)
    decode = image.preprocess

    def preprocess(payload):
        if payload is None or (payload.url or "").startswith("data:"):  # A webcam snapshot, pasted.
            return decode(payload)
        return payload.path

    image.preprocess = preprocess
    return image


def _define_flags() -> None:
    cli.define_flags(AppConfig)


@user_errors_exit_2
def main(argv) -> int:
    if len(argv) > 1:
        print(f"error: unexpected arguments {argv[1:]} (flags start with --)", file=sys.stderr)
        return 2
    config = cli.config_from_flags(AppConfig, flags.FLAGS)
    demo = build(config)
    url = serve(demo, config)
    print(f"style_tf app: open {url} in a browser (Ctrl-C stops it)", flush=True)
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # Stopped as by Ctrl-C: temp files go.
    try:
        demo.block_thread()
    except KeyboardInterrupt:
        pass
    logging.info("stopped")
    return 0


def serve(demo, config: AppConfig) -> str:
    """Starts the server in the background; returns the address to open."""
    try:
        _, local, shared = demo.launch(**launch_options(config), prevent_thread_lock=True)
    except OSError as e:  # The port is taken (Gradio says "Cannot find empty port").
        raise StyleError(f"cannot listen on {config.host}:{config.port} ({e}); "
                         "choose another --port") from None
    return shared or local


if __name__ == "__main__":
    cli.run(main, _define_flags)
