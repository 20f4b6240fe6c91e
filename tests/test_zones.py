"""Zones: rectangles of a source's frame, each classified as a stream of its own, in this
process or in a decoding process; their names, boxes and labels in results and events."""

from __future__ import annotations

import json

import numpy as np
import pytest
from cli_run import assert_clean_error, run
from conftest import needs_shared, video

from vidcls.live.sources import FeedName, SourceSpec, Zone, parse_zone

LEFT, RIGHT = "carving_ice_android.mp4", "example_video01.mp4"


@pytest.fixture(scope="module")
def side(tmp_path_factory):
    """Carving ice on the left half, a rope pushdown on the right."""
    from media import side_by_side

    out = tmp_path_factory.mktemp("zones") / "side.mp4"
    return side_by_side(video(LEFT), video(RIGHT), out)


def readings(stdout: str, after: float = 2.0) -> dict:
    """Each view's top-1 labels after ``after`` seconds: zone -> labels in order."""
    out: dict = {}
    for line in stdout.splitlines():
        doc = json.loads(line)
        if "top" in doc and doc["time"] > after:
            out.setdefault(doc.get("zone", "-"), []).append(doc["top"][0]["label"])
    return out


def alone(name: str, until: float) -> set[str]:
    """The top-1 labels of a clip classified on its own, between 2 s and ``until``."""
    r = run("classify", video(name), "--format", "jsonl", "--top-k", "1", "--window", "4")
    assert r.returncode == 0, r.stderr
    docs = [json.loads(line) for line in r.stdout.splitlines()]
    return {d["top"][0]["label"] for d in docs if "time" in d and 2 < d["time"] <= until}


@pytest.fixture(scope="module")
def halves() -> tuple[set[str], set[str]]:
    """What the left and the right clip read alone up to 6.7 s (the side-by-side's length),
    classified once for every test here that compares with them."""
    return alone(LEFT, 6.7), alone(RIGHT, 6.7)


@needs_shared
@pytest.mark.parametrize("decoders", ["0", "1"])
def test_two_zones_each_give_their_half_and_the_whole_frame_neither(side, halves, decoders):
    """In this process (the views crop the zones) and in a decoding process (which crops
    them there), replayed on a virtual clock: every tick fed, the same on any machine."""
    zones = ["--zone", "left=0,0,0.5,1", "--zone", "right=0.5,0,1,1", "--whole"]
    r = run(
        "live", side, *zones, "--results", "--format", "jsonl", "--decoders", decoders,
        "--replay", timeout=120,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    seen = readings(r.stdout)
    left, right = halves
    assert left == {"carving ice"}

    def share(zone, labels) -> float:
        return sum(label in labels for label in seen[zone]) / len(seen[zone])

    # Each zone reads its own half, at every result past 2 s: the carving on the left, the
    # rope pushdown on the right (as A0 reads that clip alone: "situp", "stretching arm"...).
    assert share("left", left) == 1
    assert share("right", right) == 1 and share("right", left) == 0
    # The whole frame, the carving beside a person exercising, never reads the right half.
    assert share(None, right) == 0
    events = [json.loads(x) for x in r.stdout.splitlines() if '"event"' in x]
    assert {(e["zone"], e["segment"]["label"]) for e in events} >= {("left", "carving ice")}
    stats = [line for line in r.stderr.splitlines() if "results (" in line]
    assert [s.split(":")[1].strip() for s in stats] == ["side", "side/left", "side/right"]
    # 6.7 s at the model's 5 fps: each view fed at every tick, none dropped.
    assert all(" 34 results (" in s and " 0 dropped" in s for s in stats), stats


@needs_shared
def test_a_bad_zone_flag_is_one_line():
    for bad, says in [
        ("left=0.5,0,0.4,1", "x1 < x2"),
        ("left=0,0,1.5,1", "<= 1"),
        ("left=0,0,1", "4 numbers"),
        ("0,0,1,1", "NAME="),
    ]:
        assert_clean_error(run("live", video(LEFT), "--zone", bad), "--zone", says)


def test_zone_boxes_are_checked():
    assert Zone("door", (0, 0.2, "0.3", 0.9)).box == (0.0, 0.2, 0.3, 0.9)
    for box in [(0.5, 0, 0.5, 1), (0, 0, 1, 1.01), (-0.1, 0, 1, 1), (0, 0.9, 1, 0.1)]:
        with pytest.raises(ValueError, match="fractions of the frame"):
            Zone("z", box)
    with pytest.raises(ValueError, match="zone name"):
        Zone("a b", (0, 0, 1, 1))
    assert parse_zone(" gate = 0, 0.2, 0.3, 0.9").box == (0.0, 0.2, 0.3, 0.9)


def test_a_zone_crops_its_rectangle_and_never_nothing():
    rgb = np.arange(100 * 200 * 3, dtype=np.uint8).reshape(100, 200, 3)
    crop = Zone("r", (0.5, 0.0, 1.0, 0.5)).crop(rgb)
    assert crop.shape == (50, 100, 3)
    assert np.shares_memory(crop, rgb) and (crop == rgb[:50, 100:]).all()
    assert Zone("tiny", (0.999, 0.999, 1.0, 1.0)).crop(rgb).shape == (1, 1, 3)


def test_views_and_their_names():
    plain = SourceSpec("yard", "rtsp://cam")
    assert plain.views() == [("yard", None)]
    assert not hasattr(plain.views()[0][0], "zone")  # results keep their plain shape
    pool, gate = Zone("pool", (0.5, 0, 1, 1)), Zone("gate", (0, 0.2, 0.3, 0.9))
    zoned = SourceSpec("yard", "rtsp://cam", (pool, gate))
    names = [name for name, _ in zoned.views()]
    assert names == ["yard/pool", "yard/gate"]  # the whole frame only when asked
    assert [(n.source, n.zone) for n in names] == [("yard", "pool"), ("yard", "gate")]
    whole = SourceSpec("yard", "rtsp://cam", (pool,), whole=True).views()
    assert [(n, n.zone, z) for n, z in whole] == [("yard", None, None), ("yard/pool", "pool", pool)]
    assert FeedName("yard", "pool") == "yard/pool"
