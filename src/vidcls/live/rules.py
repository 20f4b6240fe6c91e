"""Each view's own rules (from a config file): the options its feed is added with, and which
of its events are published (allowed labels, cooldowns)."""

from __future__ import annotations

import dataclasses

from ..options import SegmentOptions
from ..results import SegmentEvent


class Rules:
    """``settings``: per view name, a :class:`vidcls.config.ViewSettings`; ``segments``: the
    run's segment options, which a view's own fields change."""

    def __init__(self, settings: dict, segments: SegmentOptions | bool | None) -> None:
        self.settings, self.segments = settings, segments
        self._last_end: dict[tuple[str, str], float] = {}  # (view, label): last published end
        self._muted: set[int] = set()  # segments in their label's cooldown

    def changes(self, name: str) -> dict:
        """Scheduler.add's options for view ``name``."""
        s = self.settings.get(name)
        if s is None:
            return {}
        changes = dict(s.changes)
        if s.segments and self.segments:
            base = self.segments if isinstance(self.segments, SegmentOptions) else None
            changes["segments"] = dataclasses.replace(base or SegmentOptions(), **s.segments)
        if s.fps is not None:
            changes["fps"] = s.fps
        return changes

    def quiet(self, name: str, event: SegmentEvent) -> bool:
        """Whether ``event`` is not published: its label is not allowed or is denied for the
        view, or it falls in its label's cooldown (its segment's start came within
        ``cooldown`` seconds of the last published end of that label; then its end is not
        published either)."""
        s = self.settings.get(name)
        if s is None:
            return False
        label = event.segment.label
        allow, deny = s.changes.get("allow"), s.changes.get("deny")
        if (allow and label not in allow) or (deny and label in deny):
            return True
        if not s.cooldown:
            return False
        segment, key = event.segment, (name, label)
        if event.kind == "start":
            last = self._last_end.get(key)
            if last is not None and segment.start - last < s.cooldown:
                self._muted.add(id(segment))
                return True
            return False
        if id(segment) in self._muted:
            self._muted.discard(id(segment))
            return True
        self._last_end[key] = segment.end
        return False
