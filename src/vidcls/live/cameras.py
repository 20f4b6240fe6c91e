"""The cameras of a config file, watched in the background of a server (``vidcls serve
--config``): the same engine, sinks and clips as ``vidcls live --config``, every event kept
in an :class:`~.store.EventStore`, and the sinks told the clips' and snapshots' web
addresses."""

from __future__ import annotations

import dataclasses
import logging
import threading
from pathlib import Path

from ..config import Config
from .outputs import Output, Outputs
from .sources import shown_problems
from .status import Status, Tally
from .store import EventStore

log = logging.getLogger("vidcls")


class Linked(Output):
    """Another output that gets an end event's clip and snapshot as web addresses (``base``
    + their path under ``folder``) instead of file paths."""

    def __init__(self, output: Output, folder: Path, base: str) -> None:
        self.output, self.folder, self.base = output, folder.resolve(), base.rstrip("/")
        self.waits = output.waits

    def _link(self, path: str | None) -> str | None:
        if path is None:
            return None
        try:
            return f"{self.base}/media/{Path(path).resolve().relative_to(self.folder).as_posix()}"
        except ValueError:
            return path

    def result(self, source, result) -> None:
        self.output.result(source, result)

    def event(self, source, event) -> None:
        if event.clip is not None or event.snapshot is not None:
            event = dataclasses.replace(
                event, clip=self._link(event.clip), snapshot=self._link(event.snapshot)
            )
        self.output.event(source, event)

    def status(self, source, online) -> None:
        self.output.status(source, online)

    def close(self, timeout: float = 5.0) -> None:
        self.output.close(timeout)


class Cameras:
    """Watches ``config``'s cameras in a thread once :meth:`start` is called, until
    :meth:`close`; events go to its sinks (with the clips' and snapshots' addresses under
    ``base_url`` when given) and to ``store`` (with their paths). A camera that cannot be
    opened is logged and listed in :attr:`failed`; the others are watched (none: a
    VidclsError). Built as ``vidcls live --config`` builds them (:mod:`.build`), in groups
    of processes when there are many (:mod:`.groups`), or of Ray actors on the cluster at
    ``ray`` (:mod:`.ray_groups`)."""

    def __init__(
        self, config: Config, store: EventStore, base_url: str | None = None, ray: str | None = None
    ) -> None:
        from .build import from_config

        self.config, self.store = config, store
        plan = from_config(config, clips_absolute=True, ray=ray)  # the pages serve stored paths
        self.missing = plan.reachable()
        for line in shown_problems(self.missing):
            log.error("%s: %s (the others are watched)", config.path, line)
        classifier = plan.load()
        sinks = plan.sinks.open()
        self.clips = plan.clips
        if base_url is not None and self.clips is not None:
            sinks = [Linked(sink, Path(self.clips.folder), base_url) for sink in sinks]
        self.tally = Tally()  # each camera's results per second, for :meth:`groups`
        self.outputs = Outputs([*sinks, store, self.tally])
        self.watch = plan.engine(classifier, self.outputs)
        self._status = Status(self.watch, plan.specs, self.tally)
        self._thread = threading.Thread(target=self._run, name="vidcls-cameras", daemon=True)

    @property
    def media(self) -> Path | None:
        """The folder of the clips and snapshots, if any."""
        return None if self.clips is None else Path(self.clips.folder)

    @property
    def state(self) -> str:
        """``watching``, or ``done`` once every camera has ended (files at their end)."""
        return "watching" if self._thread.is_alive() else "done"

    @property
    def failed(self) -> dict[str, str]:
        """Per camera that could not be opened (missing at the start, or ended without a
        frame), why; the others are watched on."""
        return {**self.missing, **self.watch.unopened()}

    def start(self) -> None:
        self._thread.start()

    def groups(self) -> dict:
        """The running engine described: its groups of cameras, where each runs, its state
        and load, and on Ray the nodes (see :class:`~.status.Status`)."""
        return self._status.doc(self._thread.is_alive())

    def switch_model(self, model) -> None:
        """Classify every camera with ``model`` from its next frame (see
        :meth:`Watch.switch_model`); VidclsError, nothing changed, if it cannot."""
        self.watch.switch_model(model)

    def record(self, name: str, seconds: float, path: str) -> bool:
        """Ask camera view ``name`` for a clip of the next ``seconds`` (and its pre-roll) at
        ``path``; False when it records no clips (no ``clips:`` in the config, or a camera
        OpenCV decodes)."""
        return self.watch.record(name, seconds, path)

    def _run(self) -> None:
        try:
            self.watch.run()
        except Exception:  # logged: the server goes on serving the pages and past events
            log.exception("the cameras stopped")

    def close(self, timeout: float = 10.0) -> None:
        """Stop watching; open segments close and their events are delivered."""
        self.watch.request_stop()
        self._thread.join(timeout)
        self.outputs.close()
