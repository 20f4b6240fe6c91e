"""Named live sources: ``[NAME=]SOURCE`` on the command line or one per line in a file.

A name labels a source's results, events and MQTT topics. Without one, it is made from the
source: a file's stem, ``camera0`` for camera 0, a URL's host and path. Names are unique
(a repeat gets ``-2``, ``-3``...).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from ..errors import VidclsError
from ..files import check_regular

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
MAX_SOURCES = 1024
MAX_LIST_BYTES = 1 << 20


@dataclass(frozen=True)
class SourceSpec:
    """A source as given (camera index, device, URL or file) and its name."""

    name: str
    source: str


def parse_source(text: str) -> SourceSpec:
    """``NAME=SOURCE`` or ``SOURCE``; a source that exists as a file is never split."""
    text = text.strip()
    head, sep, rest = text.partition("=")
    if sep and NAME.fullmatch(head) and rest.strip() and not os.path.exists(text):
        return SourceSpec(head, rest.strip())
    if sep and not rest.strip() and NAME.fullmatch(head):
        raise VidclsError(f"source '{head}' has a name but no source")
    return SourceSpec(default_name(text), text)


def default_name(source: str) -> str:
    """A readable name for a source that was given none."""
    if source.isdigit():
        return f"camera{source}"
    if "://" in source:
        parts = urlsplit(source)
        raw = (parts.hostname or "") + parts.path
    else:
        raw = Path(source).stem
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", raw).strip("_.-")[:64]
    return name or "source"


def unique(specs: list[SourceSpec]) -> list[SourceSpec]:
    """The same sources, a repeated name numbered ``-2``, ``-3``... in order."""
    taken: set[str] = set()
    out = []
    for spec in specs:
        name, n = spec.name, 1
        while name in taken:
            n += 1
            name = f"{spec.name}-{n}"
        taken.add(name)
        out.append(SourceSpec(name, spec.source))
    return out


def read_sources(path: str | os.PathLike) -> list[SourceSpec]:
    """One ``[NAME=]SOURCE`` per line; blank lines and ``#`` comments are skipped."""
    file = check_regular(path, "source list", limit=MAX_LIST_BYTES)
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise VidclsError("source list is not UTF-8 text", file) from None
    except OSError as e:
        raise VidclsError(f"cannot read source list ({e.strerror or e})", file) from None
    specs = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            specs.append(parse_source(line))
        except VidclsError as e:
            raise VidclsError(f"line {number}: {e.message}", file) from None
    if not specs:
        raise VidclsError("source list names no source", file)
    return specs


def gather(sources: list[str], lists: list[str] | None = None) -> list[SourceSpec]:
    """Every source from the arguments and the lists, uniquely named; at least one."""
    specs = [parse_source(s) for s in sources]
    for path in lists or []:
        specs += read_sources(path)
    if not specs:
        raise VidclsError("no source given (a SOURCE argument or --sources FILE)")
    if len(specs) > MAX_SOURCES:
        raise VidclsError(f"{len(specs)} sources is more than {MAX_SOURCES}")
    return unique(specs)
