"""Named live sources: ``[NAME=]SOURCE`` on the command line or one per line in a file.

A name labels a source's results, events and MQTT topics. Without one, it is made from the
source: a file's stem, ``camera0`` for camera 0, a URL's host and path. Names are unique
(a repeat gets ``-2``, ``-3``...). A source may have named zones, rectangles of its frame
each classified as a stream of its own; each thing fed to the model (the whole frame, a
zone) is a *view*, named by a :class:`FeedName` (``yard`` or ``yard/pool``).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from ..errors import VidclsError
from ..files import check_regular, read_text

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
MAX_SOURCES = 1024
MAX_LIST_BYTES = 1 << 20
SHOWN_PROBLEMS = 5  # sources that cannot be opened, named one a line; then "and N more"


@dataclass(frozen=True)
class Zone:
    """A named rectangle of a source's frame: ``box`` is ``(x1, y1, x2, y2)`` as fractions
    of the frame's width and height (0 top left, 1 bottom right)."""

    name: str
    box: tuple[float, float, float, float]

    def __post_init__(self) -> None:
        if not NAME.fullmatch(self.name):
            raise ValueError(f"zone name {self.name!r}: letters, digits, _ . - (at most 64)")
        try:
            x1, y1, x2, y2 = (float(v) for v in self.box)
        except (TypeError, ValueError):
            raise ValueError(f"zone {self.name}: box must be 4 numbers x1, y1, x2, y2") from None
        if not (0 <= x1 < x2 <= 1 and 0 <= y1 < y2 <= 1):
            raise ValueError(
                f"zone {self.name}: box {list(self.box)} must have 0 <= x1 < x2 <= 1 and "
                "0 <= y1 < y2 <= 1 (fractions of the frame)"
            )
        object.__setattr__(self, "box", (x1, y1, x2, y2))

    def crop(self, rgb):
        """The zone of an ``[h, w, 3]`` picture (a view, no copy); at least a pixel each way."""
        h, w = rgb.shape[:2]
        x1, y1, x2, y2 = self.box
        left, top = min(int(x1 * w), w - 1), min(int(y1 * h), h - 1)
        right, bottom = max(round(x2 * w), left + 1), max(round(y2 * h), top + 1)
        return rgb[top:bottom, left:right]


def parse_zone(text: str) -> Zone:
    """``NAME=x1,y1,x2,y2``."""
    name, sep, box = text.partition("=")
    if not sep:
        raise ValueError(f"zone {text!r}: expected NAME=x1,y1,x2,y2")
    return Zone(name.strip(), tuple(v.strip() for v in box.split(",")))


class FeedName(str):
    """The name of one view of a source, as results and events are labelled: the source's
    name for its whole frame, ``source/zone`` for a zone; ``source`` and ``zone`` (None for
    the whole frame) apart."""

    source: str
    zone: str | None

    def __new__(cls, source: str, zone: str | None = None) -> FeedName:
        self = super().__new__(cls, source if zone is None else f"{source}/{zone}")
        self.source, self.zone = source, zone
        return self


@dataclass(frozen=True)
class SourceSpec:
    """A source as given (camera index, device, URL or file) and its name; its zones, and
    whether its whole frame is classified too (None: only when it has no zones)."""

    name: str
    source: str
    zones: tuple[Zone, ...] = ()
    whole: bool | None = None

    def views(self) -> list[tuple[FeedName, Zone | None]]:
        """What is fed to the model: the whole frame and/or each zone, with its name."""
        zoned = bool(self.zones)
        out: list[tuple[FeedName, Zone | None]] = []
        if self.whole or (self.whole is None and not zoned):
            out.append((FeedName(self.name, None) if zoned else self.name, None))
        out += [(FeedName(self.name, z.name), z) for z in self.zones]
        return out


def parse_source(text: str) -> SourceSpec:
    """``NAME=SOURCE`` or ``SOURCE``; a source that exists as a file is never split. A URL
    that cannot be taken apart (``rtsp://[::1``) is a VidclsError naming it."""
    text = text.strip()
    head, sep, rest = text.partition("=")
    if sep and NAME.fullmatch(head) and rest.strip() and not _exists(text):
        return SourceSpec(head, check_url(rest.strip()))
    if sep and not rest.strip() and NAME.fullmatch(head):
        raise VidclsError(f"source '{head}' has a name but no source")
    return SourceSpec(default_name(check_url(text)), text)


def _exists(path: str) -> bool:
    try:
        return os.path.exists(path)
    except (OSError, ValueError):  # a NUL, a name too long
        return False


def check_url(source: str) -> str:
    """``source``, after checking that a URL (``scheme://...``) can be taken apart: a bad
    IPv6 address (``rtsp://[::1``), a port that is not a number, a URL without a host are a
    VidclsError naming it (never retried as a stream that dropped)."""
    if "://" not in source:
        return source
    shown = re.sub(r"://[^/@]*@", "://***@", source, count=1)  # no password in a message
    try:
        parts = urlsplit(source)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as e:
        raise VidclsError(f"not a valid URL ({e})", shown) from None
    if not parts.scheme or (not parts.netloc and parts.scheme != "file"):
        raise VidclsError("not a valid URL (no host)", shown)
    return source


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
        out.append(SourceSpec(name, spec.source, spec.zones, spec.whole))
    return out


def read_sources(path: str | os.PathLike) -> list[SourceSpec]:
    """One ``[NAME=]SOURCE`` per line; blank lines and ``#`` comments are skipped."""
    file, text = read_text(path, "source list", MAX_LIST_BYTES)
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


def gather(sources: list, lists: list[str] | None = None) -> list[SourceSpec]:
    """Every source from the arguments (``[NAME=]SOURCE`` or a :class:`SourceSpec`) and the
    lists, uniquely named; at least one."""
    specs = [s if isinstance(s, SourceSpec) else parse_source(s) for s in sources]
    for path in lists or []:
        specs += read_sources(path)
    if not specs:
        raise VidclsError("no source given (a SOURCE argument or --sources FILE)")
    if len(specs) > MAX_SOURCES:
        raise VidclsError(f"{len(specs)} sources is more than {MAX_SOURCES}")
    return unique(specs)


def check_source(spec: SourceSpec) -> None:
    """VidclsError when a file source does not exist or cannot be read (cameras and network
    streams are tried when they start)."""
    source = spec.source
    if "://" in source:
        check_url(source)
        return
    if source.isdigit() or source.startswith("/dev/video"):
        return
    check_regular(source, "video file", missing="no such file, camera or stream")


def reachable(specs: list[SourceSpec]) -> tuple[list[SourceSpec], dict[str, str]]:
    """The sources :func:`check_source` passes, and for each of the others (by name) why
    not."""
    ok, problems = [], {}
    for spec in specs:
        try:
            check_source(spec)
            ok.append(spec)
        except VidclsError as e:
            problems[spec.name] = str(e)
    return ok, problems


def shown_problems(problems: dict[str, str], most: int = SHOWN_PROBLEMS) -> list[str]:
    """A line for each of the first ``most`` problems (``camera NAME: problem``), then one
    for how many more (22,000 missing cameras are not 22,000 lines)."""
    lines = [f"camera {name}: {why}" for name, why in list(problems.items())[:most]]
    if len(problems) > most:
        lines.append(f"and {len(problems) - most} more cameras that cannot be opened")
    return lines


def none_reachable(problems: dict[str, str], where: str | os.PathLike | None) -> VidclsError:
    """The one-line error when no source could be opened: the first problem and the count."""
    first = shown_problems(problems, 1)[0]
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    return VidclsError(f"no camera could be opened: {first}{more}", where)
