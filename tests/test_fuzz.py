"""The fuzz suite's CI budget: a fixed set of mutated clips, models and label files run
through the real CLI (``tests/fuzz.py``), and the inputs earlier runs found to break it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import needs_shared
from fuzz import KINDS, Fuzzer
from fuzz_run import Outcome, judge

HERE = Path(__file__).resolve().parent
BUDGET_SEED, BUDGET_CASES = 10, 45  # 9-17 s in worker mode on the 2-core machine

# Found by `python tests/fuzz.py --seconds 300 --seed S` on the tree of issue 10 (commit
# 3b74849): (seed, case, the mutation it must still be, what it did). Every one must now end
# in a result or a one-line error.
KNOWN = [
    (2026, 2620, "relu.tflite: swap32@16,24[anywhere]",
     "SIGSEGV in LiteRT's Interpreter() while checking the file"),
    (2026, 4, "movinet_a0_stream_int8.tflite: run@3245599+67[tables]",
     "RuntimeError traceback: XNNPACK unsupported zero-point at the first inference"),
    (2026, 1639, "movinet_a0_stream_int8.tflite: set8le@2900829=0x0[table:BuiltinOptions]",
     "RuntimeError traceback: XNNPack delegate failed to reshape runtime"),
    (2026, 64, "a0+zip.tflite: bitflip@2896377.5,2896391.2,2896394.1,2896395.3[table:Operator]; "
     "bitflip@12653.6,22635.5,26388.6,56732.7[first64k]",
     "RuntimeError traceback: QUANTIZE node fails to prepare"),
    (2026, 175, "movinet_a0_stream_int8.tflite: swap16@2904836,2904848[vtable:Operator]",
     "RuntimeError traceback: invalid tensor index in node outputs"),
    (2026, 979, "a0+zip.tflite: swap16@2831480,2831490[table:Buffer]",
     "RuntimeError traceback: CompiledModel failed to invoke"),
    (2, 96, "carving_ice_android.mp4: truncate@413[header]",
     "AttributeError traceback: VideoStream has no attribute width"),
]  # fmt: skip


@pytest.fixture(scope="module")
def fuzzer(tmp_path_factory) -> Fuzzer:
    return Fuzzer(BUDGET_SEED, tmp_path_factory.mktemp("fuzz"), log=lambda _: None)


def _failures(summary) -> str:
    return "\n".join(f.report() for f in summary.failures)


def test_judge_keeps_the_promise_exactly():
    ok = '{"summary": {}}'
    assert judge(Outcome(0, ok, "", 0)) is None
    assert judge(Outcome(2, "", "vidcls: error: x.mp4: file is empty\n", 0)) is None
    assert judge(Outcome(0, "not json", "", 0)) == "bad-json"
    assert judge(Outcome(2, "", "vidcls: error: a\nvidcls: error: b\n", 0)) == "bad-stderr"
    assert judge(Outcome(2, "", "warning\n", 0)) == "bad-stderr"
    tb = 'Traceback (most recent call last):\n  File "x.py", line 1, in f\nav.error.OSError: x\n'
    assert judge(Outcome(1, "", tb, 0)) == "traceback:av.error.OSError"
    assert judge(Outcome(2, "", tb, 0)) == "traceback:av.error.OSError"
    assert judge(Outcome(-11, "", "", 0)) == "signal:SIGSEGV"
    assert judge(Outcome(134, "", "", 0)) == "signal:SIGABRT"
    assert judge(Outcome(None, "", "", 30)) == "hang"
    assert judge(Outcome(1, "", "", 0)) == "exit:1"


@needs_shared
def test_cases_are_reproducible(fuzzer):
    for number in range(6):
        a, b = fuzzer.case(number), fuzzer.case(number)
        assert (a.data, a.mutation, a.kind) == (b.data, b.mutation, b.kind)
        assert a.data != a.source.data, a.mutation
    assert {fuzzer.case(n).kind for n in range(3)} == set(KINDS)


@needs_shared
def test_worker_judges_as_a_fresh_process(tmp_path):
    """The fast in-process worker and a fresh process agree, pass or fail."""
    both = Fuzzer(BUDGET_SEED, tmp_path, mode="both", log=lambda _: None)
    summary = both.run(cases=range(3))
    assert sum(summary.cases.values()) == 3
    assert not summary.disagreements, summary.disagreements


@needs_shared
def test_fixed_seed_budget(fuzzer):
    summary = fuzzer.run(cases=range(BUDGET_CASES))
    assert sum(summary.cases.values()) == BUDGET_CASES
    assert not summary.failures, _failures(summary)


@needs_shared
@pytest.mark.parametrize(("seed", "number", "mutation", "found"), KNOWN, ids=[k[3] for k in KNOWN])
def test_known_failure_is_fixed(tmp_path, seed, number, mutation, found):
    fuzzer = Fuzzer(seed, tmp_path, mode="process", log=lambda _: None)
    assert fuzzer.case(number).mutation == mutation, "the generator changed: re-find the case"
    summary = fuzzer.run(cases=[number])
    assert not summary.failures, f"{found}\n{_failures(summary)}"


@needs_shared
def test_known_sequence_is_fixed(tmp_path):
    """A model that loads alone crashed CompiledModel.from_file (SIGSEGV) once any model had
    been loaded in the process before (found as worker-only by seed 7, case 118)."""
    fuzzer = Fuzzer(7, tmp_path, mode="worker", log=lambda _: None)
    assert fuzzer.case(118).mutation == "relu.tflite: set32be@292=0xffffffff[anywhere]"
    summary = fuzzer.run(cases=[113, 118])
    assert not summary.failures, _failures(summary)


@pytest.mark.parametrize("target", ["labels", "jpeg", "embedded", "model", "verifier"])
def test_atheris_harness_runs(tmp_path, target):
    pytest.importorskip("atheris", reason="pip install -e '.[fuzz]' for the coverage harness")
    r = subprocess.run(
        [sys.executable, str(HERE / "fuzz_atheris.py"), target, "-runs=300",
         "--artifacts", str(tmp_path)],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    assert "Done 300 runs" in r.stderr
