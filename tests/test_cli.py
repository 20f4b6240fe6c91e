"""End-to-end tests of the ``vidcls`` command on real models and clips, run as a real subprocess;
errors that need no process of their own (a bad file or model, one line on stderr) are run by
the command's ``main`` in this process, beside a real run of the same command and flags."""

from __future__ import annotations

import csv
import io
import json
import os
import random
from pathlib import Path

from cli_here import run_here
from cli_run import assert_clean_error, run, stream_free_model
from conftest import A0, needs_shared, video

pytestmark = needs_shared

CLIP = "carving_ice_rpi.mp4"  # the shortest real clip: 131 frames, 4.4 s
CLIP_FED = range(21, 24)  # frames fed at 5 fps: ~22
CSV_HEADER = ["source", "kind", "time", "rank", "label", "index", "score", "end"]


def garbage(path: Path, size: int = 20_000) -> Path:
    path.write_bytes(random.Random(5).randbytes(size))
    return path


# -- the command itself ------------------------------------------------------------------


def test_a_bad_flag_value_is_one_line_naming_the_flag():
    line = assert_clean_error(run("classify", "--top-k", "x", video(CLIP)), "--top-k", "'x'")
    assert "vidcls classify --help" in line


def test_an_unknown_flag_is_one_line():
    r = run("live", "--no-such-flag", video(CLIP))
    line = assert_clean_error(r, "--no-such-flag", "vidcls live --help")
    assert "did you mean" not in line
    r = run("classify", video(CLIP), "--top_k", "3")  # a near-miss: the flag it meant
    assert_clean_error(r, "--top_k 3; did you mean --top-k?", "vidcls classify --help")


def test_output_is_one_flag_everywhere_and_required_where_needed(tmp_path, capfd):
    for command in ("train", "batch"):
        r = run_here(capfd, command, tmp_path)
        assert_clean_error(r, "-o/--output", f"vidcls {command} --help")
    for command in ("classify", "live", "evaluate", "train", "batch"):
        text = run_here(capfd, command, "--help").stdout
        assert "-o FILE, --output FILE" in text, command
        assert "--out " not in text and "--out\n" not in text, command  # the hidden alias


def test_fps_0_is_every_frame_as_in_python(capfd):
    rows = [
        json.loads(line)
        for line in run(
            "classify", video(CLIP), "--fps", "0", "--format", "jsonl"
        ).stdout.splitlines()
    ]
    native = run_here(capfd, "classify", video(CLIP), "--fps", "native", "--format", "jsonl").stdout
    assert len(rows) > 100  # every one of the clip's 131 frames, not 5 a second
    assert [json.loads(line) for line in native.splitlines()] == rows
    assert_clean_error(run_here(capfd, "classify", video(CLIP), "--fps", "-1"), "--fps", "'-1'")


def test_python_m_vidcls_cli_runs_main():
    r = run("--version")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("vidcls ")


# -- every error: exit 2, one line on stderr naming the culprit --------------------------


def test_missing_video(tmp_path):
    path = tmp_path / "missing.mp4"
    assert_clean_error(run("classify", path), path)


def test_empty_video(tmp_path, capfd):
    path = tmp_path / "empty.mp4"
    path.touch()
    assert_clean_error(run_here(capfd, "classify", path), path)


def test_garbage_video(tmp_path, capfd):
    path = garbage(tmp_path / "noise.mp4")
    assert_clean_error(run_here(capfd, "classify", path), path)


def test_directory_as_video(tmp_path, capfd):
    folder = tmp_path / "clips"
    folder.mkdir()
    assert_clean_error(run_here(capfd, "classify", folder), folder)


def test_text_file_as_model(tmp_path, capfd):
    model = tmp_path / "some.txt"
    model.write_text("not a model\n")
    line = assert_clean_error(run_here(capfd, "classify", video(CLIP), "--model", model), model)
    assert "TFLite" in line


def test_truncated_model(tmp_path, capfd):
    model = tmp_path / "cut.tflite"
    model.write_bytes(A0.read_bytes()[: A0.stat().st_size // 3])
    assert_clean_error(run_here(capfd, "classify", video(CLIP), "--model", model), model)


def test_tflite_model_that_is_not_a_stream_model(tmp_path, capfd):
    model = stream_free_model(tmp_path / "relu.tflite")
    line = assert_clean_error(run_here(capfd, "classify", video(CLIP), "--model", model), model)
    assert "stream model" in line


def test_unknown_zoo_name(capfd):
    r = run_here(capfd, "classify", video(CLIP), "--model", "a9")
    line = assert_clean_error(r, "'a9'")
    assert "a0" in line  # lists the zoo


def test_label_count_mismatch(tmp_path, capfd):
    labels = tmp_path / "three.txt"
    labels.write_text("walking\nrunning\njumping\n")
    line = assert_clean_error(
        run_here(capfd, "classify", video(CLIP), "--model", A0, "--labels", labels), labels
    )
    assert "3" in line and "600" in line


def test_unknown_label_in_allow_list(capfd):
    r = run_here(
        capfd, "classify", video(CLIP), "--model", A0, "--allow", "carving ice,no such action"
    )
    line = assert_clean_error(r, "no such action")
    assert "allow" in line


def test_unreachable_download(tmp_path):
    cache = tmp_path / "empty-cache"
    cache.mkdir()
    mirror = "http://127.0.0.1:9/"
    r = run("classify", video(CLIP), env={"VIDCLS_MIRROR": mirror, "VIDCLS_CACHE": str(cache)})
    assert_clean_error(r, "http://127.0.0.1:9/movinet_a0_stream_int8.tflite", "--model PATH")
    assert list(cache.iterdir()) == []  # no partial download left behind


def test_no_network_and_no_mirror_says_what_to_do(tmp_path):
    """First contact offline: the error names VIDCLS_MIRROR and --model PATH."""
    env = {"VIDCLS_CACHE": str(tmp_path), "VIDCLS_MIRROR": "", "https_proxy": "http://127.0.0.1:9"}
    r = run("classify", video(CLIP), env=env)
    assert_clean_error(r, "set VIDCLS_MIRROR", "movinet_a0_stream_int8.tflite", "--model PATH")


def test_missing_output_folder(tmp_path, capfd):
    out = tmp_path / "no" / "such" / "folder" / "out.json"
    assert_clean_error(run_here(capfd, "classify", video(CLIP), "-o", out), out.parent)


# -- several files -----------------------------------------------------------------------


def test_one_bad_file_among_several(tmp_path):
    good = video(CLIP)
    bad = garbage(tmp_path / "bad.mp4")
    r = run("classify", good, bad, "--format", "jsonl", "--summary-only")
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert [row["source"] for row in rows] == [str(good)]
    assert rows[0]["summary"]["top"][0]["label"] == "carving ice"
    errors = r.stderr.splitlines()
    assert all(line.startswith("vidcls: error: ") for line in errors)
    assert any(str(bad) in line for line in errors)
    assert not any(str(good) in line for line in errors)


# -- output files and formats ------------------------------------------------------------


def test_output_file_json(tmp_path):
    out = tmp_path / "result.json"
    r = run("classify", video(CLIP), "--format", "json", "--output", out, "--top-k", "3")
    assert r.returncode == 0, r.stderr
    assert r.stdout == ""
    doc = json.loads(out.read_text("utf-8"))
    assert {"source", "model", "fps", "frames", "summary"} <= doc.keys()
    assert doc["source"] == str(video(CLIP))
    assert doc["model"] == "a0"
    assert doc["fps"] == 5
    assert len(doc["frames"]) in CLIP_FED
    times = [f["time"] for f in doc["frames"]]
    assert times[0] == 0 and all(b > a for a, b in zip(times, times[1:], strict=False))
    for frame in doc["frames"]:
        assert len(frame["top"]) == 3
        for c in frame["top"]:
            assert set(c) == {"label", "index", "score"}
            assert isinstance(c["label"], str) and 0 <= c["index"] < 600
            assert 0 <= c["score"] <= 1
    top = doc["summary"]["top"]
    assert len(top) == 3 and top[0]["label"] == "carving ice"
    assert [c["score"] for c in top] == sorted((c["score"] for c in top), reverse=True)
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"]  # no temp files left


def test_output_file_untouched_when_every_input_fails(tmp_path, capfd):
    out = tmp_path / "result.json"
    before = b'{"previous": "results"}\n'
    out.write_bytes(before)
    bad = garbage(tmp_path / "bad.mp4")
    missing = tmp_path / "missing.mp4"
    r = run_here(capfd, "classify", bad, missing, "--format", "json", "--output", out)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    assert str(bad) in r.stderr and str(tmp_path / "missing.mp4") in r.stderr
    assert out.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.mp4", "result.json"]


def test_output_file_mode_follows_umask(tmp_path):
    new, existing = tmp_path / "new.csv", tmp_path / "existing.csv"
    existing.write_text("old\n")
    existing.chmod(0o644)
    for out in (new, existing):
        r = run(
            "classify", video(CLIP), "--summary-only", "--format", "csv", "-o", out, umask=0o022
        )
        assert r.returncode == 0, r.stderr
    assert existing.stat().st_mode & 0o777 == 0o644
    assert new.stat().st_mode & 0o777 == 0o644


def test_csv_format(tmp_path):
    r = run("classify", video(CLIP), "--format", "csv", "--top-k", "2")
    assert r.returncode == 0, r.stderr
    rows = list(csv.reader(io.StringIO(r.stdout)))
    assert rows[0] == CSV_HEADER
    records = [dict(zip(CSV_HEADER, row, strict=True)) for row in rows[1:]]
    frames = [x for x in records if x["kind"] == "frame"]
    summary = [x for x in records if x["kind"] == "summary"]
    assert len(frames) == 2 * len({x["time"] for x in frames})
    assert len({x["time"] for x in frames}) in CLIP_FED
    assert [x["rank"] for x in summary] == ["1", "2"]
    assert summary[0]["label"] == "carving ice" and summary[0]["time"] == ""
    assert {x["source"] for x in records} == {str(video(CLIP))}
    for x in records:
        assert 0 <= float(x["score"]) <= 1 and 0 <= int(x["index"]) < 600
    assert len(records) == len(frames) + len(summary)


def test_jsonl_format():
    r = run("classify", video(CLIP), "--format", "jsonl", "--top-k", "1")
    assert r.returncode == 0, r.stderr
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    *frames, last = rows
    assert len(frames) in CLIP_FED
    assert all(set(f) == {"source", "time", "top"} and len(f["top"]) == 1 for f in frames)
    assert last["summary"]["top"][0]["label"] == "carving ice"
    assert last["model"] == "a0" and last["fps"] == 5


# -- the model zoo -----------------------------------------------------------------------


def _models_table(stdout: str) -> dict[str, list[str]]:
    return {line.split()[0]: line.split() for line in stdout.splitlines() if line.strip()}


def test_models_list_and_fetch():
    cache = Path(os.environ["VIDCLS_CACHE"])
    r = run("models")
    assert r.returncode == 0, r.stderr
    lines = {line.split()[0]: line for line in r.stdout.splitlines() if line.strip()}
    assert {"a0", "a1", "a2"} <= lines.keys()
    assert lines["a0"].endswith("in mirror")  # the mirror (the shared folder) has only A0
    assert lines["a1"].endswith("not in mirror") and lines["a2"].endswith("not in mirror")
    assert str(cache) in r.stdout

    r = run("models", "--fetch", "a0")
    assert r.returncode == 0, r.stderr
    cached = cache / A0.name
    assert r.stdout.strip() == str(cached)
    assert cached.read_bytes() == A0.read_bytes()

    r = run("models")
    assert r.returncode == 0, r.stderr
    table = _models_table(r.stdout)
    assert table["a0"][-1] == "cached"
    assert r.stdout.splitlines()[2].endswith("not in mirror")  # a1


def test_models_fetch_unknown_name():
    assert_clean_error(run("models", "--fetch", "a9"), "'a9'")


def test_train_on_a_base_model_that_is_not_tflite(tmp_path):
    r = run(
        "train",
        video(CLIP).parent,
        "--out",
        tmp_path / "m.tflite",
        "--model",
        video(CLIP),
    )
    assert_clean_error(r, video(CLIP), "not a TFLite model file")


def test_serve_on_a_bad_or_busy_port(tmp_path):
    import socket

    assert_clean_error(run("serve", "--port", "99999"), "--port must be 0-65535")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert_clean_error(run("serve", "--port", port), f"cannot listen on 127.0.0.1:{port}")
