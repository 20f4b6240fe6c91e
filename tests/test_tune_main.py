"""``python -m vidcls.training.tune``: fine-tuning and parity from the command line."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from conftest import A0, SHARED, needs_shared

pytest.importorskip("jax", reason="jax not installed (the tune extra)")

from vidcls.model import StreamModel  # noqa: E402
from vidcls.training.tune.__main__ import main  # noqa: E402

BASKETBALL = SHARED / "datasets" / "basketball"
COMMAND = [sys.executable, "-m", "vidcls.training.tune"]


def test_help_names_both_commands(capsys):
    for argv in (["--help"], ["parity", "--help"]):
        with pytest.raises(SystemExit) as e:
            main(argv)
        assert e.value.code == 0
    out = capsys.readouterr().out
    assert "--k" in out and "parity -h" in out and "--every-frame-max" in out


def test_a_missing_data_folder_is_one_line(tmp_path, capsys):
    assert main([str(tmp_path / "nothing"), "--base", str(A0)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("vidcls: error: ") and "nothing" in err[0]


@needs_shared
@pytest.mark.skipif(not BASKETBALL.is_dir(), reason=f"{BASKETBALL} not found")
def test_one_block_one_epoch_on_two_small_classes(tmp_path):
    """The figures line per K, the phases on stderr, and the written file loads in LiteRT
    with two classes."""
    data = tmp_path / "data"
    for c in ("defense", "dribbling"):
        (data / c).mkdir(parents=True)
        clips = sorted((BASKETBALL / c).glob("*.mp4"), key=lambda p: int(p.stem.split("_")[-1]))
        for p in clips[:5]:
            (data / c / p.name).symlink_to(p)
    args = [data, "--k", "1", "--views", "1", "--epochs", "1", "--save", tmp_path]
    # The base is the zoo's a0, from the shared folder (conftest's mirror and cache).
    r = subprocess.run([*COMMAND, *map(str, args)], capture_output=True, text=True, timeout=1800)
    assert r.returncode == 0, r.stderr
    (line,) = r.stdout.splitlines()
    pattern = (
        r"K=1: epochs [01] \(l2 [\d.e-]+\); CV by epoch \[[\d.]+ [\d.]+\]; "
        r"val top-1 \(LiteRT, written file\) [\d.]+%; file vs replica max\|diff\| [\d.]+; "
        r"train \d+ s \{.*'total': \d+\}; saved (.+)$"
    )
    m = re.match(pattern, line)
    assert m, line
    for phase in ("blocks 1: 6 clips x 1 view, 1 epoch at most ...", "tuned in", "checked in"):
        assert phase in r.stderr, r.stderr
    assert StreamModel(m.group(1)).layout.num_classes == 2
