"""`python -m style_tf.run`: flags -> StylizeConfig -> stylize(). Nothing else.

With no flags it stylizes the bundled example photo with a bundled painting into
./stylized.png. Exit status: 0 done, 1 some files of a folder failed or the loss stayed
non-finite (the last finite image was saved), 2 user error (one line on stderr, nothing
written), 130 interrupted (the current image was saved).
"""

from style_tf import cli  # noqa: I001 - first: silences TensorFlow's start-up

import os
import sys

from absl import flags, logging

from style_tf import stylize
from style_tf.errors import StyleError, user_errors_exit_2

# Flags that take image files (a folder is for --content only).
IMAGE_FILE_FLAGS = ("style", "style_masks")


def _define_flags() -> None:
    cli.define_flags(stylize.StylizeConfig, *(engine.Config for engine in stylize.ENGINES.values()))


def config_from_flags(f) -> stylize.StylizeConfig:
    """Builds the frozen config from the flags (`cli.stylize_config`); every check raises
    StyleError."""
    for name in IMAGE_FILE_FLAGS:
        folders = [item for item in f[name].value if os.path.isdir(item)]
        if folders:
            raise StyleError(f"--{name}: {folders[0]} is a folder; --{name} takes image files "
                             "(comma-separated)")
    return cli.stylize_config(f)


@user_errors_exit_2
def main(argv) -> int:
    if len(argv) > 1:
        print(f"error: unexpected arguments {argv[1:]} (flags start with --)", file=sys.stderr)
        return 2
    result = stylize.stylize(config_from_flags(flags.FLAGS))
    for path in result.written:
        print(f"wrote {path.resolve()}")
    tried = len(result.failed) + len(result.written)
    if result.failed and tried > 1:  # Each failure was logged as it happened: here only a count.
        print(f"failed: {len(result.failed)} of {tried} files (errors above)", file=sys.stderr)
    if result.interrupted:  # Not "done": the engine said at which step it stopped.
        print("interrupted: the current image (or a clip's frames so far) was saved", file=sys.stderr)
        return 130
    logging.info("done in %.1f s", result.seconds)
    return 1 if result.failed else 0


if __name__ == "__main__":
    cli.run(main, _define_flags)
