"""Seeded hostile inputs for the surfaces ``tests/fuzz_surfaces.py`` fuzzes through the CLI:
camera configs (``vidcls live --config``), annotation files (``vidcls dataset cut``) and
dataset folders (``vidcls dataset check`` and ``import``).

A case is a pure function of (target, seed, case number): :func:`make_case` draws every choice
from ``random.Random(f"{target}/{seed}/{number}")`` and returns a :class:`Plan`, a list of
entries to lay out (files, folders, symlinks, FIFOs, permissions; names are bytes, so they may
be any bytes a file name may hold) and the ``vidcls`` arguments. ``{case}`` and ``{outside}``
in entries and arguments are the case's folder and a sentinel folder beside it that nothing
may write to (symlinks point into it on purpose).
"""

from __future__ import annotations

import copy
import csv
import io
import json
import math
import os
import random
from dataclasses import dataclass, field
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("VIDCLS_SHARED", ROOT.parent / "shared"))
VIDEOS = SHARED / "assets" / "videos"
MODELS = SHARED / "assets" / "models"
DATASET = SHARED / "datasets" / "basketball"
RPI = VIDEOS / "carving_ice_rpi.mp4"
EYE = VIDEOS / "eye_makeup.avi"
ANDROID = VIDEOS / "carving_ice_android.mp4"
CUSTOM = MODELS / "custom_7class" / "a0_stream_int8_7class.tflite"
# the smallest clips of the shared dataset (3-4 KB each): cheap to copy and to decode
SMALL = ("nothing/nothing_41.mp4", "passing/passing_45.mp4", "defense/defense_53.mp4")
TARGETS = ("config", "annotations", "folders")


@dataclass
class Entry:
    """One thing laid out in the case folder: ``kind`` file, dir, link, fifo, sparse
    (a file of ``size`` bytes of holes) or chmod; ``path`` relative to the case folder."""

    kind: str
    path: bytes
    data: bytes = b""
    target: str = ""  # link: where it points ({case} and {outside} expanded)
    mode: int = 0  # chmod
    size: int = 0  # sparse


@dataclass
class Plan:
    """A case: what it is, what to lay out and how vidcls runs on it."""

    target: str
    seed: int
    number: int
    mutation: str
    entries: list[Entry]
    argv: list[str]
    expect: str  # how the run is judged: live, cut, check, import
    clips: list[bytes] = field(default_factory=list)  # import: the only bytes it may copy
    # (the case's clips, and its truncated ones: vidcls reads the frames before the cut)
    output: str = ""  # the folder the command writes to (relative to the case folder)

    @property
    def name(self) -> str:
        return f"{self.target}-{self.seed}-{self.number}"


def make_case(target: str, seed: int, number: int) -> Plan:
    rng = random.Random(f"{target}/{seed}/{number}")
    make = {"config": config_case, "annotations": annotations_case, "folders": folders_case}
    plan = make[target](rng)
    plan.target, plan.seed, plan.number = target, seed, number
    return plan


def _plan(mutation: str, entries: list[Entry], argv: list[str], expect: str, **kw) -> Plan:
    return Plan("", 0, 0, mutation, entries, argv, expect, **kw)


def _b(path: str) -> bytes:
    return os.fsencode(path)


# -- values shared by the targets -------------------------------------------------------------

HUGE_INTS = (2**31, 2**63, -(2**63), 10**30, -(10**30), 10**400, -1, 0)
ODD_FLOATS = (0.0, -0.0, 1e-300, 5e-324, 1e308, -1e308, math.inf, -math.inf, math.nan, -0.5)
ODD_STRINGS = (
    "", " ", "x" * 300, "x" * 5000, "a\0b", "a\nb", "a\rb", "\u202eevil", "\U0001f600",
    "${VIDCLS_FUZZ_UNSET}", "${HOME}", "$", "${", "%00", "%2e%2e", "-1", "1e999", "nan",
    "true", "~", "\ufeff", "\x7f", "\\", "C:\\x", "a" * 255, "\u00e9" * 128,
)  # fmt: skip
URLS = (
    "mqtt://[::1", "http://[::1", "rtsp://[::1", "mqtt://127.0.0.1:1",
    "mqtt://u:p@127.0.0.1:1/x", "mqtts://127.0.0.1:1", "mqtt://%zz@127.0.0.1:1",
    "http://127.0.0.1:9/hook", "https://127.0.0.1:9/", "http://", "http://:0",
    "http://127.0.0.1:99999/", "http://127.0.0.1:-1/", "ftp://127.0.0.1:1/", "file:///etc/passwd",
    "javascript:alert(1)", "rtsp://127.0.0.1:1/s", "rtmp://127.0.0.1:1/s", "udp://127.0.0.1:1",
    "tcp://127.0.0.1:1", "srt://127.0.0.1:1", "http://127.0.0.1:9/\nX-Injected: 1",
    "http://[fe80::1%25lo]:1/", "mqtt://127.0.0.1:1/" + "x" * 5000, "http://127.0.0.1:9/" + "%" * 9,
    "rtsp://user:pa ss@127.0.0.1:1/", "mqtt://", "://", "http://0x7f000001:9/",
)  # fmt: skip
# paths a config may name (relative to the case folder, or files that cannot be written):
# never a folder outside the case where a write would land
PATHS = (
    "clips", "sub/dir/clips", "notes.txt", "missing/deep/x", "/dev/null", "/dev/zero",
    "/proc/self/mem", "/proc/vidcls-fuzz", "case.yml", ".", "", "fifo", "link-out",
    "loop", "x" * 300, "a\nb", "\udcff",
)  # fmt: skip


def _odd_scalar(rng: random.Random):
    pick = rng.randrange(6)
    if pick == 0:
        return rng.choice(HUGE_INTS)
    if pick == 1:
        return rng.choice(ODD_FLOATS)
    if pick == 2:
        return rng.choice(ODD_STRINGS)
    if pick == 3:
        return rng.choice(URLS)
    if pick == 4:
        return rng.choice(PATHS)
    return rng.choice((None, True, False, [], {}, [None], {"x": 1}))


def _common_entries() -> list[Entry]:
    """Files every config case may name: a text file, a FIFO, a symlink out, a symlink loop."""
    return [
        Entry("file", b"notes.txt", b"not a video\n"),
        Entry("fifo", b"fifo"),
        Entry("link", b"link-out", target="{outside}/dir"),
        Entry("link", b"loop", target="loop"),
    ]


# -- camera configs ---------------------------------------------------------------------------


def config_seeds() -> list[dict]:
    """Valid configs: shared clips as cameras, replayed, clips written under the case."""
    return [
        {"model": "a0", "replay": True, "clips": {"folder": "clips", "pre_roll": 1, "post_roll": 1},
         "cameras": {"ice": {"source": str(RPI)}}},
        {"threshold": 0.1, "top_k": 3, "window": 2, "cooldown": 5, "fps": 5,
         "cameras": {
             "ice": {"source": str(ANDROID), "allow": ["carving ice"], "min_duration": 0.5},
             "eye": {"source": str(EYE), "deny": ["situp"], "whole": True,
                     "zones": {"left": [0.0, 0.0, 0.5, 1.0],
                               "right": {"box": [0.5, 0.0, 1.0, 1.0], "enter": 0.6}}}}},
        {"model": str(CUSTOM), "threads": 1, "webhook": ["http://127.0.0.1:9/hook"],
         "mqtt": "mqtt://127.0.0.1:1", "mqtt_prefix": "fuzz",
         "clips": {"folder": "sub/clips", "keep_days": 1, "keep_gb": 1, "snapshots": False,
                   "max_clip": 5},
         "cameras": {"rpi": {"source": str(RPI), "enter": 0.5, "exit": 0.3}}},
    ]  # fmt: skip


CONFIG_KEYS = (
    "allow", "deny", "threshold", "top_k", "window", "enter", "exit", "min_duration",
    "cooldown", "fps", "source", "zones", "whole", "model", "labels", "threads", "mqtt",
    "mqtt_prefix", "webhook", "clips", "loop", "replay", "folder", "pre_roll", "post_roll",
    "max_clip", "keep_days", "keep_gb", "snapshots", "box",
)  # fmt: skip
CAMERA_NAMES = (
    "", "a/b", "..", ".", "x" * 300, "\u00e9t\u00e9", "a b", "-", "a\0b", "a\nb", "CON", "0",
    "_", "a.b", "cam:1", "%00", "\U0001f600",
)  # fmt: skip


def _nodes(tree, path=()):
    """Every (path, value) in a tree of dicts and lists, the root included."""
    yield path, tree
    if isinstance(tree, dict):
        for k, v in tree.items():
            yield from _nodes(v, (*path, k))
    elif isinstance(tree, list):
        for i, v in enumerate(tree):
            yield from _nodes(v, (*path, i))


def _set(tree, path, value):
    if not path:
        return value
    node = tree
    for k in path[:-1]:
        node = node[k]
    node[path[-1]] = value
    return tree


def _mutate_tree(
    rng: random.Random, tree, keys=CONFIG_KEYS, names=CAMERA_NAMES, grow=(3, 100, 10000)
) -> tuple:
    """One structural or value mutation of a parsed document; (tree, description)."""
    nodes = list(_nodes(tree))
    path, value = rng.choice(nodes)
    where = ".".join(map(str, path)) or "(top)"
    op = rng.randrange(9)
    if op <= 2:  # a value replaced by an odd one
        new = _odd_scalar(rng)
        return _set(tree, path, new), f"set {where}={_short(new)}"
    if op == 3:  # a type changed
        new = rng.choice(([value], {"k": value}, str(value)[:40], 1, [[[value]]]))
        return _set(tree, path, new), f"retype {where}->{type(new).__name__}"
    if op == 4 and isinstance(value, dict):  # an unknown or misplaced key
        key = rng.choice((*keys, "thresold", "Cameras", "x" * 300, "", "\0", "a\nb", 7, None))
        value[key] = _odd_scalar(rng) if rng.random() < 0.5 else copy.deepcopy(value)
        return tree, f"key {where}.{_short(key)}"
    if op == 5 and isinstance(value, dict) and value:  # a key dropped
        key = rng.choice(list(value))
        del value[key]
        return tree, f"drop {where}.{_short(key)}"
    if op == 6 and isinstance(value, dict) and value:  # a mapping copied under many names
        first = next(iter(value.values()))
        n = min(rng.choice((2, 5, 30, 200)), _fits(first))
        for i in range(n):
            name = rng.choice(names) + (str(i) if rng.random() < 0.7 else "")
            value[name] = copy.deepcopy(first)
        return tree, f"copies {where} x{n}"
    if op == 7:  # nested deeper
        depth = rng.choice((5, 50, 300))
        new = value
        for _ in range(depth):
            new = [new] if rng.random() < 0.5 else {"k": new}
        return _set(tree, path, new), f"nest {where} x{depth}"
    if isinstance(value, list) and value:  # a list grown
        n = min(rng.choice(grow), _fits(value[0]))
        value.extend(copy.deepcopy(value[0]) for _ in range(n))
        return tree, f"grow {where} x{n}"
    new = rng.choice(URLS + PATHS)
    return _set(tree, path, new), f"set {where}={_short(new)}"


def _fits(value, budget: int = 1 << 20) -> int:
    """How many copies of ``value`` make about ``budget`` bytes of text (at least 2)."""
    depth = max(len(p) for p, _ in _nodes(value))  # YAML indents each level
    return max(2, budget // max(len(repr(value)) * (1 + depth), 1))


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:30]}...({len(text)})"


def _dump_yaml(tree) -> str:
    return yaml.safe_dump(tree, allow_unicode=True, sort_keys=False, width=10**6)


MERGED = "cameras:\n  merged: {<<: *base, fps: 3}\n  again: *base\n"


def _yaml_text_mutation(rng: random.Random, text: str) -> tuple[str, str]:
    """Anchors and aliases, deep flow nesting, tags, documents and bytes; on the YAML text."""
    op = rng.randrange(13)
    if op == 0:  # an alias bomb: l0 of 10 strings, each level 10 of the one before
        levels = rng.choice((2, 3, 5, 9))
        defs = ['&l0 ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"]']
        defs += [f"&l{i} [{', '.join([f'*l{i - 1}'] * 10)}]" for i in range(1, levels)]
        last = ", ".join([f"*l{levels - 1}"] * 10)
        key = rng.choice(("x_bomb", "allow", "deny"))
        bomb = "x_defs:\n" + "".join(f"  - {d}\n" for d in defs)
        return bomb + text + f"{key}: [{last}]\n", f"alias-bomb {levels} at {key}"
    if op == 1:  # a recursive alias
        return text + "x: &r [*r]\n", "recursive-alias"
    if op == 2:  # merge keys and camera aliases
        return (
            "base: &base {source: " + json.dumps(str(RPI)) + ", threshold: 0.2}\n"
            + text.replace("cameras:\n", MERGED, 1),
            "merge-key",
        )  # fmt: skip
    if op == 3:  # deep flow nesting
        n = rng.choice((100, 1000, 20000))
        opener, closer = rng.choice((("[", "]"), ("{a: ", "}")))
        key = rng.choice(("cameras", "x", "allow"))
        return text + f"{key}: {opener * n}{closer * n}\n", f"flow-nest {key} x{n}"
    if op == 4:  # tags
        tag = rng.choice((
            '!!python/object/apply:os.system ["touch {outside}/pwned"]', "!!binary aGVsbG8=",
            "!!set {a, b}", "!!timestamp 2001-12-14", "!!float nan",
            "!!int 0x7fffffffffffffffffffff",
            "!custom x", "!!str", "!!omap [a: 1]", "!!python/name:os.system",
        ))  # fmt: skip
        key = rng.choice(("threshold", "model", "x", "allow", "fps"))
        return text + f"{key}: {tag}\n", f"tag {key}: {tag[:30]}"
    if op == 5:
        return text + "---\n" + text, "two-documents"
    if op == 6:
        return "\ufeff" + text.replace("\n", "\r\n"), "bom-crlf"
    if op == 7:  # a complex or odd key
        key = rng.choice(("? [a, b]\n: 1", "? {a: 1}\n: 2", "null: 1", "1: 2", "true: x", "'': 1"))
        return text + key + "\n", f"odd-key {key.splitlines()[0]}"
    if op == 8:  # tabs and broken indentation
        return text.replace("  ", "\t", rng.randrange(1, 4)), "tabs"
    if op == 9:  # a control character or a NUL somewhere
        i = rng.randrange(len(text) + 1)
        ch = rng.choice(("\0", "\x07", "\x1b", "\u2028", "\x85", "\ud800"))
        return text[:i] + ch + text[i:], f"char {ch!r}@{i}"
    if op == 10:  # duplicate keys
        return text + text.split("\n", 1)[0] + "\n", "duplicate-key"
    if op == 11:
        n = rng.choice((1, len(text) // 2, len(text) - 1))
        return text[:n], f"truncate@{n}"
    return text + "#" + "x" * rng.choice((10, 1 << 20)) + "\n", "long-comment"


EDGE_NUMBERS = (0, 1, 1e-9, 1e-300, 0.999999, 1e6, 1e12, 10**9, 64, 600, 4096, 2**31 - 1)
EDGE_STRINGS = ("a0", str(CUSTOM), "clips", "x", "carving ice", "", " a ", "fuzz/x", "#")


def _plausible(rng: random.Random, tree) -> tuple:
    """A number (or string) replaced by one of the same type, often valid, at an edge."""
    leaves = [(p, v) for p, v in _nodes(tree) if p and isinstance(v, int | float | str)]
    if not leaves:
        return tree, "plausible: none"
    path, value = rng.choice(leaves)
    if isinstance(value, bool):
        new = not value
    elif isinstance(value, int | float):
        new = rng.choice(EDGE_NUMBERS)
    else:
        new = rng.choice(EDGE_STRINGS)
    return _set(tree, path, new), f"edge {'.'.join(map(str, path))}={_short(new)}"


def config_case(rng: random.Random) -> Plan:
    seeds = config_seeds()
    k = rng.randrange(len(seeds))
    tree = copy.deepcopy(seeds[k])
    steps = [f"seed{k}"]
    for _ in range(rng.choice((0, 1, 1, 2, 3))):
        if rng.random() < 0.35:  # a value of the right type at the edge of its range
            tree, what = _plausible(rng, tree)
        else:
            tree, what = _mutate_tree(rng, tree)
        steps.append(what)
    try:
        text = _dump_yaml(tree)
    except (RecursionError, yaml.YAMLError, ValueError):
        text, steps = _dump_yaml(seeds[k]), [*steps, "(undumpable: seed)"]
    data = text.encode("utf-8", "surrogatepass")
    if rng.random() < 0.3 or len(steps) == 1:
        text, what = _yaml_text_mutation(rng, text)
        text = text.replace("{outside}", "../outside")
        data = text.encode("utf-8", "surrogatepass")
        steps.append(what)
    if rng.random() < 0.08:  # bytes that are not UTF-8, or an empty or huge file
        pick = rng.randrange(4)
        i = rng.randrange(len(data) + 1)
        data, what = (
            (data[:i] + b"\xff\xfe" + data[i:], f"bytes@{i}"),
            (b"", "empty"),
            (data + b"#" * (1 << 20), "over-1MB"),
            (data.replace(b"\n", b"\r"), "cr-only"),
        )[pick]
        steps.append(what)
    entries = [*_common_entries(), Entry("file", b"case.yml", data)]
    argv = ["live", "--config", "{case}/case.yml", "--headless", "--duration", "1", "--replay"]
    return _plan("; ".join(steps), entries, argv, "live")


# -- annotation files -------------------------------------------------------------------------

TIMES = (
    "", "nan", "NaN", "inf", "-inf", "-1", "-0", "0", "1e18", "2e18", "1e308", "1e-320",
    "9" * 400, "0x10", "1_0", " 1", "\u0661", "1,5", "1.5.5", "None", "\u221e", "86400000",
    "9007199254740993", "1e9", "0.0000001", "6.5", "1e3",
)  # fmt: skip
LABELS = (
    "", " ", ".", "..", ".hidden", "a/b", "a\\b", "a\0b", "a\nb", "x" * 255, "x" * 256,
    "x" * 300, "\u00e9" * 128, "CON", "-rf", "~", "${HOME}", "\U0001f600", "\u202eevil", "a\tb",
    " padded ", "unlabelled", "discarded", "%2e%2e", "a:b", "*", "?", "a\x7fb", "a\rb",
    "carving ice", "makeup",
)  # fmt: skip
VIDEO_NAMES = (
    "", "carving_ice_rpi.mp4", str(RPI), "eye_makeup.avi", "../outside/secret.mp4", "missing.mp4",
    "/dev/zero", "/dev/stdin", ".", "/", "ann.csv", "notes.txt", "fifo", "x" * 5000, "a\0b",
    "link-out", "loop", str(VIDEOS),
)  # fmt: skip


def annotation_seeds() -> list[tuple[str, object]]:
    rows = [["video", "start", "end", "label"],
            ["carving_ice_rpi.mp4", "0.5", "1.5", "carving ice"],
            ["eye_makeup.avi", "0", "1", "makeup"]]  # fmt: skip
    segment = {"source": str(RPI), "model": "a0", "fps": 5.0, "frames": [],
               "segments": [{"label": "carving ice", "index": 72, "start": 0.4, "end": 1.6,
                             "peak": 0.98, "mean": 0.9}]}  # fmt: skip
    other = {"source": "eye_makeup.avi", "segments": [{"label": "makeup", "start": 0, "end": 1}]}
    return [("csv", rows), ("json", [segment, other]), ("jsonl", [segment, other])]


def _csv_text(rows: list[list[str]], rng: random.Random) -> str:
    if rng.random() < 0.7:
        out = io.StringIO()
        csv.writer(out).writerows(rows)
        return out.getvalue()
    return "".join(",".join(r) + "\n" for r in rows)  # raw: quotes and newlines unescaped


def _mutate_rows(rng: random.Random, rows: list[list[str]]) -> str:
    op = rng.randrange(8)
    r = rng.randrange(len(rows)) if rows else 0
    if op <= 3 and rows and rows[r]:
        c = rng.randrange(len(rows[r]))
        pool = (VIDEO_NAMES, TIMES, TIMES, LABELS)[min(c, 3)]
        rows[r][c] = rng.choice(pool)
        return f"cell {r},{c}={_short(rows[r][c])}"
    if op == 4 and rows:
        rows[r] = rows[r][: rng.randrange(len(rows[r]) + 1)] + ["x"] * rng.randrange(3)
        return f"columns row {r}: {len(rows[r])}"
    if op == 5 and rows:
        n = rng.choice((2, 6))
        rows[r + 1 : r + 1] = [list(rows[r]) for _ in range(n)]
        return f"duplicate row {r} x{n}"
    if op == 6:
        rows.insert(r, rng.choice((["# comment"], [], [" "], ["VIDEO", "Start", "END", "label"])))
        return f"insert row {r}"
    if rows:
        del rows[r]
    return f"drop row {r}"


def _json_deep(rng: random.Random) -> tuple[str, str]:
    n = rng.choice((100, 5000, 100000))
    opener, closer = rng.choice((("[", "]"), ('{"a":', "}")))
    return opener * n + "1" + closer * n, f"json-nest x{n}"


JSON_ODD = (
    10**400, -(10**400), 1e308, -0.0, math.nan, math.inf, -math.inf, 2**63, True, None, "1.5",
    "", [], {}, [1, 2], {"label": "x"}, "x" * 300, "a\nb", "a\0b", ["a", "b"],
)  # fmt: skip


def annotations_case(rng: random.Random) -> Plan:
    kind, doc = rng.choice(annotation_seeds())
    doc = copy.deepcopy(doc)
    steps = [kind]
    if kind == "csv":
        for _ in range(rng.choice((1, 1, 2, 3))):
            steps.append(_mutate_rows(rng, doc))
        text = _csv_text(doc, rng)
    else:
        for _ in range(rng.choice((1, 1, 2, 3))):
            path, value = rng.choice(list(_nodes(doc)))
            if rng.random() < 0.6 and not isinstance(value, dict | list):
                new = rng.choice(JSON_ODD + LABELS[:12] + TIMES[:12])
                doc = _set(doc, path, new)
                steps.append(f"set {'.'.join(map(str, path))}={_short(new)}")
            else:
                keys = ("segments", "source", "start", "end", "label")  # each clip is a cut:
                doc, what = _mutate_tree(rng, doc, keys, ("", "x"), grow=(2, 4))  # a few
                steps.append(what)
        try:
            if kind == "jsonl" and isinstance(doc, list):
                text = "".join(json.dumps(d) + "\n" for d in doc)
            else:
                text = json.dumps(doc)
        except (RecursionError, ValueError):
            text, steps = "[]", [*steps, "(undumpable)"]
        if rng.random() < 0.15:
            text, what = _json_deep(rng)
            steps.append(what)
    data = text.encode("utf-8", "surrogatepass")
    if rng.random() < 0.15:
        pick = rng.randrange(6)
        i = rng.randrange(len(data) + 1)
        data, what = (
            (data[:i] + b"\xff\xfe\x00" + data[i:], f"bytes@{i}"),
            (b"\xef\xbb\xbf" + data.replace(b"\n", b"\r\n"), "bom-crlf"),
            (data[:i], f"truncate@{i}"),
            (data.replace(b",", b";"), "semicolons"),
            (data + b"\n" * 100000, "blank-lines"),
            (b"", "empty"),
        )[pick]
        steps.append(what)
    name = b"ann.json" if kind != "csv" and rng.random() < 0.8 else b"ann.csv"
    entries = [
        Entry("file", b"notes.txt", b"not a video\n"),
        Entry("fifo", b"fifo"),
        Entry("link", b"link-out", target="{outside}/secret.mp4"),
        Entry("link", b"loop", target="loop"),
        Entry("file", name, data),
    ]
    if rng.random() < 0.05:
        entries[-1] = Entry("sparse", name, size=65 * 1024 * 1024)
        steps.append("65MB")
    if rng.random() < 0.1:  # a label folder or a clip name in the output planted as a symlink out
        label = rng.choice(("carving ice", "makeup"))
        target = rng.choice(("{outside}/dir", "{outside}/secret.mp4", "{outside}/missing"))
        entries.append(Entry("link", _b(f"out/{label}"), target=target))
        steps.append(f"planted out/{label} -> {target}")
    argv = ["dataset", "cut", str(RPI), str(EYE), "--annotations", "{case}/" + os.fsdecode(name),
            "-o", "{case}/out"]  # fmt: skip
    if rng.random() < 0.25:
        argv.append("--copy")
    return _plan("; ".join(steps), entries, argv, "cut", output="out")


# -- dataset folders --------------------------------------------------------------------------

FOLDER_NAMES = (
    b"a", b"class b", b"x" * 255, b"a\nb", b"\xff\xfe", b"-rf", b".hidden", b"caf\xc3\xa9",
    b"e\xcc\x81", b"unlabelled", b" ", b"a\tb", b"\x1b[31m", b"*", b"%00", b"\\", b"a:b",
)  # fmt: skip
FILE_NAMES = (
    b"clip.mp4", b"CLIP.MP4", b"x.avi", b"x.mkv", b".mp4", b"-x.mp4", b"a\nb.mp4",
    b"\xff.mp4", b"x" * 251 + b".mp4", b".hidden.mp4", b"x.mp4.txt", b"x.mp4 ",
    b"20261203-072232_carving-ice.mp4",
    b"20261203-072232_a_b.mp4", b"x.jpg", b"x", b"x.MOV", b"\xe2\x80\xae4pm.exe",
)  # fmt: skip


def _clip(rng: random.Random) -> bytes:
    return (DATASET / rng.choice(SMALL)).read_bytes()


def _folder_entry(rng: random.Random, folder: bytes, clips: list[bytes]) -> tuple[list[Entry], str]:
    """One hostile (or plain) thing in ``folder``; (entries, description)."""
    name = rng.choice(FILE_NAMES)
    if rng.random() < 0.3:
        name = b"%d_" % rng.randrange(100) + name  # distinct names in one folder
    path = folder + b"/" + name
    op = rng.randrange(16)
    if op <= 3:
        data = _clip(rng)
        clips.append(data)
        return [Entry("file", path, data)], f"clip {path!r}"
    if op == 4:
        return [Entry("file", path, b"")], f"empty {path!r}"
    if op == 5:
        return [Entry("file", path, b"not a video\n" * 10)], f"text {path!r}"
    if op == 6:  # may still be readable (vidcls reads the frames before the cut): may be copied
        data = _clip(rng)
        clips.append(data[: rng.randrange(1, len(data))])
        return [Entry("file", path, clips[-1])], f"truncated {path!r}"
    if op == 7:
        target = rng.choice(("{outside}/secret.mp4", "{outside}/notes.txt", "{outside}/missing"))
        return [Entry("link", path, target=target)], f"link {path!r} -> {target}"
    if op == 8:
        target = rng.choice(("/dev/zero", "/dev/null", "/proc/self/mem", "/dev/stdin"))
        return [Entry("link", path, target=target)], f"link {path!r} -> {target}"
    if op == 9:
        return [Entry("link", path, target=os.fsdecode(name))], f"self-loop {path!r}"
    if op == 10:
        return [Entry("fifo", path)], f"fifo {path!r}"
    if op == 11:
        data = _clip(rng)
        clips.append(data)
        mode = rng.choice((0o000, 0o200, 0o111))
        return [
            Entry("file", path, data),
            Entry("chmod", path, mode=mode),
        ], f"chmod {mode:o} {path!r}"
    if op == 12:
        sub = folder + b"/" + rng.choice(FOLDER_NAMES)
        target = rng.choice(("{outside}/dir", "..", ".", "{outside}"))
        return [Entry("link", sub, target=target)], f"dirlink {sub!r} -> {target}"
    if op == 13:
        deep = folder + b"".join(b"/d" for _ in range(rng.choice((10, 60))))
        data = _clip(rng)
        clips.append(data)
        return [Entry("file", deep + b"/clip.mp4", data)], f"deep clip {deep.count(b'/')}"
    if op == 14:
        sub = folder + b"/" + rng.choice(FOLDER_NAMES)
        return [
            Entry("dir", sub),
            Entry("chmod", sub, mode=rng.choice((0o000, 0o300))),
        ], f"locked dir {sub!r}"
    target = "{case}/" + os.fsdecode(folder)
    target = "../" * 3 + "etc/passwd" if rng.random() < 0.5 else target
    return [Entry("link", path, target=target)], f"odd link {path!r}"


def folders_case(rng: random.Random) -> Plan:
    command = rng.choice(("check", "import"))
    entries: list[Entry] = [Entry("dir", b"in")]
    clips: list[bytes] = []
    steps = [command]
    n_folders = rng.choice((0, 1, 2, 3))
    for i in range(n_folders):
        name = rng.choice(FOLDER_NAMES[:2]) if rng.random() < 0.5 else rng.choice(FOLDER_NAMES)
        folder = b"in/" + name + (b"%d" % i if rng.random() < 0.7 else b"")
        entries.append(Entry("dir", folder))
        for _ in range(rng.choice((1, 2, 3))):
            more, what = _folder_entry(rng, folder, clips)
            entries += more
            steps.append(what)
    for _ in range(rng.choice((0, 0, 1, 2))):  # loose things at the top
        more, what = _folder_entry(rng, b"in", clips)
        entries += more
        steps.append(what)
    if rng.random() < 0.07:  # the folder itself is odd
        odd = rng.choice((
            Entry("link", b"in", target="{outside}/dir"), Entry("file", b"in", b"x"),
            Entry("fifo", b"in"), Entry("link", b"in", target="in"),
        ))  # fmt: skip
        entries = [odd]
        steps.append(f"in is {odd.kind} {odd.target}")
    if command == "check":
        argv = ["dataset", "check", "{case}/in", "--format", "json"]
        return _plan("; ".join(steps), entries, argv, "check")
    if rng.random() < 0.3:  # the dataset folder written to, made hostile
        pick = rng.randrange(5)
        odd = (
            [Entry("link", b"out/unlabelled", target="{outside}/unlabelled")],
            [Entry("file", b"out", b"x")],
            [Entry("file", b"out/unlabelled", b"x")],
            [Entry("dir", b"out/unlabelled"),
             *(Entry("link", b"out/unlabelled/" + p, target="{outside}/secret.mp4")
               for p in _import_names(entries)[:2])],
            [Entry("dir", b"out/unlabelled"),
             *(Entry("link", b"out/unlabelled/." + p + b".part", target="{outside}/secret.mp4")
               for p in _import_names(entries)[:2])],
        )[pick]  # fmt: skip
        entries += odd
        kinds = ("unlabelled->outside", "out-file", "unlabelled-file", "names->outside")
        steps.append(f"out: {(*kinds, 'parts->outside')[pick]}")
    argv = ["dataset", "import", "{case}/in", "-o", "{case}/out"]
    return _plan("; ".join(steps), entries, argv, "import", clips=clips, output="out")


def _import_names(entries: list[Entry]) -> list[bytes]:
    """The names ``import`` gives the files under in/: their relative path joined by _."""
    return [
        e.path[3:].replace(b"/", b"_") for e in entries if e.kind in ("file", "link")
        and e.path.startswith(b"in/")
    ]  # fmt: skip


# -- laying a case out ------------------------------------------------------------------------


def expand(text: str, case: Path, outside: Path) -> str:
    return text.replace("{case}", str(case)).replace("{outside}", str(outside))


def lay_out(plan: Plan, case: Path, outside: Path) -> None:
    """Create the plan's entries under ``case`` (made empty first by the caller)."""
    root = os.fsencode(case)
    chmods = []
    for e in plan.entries:
        p = root + b"/" + e.path
        if os.path.lexists(p) and e.kind != "chmod":
            continue  # the first entry of a name wins
        try:
            _make(e, p, case, outside)
        except OSError:  # a name too long for this file system, a parent that is a file:
            continue  # the case is what could be laid out, the same every time
        if e.kind == "chmod":
            chmods.append((p, e.mode))
    for p, mode in reversed(chmods):  # deepest last-made first, so parents stay enterable
        if os.path.lexists(p) and not os.path.islink(p):
            os.chmod(p, mode)


def _make(e: Entry, p: bytes, case: Path, outside: Path) -> None:
    if e.kind != "chmod":
        os.makedirs(os.path.dirname(p), exist_ok=True)
    if e.kind == "file":
        with open(p, "wb") as f:
            f.write(e.data)
    elif e.kind == "sparse":
        with open(p, "wb") as f:
            f.truncate(e.size)
    elif e.kind == "dir":
        os.makedirs(p, exist_ok=True)
    elif e.kind == "link":
        os.symlink(os.fsencode(expand(e.target, case, outside)), p)
    elif e.kind == "fifo":
        os.mkfifo(p)


def argv_of(plan: Plan, case: Path, outside: Path) -> list[str]:
    return [expand(a, case, outside) for a in plan.argv]
