"""One YAML file for every camera: sources, zones, filters, sinks and event clips.

    model: a0
    clips: {folder: /var/lib/vidcls/clips, pre_roll: 5, post_roll: 3, keep_days: 14}
    mqtt: mqtt://user:${MQTT_PASSWORD}@broker.local
    cameras:
      yard:
        source: rtsp://camera.local/stream2
        threshold: 0.4
        zones:
          pool: [0.5, 0.0, 1.0, 1.0]
          gate: {box: [0.0, 0.2, 0.3, 0.9], allow: [opening door, walking the dog]}

Checked with pydantic when loaded: a mistake (a typo, a wrong type, an unknown key, a bad
zone) is a :class:`~vidcls.errors.VidclsError` naming the file, the line and the key.
``${NAME}`` in a value is the environment variable NAME (for secrets). Per camera or zone:
``allow``, ``deny``, ``threshold``, ``top_k``, ``window``, ``enter``, ``exit``,
``min_duration``, ``cooldown`` (no second event of a label within that many seconds) and
``fps``; a zone takes its camera's unless it says otherwise. ``groups`` (a number or
``auto``) and ``cameras_per_group`` say how many processes the cameras are shared among
(see :mod:`vidcls.live.sizing`). ``events_db`` (a ``postgresql://`` URL or an SQLite file) is
where ``vidcls serve --config`` keeps the events (:mod:`vidcls.live.events_db`).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .errors import VidclsError
from .files import read_text
from .options import MAX_FPS, MIN_FPS

MAX_CONFIG_BYTES = 1 << 20
MAX_DEPTH = 32  # nested lists and mappings; a camera's zone's allow list is 5 deep
MAX_ALIASED = 100_000  # values that aliases (*name) may add by repeating what they name
MAX_CAMERAS = 1024  # as many as vidcls live takes from the command line
MAX_GROUPS = 256  # processes of cameras (see vidcls.live.groups)
ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
Fraction = Annotated[float, Field(ge=0, le=1)]
Seconds = Annotated[float, Field(ge=0, allow_inf_nan=False)]
SOURCE_KEYS = ("allow", "deny", "threshold", "top_k", "window")  # the classifier's, per feed
SEGMENT_KEYS = ("enter", "exit", "min_duration")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Filters(_Strict):
    """What a camera or a zone may set for itself."""

    allow: list[str] | None = None
    deny: list[str] | None = None
    threshold: Fraction | None = None
    top_k: Annotated[int, Field(ge=0)] | None = None
    window: Seconds | None = None
    enter: Fraction | None = None
    exit: Fraction | None = None
    min_duration: Seconds | None = None
    cooldown: Seconds | None = None
    fps: Annotated[float, Field(ge=MIN_FPS, le=MAX_FPS)] | None = None


class ZoneConfig(Filters):
    box: tuple[float, float, float, float]

    @field_validator("box")
    @classmethod
    def _inside(cls, box: tuple[float, float, float, float]):
        x1, y1, x2, y2 = box
        if not (0 <= x1 < x2 <= 1 and 0 <= y1 < y2 <= 1):
            raise ValueError(
                f"{list(box)} must have 0 <= x1 < x2 <= 1 and 0 <= y1 < y2 <= 1 "
                "(x1, y1, x2, y2 as fractions of the frame)"
            )
        return box


class CameraConfig(Filters):
    source: str
    zones: dict[str, ZoneConfig] = {}
    whole: bool | None = None  # classify the whole frame too (default: only without zones)

    @field_validator("source")
    @classmethod
    def _url(cls, source: str) -> str:
        """A URL that cannot be taken apart is refused here, not retried as a dropped stream."""
        from .live.sources import check_url

        try:
            return check_url(source)
        except VidclsError as e:
            raise ValueError(str(e)) from None

    @field_validator("zones", mode="before")
    @classmethod
    def _short_zones(cls, zones: Any) -> Any:
        """``pool: [x1, y1, x2, y2]`` is ``pool: {box: [...]}``."""
        if isinstance(zones, dict):
            return {k: {"box": v} if isinstance(v, list) else v for k, v in zones.items()}
        return zones


class ClipsConfig(_Strict):
    folder: str
    pre_roll: Seconds = 5.0
    post_roll: Seconds = 3.0
    max_clip: Seconds = 120.0
    keep_days: Annotated[float, Field(gt=0)] | None = None
    keep_gb: Annotated[float, Field(gt=0)] | None = None
    snapshots: bool = True


class ConfigFile(Filters):
    model: str = "a0"
    labels: str | None = None
    threads: Annotated[int, Field(ge=1)] | None = None
    mqtt: str | None = None
    mqtt_prefix: str | None = None
    webhook: str | list[str] | None = None
    clips: ClipsConfig | None = None
    loop: bool = False  # files played again from the start at their end (demos, tests)
    replay: bool = False  # files played on a virtual clock, as fast as the CPU goes
    groups: int | str | None = None  # processes the cameras are shared among, or auto
    cameras_per_group: Annotated[int, Field(ge=1)] | None = None  # instead of the measured
    events_db: str | None = None  # postgresql://... or an SQLite file (vidcls serve)
    cameras: Annotated[dict[str, CameraConfig], Field(min_length=1, max_length=MAX_CAMERAS)]

    @field_validator("groups", mode="before")
    @classmethod
    def _groups(cls, groups: Any) -> int | str | None:
        if groups is None or groups == "auto":
            return groups
        if isinstance(groups, int) and not isinstance(groups, bool) and 1 <= groups <= MAX_GROUPS:
            return groups
        raise ValueError(f"auto or a number from 1 to {MAX_GROUPS}, not {groups!r}")

    @field_validator("mqtt")
    @classmethod
    def _mqtt(cls, url: str | None) -> str | None:
        from .sinks.mqtt import parse_url

        try:
            if url is not None:
                parse_url(url)
        except VidclsError as e:
            raise ValueError(str(e)) from None
        return url

    @field_validator("events_db")
    @classmethod
    def _events_db(cls, where: str | None) -> str | None:
        from .live.events_db import check_events_db

        try:
            return None if where is None else check_events_db(where)
        except VidclsError as e:
            raise ValueError(str(e)) from None

    @field_validator("webhook")
    @classmethod
    def _webhook(cls, urls: str | list[str] | None) -> str | list[str] | None:
        from .sinks.webhook import plain_url

        try:
            for url in [urls] if isinstance(urls, str) else urls or []:
                plain_url(url)
        except VidclsError as e:
            raise ValueError(str(e)) from None
        return urls


@dataclass
class ViewSettings:
    """What one view (a camera's whole frame or a zone) is fed with."""

    changes: dict = field(default_factory=dict)  # classifier options for Scheduler.add
    segments: dict = field(default_factory=dict)  # SegmentOptions fields it sets
    cooldown: float | None = None
    fps: float | None = None


@dataclass
class Config:
    """A loaded config: the file's contents and where they came from."""

    path: Path
    file: ConfigFile

    def specs(self) -> list:
        """The cameras as :class:`~vidcls.live.sources.SourceSpec` with their zones."""
        from .live.sources import NAME, SourceSpec, Zone

        specs = []
        for name, cam in self.file.cameras.items():
            if not NAME.fullmatch(name):
                raise self._error(("cameras", name), "a camera name: letters, digits, _ . -")
            zones = []
            for zname, z in cam.zones.items():
                try:
                    zones.append(Zone(zname, z.box))
                except ValueError as e:
                    raise self._error(("cameras", name, "zones", zname), str(e)) from None
            specs.append(SourceSpec(name, cam.source, tuple(zones), cam.whole))
        return specs

    def feeds(self) -> dict[str, ViewSettings]:
        """Per view name (``yard``, ``yard/pool``, as :meth:`SourceSpec.views` names them):
        its own settings over the camera's over the file's."""
        out = {}
        for spec in self.specs():
            cam = self.file.cameras[spec.name]
            for view, zone in spec.views():
                layers = [self.file, cam] + ([cam.zones[zone.name]] if zone else [])
                out[view] = _settings(layers)
        return out

    def _error(self, loc: tuple, problem: str) -> VidclsError:
        return VidclsError(f"{'.'.join(map(str, loc))}: {problem}", self.path)


def _settings(layers: list[Filters]) -> ViewSettings:
    """What the layers set, each over the ones before it."""
    settings = ViewSettings()
    for layer in layers:
        for key in (*SOURCE_KEYS, *SEGMENT_KEYS, "cooldown", "fps"):
            value = getattr(layer, key)
            if value is None:
                continue
            if key in SOURCE_KEYS:
                settings.changes[key] = value
            elif key in SEGMENT_KEYS:
                settings.segments[key] = value
            else:
                setattr(settings, key, value)
    return settings


def load_config(path: str | os.PathLike) -> Config:
    """Read and check a cameras config file (see the module's docstring)."""
    import yaml

    file, text = read_text(path, "config file", MAX_CONFIG_BYTES)
    try:
        _check_shape(text, file)
        loader = _loader()(text)  # a safe loader: plain data only
        try:  # composed once: the lines from the tree, then the data built from it
            node = loader.get_single_node()
            lines = _lines(node)  # first: building the data flattens merge keys (<<) in place
            data = None if node is None else loader.construct_document(node)
        finally:
            loader.dispose()
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        if "nesting depth" in problem:  # libyaml's own bound, far past ours
            raise VidclsError(
                f"{where}lists and mappings nested more than {MAX_DEPTH} deep", file
            ) from None
        raise VidclsError(f"{where}not valid YAML ({problem})", file) from None
    if not isinstance(data, dict):
        raise VidclsError("expected a mapping with 'cameras:' at the top", file)
    data = _expand(data, (), lines, file)
    try:
        return Config(file, ConfigFile.model_validate(data))
    except ValidationError as e:
        first = e.errors()[0]
        loc = tuple(first["loc"])
        line = _line_of(loc, lines)
        where = f"line {line}: " if line else ""
        key = ".".join(str(k) for k in loc) or "(top)"
        raise VidclsError(f"{where}{key}: {_message(first)}", file) from None


def _loader():
    """PyYAML's safe loader, in C (libyaml) where PyYAML has it: ten times quicker."""
    import yaml

    return getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _check_shape(text: str, file: Path) -> None:
    """VidclsError, before anything is built from the YAML, when its lists and mappings nest
    deeper than MAX_DEPTH or its aliases would repeat more than MAX_ALIASED values (a
    "billion laughs" of a few hundred bytes). One pass over the parser's events: linear in
    the text, without recursion (PyYAML's composer recurses once per level)."""
    import yaml

    anchors: dict[str, tuple[int, int]] = {}  # each anchor's (values, depth) it stands for
    open_: list[list] = []  # the collections being read: [anchor, values, depth below]
    aliased = 0

    def add(size: int, depth: int, mark) -> None:
        if open_:
            open_[-1][1] += size
            open_[-1][2] = max(open_[-1][2], depth)
        if len(open_) + depth > MAX_DEPTH:
            raise VidclsError(
                f"line {mark.line + 1}: lists and mappings nested more than {MAX_DEPTH} deep",
                file,
            )

    for event in yaml.parse(text, Loader=_loader()):
        if isinstance(event, yaml.AliasEvent):
            if any(o[0] == event.anchor for o in open_):  # &a [*a]: a value inside itself
                raise VidclsError(
                    f"line {event.start_mark.line + 1}: the alias *{event.anchor} is inside "
                    f"the value it names (&{event.anchor})",
                    file,
                )
            size, depth = anchors.get(event.anchor, (1, 0))
            aliased += size
            if aliased > MAX_ALIASED:
                raise VidclsError(
                    f"line {event.start_mark.line + 1}: aliases (*{event.anchor}) repeat more "
                    f"than {MAX_ALIASED:,} values; write the values out instead",
                    file,
                )
            add(size, depth, event.start_mark)
        elif isinstance(event, yaml.ScalarEvent):
            if event.anchor is not None:
                anchors[event.anchor] = (1, 0)
            add(1, 0, event.start_mark)
        elif isinstance(event, yaml.CollectionStartEvent):
            open_.append([event.anchor, 1, 0])
            add(0, 0, event.start_mark)
        elif isinstance(event, yaml.CollectionEndEvent):
            anchor, size, below = open_.pop()
            if anchor is not None:
                anchors[anchor] = (size, below + 1)
            add(size, below + 1, event.start_mark)


def _message(error: dict) -> str:
    if error["type"] == "extra_forbidden":
        return "unknown key"
    if error["type"] == "missing":
        return "missing"
    if error["type"] == "too_long":
        return f"more than {error['ctx']['max_length']} (the most vidcls takes)"
    return error["msg"]


def _lines(node, path: tuple = ()) -> dict[tuple, int]:
    """Each key path's line (1-based) in the YAML node tree."""
    import yaml

    out: dict[tuple, int] = {}
    if node is None:
        return out
    out[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            key = (*path, k.value)
            out.update(_lines(v, key))
            out[key] = k.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, v in enumerate(node.value):
            out.update(_lines(v, (*path, i)))
    return out


def _line_of(loc: tuple, lines: dict[tuple, int]) -> int | None:
    """The line of the deepest part of ``loc`` in the file (pydantic adds parts of its own)."""
    loc = tuple(str(k) if not isinstance(k, int) else k for k in loc)
    for n in range(len(loc), 0, -1):
        if loc[:n] in lines:
            return lines[loc[:n]]
    return None


def _expand(value: Any, path: tuple, lines: dict, file: Path) -> Any:
    """``${NAME}`` replaced by the environment variable in every string."""
    if isinstance(value, dict):
        return {k: _expand(v, (*path, str(k)), lines, file) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v, (*path, i), lines, file) for i, v in enumerate(value)]
    if isinstance(value, str):

        def env(m: re.Match) -> str:
            if m.group(1) not in os.environ:
                line = _line_of(path, lines)
                where = f"line {line}: " if line else ""
                raise VidclsError(
                    f"{where}{'.'.join(map(str, path))}: environment variable "
                    f"{m.group(1)} is not set",
                    file,
                )
            return os.environ[m.group(1)]

        return ENV.sub(env, value)
    return value
