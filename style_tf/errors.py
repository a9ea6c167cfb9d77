"""The project exception: a user error that entry points print as one line (exit status 2)."""


class StyleError(Exception):
    """A problem with the user's input (file, image, flag value), not a bug.

    Entry points catch it, print `error: <message>` on stderr and exit with status 2.
    Anything else is a bug and keeps its traceback.
    """


def user_errors_exit_2(main):
    """Decorates an entry point's `main(argv) -> int`: a StyleError becomes one line on
    stderr (`error: ...`) and exit status 2; any other exception keeps its traceback."""
    import functools
    import sys

    @functools.wraps(main)
    def wrapper(argv):
        try:
            return main(argv)
        except StyleError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2

    return wrapper
