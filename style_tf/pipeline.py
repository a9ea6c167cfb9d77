"""A whole data set stylized by an Apache Beam pipeline; `python -m style_tf.batch` runs it.

The same command runs on a laptop and on a cluster; only Beam's runner flags change (Beam's
RunInference is the TensorFlow ecosystem's batch-inference path, and Beam runs on Dataflow,
Flink and Spark). Each photo gets one style: the only one given, or with several one drawn
from the photo's path under `--input` and `--seed`, as Stylized-ImageNet was made (Geirhos
et al., ICLR 2019); its alpha is `--alpha`, or one drawn from that range the same way. The
draw depends on nothing else, so it is the same however many workers run and whichever
takes the photo.

The pipeline (`build`):
  find the photos (a folder walked, a glob, or a list file) -> name their outputs, mirroring
  the input tree (a.jpg and a.png of one folder become a_jpg.png and a_png.png; a photo listed
  twice is stylized once) -> skip those whose output exists, so that a killed job is finished
  by running it again -> load (a photo that cannot be read goes to failed.jsonl with the
  reason) -> RunInference: batches of photos through the AdaIN engine, loaded once per
  worker, each style's vector computed once per worker -> each output written atomically,
  with a note inside it of its style and alpha -> manifest.jsonl (the outputs written now and,
  from their notes, those found done; in no particular order) and failed.jsonl, each one file
  made whole at the end by Beam's text sink.

Runners: Beam's DirectRunner first tries Prism, a binary it downloads at run time; here the
DirectRunner (the default) runs Beam's FnApiRunner instead, the DirectRunner's own engine for
batch pipelines, in this process (`--direct_num_workers=N --direct_running_mode=
multi_processing`: N worker processes), with no network. Every other runner is Beam's as is.
"""

import dataclasses
import glob
import hashlib
import io
import json
import logging as std_logging
import os
import posixpath
import shutil
import time

from absl import logging

from style_tf import cli, images, paths, stylizer
from style_tf.errors import StyleError

_import_quietly = std_logging.NullHandler()  # Beam warns on import, through the root logger,
std_logging.getLogger().addHandler(_import_quietly)  # that Google Cloud's BigQuery client is missing.
try:
    import apache_beam as beam
    from apache_beam.io import fileio
    from apache_beam.io.filesystem import CompressionTypes
    from apache_beam.io.filesystems import FileSystems
    from apache_beam.metrics import Metrics
    from apache_beam.metrics.metric import MetricsFilter
    from apache_beam.ml.inference import base as inference
    from apache_beam.options.pipeline_options import (
        DirectOptions,
        PipelineOptions,
        StandardOptions,
        WorkerOptions,
    )
except ImportError as e:  # pragma: no cover - the [batch] extra is missing.
    raise ImportError("style_tf.batch needs Apache Beam: pip install 'style_tf[batch]'") from e
finally:
    std_logging.getLogger().removeHandler(_import_quietly)

NAMESPACE = "style_tf.batch"  # Of the Beam metrics (counters "stylized", "skipped", "failed").
MANIFEST, FAILED = "manifest.jsonl", "failed.jsonl"
FORMATS = ("png", "jpg")
_WILDCARDS = "*?["
_DIRECT = ("direct", "directrunner", "switchingdirectrunner")  # Run as the FnApiRunner.


@dataclasses.dataclass(frozen=True)
class BatchConfig:
    """What to stylize, with which styles, and where the outputs go: a whole data set."""

    input: str  # Photos: a folder (walked recursively), a glob ("photos/*/*.jpg") or a text file listing
    # one a line (relative to its folder); local, or on any filesystem Beam knows (gs://, s3://, hdfs://).
    output: str  # Folder of the outputs, mirroring the input's tree, with manifest.jsonl and failed.jsonl.
    styles: tuple[str, ...] = (str(paths.EXAMPLES / "style"),)  # Style images: a folder of them, or files
    # comma-separated. With several, each photo gets one drawn from its path and --seed.
    max_dim: int = 512  # Longest side of the outputs (smaller photos keep their size) and of the styles.
    seed: int = 0  # Draws each photo's style (and alpha, from a range) from its path: the same on any worker.
    alpha: tuple[float, ...] = (1.0,)  # Content-style trade-off in 0..1: one value, or a range "lo,hi" from
    # which each photo's is drawn.
    format: str = "png"  # Outputs' format: "png" or "jpg".
    batch_size: int = 8  # Photos per call of the model (Beam's RunInference batches up to this many).

    def __post_init__(self):
        if len(self.alpha) not in (1, 2) or not all(0.0 <= a <= 1.0 for a in self.alpha) \
                or self.alpha[0] > self.alpha[-1]:
            raise StyleError("--alpha takes a value in 0..1 or a range lo,hi in it, "
                             f"got {cli.to_text(self.alpha)}")
        if self.format not in FORMATS:
            raise StyleError(f"unknown format {self.format!r} (use {' or '.join(FORMATS)})")
        if self.max_dim < 16:
            raise StyleError(f"max_dim must be >= 16, got {self.max_dim}")
        if self.batch_size < 1:
            raise StyleError(f"batch_size must be >= 1, got {self.batch_size}")
        if not self.styles:
            raise StyleError("at least one style image is needed")


@dataclasses.dataclass(frozen=True)
class Job:
    """One photo's work: where it is, where its output goes, with which style and alpha."""

    photo: str
    output: str
    style: str
    alpha: float


@dataclasses.dataclass
class Summary:
    """What a run did (Beam's counters), how long it took and where."""

    stylized: int  # Outputs written.
    skipped: int  # Outputs found done.
    failed: int  # Photos in failed.jsonl.
    seconds: float  # Wall time of the pipeline, the workers' start-up included.
    runner: str  # The runner and its workers, in words.
    manifest: str  # Where manifest.jsonl is.
    failures: str  # Where failed.jsonl is.

    @property
    def images_per_s(self) -> float:
        return self.stylized / self.seconds if self.seconds else 0.0


# --- paths on any filesystem ----------------------------------------------------------------


def _local(path: str) -> bool:
    return FileSystems.get_scheme(path) is None


def _join(root: str, rel: str) -> str:
    return os.path.join(root, *rel.split("/")) if _local(root) else posixpath.join(root, rel)


def _normal(path: str) -> str:
    return os.path.abspath(path) if _local(path) else path.rstrip("/")


def _exists(path: str) -> bool:
    return os.path.isfile(path) if _local(path) else FileSystems.exists(path)


def _read(path: str) -> bytes:
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
        return f.read()


def _write(path: str, data: bytes) -> None:
    """Writes `data` whole or not at all: locally a temporary file renamed; object stores
    (gs://, s3://) publish an object only when it is closed complete."""
    if _local(path):
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        with images.atomic_path(path) as tmp, open(tmp, "wb") as f:
            f.write(data)
    else:
        with FileSystems.create(path, mime_type="application/octet-stream",
                                compression_type=CompressionTypes.UNCOMPRESSED) as f:
            f.write(data)


def load(path: str, max_dim: int):
    """(image, (width, height) of the file) of a photo or style on any filesystem.

    Raises:
      StyleError: missing, unreadable or not an image.
    """
    if _local(path):
        return images.load_image(path, max_dim=max_dim), images.read_note(path)[0]
    try:
        data = _read(path)
    except Exception as e:  # noqa: BLE001 - each filesystem raises its own types.
        raise StyleError(f"{path}: cannot read ({type(e).__name__}: {e})") from None
    return images.decode_image(data, path, max_dim=max_dim), images.read_note(io.BytesIO(data))[0]


# --- what to stylize --------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Source:
    """Where the photos are: `kind` "folder", "glob" or "list"; paths are relative to `root`."""

    kind: str
    root: str
    pattern: str  # What Beam matches (folder, glob), or the list file.


def source(spec: str) -> Source:
    """How `--input` is read: a glob if it has wildcards, a list if it is a file, else a folder.

    Raises:
      StyleError: no such file or folder, or no file matches.
    """
    path = _normal(spec)
    if any(c in spec for c in _WILDCARDS):
        parts = path.split("/")
        fixed = next(i for i, part in enumerate(parts) if any(c in part for c in _WILDCARDS))
        found = Source("glob", "/".join(parts[:fixed]), path)
    elif _local(path) and os.path.isdir(path):
        found = Source("folder", path, path + "/**")
    elif _exists(path):
        return Source("list", os.path.dirname(path) if _local(path) else posixpath.dirname(path), path)
    elif _local(path):
        raise StyleError(f"{spec}: no such file or folder")
    else:  # An object store's folder is a prefix, not an object.
        found = Source("folder", path, path + "/**")
    if not FileSystems.match([found.pattern], limits=[1])[0].metadata_list:
        raise StyleError(f"{spec}: no files {'match' if found.kind == 'glob' else 'there'}")
    return found


def style_files(entries) -> list[str]:
    """The style images of `--styles`: each a file, or a folder of them (sorted).

    Raises:
      StyleError: a missing file, or an empty folder.
    """
    out = []
    for entry in entries:
        path = _normal(entry)
        if _local(path) and os.path.isdir(path):
            found = [str(p) for p in images.list_images(path)]
        elif _exists(path):
            found = [path]
        elif _local(path):
            raise StyleError(f"--styles: {entry}: no such file or folder")
        else:
            found = sorted(m.path for m in FileSystems.match([path + "/*"])[0].metadata_list
                           if not posixpath.basename(m.path).startswith("."))
        if not found:
            raise StyleError(f"--styles: {entry}: folder holds no files")
        out += found
    return out


def draw(rel: str, seed: int, styles: list[str], alpha: tuple[float, ...]) -> tuple[str, float]:
    """(style, alpha) of the photo at `rel` (its path under --input, "/"-separated): the only
    style or one drawn from `rel` and `seed`, and alpha or one drawn from the range, by a hash
    that depends on nothing else (not on the worker, nor on the order of the photos)."""
    digest = hashlib.sha256(f"{seed}\0{rel}".encode()).digest()
    style = styles[int.from_bytes(digest[:8], "big") % len(styles)]
    lo, hi = alpha[0], alpha[-1]
    return style, lo + (hi - lo) * int.from_bytes(digest[8:16], "big") / 2.0**64


def relative(photo: str, root: str) -> str | None:
    """`photo`'s path under `root`, "/"-separated; None if it is outside `root`."""
    photo = _normal(photo).replace(os.sep, "/") if _local(photo) else photo
    root = (root.replace(os.sep, "/") if _local(root) else root).rstrip("/")
    return photo[len(root) + 1:] if photo.startswith(root + "/") else None


def output_names(rels: list[str], fmt: str) -> dict[str, str]:
    """{photo's path: output's path} for the photos whose outputs would share a name: `a.jpg` ->
    `a.png`, but when `a.jpg` and `a.png` both are there, `a_jpg.png` and `a_png.png` (the
    suffix's case kept: `a.JPG` and `a.jpg` stay apart too)."""
    if len(rels) == 1:
        return {rels[0]: _with_suffix(rels[0], fmt)}
    return {rel: _with_suffix(rel, fmt, tag=True) for rel in rels}


def _with_suffix(rel: str, fmt: str, tag: bool = False) -> str:
    stem, suffix = posixpath.splitext(rel)
    return f"{stem}_{suffix.lstrip('.')}.{fmt}" if tag else f"{stem}.{fmt}"


# --- the pipeline's steps -------------------------------------------------------------------


class _Name(beam.DoFn):
    """photo path -> (output path under --output, (photo's path under root, photo))."""

    def __init__(self, root: str, fmt: str):
        self.root, self.fmt = root, fmt
        self.failed = Metrics.counter(NAMESPACE, "failed")

    def process(self, photo: str):
        rel = relative(photo, self.root)
        if rel is None:
            self.failed.inc()
            yield beam.pvalue.TaggedOutput("failed", {
                "photo": photo, "reason": f"outside {self.root}, the folder whose tree the outputs mirror"})
        elif not any(part.startswith(".") for part in rel.split("/")):  # Hidden files are not photos.
            yield _with_suffix(rel, self.fmt), (rel, _normal(photo))


class _Jobs(beam.DoFn):
    """(output name, photos that would take it) -> one Job per distinct photo."""

    def __init__(self, config: BatchConfig, styles: list[str], output: str):
        self.config, self.styles, self.output = config, styles, output

    def process(self, element):
        _, photos = element
        photos = dict(sorted(set(photos)))  # rel -> photo; a photo listed twice counts once.
        for rel, out in output_names(sorted(photos), self.config.format).items():
            style, alpha = draw(rel, self.config.seed, self.styles, self.config.alpha)
            yield Job(photos[rel], _join(self.output, out), style, alpha)


class _SkipDone(beam.DoFn):
    """Jobs whose output exists become manifest rows (from the note inside the output)."""

    def __init__(self):
        self.skipped = Metrics.counter(NAMESPACE, "skipped")

    def process(self, job: Job):
        if not _exists(job.output):
            yield job
            return
        try:
            if _local(job.output):
                size, note = images.read_note(job.output)
            else:
                with FileSystems.open(job.output, compression_type=CompressionTypes.UNCOMPRESSED) as f:
                    size, note = images.read_note(f)
        except StyleError as e:  # Not ours (ours are written whole): made again.
            logging.warning("%s; stylizing it again", e)
            yield job
            return
        self.skipped.inc()
        note = note or {}
        yield beam.pvalue.TaggedOutput("done", {
            "photo": job.photo, "style": note.get("style"), "alpha": note.get("alpha"),
            "output": job.output, "photo_size": note.get("photo_size"), "output_size": list(size)})


class _Load(beam.DoFn):
    """Job -> (job, (photo, its file's size)); one that cannot be read goes to "failed"."""

    def __init__(self, max_dim: int):
        self.max_dim = max_dim
        self.failed = Metrics.counter(NAMESPACE, "failed")

    def process(self, job: Job):
        try:
            yield job, load(job.photo, self.max_dim)
        except StyleError as e:
            self.failed.inc()
            yield beam.pvalue.TaggedOutput("failed", {"photo": job.photo, "reason": str(e)})


class _Model:
    """What each worker loads once: the AdaIN engine, and the style vectors it has computed."""

    def __init__(self, engine: stylizer.AdainConfig, style_dim: int):
        quiet_beam()
        self.engine = stylizer.Engine(engine)
        self.face_size, self.style_dim = engine.face_size, style_dim
        self.vectors = {}  # style path -> its vector, or the StyleError loading it raised.

    def vector(self, style: str):
        if style not in self.vectors:
            try:
                image, _ = load(style, self.style_dim)
                self.vectors[style] = self.engine.stylizer.style_vector(image)
            except StyleError as e:
                self.vectors[style] = StyleError(f"style {e}")
        if isinstance(self.vectors[style], StyleError):
            raise self.vectors[style]
        return self.vectors[style]

    def __call__(self, content, style: str, alpha: float):
        return self.engine.stylizer(content, [], alpha=alpha, face_size=self.face_size,
                                    vectors=[self.vector(style)])


class StyleModelHandler(inference.ModelHandler):
    """RunInference's handle on the AdaIN engine: (job, (photo, size)) -> (job, size, image or
    the reason it failed). Beam loads the model once per worker process and hands it batches."""

    def __init__(self, engine: stylizer.AdainConfig, style_dim: int, batch_size: int):
        super().__init__()
        self.engine, self.style_dim, self.batch_size = engine, style_dim, batch_size

    def load_model(self) -> _Model:
        return _Model(self.engine, self.style_dim)

    def batch_elements_kwargs(self):
        return {"min_batch_size": 1, "max_batch_size": self.batch_size}

    def get_num_bytes(self, batch) -> int:
        return sum(content.nbytes for _, (content, _) in batch)

    def run_inference(self, batch, model: _Model, inference_args=None):
        # One call per photo: photos differ in size, and the engine works at each one's own.
        for job, (content, size) in batch:
            try:
                yield job, size, model(content, job.style, job.alpha)
            except StyleError as e:
                yield job, size, str(e)


class _Save(beam.DoFn):
    """(job, size, image) -> its output written, and its manifest row; a failure's reason to "failed"."""

    def __init__(self):
        self.stylized = Metrics.counter(NAMESPACE, "stylized")
        self.failed = Metrics.counter(NAMESPACE, "failed")

    def process(self, element):
        job, size, image = element
        if isinstance(image, str):
            self.failed.inc()
            yield beam.pvalue.TaggedOutput("failed", {"photo": job.photo, "reason": image})
            return
        note = {"style": job.style, "alpha": job.alpha, "photo_size": list(size)}
        _write(job.output, images.encode_image(image, job.output, note))
        self.stylized.inc()
        yield {"photo": job.photo, **note, "output": job.output,
               "output_size": [int(image.shape[1]), int(image.shape[0])]}


def _jsonl(rows, path: str, step: str):
    """Writes `rows` to `path`, one JSON object a line, as one file made whole at the end (Beam's
    text sink: shards written in a temporary folder beside it, then renamed into place); an
    empty file where there are none."""
    return (rows | f"{step} as JSON" >> beam.Map(lambda r: json.dumps(r, sort_keys=True))
            | step >> beam.io.WriteToText(path, num_shards=1, shard_name_template=""))


def build(pipeline, config: BatchConfig, engine: stylizer.AdainConfig, styles: list[str], found: Source):
    """Adds the steps of the module's docstring to `pipeline`."""
    output = _normal(config.output)
    p = pipeline
    if found.kind == "list":
        photos = (p | "Read list" >> beam.io.ReadFromText(found.pattern)
                  | "Strip" >> beam.Map(str.strip) | "Not blank" >> beam.Filter(bool)
                  | "Under list's folder" >> beam.Map(
                      lambda line, root: line if FileSystems.get_scheme(line) or os.path.isabs(line)
                      else _join(root, line), found.root))
    else:
        photos = (p | "Pattern" >> beam.Create([found.pattern]) | "Match" >> fileio.MatchAll()
                  | "Path" >> beam.Map(lambda m: m.path))
    named = photos | "Name" >> beam.ParDo(_Name(found.root, config.format)).with_outputs(
        "failed", main="named")
    jobs = (named.named | "Group by output" >> beam.GroupByKey()
            | "Jobs" >> beam.ParDo(_Jobs(config, styles, output)))
    todo = jobs | "Skip done" >> beam.ParDo(_SkipDone()).with_outputs("done", main="todo")
    loaded = todo.todo | "Load" >> beam.ParDo(_Load(config.max_dim)).with_outputs("failed", main="loaded")
    handler = StyleModelHandler(engine, engine.style_dim(config.max_dim), config.batch_size)
    saved = (loaded.loaded | "Stylize" >> inference.RunInference(handler)
             | "Save" >> beam.ParDo(_Save()).with_outputs("failed", main="rows"))
    _jsonl((saved.rows, todo.done) | "Rows" >> beam.Flatten(), _join(output, MANIFEST), "Manifest")
    _jsonl((named.failed, loaded.failed, saved.failed) | "Failures" >> beam.Flatten(),
           _join(output, FAILED), "Failed")


def pipeline_options(beam_args) -> PipelineOptions:
    """Beam's options from its flags; the DirectRunner (the default) as its FnApiRunner.

    Raises:
      StyleError: a flag that is neither this tool's nor one of Beam's.
    """
    options = PipelineOptions(list(beam_args))
    parser_log = std_logging.getLogger("apache_beam.options.pipeline_options")
    level = parser_log.level
    parser_log.setLevel(std_logging.ERROR)  # Its warning that it discards them: an error here.
    try:
        known = set(options.get_all_options())
        unknown = sorted(set(options.get_all_options(retain_unknown_options=True)) - known)
    finally:
        parser_log.setLevel(level)
    if unknown:
        raise StyleError(f"unknown flag --{unknown[0]} (neither style_tf.batch's nor a Beam pipeline option)")
    standard = options.view_as(StandardOptions)
    if (standard.runner or "DirectRunner").lower() in _DIRECT:
        # The DirectRunner would try Prism first, which downloads its binary at run time.
        standard.runner = "FnApiRunner"
        harness = options.view_as(WorkerOptions)  # Workers say what failed in failed.jsonl.
        harness.default_sdk_harness_log_level = harness.default_sdk_harness_log_level or "ERROR"
    return options


def _runner(options: PipelineOptions):
    """The FnApiRunner with the options for its workers (as the DirectRunner builds it: the
    worker processes of multi_processing read their log level there), or None: Beam's own."""
    if options.view_as(StandardOptions).runner != "FnApiRunner":
        return None
    from apache_beam.portability.api import beam_provision_api_pb2
    from apache_beam.runners.portability.fn_api_runner import fn_runner
    from apache_beam.runners.portability.portable_runner import JobServiceHandle

    encoded = JobServiceHandle.encode_pipeline_options(options.get_all_options())
    return fn_runner.FnApiRunner(provision_info=fn_runner.ExtendedProvisionInfo(
        beam_provision_api_pb2.ProvisionInfo(pipeline_options=encoded)))


def quiet_beam() -> None:
    """Beam's INFO lines (state cache, batch statistics) off the terminal, and its warning that
    RunInference cannot measure memory (Beam 2.77 imports `resource` together with a module
    that needs PyTorch, and without PyTorch says so on every batch). Called by the entry point
    and, in each worker, as the model loads."""
    std_logging.getLogger("apache_beam").setLevel(std_logging.WARNING)
    # Worker processes write their logs to this terminal, and send them here to be said again.
    std_logging.getLogger("apache_beam.runners.portability.local_job_service").setLevel(std_logging.ERROR)
    root = std_logging.getLogger()
    if _memory_warning not in root.filters:
        root.addFilter(_memory_warning)


def _memory_warning(record: std_logging.LogRecord) -> bool:
    return "Resource module is not available" not in record.getMessage()


def _clear_leftovers(output: str) -> None:
    """Removes the temporary folders of manifest.jsonl and failed.jsonl that a killed run left
    in `output` (Beam's text sink names them beam-temp-<file>-<id>)."""
    pattern = [_join(output, f"beam-temp-{name}-*") for name in (MANIFEST, FAILED)]
    if _local(output):
        for folder in (g for p in pattern for g in glob.glob(p)):
            shutil.rmtree(folder, ignore_errors=True)
    else:
        found = FileSystems.match([p + "/**" for p in pattern])
        FileSystems.delete([m.path for result in found for m in result.metadata_list] or [])


def _check_output(output: str, found: Source) -> None:
    out = _normal(output)
    if out == found.root or out.startswith(found.root.rstrip("/") + "/"):
        raise StyleError(f"--output {output} is inside --input's folder {found.root}: a re-run would "
                         "find the outputs among the photos")
    if _local(out):
        if not os.path.isdir(os.path.dirname(out)):
            raise StyleError(f"{os.path.dirname(out)}: output folder does not exist")
        os.makedirs(out, exist_ok=True)
        if not os.access(out, os.W_OK):
            raise StyleError(f"{out}: output folder is not writable")


def run(config: BatchConfig, engine: stylizer.AdainConfig | None = None, beam_args=()) -> Summary:
    """Stylizes the photos of `config.input` into `config.output` on the runner of `beam_args`.

    Args:
      config: what to stylize, with which styles, where.
      engine: the AdaIN engine's settings (its alpha is not read: `config.alpha` is per photo).
      beam_args: Beam's pipeline flags (`--runner`, `--direct_num_workers`, ...).

    Returns:
      Beam's counters of the run and its wall time, start-up included.

    Raises:
      StyleError: bad flags, no photos, no styles, or an output folder that cannot be written;
        raised before the pipeline starts.
    """
    engine = engine or stylizer.AdainConfig()
    options = pipeline_options(beam_args)
    styles = style_files(config.styles)
    found = source(config.input)
    _check_output(config.output, found)
    _clear_leftovers(_normal(config.output))
    start = time.perf_counter()
    pipeline = beam.Pipeline(runner=_runner(options), options=options)
    build(pipeline, config, engine, styles, found)
    result = pipeline.run()
    result.wait_until_finish()
    seconds = time.perf_counter() - start
    counters = {c.key.metric.name: c for c in
                result.metrics().query(MetricsFilter().with_namespace(NAMESPACE))["counters"]}

    def count(name):
        c = counters.get(name)
        return 0 if c is None else int(c.committed if c.committed is not None else c.attempted)

    output = _normal(config.output)
    return Summary(count("stylized"), count("skipped"), count("failed"), seconds, _runner_words(options),
                   _join(output, MANIFEST), _join(output, FAILED))


def _runner_words(options: PipelineOptions) -> str:
    runner = options.view_as(StandardOptions).runner
    if runner == "FnApiRunner":
        direct = options.view_as(DirectOptions)
        return f"{runner}, {direct.direct_num_workers} worker(s), {direct.direct_running_mode}"
    return runner
