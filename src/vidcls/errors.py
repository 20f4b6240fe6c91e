"""The one exception type that users see: a problem with their input, named with its file."""

from __future__ import annotations

import os


class VidclsError(Exception):
    """A user-facing error: bad input, bad model, unreachable download.

    The CLI prints ``str(error)`` on one line and exits with code 2.
    """

    def __init__(self, message: str, path: str | os.PathLike | None = None) -> None:
        self.message = message
        self.path = None if path is None else os.fspath(path)
        super().__init__(f"{self.path}: {message}" if self.path else message)


class OptionError(VidclsError):
    """A bad option value. ``name`` is the Python keyword; the CLI names it as its flag
    (``top_k`` is ``--top-k``)."""

    def __init__(self, name: str, problem: str) -> None:
        self.name, self.problem = name, problem
        super().__init__(f"{name} {problem}")

    def as_flag(self) -> str:
        """The message with the option named as its command-line flag."""
        return f"--{self.name.replace('_', '-')} {self.problem}"


def main_script() -> str | None:
    """The path of the script run as ``__main__`` (not ``python -m``, not a console): the kind
    that processes started the ``spawn`` way import again, so it must guard its work with
    ``if __name__ == "__main__":``."""
    import sys

    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    return path if path is not None and getattr(main, "__spec__", None) is None else None


def leave_if_importing_in_a_child(what: str) -> None:
    """End this process at once, with one line, if it is a child process (started the
    ``spawn`` way) still importing the calling script: the script started ``what`` without
    the ``if __name__ == "__main__":`` guard, and doing it again here would only fail."""
    import multiprocessing
    import sys

    if getattr(multiprocessing.current_process(), "_inheriting", False):
        print(
            f"vidcls: error: {what} was started while a child process imported the script "
            'again: call it under `if __name__ == "__main__":`',
            file=sys.stderr,
            flush=True,
        )
        raise SystemExit(1)
