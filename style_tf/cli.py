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

import contextlib
import logging as std_logging
import os
import sys
import tempfile

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


def parse_flags(argv: list[str]) -> list[str]:
    """absl's flag parsing with the user-error policy: one line and exit 2; help exits 0."""
    from absl import flags

    try:
        return flags.FLAGS(argv)
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


def run(main, define_flags=None) -> None:
    """Defines the flags, parses them (`parse_flags`), sets plain logging and runs `main`."""
    from absl import app

    if define_flags is not None:
        define_flags()

    def main_with_plain_logs(argv):
        plain_logging()
        return main(argv)

    app.run(main_with_plain_logs, flags_parser=parse_flags)
