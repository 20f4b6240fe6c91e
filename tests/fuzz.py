"""Mutation fuzzing of vidcls's real inputs through its real command line.

Mutates the shared clips, models and label files (byte and bit flips, random runs, set
values, chunk deletion and duplication, truncation; aimed anywhere, at the first KB, at MP4
boxes and AVI chunks, at a model's flatbuffer tables or its appended zip) and runs
``vidcls classify ... --summary-only --format json`` on each. A case passes when it exits 0
with JSON on stdout, or exits 2 with one ``vidcls: error:`` line; anything else (traceback,
signal, hang after --timeout, other exit code, more stderr lines) is a failure, printed with
the command that reproduces it. Every case is a function of (--seed, --kinds, case number).

    python tests/fuzz.py --seconds 300 --seed 7                  # the long run
    python tests/fuzz.py --seconds 60 --kinds model --keep /tmp/fuzz-keep
    python tests/fuzz.py --seed 7 --case 31                      # reproduce one case
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from cli_run import stream_free_model
from fuzz_mutate import KINDS, Case, load_seeds, make_case
from fuzz_run import Outcome, Worker, excerpt, judge, run_process, signature

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("VIDCLS_SHARED", ROOT.parent / "shared"))
MODELS = SHARED / "assets" / "models"
VIDEOS = SHARED / "assets" / "videos"
A0 = MODELS / "movinet_a0_stream_int8.tflite"
CUSTOM = MODELS / "custom_7class" / "a0_stream_int8_7class.tflite"
CUSTOM_LABELS = MODELS / "custom_7class" / "labels.txt"
KINETICS = ROOT / "src" / "vidcls" / "data" / "kinetics600_labels.txt"
VIDEO = VIDEOS / "carving_ice_rpi.mp4"  # the clip model and label cases classify
HISTORY = 3  # when the worker dies but the case passes alone: previous cases re-run alone


@dataclass
class Failure:
    """A case that broke the promise, with what it printed."""

    case: Case
    category: str
    outcome: Outcome
    kinds: tuple[str, ...]
    note: str = ""
    diagnosis: list[str] = field(default_factory=list)  # signals: re-run with VIDCLS_VERBOSE

    @property
    def signature(self) -> str:
        return signature(self.category, self.outcome)

    def command(self) -> str:
        kinds = f" --kinds {','.join(self.kinds)}" if self.kinds != KINDS else ""
        return f"python tests/fuzz.py --seed {self.case.seed}{kinds} --case {self.case.number}"

    def report(self) -> str:
        lines = [
            f"FAIL {self.category}  seed {self.case.seed} case {self.case.number} "
            f"({self.case.kind}, rc {self.outcome.rc}, {self.outcome.seconds:.1f} s)"
            + (f"  [{self.note}]" if self.note else ""),
            f"  mutation: {self.case.mutation}",
            *(f"  | {x[:300]}" for x in excerpt(self.outcome.stderr)),
            *(f"  verbose | {x[:300]}" for x in self.diagnosis),
            f"  reproduce: {self.command()}",
        ]
        return "\n".join(lines)


@dataclass
class Summary:
    """Counts per kind and every failure, in case order."""

    cases: Counter = field(default_factory=Counter)
    failed: Counter = field(default_factory=Counter)
    busy: Counter = field(default_factory=Counter)  # seconds spent running each kind
    failures: list[Failure] = field(default_factory=list)
    disagreements: list[str] = field(default_factory=list)  # --mode both
    seconds: float = 0.0

    def table(self) -> str:
        rows = [f"{'kind':<8}{'cases':>8}{'pass':>8}{'fail':>8}{'s/case':>8}"]
        counters = (self.cases, self.failed, self.busy)
        for kind in [*sorted(self.cases), "total"]:
            n, f, s = (sum(c.values()) if kind == "total" else c[kind] for c in counters)
            rows.append(f"{kind:<8}{n:>8}{n - f:>8}{f:>8}{s / max(n, 1):>8.2f}")
        total = sum(self.cases.values())
        rows.append(
            f"{total} cases in {self.seconds:.0f} s: {total / max(self.seconds, 1e-9):.2f}/s"
        )
        by_category = Counter(f.category for f in self.failures)
        for category, n in by_category.most_common():
            first = next(f for f in self.failures if f.category == category)
            rows.append(f"  {category:<28}{n:>5}   first: {first.command()}")
        distinct = self.distinct()
        rows.append(f"distinct failures: {len(distinct)}")
        for sig, fs in distinct.items():
            rows.append(f"  {len(fs):>4} x {sig}\n         {fs[0].command()}")
        if self.disagreements:
            rows.append(f"worker/process disagreements: {len(self.disagreements)}")
            rows += [f"  {d}" for d in self.disagreements]
        return "\n".join(rows)

    def distinct(self) -> dict[str, list[Failure]]:
        out: dict[str, list[Failure]] = {}
        for f in sorted(self.failures, key=lambda f: f.case.number):
            out.setdefault(f.signature, []).append(f)
        return out


class Fuzzer:
    """Generates and runs cases; ``mode`` is "worker" (fast), "process" or "both" (checks
    that the worker judges every case as a fresh process does)."""

    def __init__(
        self,
        seed: int,
        workdir: Path,
        kinds: tuple[str, ...] = KINDS,
        mode: str = "worker",
        timeout: float = 30.0,
        keep: Path | None = None,
        log=print,
    ) -> None:
        self.seed, self.kinds, self.workdir, self.mode = seed, kinds, Path(workdir), mode
        self.timeout, self.keep, self.log = timeout, keep, log
        self.workdir.mkdir(parents=True, exist_ok=True)
        labels = self.workdir / "kinetics600_labels.txt"  # copies: the seeds stay untouched
        custom_labels = self.workdir / "labels_7class.txt"
        shutil.copyfile(KINETICS, labels)
        shutil.copyfile(CUSTOM_LABELS, custom_labels)
        tiny = stream_free_model(self.workdir / "relu.tflite")  # 440 bytes: all tables
        clips = sorted(VIDEOS.glob("*.mp4")) + sorted(VIDEOS.glob("*.avi"))
        self.seeds = load_seeds(clips, [(A0, labels), (CUSTOM, custom_labels), (tiny, None)])
        self.env = {k: v for k, v in os.environ.items() if k != "VIDCLS_VERBOSE"}
        self.env.update(
            VIDCLS_MIRROR=str(MODELS),
            VIDCLS_CACHE=str(self.workdir / "cache"),
            PYTHONFAULTHANDLER="1",  # a native crash prints the Python stack it happened in
        )
        self.summary = Summary()
        self.lock = threading.Lock()

    def case(self, number: int) -> Case:
        return make_case(self.seed, number, self.kinds, self.seeds)

    def _prepare(self, case: Case, slot: Path) -> list[str]:
        slot.mkdir(parents=True, exist_ok=True)
        path = slot / f"case{case.source.suffix}"
        path.write_bytes(case.data)
        return case.argv(path, VIDEO)

    def fresh(self, number: int, slot: Path) -> tuple[Case, Outcome]:
        """Case ``number`` alone in a fresh process."""
        case = self.case(number)
        return case, run_process(self._prepare(case, slot), self.env, self.timeout)

    def run_one(self, number: int, slot: Path, worker: Worker | None, history: list) -> None:
        """Run, judge and record case ``number`` (in ``slot``, a folder of its own).

        ``history``: (worker pid, case) of the cases run before, for blaming a worker death.
        """
        case = self.case(number)
        argv = self._prepare(case, slot)
        if worker is None:
            outcome, note = run_process(argv, self.env, self.timeout), ""
        else:
            outcome = worker.run(argv, slot / "capture", self.timeout)
            note = outcome.note
            if note or self.mode == "both":
                alone = run_process(argv, self.env, self.timeout)
                if self.mode == "both" and judge(alone) != judge(outcome):
                    self.summary.disagreements.append(
                        f"case {number}: worker {judge(outcome)}, process {judge(alone)}"
                    )
                if note == "worker died" and judge(alone) is None:
                    earlier = [n for pid, n in history if pid == worker.pid]
                    self._blame_history(earlier, outcome, number, slot)
                outcome = alone
        category = judge(outcome)
        diagnosis = self.diagnose(argv) if category and category.startswith("signal") else []
        if worker is not None:  # the cases the worker process now serving has run
            history[:] = [h for h in history[-HISTORY:] if h[0] == worker.pid and not note]
            history.append((worker.pid, number))
        self.record(case, category, outcome, note, diagnosis=diagnosis)

    def diagnose(self, argv: list[str]) -> list[str]:
        """A native crash again, with LiteRT's messages and the Python stack it died in."""
        env = {**self.env, "VIDCLS_VERBOSE": "1"}
        return excerpt(run_process(argv, env, self.timeout).stderr)

    def _blame_history(self, earlier: list[int], died: Outcome, number: int, slot: Path) -> None:
        """The worker died on case ``number``, which passes alone: re-run the cases before it
        in the same worker alone; if none fails, record the death itself."""
        for n in reversed(earlier):
            case, outcome = self.fresh(n, slot)
            category = judge(outcome)
            if category is not None:
                note = f"found when the worker died on case {number}"
                argv = self._prepare(case, slot)
                diagnosis = self.diagnose(argv) if category.startswith("signal") else []
                self.record(case, category, outcome, note, count=False, diagnosis=diagnosis)
                return
        note = f"worker died; passes alone, as do cases {earlier}"
        self.record(self.case(number), f"worker-only:{judge(died)}", died, note, count=False)

    def record(
        self,
        case: Case,
        category: str | None,
        outcome: Outcome,
        note: str = "",
        count: bool = True,
        diagnosis: list[str] | None = None,
    ) -> None:
        """Count a case and its failure (``count`` False: the case was counted before, as a
        pass)."""
        with self.lock:
            self.summary.cases[case.kind] += count
            self.summary.busy[case.kind] += outcome.seconds if count else 0
            if category is None:
                return
            failure = Failure(case, category, outcome, self.kinds, note, diagnosis or [])
            self.summary.failed[case.kind] += 1
            self.summary.failures.append(failure)
            self.log(failure.report())
            if self.keep:
                self._keep(failure)

    def _keep(self, failure: Failure) -> None:
        """The mutated input and how to run it, under ``keep/<seed>-<case>-<kind>/``."""
        case = failure.case
        folder = self.keep / case.name
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"case{case.source.suffix}"
        path.write_bytes(case.data)
        argv = case.argv(path, VIDEO)
        if case.source.labels:  # the label file copy lives in the scratch folder: keep it too
            labels = shutil.copy(case.source.labels, folder)
            argv = [labels if a == str(case.source.labels) else a for a in argv]
        argv = " ".join(["python -m vidcls.cli", *argv])
        (folder / "README.txt").write_text(
            f"{failure.report()}\n\nfresh-process command:\n  {argv}\n\nstderr:\n"
            f"{failure.outcome.stderr}\n",
            encoding="utf-8",
        )

    def run(self, seconds: float | None = None, cases=None, jobs: int = 1) -> Summary:
        """Cases ``cases`` (an iterable of numbers) or 0, 1, 2, ... until ``seconds`` pass."""
        numbers = iter(cases) if cases is not None else iter(range(10**9))
        deadline = None if seconds is None else time.monotonic() + seconds
        start = time.monotonic()
        take = threading.Lock()
        errors: list[BaseException] = []

        def job(slot: Path) -> None:
            worker = None if self.mode == "process" else Worker(self.env, slot / "worker.log")
            history: list[tuple[int, int]] = []
            try:
                while not errors and (deadline is None or time.monotonic() < deadline):
                    with take:
                        number = next(numbers, None)
                    if number is None:
                        return
                    self.run_one(number, slot, worker, history)
            except BaseException as e:  # a bug in the harness: stop the run, raise it below
                errors.append(e)
            finally:
                if worker is not None:
                    worker.stop()

        threads = [
            threading.Thread(target=job, args=(self.workdir / f"job{i}",), daemon=True)
            for i in range(jobs)
        ]
        for t in threads:
            t.start()
        while any(t.is_alive() for t in threads):
            for t in threads:
                t.join(timeout=10)
            self.summary.seconds = time.monotonic() - start
            if seconds is not None and self.log is print:
                self._progress()
        self.summary.seconds = time.monotonic() - start
        if errors:
            raise errors[0]
        return self.summary

    def _progress(self) -> None:
        s = self.summary
        n, failed = sum(s.cases.values()), Counter(f.category for f in s.failures)
        what = ", ".join(f"{k} {v}" for k, v in failed.most_common()) or "none"
        print(
            f"[{s.seconds:5.0f} s] {n} cases ({n / max(s.seconds, 1e-9):.2f}/s), failures: {what}",
            flush=True,
        )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--seconds", type=float, default=60, help="time budget [60]")
    p.add_argument("--seed", type=int, default=0, help="run seed [0]")
    p.add_argument("--kinds", default=",".join(KINDS), help="what to mutate [video,model,labels]")
    p.add_argument("--jobs", type=int, default=1, help="cases run in parallel [1]")
    p.add_argument("--mode", choices=("worker", "process", "both"), default="worker",
                   help="worker: many cases per process (fast); process: a fresh process each; "
                   "both: each case both ways, reporting disagreements [worker]")  # fmt: skip
    p.add_argument("--timeout", type=float, default=30, help="seconds before a case hangs [30]")
    p.add_argument("--keep", type=Path, help="save each failing input and its command here")
    p.add_argument("--case", type=int, action="append", help="run only this case (repeatable)")
    p.add_argument("--workdir", type=Path, help="scratch folder [a temporary one]")
    p.add_argument("--src", type=Path, help="fuzz the vidcls in this src folder (PYTHONPATH)")
    args = p.parse_args(argv)
    args.kinds = tuple(k for k in args.kinds.split(",") if k)
    if not args.kinds or set(args.kinds) - set(KINDS):
        p.error(f"--kinds: choose from {','.join(KINDS)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not A0.is_file():
        print(f"fuzz: real models and clips not found in {SHARED} (set VIDCLS_SHARED)")
        return 2
    with tempfile.TemporaryDirectory(prefix="vidcls-fuzz-") as tmp:
        workdir = args.workdir or Path(tmp)
        mode = "process" if args.case else args.mode
        fuzzer = Fuzzer(args.seed, workdir, args.kinds, mode, args.timeout, args.keep)
        if args.src:
            fuzzer.env["PYTHONPATH"] = str(args.src.resolve())
        print(f"vidcls fuzz: seed {args.seed}, kinds {','.join(args.kinds)}, mode {mode}, "
              f"jobs {args.jobs}", flush=True)  # fmt: skip
        if args.case:  # each alone in a fresh process, printed whether it passes or not
            for number in args.case:
                case = fuzzer.case(number)
                print(
                    f"case {number}: {case.mutation}\n  vidcls {' '.join(case.argv('FILE', VIDEO))}"
                )
            summary = fuzzer.run(cases=args.case)
            print(summary.table(), flush=True)
            return 1 if summary.failures else 0
        summary = fuzzer.run(seconds=args.seconds, jobs=args.jobs)
        print(summary.table(), flush=True)
        return 1 if summary.failures else 0


if __name__ == "__main__":
    sys.exit(main())
