"""The CI budget of ``tests/fuzz_surfaces.py``: a few fixed-seed cases of each surface (camera
configs, annotation files, dataset folders through the real CLI; requests to a real server),
judged by the same promise as the long run, and the cases earlier runs found."""

from __future__ import annotations

import os
import sys

import pytest
from conftest import needs_shared
from fuzz_inputs import TARGETS, lay_out, make_case
from fuzz_run import Outcome
from fuzz_surfaces import CliFuzzer, changes, judge_cli, make_outside, snapshot, wipe

# (target, seed, cases): about a second a case; the server's cases are single requests
# (~0.05 s each) after its start (~5 s)
BUDGET = {
    "config": (28, range(3)),
    "annotations": (28, range(3)),
    "folders": (28, range(4)),
}
SERVER_BUDGET = (28, range(50))
# (seed, case, the start of the request it must still be, what it did), run after the budget
SERVER_KNOWN = [
    (2812, 671, "WS /v1/stream; odd text",  # 141, then 146 (/api/playable), then 671 (/api/groups)
     "traceback in the log: uvicorn's UnicodeDecodeError for a text frame that is not UTF-8"),
]  # fmt: skip

# Found by `python tests/fuzz_surfaces.py TARGET --seconds 600 --seed S` (issue 28):
# (target, seed, case, the start of the mutation it must still be, what it did)
KNOWN = [
    ("config", 3, 41, "seed1; edge cameras.eye.zones.right.box.2=2147483647; recursive-alias",
     "RecursionError traceback: a YAML alias inside the value it names (x: &r [*r])"),
    ("config", 5150, 44, "seed2; edge clips.keep_days=1e-300; set model='mqtt://127.0.0.1:1/xx",
     "OSError traceback: a model name with a part over 255 bytes (zoo.resolve_model)"),
]  # fmt: skip


def _failures(summary) -> str:
    return "\n".join(f.report() for f in summary.failures)


@needs_shared
def test_the_judge_keeps_the_promise_of_each_command():
    live, cut, check = make_case("config", 0, 0), make_case("annotations", 0, 0), None
    check = next(p for n in range(50) if (p := make_case("folders", 0, n)).expect == "check")
    one = "vidcls: error: x.yml: line 1: bad\n"
    assert judge_cli(live, Outcome(2, "", one, 0)) is None
    two = "vidcls: error: x.yml: camera a: missing\nvidcls: error: x.yml: no camera\n"
    assert judge_cli(live, Outcome(2, "", two, 0)) is None  # each camera, then the last line
    assert judge_cli(cut, Outcome(2, "", two, 0)) == "bad-stderr"  # one line only
    assert judge_cli(cut, Outcome(2, "", "vidcls: cutting ...\n" + one, 0)) == "bad-stderr"
    assert judge_cli(live, Outcome(2, "", one * (21), 0)) == "flood"
    assert judge_cli(cut, Outcome(0, "wrote 2 clips of 1 labels into x\n", "", 0)) is None
    assert judge_cli(cut, Outcome(0, "", "", 0)) == "bad-stdout"
    assert judge_cli(check, Outcome(1, "{}", "vidcls: skipping a\n", 0)) is None
    assert judge_cli(check, Outcome(1, "{}", "vidcls: skipping a\nb: x\n", 0)) == "stray-stderr"
    tb = 'Traceback (most recent call last):\n  File "x.py", line 1, in f\nValueError: x\n'
    assert judge_cli(live, Outcome(1, "", tb, 0)) == "traceback:ValueError"
    assert judge_cli(live, Outcome(None, "", "", 30)) == "hang"
    assert judge_cli(live, Outcome(-9, "", "", 1)) == "signal:SIGKILL"
    assert judge_cli(live, Outcome(0, "", "", 1, note="left")) == "left-running"


@needs_shared
def test_cases_are_functions_of_target_seed_and_number(tmp_path):
    for target in TARGETS:
        for number in range(5):
            a, b = make_case(target, 7, number), make_case(target, 7, number)
            assert (a.mutation, a.argv, a.entries) == (b.mutation, b.argv, b.entries)
        assert len({make_case(target, 7, n).mutation for n in range(5)}) > 1
    plan = make_case("folders", 7, 3)
    listings = []
    for _ in range(2):  # laid out alike twice
        wipe(tmp_path / "case")
        (tmp_path / "case").mkdir()
        lay_out(plan, tmp_path / "case", tmp_path / "outside")
        listings.append(sorted(os.walk(tmp_path / "case")))
    assert listings[0] == listings[1]


@needs_shared
def test_the_sentinel_sees_every_write(tmp_path):
    make_outside(tmp_path)
    before = snapshot(tmp_path)
    (tmp_path / "dir" / "clip.mp4").write_bytes(b"changed")
    (tmp_path / "unlabelled" / "new.mp4").write_bytes(b"x")
    (tmp_path / "notes.txt").unlink()
    assert changes(before, snapshot(tmp_path)) == [
        "+unlabelled/new.mp4", "-notes.txt", "~dir/clip.mp4", "~unlabelled",
    ]  # fmt: skip


@needs_shared
@pytest.mark.parametrize("target", sorted(BUDGET))
def test_fixed_seed_budget(tmp_path, target):
    seed, cases = BUDGET[target]
    fuzzer = CliFuzzer(target, seed, tmp_path, log=lambda _: None)
    try:
        summary = fuzzer.run(cases=cases)
    finally:
        wipe(tmp_path / "job0")
    assert sum(summary.cases.values()) == len(cases)
    assert not summary.failures, _failures(summary)


@needs_shared
def test_fixed_seed_budget_of_the_server(tmp_path):
    pytest.importorskip("fastapi", reason="pip install -e '.[serve]'")
    from fuzz_server import ServerFuzzer, make_request

    seed, cases = SERVER_BUDGET
    fuzzer = ServerFuzzer(seed, tmp_path, log=lambda _: None)
    assert {("GET", "/media/{path:path}"), ("WS", "/v1/stream"), ("POST", "/api/teach/upload"),
            ("GET", "/api/events")} <= {(r.method, r.path) for r in fuzzer.routes}  # fmt: skip
    for seed_, number, request, _ in SERVER_KNOWN:
        assert make_request(seed_, number, fuzzer.routes).mutation.startswith(request)
    known = [(seed_, number) for seed_, number, _, _ in SERVER_KNOWN]
    summary = fuzzer.run(cases=[*cases, *known])
    assert sum(summary.cases.values()) == len(cases) + len(known)
    assert not summary.failures, _failures(summary)


@needs_shared
def test_unreadable_entries_as_a_user(tmp_path):
    """Folders with files and folders no one may read (chmod 000): only a user's run proves
    anything, since root reads them anyway."""
    if os.geteuid() == 0:
        pytest.skip("running as root: chmod 000 files are readable, so the cases prove nothing")
    locked = [n for n in range(200) if "chmod 0" in make_case("folders", 5, n).mutation][:3]
    fuzzer = CliFuzzer("folders", 5, tmp_path, log=lambda _: None)
    summary = fuzzer.run(cases=locked)
    assert not summary.failures, _failures(summary)


def test_cancelling_a_job_that_is_not_there_changes_nothing(tmp_path):
    """Found by the server target (seed 28, case 48): POST /api/teach/jobs/x%00.mp4/cancel was
    a 500 (ValueError from the NUL), and an id such as '..' wrote a job document outside the
    jobs folder (and would have stopped the job running)."""
    pytest.importorskip("fastapi", reason="pip install -e '.[serve]'")
    from vidcls.serve.teacher import Teacher

    teacher = Teacher(tmp_path, "a0")
    before = snapshot(tmp_path)
    for job_id in ("x\0.mp4", "..", ".", "nope", "a" * 300):
        teacher.cancel(job_id)
        assert teacher.job(job_id) == {}
    assert changes(before, snapshot(tmp_path)) == []


def test_a_model_name_too_long_for_a_file_is_an_error_line():
    """Found by the config target (seed 5150, case 44): `model:` (or --model) with a part over
    255 bytes was an OSError traceback from the check whether such a file exists."""
    from vidcls.errors import VidclsError
    from vidcls.zoo import resolve_model

    with pytest.raises(VidclsError, match="unknown model"):
        resolve_model("x" * 300)
    assert str(resolve_model("x" * 300 + "/y")).endswith("/y")  # the loader names the problem


def test_a_warning_naming_a_file_with_a_line_break_is_one_line(tmp_path):
    """Found by the folders target: `dataset check` warned about a folder named 'a\nb' on two
    lines, the second not starting with 'vidcls:'."""
    import subprocess

    (tmp_path / "a\nb").mkdir()
    r = subprocess.run([sys.executable, "-m", "vidcls.cli", "dataset", "check", str(tmp_path)],
                       capture_output=True, text=True, timeout=120)  # fmt: skip
    assert r.stderr and all(x.startswith("vidcls: ") for x in r.stderr.splitlines()), r.stderr


@needs_shared
@pytest.mark.parametrize(
    ("target", "seed", "number", "mutation", "found"), KNOWN, ids=[k[4] for k in KNOWN]
)
def test_known_failure_is_fixed(tmp_path, target, seed, number, mutation, found):
    fuzzer = CliFuzzer(target, seed, tmp_path, log=lambda _: None)
    assert fuzzer.case(number).mutation.startswith(mutation), "the generator changed: re-find it"
    summary = fuzzer.run(cases=[number])
    assert not summary.failures, f"{found}\n{_failures(summary)}"


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
