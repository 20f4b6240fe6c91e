"""A batch job's inputs: a folder, a glob, a manifest, one file or one URL."""

from __future__ import annotations

import csv
import glob
import os
from pathlib import Path

from ..errors import VidclsError
from ..media import is_url
from ..training.dataset import VIDEO_EXTENSIONS

MANIFESTS = (".csv", ".parquet", ".txt", ".lst")
COLUMNS = ("path", "url", "source")  # the manifest column read, else the first


def list_inputs(spec: str) -> list[str]:
    """Video paths (absolute) or URLs from a folder (recursive), a glob, a manifest, a file or
    a URL.

    A manifest is a .csv (column ``path``, ``url`` or ``source``, else the first), .parquet
    (likewise) or .txt/.lst (one per line, ``#`` comments) file; relative paths in it are
    relative to it.
    """
    if is_url(spec):
        return [spec]
    path = Path(spec)
    if path.is_dir():
        found = [p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS]
        return [os.path.abspath(p) for p in sorted(found)]
    if path.is_file() and path.suffix.lower() in MANIFESTS:
        return read_manifest(path)
    if path.is_file():
        return [os.path.abspath(path)]
    if any(c in spec for c in "*?["):
        found = [Path(p) for p in glob.glob(spec, recursive=True)]
        return [os.path.abspath(p) for p in sorted(found) if p.is_file()]
    raise VidclsError("no such folder, file, manifest or glob", spec)


def read_manifest(path: Path) -> list[str]:
    """The paths (made absolute) and URLs listed in a .csv, .parquet, .txt or .lst file."""
    suffix = path.suffix.lower()
    if suffix in (".txt", ".lst"):
        rows = [line.strip() for line in path.read_text("utf-8").splitlines()]
        rows = [r for r in rows if r and not r.startswith("#")]
    elif suffix == ".csv":
        rows = _csv_column(path)
    else:
        rows = _parquet_column(path)
    base = path.parent
    return [r if is_url(r) else os.path.abspath(base / r) for r in rows]


def _csv_column(path: Path) -> list[str]:
    with open(path, newline="", encoding="utf-8") as f:
        table = list(csv.reader(f))
    if not table:
        raise VidclsError("manifest is empty", path)
    header = [h.strip().lower() for h in table[0]]
    column = next((header.index(c) for c in COLUMNS if c in header), None)
    body = table[1:] if column is not None else table
    column = column or 0
    return [r[column].strip() for r in body if len(r) > column and r[column].strip()]


def _parquet_column(path: Path) -> list[str]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise VidclsError("Parquet manifests need pyarrow: pip install 'vidcls[batch]'") from None
    table = pq.read_table(path)
    names = [n.lower() for n in table.column_names]
    column = next((names.index(c) for c in COLUMNS if c in names), 0)
    return [str(v) for v in table.column(column).to_pylist() if v]
