"""The project exception: a user error that entry points print as one line (exit status 2)."""


class StyleError(Exception):
    """A problem with the user's input (file, image, flag value), not a bug.

    Entry points catch it, print `error: <message>` on stderr and exit with status 2.
    Anything else is a bug and keeps its traceback.
    """
