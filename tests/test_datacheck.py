"""``vidcls dataset check``: each problem of a folder of clips found and named, with the exit
code saying whether any is an error."""

from __future__ import annotations

import json
import shutil
from fractions import Fraction
from pathlib import Path

import av
import pytest
from cli_here import run_here
from cli_run import assert_clean_error, run
from conftest import SHARED, needs_shared

from vidcls.training.datacheck import check_dataset

BASKETBALL = SHARED / "datasets" / "basketball"
pytestmark = [needs_shared, pytest.mark.skipif(not BASKETBALL.is_dir(), reason="no basketball")]


def clips(name: str, n: int) -> list[Path]:
    return sorted((BASKETBALL / name).glob("*.mp4"), key=lambda p: int(p.stem.split("_")[-1]))[:n]


def reencoded(src: Path, out: Path) -> Path:
    """The same footage at another quality and size (same shape): a near copy."""
    with av.open(str(src)) as inp, av.open(str(out), "w") as dst:
        v = inp.streams.video[0]
        s = dst.add_stream("libx264", rate=v.average_rate, options={"crf": "30"})
        s.width, s.height, s.pix_fmt = v.width // 2 * 2 * 2, v.height // 2 * 2 * 2, "yuv420p"
        s.codec_context.time_base = Fraction(1, int(v.average_rate))
        for i, frame in enumerate(inp.decode(v)):
            frame = frame.reformat(width=s.width, height=s.height, format="yuv420p")
            frame.pts, frame.time_base = i, s.codec_context.time_base
            for p in s.encode(frame):
                dst.mux(p)
        for p in s.encode():
            dst.mux(p)
    return out


@pytest.fixture
def messy(tmp_path) -> Path:
    """defense: 12 clips, one unreadable, one a near copy of another; passing: 2 clips;
    dribbling: 12 clips, one of them also in defense."""
    root = tmp_path / "data"
    for name, n in (("defense", 12), ("passing", 2), ("dribbling", 12)):
        (root / name).mkdir(parents=True)
        for p in clips(name, n):
            shutil.copy(p, root / name / p.name)
    (root / "defense" / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x01" * 3000)
    shutil.copy(root / "dribbling" / clips("dribbling", 1)[0].name, root / "defense" / "copy.mp4")
    reencoded(clips("defense", 1)[0], root / "defense" / "again.mp4")
    return root


def test_each_problem_is_found_and_named(messy):
    report = check_dataset(messy)
    kinds = {(f.level, f.kind) for f in report.findings}
    assert ("error", "unreadable") in kinds
    assert ("error", "few clips") in kinds
    assert ("error", "duplicate") in kinds
    assert ("warning", "near duplicate") in kinds
    (bad,) = [f for f in report.findings if f.kind == "unreadable"]
    assert bad.paths == [str(messy / "defense" / "broken.mp4")]
    (few,) = [f for f in report.findings if f.kind == "few clips" and f.level == "error"]
    assert "class passing has 2 readable clips" in few.message
    (dup,) = [f for f in report.findings if f.kind == "duplicate"]
    assert "in classes defense and dribbling" in dup.message or "dribbling and defense" in (
        dup.message
    )
    (near,) = [f for f in report.findings if f.kind == "near duplicate"]
    assert sorted(Path(p).name for p in near.paths) == sorted(
        ["again.mp4", clips("defense", 1)[0].name]
    )
    assert report.classes["defense"]["clips"] == 14  # 12 + the copy + the re-encoded one
    assert report.classes["passing"]["clips"] == 2


def test_the_command_exits_1_on_errors_and_prints_json(messy, capfd):
    r = run("dataset", "check", messy, "--format", "json")
    assert r.returncode == 1, r.stderr
    doc = json.loads(r.stdout)
    assert doc["errors"] == 3 and doc["warnings"] >= 1
    table = run_here(capfd, "dataset", "check", messy)  # the table: a real run below
    assert table.returncode == 1
    assert "error: class passing has 2 readable clips" in table.stdout


def test_a_folder_with_warnings_only_exits_0(tmp_path):
    root = tmp_path / "data"
    for name in ("defense", "dribbling"):
        (root / name).mkdir(parents=True)
        for p in clips(name, 4):
            (root / name / p.name).symlink_to(p)
    r = run("dataset", "check", root)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "warning: 4 clips of defense last under 2 s" in r.stdout


def test_a_missing_folder_is_one_line(capfd):
    r = run_here(capfd, "dataset", "check", "/no/such/folder")
    assert_clean_error(r, "/no/such/folder")
