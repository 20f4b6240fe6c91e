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
