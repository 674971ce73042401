"""The one exception users see: a message that names the problem and the fix."""


class UntwineError(Exception):
    """A user-facing error; the CLI prints its message in one line (the traceback with --debug)."""
