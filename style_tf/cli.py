"""What every entry point shares: a quiet TensorFlow start-up, flag errors as user errors, plain logs.

Entry points import this module before anything that imports TensorFlow, and end with
`cli.run(main, define_flags)` instead of `absl.app.run(main)`:

- TensorFlow's C++ start-up notices (oneDNN, CUDA probes) are kept off the terminal, where
  they would bury a one-line error, and so are its INFO log lines (`Assets written to`);
- a flag that cannot be parsed (unknown flag, bad value) is one `error: ...` line and exit
  status 2, the user-error code; `--help` exits 0;
- log lines are plain (`warning: ...`, no absl `I1130 12:00:00 run.py:134]` prefix) and are
  written above a running progress bar instead of through it.
"""

import ast
import contextlib
import dataclasses
import functools
import inspect
import io
import logging as std_logging
import os
import shlex
import sys
import tempfile
import textwrap
import tokenize
import types
import typing

from style_tf import paths
from style_tf.errors import StyleError

_HELP_FLAGS = ("--help", "-help", "--helpshort", "--helpfull", "--helpxml", "-?", "-h")


@contextlib.contextmanager
def native_stderr_captured():
    """Keeps what is written to file descriptor 2 meanwhile; shows it only if the block raises.

    For native code's notices that no log level reaches (TensorFlow's start-up, the int8
    quantiser's LLVM debug line, LiteRT's XNNPACK notice), while a failure still shows them.
    With TF_CPP_MIN_LOG_LEVEL=0 (the user asked for everything) nothing is captured.
    """
    if os.environ.get("TF_CPP_MIN_LOG_LEVEL") == "0":
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        failed = False
        try:
            yield
        except Exception:
            failed = True
            raise
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            if failed:
                captured.seek(0)
                sys.stderr.write(captured.read().decode(errors="replace"))
                sys.stderr.flush()


def quiet_tensorflow_import() -> None:
    """Imports TensorFlow with its C++ start-up notices captured (`native_stderr_captured`).

    Later C++ logs at ERROR and below are filtered by TF_CPP_MIN_LOG_LEVEL (a value the user
    set is kept); later Python errors and warnings are untouched. Under another Keras backend
    nothing is imported.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if "tensorflow" in sys.modules or os.environ.get("KERAS_BACKEND", "tensorflow") != "tensorflow":
        return
    with native_stderr_captured():
        import tensorflow  # noqa: F401


quiet_tensorflow_import()


def parse_flags(argv: list[str], known_only: bool = False) -> list[str]:
    """absl's flag parsing with the user-error policy: one line and exit 2; help exits 0.

    With `known_only`, flags not defined here are returned with the arguments instead of
    refused: the entry point hands them on (style_tf.batch gives them to Beam) and refuses
    those that nothing reads.
    """
    from absl import flags

    try:
        return flags.FLAGS(argv, known_only=known_only)
    except flags.Error as e:
        message = "; ".join(line.strip() for line in str(e).splitlines() if line.strip())
        print(f"error: {message}", file=sys.stderr)
        sys.exit(2)
    except SystemExit as e:  # absl's help flags print the help, then exit 1.
        if e.code == 1 and any(a.split("=")[0] in _HELP_FLAGS for a in argv[1:]):
            sys.exit(0)
        raise


def _from_tensorflow(record: std_logging.LogRecord) -> bool:
    """Whether a record comes from TensorFlow's code: its `tensorflow` logger, or absl logging
    called from a file of the tensorflow package."""
    if record.name == "tensorflow" or record.name.startswith("tensorflow."):
        return True
    tf_file = getattr(sys.modules.get("tensorflow"), "__file__", None)
    return bool(tf_file) and record.pathname.startswith(os.path.dirname(tf_file) + os.sep)


class _PlainHandler(std_logging.Handler):
    """Writes `message` (INFO) or `warning: message` through tqdm, above any progress bar.

    TensorFlow's own INFO lines (`Assets written to`, `Sharding callback duration` while a
    model is saved) are its internals' progress, not the tool's, and are dropped; its
    warnings and errors are kept.
    """

    def filter(self, record: std_logging.LogRecord) -> bool:
        if record.levelno < std_logging.WARNING and _from_tensorflow(record):
            return False
        return super().filter(record)

    def emit(self, record: std_logging.LogRecord) -> None:
        from tqdm import tqdm

        try:
            text = record.getMessage()
            if record.levelno >= std_logging.WARNING:
                text = f"{record.levelname.lower()}: {text}"
            tqdm.write(text, file=sys.stderr)
        except Exception:  # noqa: BLE001 - logging must never raise.
            self.handleError(record)


def plain_logging() -> None:
    """Replaces absl's prefixed stderr handler with `_PlainHandler` (after absl set it up).

    TensorFlow's logger loses the `INFO:tensorflow:` handler it gives itself when it loads
    before absl: its records reach `_PlainHandler` through the root logger, once.
    """
    from absl import logging

    root = std_logging.getLogger()
    absl_handler = logging.get_absl_handler()
    if absl_handler in root.handlers:
        root.removeHandler(absl_handler)
    if not any(isinstance(h, _PlainHandler) for h in root.handlers):
        root.addHandler(_PlainHandler())
    tf_logger = std_logging.getLogger("tensorflow")
    for handler in list(tf_logger.handlers):
        if type(handler) is std_logging.StreamHandler:
            tf_logger.removeHandler(handler)


def run(main, define_flags=None, known_only: bool = False) -> None:
    """Defines the flags, parses them (`parse_flags`), sets plain logging and runs `main`."""
    from absl import app

    if define_flags is not None:
        define_flags()

    def main_with_plain_logs(argv):
        plain_logging()
        return main(argv)

    app.run(main_with_plain_logs, flags_parser=functools.partial(parse_flags, known_only=known_only))


# --- flags generated from config dataclasses ----------------------------------------------
# A setting is written once, as a field of its frozen config with a comment; its flag (same
# name, or `metadata={"flag": ...}`), its help (the comment), its parsing and its line in
# FLAGS.md all come from there.


def flag_name(field: dataclasses.Field) -> str:
    return field.metadata.get("flag", field.name)


def flag_fields(cls) -> list[dataclasses.Field]:
    """The fields of a config that are flags: all but those marked `metadata={"flag": None}`."""
    return [f for f in dataclasses.fields(cls) if f.metadata.get("flag", f.name) is not None]


@functools.cache
def field_help(cls) -> dict[str, str]:
    """{field name: its comment}: the comment after each field, with comment lines under it
    (fields of dataclass bases too)."""
    out = {}
    for base in reversed(cls.__mro__):
        if dataclasses.is_dataclass(base):
            out.update(_own_field_help(base))
    return out


def _own_field_help(cls) -> dict[str, str]:
    source = textwrap.dedent(inspect.getsource(cls))
    comments = {t.start[0]: t.string.lstrip("# ").strip()
                for t in tokenize.generate_tokens(io.StringIO(source).readline)
                if t.type == tokenize.COMMENT}
    lines = source.splitlines()
    out = {}
    for node in ast.parse(source).body[0].body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            parts = [comments[n] for n in range(node.lineno, node.end_lineno + 1) if n in comments]
            n = node.end_lineno + 1
            while n <= len(lines) and lines[n - 1].strip().startswith("#"):
                parts.append(comments[n])
                n += 1
            out[node.target.id] = " ".join(parts)
    return out


def _kind(cls, field: dataclasses.Field):
    """The field's type with Optional removed: bool, int, float, str or a tuple type."""
    kind = typing.get_type_hints(cls)[field.name]
    args = [a for a in typing.get_args(kind) if a is not type(None)]
    if typing.get_origin(kind) in (typing.Union, types.UnionType) and len(args) == 1:
        kind = args[0]
    return kind


def _optional(cls, field: dataclasses.Field) -> bool:
    """Whether the field may be None (an empty flag value means None)."""
    return type(None) in typing.get_args(typing.get_type_hints(cls)[field.name])


def _required(field: dataclasses.Field) -> bool:
    """Whether the field has no default: its flag must be given."""
    return field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING


def _default(field: dataclasses.Field):
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return None


def to_text(value) -> str:
    """A config value as a flag would spell it: (("a", 1.0),) -> "a:1"; (1, 2) -> "1,2"."""
    if isinstance(value, tuple):
        return ",".join(f"{v[0]}:{v[1]:g}" if isinstance(v, tuple) else to_text(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return "" if value is None else str(value)


def parse_value(kind, text: str, name: str):
    """Parses `text` (a flag value or a sweep value) as a config field of type `kind`.

    Raises:
      StyleError: the text is not of that type.
    """
    try:
        if kind is bool:
            if text.lower() not in ("true", "false", "1", "0"):
                raise ValueError(text)
            return text.lower() in ("true", "1")
        if kind in (int, float, str):
            return kind(text)
        (item, *_) = typing.get_args(kind)
        items = [t.strip() for t in text.split(",") if t.strip()]
        if typing.get_origin(item) is tuple:  # (name, weight) pairs: "name:weight" or "name=weight".
            pairs = []
            for t in items:
                key, sep, weight = t.rpartition(":") if ":" in t else t.rpartition("=")
                pairs.append((key, float(weight)) if sep else (t, 1.0))
            return tuple(pairs)
        return tuple(item(t) for t in items)
    except ValueError:
        raise StyleError(f"--{name}: {text!r} is not {_type_words(kind)}") from None


def _type_words(kind) -> str:
    if kind in (bool, int, float, str):
        return {bool: "true or false", int: "a whole number", float: "a number", str: "text"}[kind]
    (item, *_) = typing.get_args(kind)
    if typing.get_origin(item) is tuple:
        return "a list of name:weight"
    return f"a comma-separated list of {_type_words(item)}s"


_OVERRIDDEN = {}  # id(flag values) -> the flags whose default `define_flags` took from its `defaults`.


def define_flags(*configs, defaults: dict | None = None, exclude=(), flag_values=None) -> None:
    """Defines one absl flag per field of each config class (a name shared by several is
    defined once, by the first, and one already defined is left as it is); `defaults`
    overrides a flag's default, `exclude` names flags not to define; `flag_values` is absl's
    FLAGS unless given."""
    from absl import flags

    flag_values = flags.FLAGS if flag_values is None else flag_values
    flags.disclaim_key_flags()  # Flags defined here belong to the entry point calling (its --help).
    for cls in configs:
        helps = field_help(cls)
        for field in flag_fields(cls):
            name = flag_name(field)
            if name in flag_values or name in exclude:
                continue
            kind, default = _kind(cls, field), _default(field)
            if defaults and name in defaults:
                default = defaults[name]
                _OVERRIDDEN.setdefault(id(flag_values), set()).add(name)
            help_text = helps.get(field.name) or field.name
            if kind is bool:
                flags.DEFINE_bool(name, default, help_text, flag_values=flag_values)
            elif typing.get_origin(kind) is tuple:
                flags.DEFINE_list(name, to_text(default).split(",") if default else [], help_text,
                                  flag_values=flag_values)
            else:  # Parsed by parse_value, so that a bad value is a StyleError naming the flag.
                flags.DEFINE_string(name, None if default is None else to_text(default), help_text,
                                    flag_values=flag_values)


def config_from_flags(cls, flag_values, **given):
    """`cls(**given, **{field: flag value})` from the flags the user gave; the others keep the
    dataclass's defaults (or the `defaults` that `define_flags` was given).

    Raises:
      StyleError: a value of the wrong type, a missing required flag, or what the config's own
        checks refuse.
    """
    kwargs = dict(given)
    for field in flag_fields(cls):
        if field.name in kwargs or flag_name(field) not in flag_values:
            continue
        flag = flag_values[flag_name(field)]
        if not (flag.present or flag.name in _OVERRIDDEN.get(id(flag_values), ())):
            continue
        value = ",".join(flag.value) if isinstance(flag.value, list) else flag.value
        if value == "" and _optional(cls, field):
            value = None
        elif isinstance(value, str):
            value = parse_value(_kind(cls, field), value, flag.name)
        kwargs[field.name] = value
    missing = [flag_name(f) for f in dataclasses.fields(cls) if f.name not in kwargs and _required(f)]
    if missing:
        raise StyleError(f"--{missing[0]} is required")
    config = cls(**kwargs)
    for field in flag_fields(cls):  # A flag only one value of another field reads (`only_with`).
        other, value = field.metadata.get("only_with", (None, None))
        if other and flag_values[flag_name(field)].present and getattr(config, other) != value:
            raise StyleError(f"--{flag_name(field)}: an option of --{other}={value}, "
                             f"not of {getattr(config, other)}")
    return config


def refuse_unread(flag_values, choice: str, chosen: str, configs: dict, shared=()) -> None:
    """Refuses flags given that only other choices read, rather than ignore them silently.

    Args:
      flag_values: absl's FLAGS.
      choice: the flag that chooses (e.g. "method").
      chosen: its value.
      configs: {value: config class read with that value}.
      shared: config classes read whatever the choice (their flags are never refused).

    Raises:
      StyleError: naming the flags and the value that reads them.
    """
    mine = flags_of(configs[chosen], *shared)
    for value, cls in configs.items():
        given = [f"--{flag_name(f)}" for f in flag_fields(cls)
                 if flag_name(f) not in mine and flag_values[flag_name(f)].present]
        if value != chosen and given:
            raise StyleError(f"{', '.join(given)}: {'options' if len(given) > 1 else 'an option'} "
                             f"of --{choice}={value}, not of {chosen}")


def stylize_config(flag_values, **given):
    """The `StylizeConfig` of `style_tf.run`'s flags (and `sheet`'s), its engine's settings
    included: every engine's settings are built, so that a bad value is reported as such, then
    a flag only another engine reads is refused (`refuse_unread`).

    Raises:
      StyleError: an unknown --method, a bad value, or a flag of another engine.
    """
    from style_tf import stylize

    method = flag_values["method"].value
    if method not in stylize.ENGINES:
        raise StyleError(f"--method: unknown engine {method!r} (use {' or '.join(stylize.ENGINES)})")
    configs = {name: engine.Config for name, engine in stylize.ENGINES.items()}
    engines = {name: config_from_flags(cls, flag_values) for name, cls in configs.items()}
    refuse_unread(flag_values, "method", method, configs, shared=(stylize.StylizeConfig,))
    return config_from_flags(stylize.StylizeConfig, flag_values, engine=engines[method], **given)


def command_line(module: str, *configs) -> str:
    """The `python -m module` command whose flags rebuild `configs`: a flag for each field that
    is off its default (shell-quoted); what the web app shows under a result."""
    words = ["python", "-m", module]
    for config in configs:
        for field in flag_fields(type(config)):
            value = getattr(config, field.name)
            if value != _default(field):
                words.append(f"--{flag_name(field)}={to_text(value)}" if not isinstance(value, bool)
                             else f"--{'' if value else 'no'}{flag_name(field)}")
    return " ".join(shlex.quote(w) for w in words)


def flags_of(*configs) -> set[str]:
    return {flag_name(f) for cls in configs for f in flag_fields(cls)}


def flag_reference(sections: list[tuple[str, str, list]]) -> str:
    """FLAGS.md: per section (title, intro, config classes) a table of flag, default, meaning."""
    out = ["# Flags", "", "Every flag is a field of the config named in its section, and its meaning the",
           "comment on that field. This file is generated from them (`python -m style_tf.cli > FLAGS.md`);",
           "a test checks that it is in step.", ""]
    for title, intro, configs in sections:
        out += [f"## {title}", "", intro, "", "| flag | default | meaning |", "|---|---|---|"]
        seen = set()
        for cls in configs:
            for field in flag_fields(cls):
                name = flag_name(field)
                if name in seen:
                    continue
                seen.add(name)
                text = to_text(_default(field)).replace(f"{paths.EXAMPLES.parent}{os.sep}", "")
                shown = "required" if _required(field) else f"`{text}`" if text else "none"
                meaning = field_help(cls).get(field.name, "").replace("|", "\\|")
                out.append(f"| `--{name}` | {shown} | {meaning} |")
        out.append("")
    return "\n".join(out)


def reference() -> str:
    """FLAGS.md: the flags of `style_tf.run` (and `sheet`), `style_tf.train`, `style_tf.distill`,
    `style_tf.batch` and `style_tf.app`."""
    from style_tf import app, distill, pipeline, stylize, train

    sections = [("`python -m style_tf.run`: what to stylize and where",
                 "`StylizeConfig` (style_tf/stylize.py). `python -m style_tf.sheet` takes these too, "
                 "but for the files, which it gets from `--contents` and `--styles`.",
                 [stylize.StylizeConfig])]
    for method, engine in stylize.ENGINES.items():
        sections.append((f"`--method={method}`",
                         f"`{engine.Config.__name__}` ({engine.__module__.replace('.', '/')}.py). "
                         "A flag of another engine is refused.", [engine.Config]))
    sections.append(("`python -m style_tf.train`: the AdaIN decoder's training",
                     "`TrainConfig` (style_tf/train.py).", [train.TrainConfig]))
    sections.append(("`python -m style_tf.distill`: the phone-class student's training",
                     "`DistillConfig` (style_tf/distill.py).", [distill.DistillConfig]))
    sections.append(("`python -m style_tf.batch`: a data set through an Apache Beam pipeline",
                     "`BatchConfig` (style_tf/pipeline.py), and the flags of `--method=adain` but "
                     "its `--alpha` (this one's is drawn per photo from a range). Any other flag is "
                     "one of Beam's pipeline options (`--runner`, `--direct_num_workers`, ...), "
                     "passed on to Beam; one that Beam does not know either is refused.",
                     [pipeline.BatchConfig]))
    sections.append(("`python -m style_tf.app`: the web app",
                     "`AppConfig` (style_tf/app.py). What to stylize, and how, is chosen in the page.",
                     [app.AppConfig]))
    return flag_reference(sections)


if __name__ == "__main__":
    print(reference(), end="")
