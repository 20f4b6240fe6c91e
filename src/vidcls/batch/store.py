"""A batch job's committed results: part files beside the output, merged into it at the end.

A part counts once its rows file exists: the per-frame part is written first and the rows
part (the commit marker) last, each atomically. After a crash the committed parts say which
inputs are done; :meth:`PartStore.finish` merges them (and an earlier output) into the
output, keeping each input once, then removes them.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from ..errors import VidclsError
from ..writers import ROW_FORMATS, read_rows, write_error, write_rows


def check_output(output: Path) -> None:
    """VidclsError unless ``output`` is a .parquet or .jsonl file in an existing folder (and
    pyarrow is installed for Parquet)."""
    fmt = ROW_FORMATS.get(output.suffix.lower())
    if fmt is None:
        raise VidclsError("output must end in .parquet or .jsonl", output)
    if fmt == "parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise VidclsError("Parquet output needs pyarrow: pip install 'vidcls[batch]'") from None
    if not output.parent.is_dir():
        raise VidclsError("output folder does not exist", output.parent)


def frames_path(output: Path) -> Path:
    """Where per-frame rows go: ``results.parquet`` -> ``results.frames.parquet``."""
    return output.with_name(f"{output.stem}.frames{output.suffix}")


class PartStore:
    """Committed results of the job writing ``output``, in ``<output>.parts/``."""

    def __init__(self, output: str | Path) -> None:
        self.output = Path(output)
        self.folder = self.output.with_name(self.output.name + ".parts")
        self.suffix = self.output.suffix.lower()

    def done(self) -> set[str]:
        """Inputs with a committed row, in the parts or in an existing output."""
        keys = set()
        for part in [*self._parts("rows"), self.output]:
            if part.is_file():
                keys.update(r["source"] for r in read_rows(part))
        return keys

    def commit(self, rows: list[dict], frames: list[dict] | None) -> None:
        """Frames part first, then the rows part: a part counts once its rows file exists.
        VidclsError if they cannot be written (disk full); the parts committed stay."""
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise write_error(e, self.folder) from None
        key = "\n".join(sorted(r["source"] for r in rows))
        name = hashlib.sha1(key.encode()).hexdigest()[:16]
        if frames is not None:
            write_rows(self.folder / f"frames-{name}{self.suffix}", frames, "frames")
        write_rows(self.folder / f"rows-{name}{self.suffix}", rows, "videos")

    def finish(self, frames_output: Path | None) -> tuple[int, int]:
        """Merge the parts (and an earlier output) into the outputs, each input once; returns
        the numbers of video rows and frame rows written. The parts are removed only once
        both are written (VidclsError if they cannot be: disk full)."""
        committed = self._parts("rows")
        rows = read_rows(self.output) if self.output.is_file() else []
        for part in committed:
            rows += read_rows(part)
        unique: dict[str, dict] = {}
        for r in rows:
            unique.setdefault(r["source"], r)
        merged = sorted(unique.values(), key=lambda r: r["source"])
        write_rows(self.output, merged, "videos")
        n_frames = 0
        if frames_output is not None:
            n_frames = self._merge_frames(committed, frames_output)
        self._remove()
        return len(merged), n_frames

    def _merge_frames(self, committed: list[Path], frames_output: Path) -> int:
        frames = read_rows(frames_output) if frames_output.is_file() else []
        have = {f["source"] for f in frames}
        for part in committed:
            part = part.with_name(part.name.replace("rows-", "frames-", 1))
            if part.is_file():
                frames += [f for f in read_rows(part) if f["source"] not in have]
        frames.sort(key=lambda f: (f["source"], f["time"], f["rank"]))
        write_rows(frames_output, frames, "frames")
        return len(frames)

    def _remove(self) -> None:
        if not self.folder.is_dir():
            return
        for part in self.folder.iterdir():
            part.unlink()
        self.folder.rmdir()

    def _parts(self, kind: str) -> list[Path]:
        if not self.folder.is_dir():
            return []
        return sorted(self.folder.glob(f"{kind}-*{self.suffix}"))
