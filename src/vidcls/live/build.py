"""One way from a cameras config (or sources and flags) to a running live engine.

``vidcls live --config``, ``vidcls serve --config`` and :func:`start_config` all go through
:func:`from_config`, so a camera behaves the same wherever it runs: the same model options
(top 3, a 4 s ``decay`` window unless the model records its own), segments, rate, sinks,
clips and snapshots. A :class:`Plan` is plain data (it pickles): a group process of
:mod:`.groups` rebuilds its share of the engine from it.

Layers, each over the one before: the builder's defaults, then ``defaults`` (the CLI's flag
values), then the file's keys, then ``overrides`` (flags that add to or force the file:
``loop``, ``replay``, more sinks, ``decoders``, ``workers``, ``groups``).
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path

from ..classifier import ClassifierOptions, VideoClassifier
from ..errors import VidclsError
from ..options import SegmentOptions
from .clips import ClipOptions, make_folder
from .outputs import Output
from .sources import SourceSpec, none_reachable, reachable

TOP_K = 3  # categories per result, as vidcls live prints them
WINDOW, WINDOW_MODE = 4.0, "decay"  # unless the model records its window (then "two")
FILTERS = ("labels", "threads", "top_k", "threshold", "allow", "deny")
SEGMENT_KEYS = ("enter", "exit", "min_duration", "smoothing")


@dataclass
class Sinks:
    """The event sinks to open (URLs), opened in the process that delivers events."""

    webhooks: list[str] = field(default_factory=list)
    mqtt: list[str] = field(default_factory=list)
    prefix: str = "vidcls"
    discovery: bool = False

    def open(self) -> list:
        """The sinks, started."""
        from ..sinks import open_sinks

        return open_sinks(self.webhooks, self.mqtt, self.prefix, self.discovery)


@dataclass
class Plan:
    """Everything a live engine is built from. ``settings``: per view, its own options
    (:meth:`vidcls.config.Config.feeds`); ``groups``: processes, an int or ``"auto"`` (see
    :func:`vidcls.live.sizing.group_count`); ``per_group``: cameras one group takes
    (None: the measured or default figure); ``where``: the config file, for messages;
    ``ray``: None, or the groups are Ray actors (:mod:`.ray_groups`) on the cluster at this
    address (``""``: a Ray started here)."""

    classifier: ClassifierOptions
    specs: list[SourceSpec]
    settings: dict = field(default_factory=dict)
    segments: SegmentOptions | bool | None = True
    fps: float | None = None
    loop: bool = False
    replay: bool = False
    workers: int | None = None
    decoders: int | None = None
    clips: ClipOptions | None = None
    sinks: Sinks = field(default_factory=Sinks)
    groups: int | str | None = None
    per_group: int | None = None
    where: str | None = None
    ray: str | None = None

    def load(self) -> VideoClassifier:
        """The classifier, with every view's own options checked against its model (a bad
        one is a VidclsError naming the view)."""
        classifier = VideoClassifier.create_from_options(self.classifier)
        for name, view in self.settings.items():
            try:
                classifier.new_stream(**view.changes)
            except (VidclsError, ValueError) as e:
                raise VidclsError(f"{name}: {e}", self.where) from None
        return classifier

    def reachable(self) -> dict[str, str]:
        """Keep the cameras whose file or device exists; the others' names and why (none
        left: a VidclsError). Network cameras are retried while running."""
        ok, missing = reachable(self.specs)
        if not ok:
            raise none_reachable(missing, self.where)
        self.specs = ok
        return missing

    def subset(self, specs: list[SourceSpec]) -> Plan:
        """The same plan for some of its cameras (a group's share)."""
        names = {view for s in specs for view, _ in s.views()}
        settings = {k: v for k, v in self.settings.items() if k in names}
        return dataclasses.replace(self, specs=list(specs), settings=settings, groups=1)

    def watch(self, classifier: VideoClassifier, outputs: Output, phase: int = 0):
        """A :class:`~.watch.Watch` of every camera in this process; ``phase``: views fed
        before these ones in the whole engine (the ticks spread as in one process)."""
        from .clock import VirtualClock
        from .watch import Watch

        return Watch(
            classifier,
            self.specs,
            fps=self.fps,
            segments=self.segments,
            loop=self.loop,
            workers=self.workers,
            decoders=self.decoders,
            outputs=outputs,
            clock=VirtualClock() if self.replay else None,
            clips=self.clips,
            settings=self.settings,
            phase=phase,
        )

    def engine(self, classifier: VideoClassifier, outputs: Output, single: bool = False):
        """The running engine's object: a :class:`~.watch.Watch` here with one group (or
        ``single``: a window needs the pictures here), else a :class:`~.groups.Groups` of
        processes (of Ray actors with ``ray``, however many); all run, stop, switch models
        and record clips alike."""
        from .sizing import group_count

        if self.ray is not None:
            if single:
                raise VidclsError("a window needs the cameras here: drop --ray (or --mosaic)")
            from .ray_groups import ray_groups

            return ray_groups(self, outputs, classifier)
        count = 1 if single else group_count(self)
        if count <= 1:
            return self.watch(classifier, outputs)
        from .groups import Groups

        return Groups(self, outputs, count, classifier)


def from_config(config, defaults: dict | None = None, **overrides) -> Plan:
    """The plan of ``config`` (a :class:`vidcls.config.Config`); ``defaults``: values the
    file's keys replace (the CLI's flags: ``top_k``, ``window``, ``enter``...); ``overrides``:
    ``loop``/``replay`` (either turns it on), ``webhooks``/``mqtt`` (added to the file's),
    ``mqtt_prefix``, ``mqtt_discovery``, ``decoders``, ``workers``, ``groups``, ``zones``
    and ``whole`` (every camera), ``clips_absolute`` (clip paths absolute: the pages serve
    them), ``ray`` (groups on Ray: a cluster's address, ``""`` for a Ray started here)."""
    c, d = config.file, dict(defaults or {})
    for key in (*FILTERS, "window", "fps", "enter", "exit", "min_duration"):
        if getattr(c, key, None) is not None:
            d[key] = getattr(c, key)
    d["model"] = c.model
    specs = config.specs()
    if overrides.get("zones"):
        zones, whole = tuple(overrides["zones"]), overrides.get("whole", False)
        specs = [dataclasses.replace(s, zones=zones, whole=whole) for s in specs]
    hooks = [c.webhook] if isinstance(c.webhook, str) else list(c.webhook or [])
    sinks = Sinks(
        [*hooks, *overrides.get("webhooks", [])],
        [*([c.mqtt] if c.mqtt else []), *overrides.get("mqtt", [])],
        c.mqtt_prefix or overrides.get("mqtt_prefix") or "vidcls",
        bool(overrides.get("mqtt_discovery")),
    )
    return Plan(
        classifier_options(d),
        specs,
        settings=config.feeds(),
        segments=segment_options(d),
        fps=d.get("fps"),
        loop=bool(c.loop or overrides.get("loop")),
        replay=bool(c.replay or overrides.get("replay")),
        workers=overrides.get("workers"),
        decoders=overrides.get("decoders"),
        clips=clip_options(c.clips, overrides.get("clips_absolute", False)),
        sinks=sinks,
        groups=_first(overrides.get("groups"), c.groups),
        per_group=c.cameras_per_group,
        where=str(config.path),
        ray=overrides.get("ray"),
    )


def _first(*values):
    return next((v for v in values if v is not None), None)


def classifier_options(values: dict) -> ClassifierOptions:
    """A live classifier's options from ``values`` (flag names: ``model``, ``top_k``,
    ``window``, ``cumulative``, ``window_mode``, ``fit``...; missing ones take the live
    defaults: top 3, the model's recorded window or 4 s, ``decay`` unless it records one)."""
    from ..classifier import model_window

    model = values.get("model") or "a0"
    recorded = model_window(model)
    window = values.get("window")
    if values.get("cumulative"):
        window = None
    elif window is None:
        window = WINDOW if recorded is None else recorded
    mode = values.get("window_mode") or ("two" if recorded is not None else WINDOW_MODE)
    fields = ClassifierOptions.__dataclass_fields__
    kwargs = {k: v for k, v in values.items() if k in fields and v is not None}
    kwargs.setdefault("top_k", TOP_K)
    kwargs.update(model=model, window=window, window_mode=mode)
    return ClassifierOptions(**kwargs)


def segment_options(values: dict) -> SegmentOptions:
    """SegmentOptions from the segment keys in ``values`` (the others: the defaults)."""
    return SegmentOptions(**{k: values[k] for k in SEGMENT_KEYS if values.get(k) is not None})


def clip_options(clips, absolute: bool = False) -> ClipOptions | None:
    """A config's ``clips:`` (a :class:`vidcls.config.ClipsConfig`) as ClipOptions, the folder
    made (a file by that name is an error before anything starts); None without it."""
    if clips is None:
        return None
    make_folder(clips.folder)
    fields = ("pre_roll", "post_roll", "max_clip", "keep_days", "keep_gb", "snapshots")
    folder = os.path.abspath(clips.folder) if absolute else clips.folder
    return ClipOptions(folder, **{f: getattr(clips, f) for f in fields})


def start_config(path: str | os.PathLike, outputs: Output, **overrides):
    """The cameras of config file ``path`` as an engine ready to ``run()``, handing results,
    events and status to ``outputs`` (the file's sinks are not opened: add
    ``plan.sinks.open()`` to ``outputs`` to have them). The Python API of ``vidcls live
    --config``."""
    from ..config import load_config

    plan = from_config(load_config(path), **overrides)
    if len(plan.specs) > 1:
        plan.reachable()
    return plan.engine(plan.load(), outputs)


def media_folder(plan: Plan) -> Path | None:
    """The folder of the clips and snapshots, if any."""
    return None if plan.clips is None else Path(plan.clips.folder)
