"""The one exception users see: a message that names the problem and the fix."""


class UntwineError(Exception):
    """A user-facing error; the CLI prints its message in one line (the traceback with --debug)."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C after work was saved (e.g. during the evaluation that follows training), with a
    message saying what is kept and the command that finishes the rest.

    Still a ``KeyboardInterrupt``, so ``except Exception`` (a sweep's retry) does not swallow
    it; the CLI prints the message in one line and exits with 130, as a shell does for SIGINT.
    """
