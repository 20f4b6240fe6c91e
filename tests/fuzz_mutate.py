"""Seeded mutations of the real inputs (clips, models, label files) for ``tests/fuzz.py``.

Every case is a pure function of (seed, kinds, case number): the same three give the same
bytes, the same mutation description and the same command line.
"""

from __future__ import annotations

import io
import json
import random
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

KINDS = ("video", "model", "labels")
HEADER = 1024  # "header-targeted": the first KB
FB_HEAD = 65536  # flatbuffer tables and offsets mostly live in the first 64 KB
MP4_CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl", b"edts", b"dinf", b"udta"}
INTERESTING = (0, 1, 0x7F, 0x80, 0xFF, 0x7FFF, 0x8000, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF)
TOKENS = (b"\n", b"\r\n", b"\r", b"\x00", b"\xff", b"\xc3", b"\xe2\x80\xa8", b"\x85", b"\x0c")
TOKENS += (b"\xef\xbb\xbf", b"\n\n\n", b" " * 64, b"\t")
Span = tuple[str, int, int]  # (name, start, end) of a structural region of a seed file


@dataclass
class Seed:
    """One original input: its bytes, how it is run, and where its structure lives."""

    kind: str
    name: str
    data: bytes
    suffix: str
    model: Path | None = None  # for label seeds: the model the labels go with
    labels: Path | None = None  # for model seeds: the label file (None: the model's own)
    regions: list[Span] = field(default_factory=list)


@dataclass
class Case:
    """One mutated input and the command line that runs it."""

    seed: int
    number: int
    kind: str
    source: Seed
    data: bytes
    mutation: str

    @property
    def name(self) -> str:
        return f"{self.seed}-{self.number}-{self.kind}"

    def argv(self, path: Path, video: Path) -> list[str]:
        """The ``vidcls`` arguments for this case with the mutated input at ``path``."""
        tail = ["--summary-only", "--format", "json"]
        if self.kind == "video":
            return ["classify", str(path), *tail]
        if self.kind == "model":
            labels = ["--labels", str(self.source.labels)] if self.source.labels else []
            return ["classify", str(video), "--model", str(path), *labels, *tail]
        return [
            "classify",
            str(video),
            "--model",
            str(self.source.model),
            "--labels",
            str(path),
        ] + tail


# -- structure of the seed files ---------------------------------------------------------------


def mp4_boxes(data: bytes, lo: int, hi: int, path: str = "") -> Iterator[Span]:
    """Every box of an ISO-BMFF file between ``lo`` and ``hi`` (sample entries included)."""
    i = lo
    while i + 8 <= hi:
        size, kind, head = int.from_bytes(data[i : i + 4], "big"), data[i + 4 : i + 8], 8
        if size == 1:
            size, head = int.from_bytes(data[i + 8 : i + 16], "big"), 16
        elif size == 0:
            size = hi - i
        if size < head or i + size > hi:
            return
        name = f"{path}/{kind.decode('latin-1')}"
        yield name, i, i + size
        if kind in MP4_CONTAINERS:
            yield from mp4_boxes(data, i + head, i + size, name)
        elif kind == b"stsd":  # version/flags, entry count, then sample entries
            yield from mp4_boxes(data, i + head + 8, i + size, name)
        elif kind in (b"avc1", b"mp4v", b"mp4a", b"hev1", b"hvc1"):
            skip = 78 if kind != b"mp4a" else 28  # visual / audio sample entry fields
            yield from mp4_boxes(data, i + head + skip, i + size, name)
        i += size


def riff_chunks(data: bytes, lo: int, hi: int, path: str = "") -> Iterator[Span]:
    """Every chunk of a RIFF (AVI) file except the frames inside ``LIST movi``."""
    i = lo
    while i + 8 <= hi:
        fourcc, size = data[i : i + 4], int.from_bytes(data[i + 4 : i + 8], "little")
        end = min(i + 8 + size, hi)
        kind = data[i + 8 : i + 12] if fourcc in (b"RIFF", b"LIST") else b""
        name = f"{path}/{(fourcc + kind).decode('latin-1')}"
        if kind != b"movi":
            yield name, i, end
            if kind:
                yield from riff_chunks(data, i + 12, end, name)
        else:
            yield name + "(head)", i, i + 12 + 64
        i = end + (size & 1)


def flatbuffer_regions(data: bytes) -> list[Span]:
    """The parts of a .tflite that are not weight data: tables, vectors, offsets, strings."""
    from ai_edge_litert import schema_py_generated as schema

    model = schema.Model.GetRootAs(data, 0)
    base = np.frombuffer(data, np.uint8).ctypes.data
    spans = []
    for i in range(model.BuffersLength()):
        buf = model.Buffers(i)
        if buf.DataLength():  # a view into ``data``: its address gives the offset
            start = buf.DataAsNumpy().ctypes.data - base
            spans.append((start, start + buf.DataLength()))
    spans.sort()
    regions, at = [], 0
    for start, end in spans:
        if start - at >= 4:
            regions.append(("tables", at, start))
        at = max(at, end)
    regions.append(("tables", at, len(data)))
    return regions + flatbuffer_tables(data)


# TFLite schema: field index -> type of the tables it holds (a vector of them, or one table)
FB_VECTORS = {
    "Model": {1: "OperatorCode", 2: "SubGraph", 4: "Buffer", 6: "Metadata", 7: "SignatureDef"},
    "SubGraph": {0: "Tensor", 3: "Operator"},
    "SignatureDef": {0: "TensorMap", 1: "TensorMap"},
}
FB_TABLES = {"Tensor": {4: "QuantizationParameters"}, "Operator": {4: "BuiltinOptions"}}


def flatbuffer_tables(data: bytes) -> list[Span]:
    """The vtable ("vtable:Kind": field offsets) and inline fields ("table:Kind": scalars and
    offsets) of every table reachable from the root of a (valid) .tflite."""

    def u(at: int, n: int = 4, signed: bool = False) -> int:
        return int.from_bytes(data[at : at + n], "little", signed=signed)

    spans: list[Span] = []
    vtables: set[int] = set()

    def visit(pos: int, kind: str) -> None:
        vt = pos - u(pos, signed=True)
        vt_len, table_len = u(vt, 2), u(vt + 2, 2)
        if vt not in vtables:  # vtables are shared by tables with the same layout
            vtables.add(vt)
            spans.append((f"vtable:{kind}", vt, vt + vt_len))
        spans.append((f"table:{kind}", pos, pos + table_len))

        def field(i: int) -> int | None:
            off = u(vt + 4 + 2 * i, 2) if 4 + 2 * i < vt_len else 0
            return pos + off if off else None

        for i, sub in FB_VECTORS.get(kind, {}).items():
            if (at := field(i)) is not None:
                vec = at + u(at)
                for j in range(u(vec)):
                    item = vec + 4 + 4 * j
                    visit(item + u(item), sub)
        for i, sub in FB_TABLES.get(kind, {}).items():
            if (at := field(i)) is not None:
                visit(at + u(at), sub)

    visit(u(0), "Model")
    return spans


def with_zip(data: bytes, files: dict[str, str]) -> bytes:
    """``data`` with a zip of ``files`` appended, as TFLite metadata (and vidcls train) packs."""
    buf = io.BytesIO()
    buf.write(data)
    with zipfile.ZipFile(buf, "a", compression=zipfile.ZIP_STORED) as z:
        for name, text in files.items():
            z.writestr(name, text)
    return buf.getvalue()


def load_seeds(videos: list[Path], models: list[tuple[Path, Path | None]]) -> dict[str, list[Seed]]:
    """Seeds of every kind. ``models``: (model, its label file or None) pairs; the first is A0,
    whose copy with embedded labels and settings (as ``vidcls train`` writes) is a seed too."""
    seeds: dict[str, list[Seed]] = {k: [] for k in KINDS}
    for v in videos:
        data = v.read_bytes()
        walk = riff_chunks if data[:4] == b"RIFF" else mp4_boxes
        regions = [r for r in walk(data, 0, len(data)) if not r[0].endswith("/mdat")]
        seeds["video"].append(Seed("video", v.name, data, v.suffix, regions=regions))
    for model, labels in models:
        data = model.read_bytes()
        regions = flatbuffer_regions(data)
        seeds["model"].append(Seed("model", model.name, data, ".tflite", None, labels, regions))
        if labels is not None:
            seeds["labels"].append(Seed("labels", labels.name, labels.read_bytes(), ".txt", model))
    a0, a0_labels = models[0]
    names = a0_labels.read_text("utf-8").splitlines()
    base = a0.read_bytes()
    config = json.dumps({"fps": 5.0, "classes": names})
    packed = with_zip(base, {"labels.txt": "\n".join(names) + "\n", "vidcls.json": config})
    regions = [*flatbuffer_regions(base), ("zip", len(base), len(packed))]
    seeds["model"].append(Seed("model", "a0+zip.tflite", packed, ".tflite", regions=regions))
    return seeds


# -- mutations ---------------------------------------------------------------------------------


def _pos(rng: random.Random, lo: int, hi: int) -> int:
    return rng.randrange(lo, max(hi, lo + 1))


def flip_bytes(rng: random.Random, buf: bytearray, lo: int, hi: int) -> str:
    at = sorted(_pos(rng, lo, hi) for _ in range(rng.randint(1, 8)))
    for p in at:
        buf[p] ^= rng.randint(1, 255)
    return f"byteflip@{','.join(map(str, at))}"


def flip_bits(rng: random.Random, buf: bytearray, lo: int, hi: int) -> str:
    at = sorted((_pos(rng, lo, hi), rng.randrange(8)) for _ in range(rng.randint(1, 8)))
    for p, bit in at:
        buf[p] ^= 1 << bit
    return f"bitflip@{','.join(f'{p}.{b}' for p, b in at)}"


def random_run(rng: random.Random, buf: bytearray, lo: int, hi: int) -> str:
    p, n = _pos(rng, lo, hi), rng.randint(1, 256)
    n = min(n, len(buf) - p)
    buf[p : p + n] = rng.randbytes(n)
    return f"run@{p}+{n}"


def interesting(rng: random.Random, buf: bytearray, lo: int, hi: int) -> str:
    width = rng.choice((1, 2, 4))
    p = _pos(rng, lo, hi) // width * width
    value = rng.choice(INTERESTING) & ((1 << 8 * width) - 1)
    if rng.random() < 0.3:  # a nearby offset or count instead of a fixed value
        old = int.from_bytes(buf[p : p + width], "little")
        value = (old + rng.choice((-16, -4, -1, 1, 4, 16, 1 << 12))) % (1 << 8 * width)
    order = rng.choice(("little", "big"))
    buf[p : p + width] = value.to_bytes(width, order)[: len(buf) - p]
    return f"set{width * 8}{order[0]}e@{p}={value:#x}"


def swap_words(rng: random.Random, buf: bytearray, lo: int, hi: int) -> str:
    """Swap two aligned 2- or 4-byte words close together: a flatbuffer's vtable entries
    (field offsets) and offsets pointing to the wrong field."""
    width = rng.choice((2, 4))
    p = _pos(rng, lo, hi) // width * width
    q = p + width * rng.randint(1, 8)
    if q + width > len(buf):
        p, q = max(0, p - (q - p)), p
    buf[p : p + width], buf[q : q + width] = buf[q : q + width], buf[p : p + width]
    return f"swap{width * 8}@{p},{q}"


def delete_chunk(rng: random.Random, buf: bytearray, lo: int, hi: int) -> str:
    p = _pos(rng, lo, hi)
    n = rng.randint(1, max(1, min(65536, (hi - lo) // 4, len(buf) - p)))
    del buf[p : p + n]
    return f"delete@{p}+{n}"


def duplicate_chunk(rng: random.Random, buf: bytearray, lo: int, hi: int) -> str:
    p = _pos(rng, lo, hi)
    n = rng.randint(1, max(1, min(65536, (hi - lo) // 4, len(buf) - p)))
    to = rng.choice((p + n, _pos(rng, 0, len(buf))))
    buf[to:to] = buf[p : p + n]
    return f"dup@{p}+{n}->{to}"


def truncate(rng: random.Random, buf: bytearray, lo: int, hi: int) -> str:
    p = _pos(rng, lo, hi)
    del buf[p:]
    return f"truncate@{p}"


def insert_token(rng: random.Random, buf: bytearray, lo: int, hi: int) -> str:
    p, token = _pos(rng, lo, hi + 1), rng.choice(TOKENS)
    buf[p:p] = token
    return f"insert@{p}={token!r}"


BYTE_OPS = (flip_bytes, flip_bits, random_run, interesting, delete_chunk, duplicate_chunk)
OPS = {
    "video": (*BYTE_OPS, truncate),
    "model": (flip_bytes, flip_bits, flip_bits, interesting, interesting, swap_words)
    + (swap_words, random_run, delete_chunk, duplicate_chunk, truncate),
    "labels": (*BYTE_OPS, truncate, insert_token, insert_token),
}
# Where in the file: "anywhere", "header" (first KB), "first64k" or a structural region.
TARGETS = {
    "video": ("anywhere", "header", "struct", "struct"),
    "model": ("anywhere", "header", "first64k", "struct", "struct", "vtable", "table", "table"),
    "labels": ("anywhere", "header"),
}


def _target(rng: random.Random, seed: Seed, size: int) -> tuple[str, int, int]:
    where = rng.choice(TARGETS[seed.kind])
    if where in ("vtable", "table"):  # one of a model's tables, all alike
        name, lo, hi = rng.choice([r for r in seed.regions if r[0].startswith(where + ":")])
        return name, lo, min(hi, size)
    regions = [r for r in seed.regions if ":" not in r[0]]
    if where == "struct" and regions:
        sizes = [max(1, e - s) if seed.kind == "model" else 1 for _, s, e in regions]
        name, lo, hi = rng.choices(regions, sizes)[0]  # boxes alike; model bytes alike
        return name, lo, min(hi, size)
    end = {"header": HEADER, "first64k": FB_HEAD}.get(where, size)
    return ("anywhere" if where == "struct" else where), 0, min(end, size)


def make_case(seed: int, number: int, kinds: tuple[str, ...], seeds: dict[str, list[Seed]]) -> Case:
    """Case ``number`` of the run with ``seed`` over ``kinds``: 1-3 stacked mutations."""
    kind = kinds[number % len(kinds)]
    rng = random.Random(f"vidcls-fuzz:{seed}:{kind}:{number}")
    source = rng.choice(seeds[kind])
    buf = bytearray(source.data)
    steps = []
    for _ in range(rng.choice((1, 1, 1, 2, 3))):
        if not buf:
            break
        where, lo, hi = _target(rng, source, len(buf))
        lo = min(lo, len(buf) - 1)  # regions are the seed's: earlier steps may have moved them
        hi = min(max(lo + 1, hi), len(buf))
        op = rng.choice(OPS[kind])
        steps.append(f"{op(rng, buf, lo, hi)}[{where}]")
    if buf == source.data:  # the steps undid themselves or set what was there: change a byte
        steps.append(f"{flip_bytes(rng, buf, 0, len(buf))}[anywhere]")
    return Case(seed, number, kind, source, bytes(buf), f"{source.name}: {'; '.join(steps)}")
