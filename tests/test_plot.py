"""``vidcls classify --plot`` and :func:`vidcls.plot.plot_timeline`: a timeline PNG."""

from __future__ import annotations

import cv2
import pytest
from cli_run import run
from conftest import needs_shared, video

from vidcls import classify_video

pytestmark = needs_shared
pytest.importorskip("matplotlib")

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def assert_png(path) -> None:
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    image = cv2.imread(str(path))
    assert image is not None, path
    h, w = image.shape[:2]
    assert 200 <= h <= 4000 and 400 <= w <= 6000, (w, h)
    assert w > h  # a timeline is wide
    assert image.std() > 10, image.std()  # not blank


def test_cli_plot_writes_a_png(tmp_path):
    out = tmp_path / "timeline.png"
    r = run("classify", video("carving_ice_rpi.mp4"), "--plot", out, "--summary-only")
    assert r.returncode == 0, r.stderr
    assert f"wrote {out}" in r.stderr
    assert_png(out)
    assert [p.name for p in tmp_path.iterdir()] == ["timeline.png"]  # no temp file left


def test_plot_timeline_api(tmp_path):
    from vidcls.plot import plot_timeline

    clip = video("carving_ice_rpi.mp4")
    kept = classify_video(clip, window=2.0, segments=True, keep_probabilities=True)
    assert kept.probabilities.shape == (len(kept.frames), len(kept.labels))
    out = plot_timeline(kept, tmp_path / "api.png", classes=3)
    assert out == tmp_path / "api.png"
    assert_png(out)

    plain = classify_video(clip)
    with pytest.raises(ValueError, match="keep_probabilities"):
        plot_timeline(plain, tmp_path / "nope.png")
    assert [p.name for p in tmp_path.iterdir()] == ["api.png"]
