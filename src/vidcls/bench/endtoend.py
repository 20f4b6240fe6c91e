"""``vidcls bench --e2e``: ``vidcls classify`` against the official example's loop, end to end,
each a fresh process, on a 23 s 1080x1920 phone-style clip.

The clip is made once (into the model cache) from the shared real clips: portrait 1080x1920,
30 fps H.264, either as phones record it (no B-frames) or as an app re-encodes it (x264's
default B-frames). Each round runs, in turn, the official loop
(:mod:`vidcls.bench.official`: OpenCV decodes and converts every frame, the Interpreter's
signature runner runs the frames at 5 fps), ``vidcls classify --format jsonl`` and the same with
``--skip-nonref``, each printing a line per result as it comes. For each it takes the time from
starting the process to its first result and to its end; the table gives medians over the
rounds and each one's speed-up over the official loop measured in the same rounds.
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from .. import zoo
from ..cpu import machine_busy
from ..labels import kinetics600_labels
from .clips import encode_h264, real_frames, shared_clips

SIZE = (1080, 1920)  # width, height: portrait, as phones hold them
SECONDS = 23.0


def _phone_path(bframes: bool) -> Path:
    kind = "bframes" if bframes else "camera"
    return zoo.cache_dir() / "bench" / f"phone-1080x1920-23s-{kind}-v1.mp4"


def cached_phone_clips() -> list[Path]:
    """The phone-style clips made so far (none before the first ``--e2e``)."""
    return [p for p in map(_phone_path, (False, True)) if p.is_file()]


def phone_clip(bframes: bool) -> Path:
    """The 23 s 1080x1920 30 fps H.264 clip (made once into the cache)."""
    kind = "bframes" if bframes else "camera"
    out = _phone_path(bframes)
    if out.is_file():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    print(f"making a 1080x1920 30 fps {kind} clip of 23 s in {out} (once)", file=sys.stderr)
    options = {"preset": "veryfast", "crf": "20", "profile": "high"}
    if not bframes:
        options["bf"] = "0"
    frames = real_frames(shared_clips(), *SIZE, 30, SECONDS)
    tmp = out.with_suffix(".part.mp4")
    encode_h264(tmp, frames, *SIZE, 30, options=options)
    tmp.replace(out)
    return out


def timed(command: list[str]) -> tuple[float, float, int, float]:
    """Run ``command``; seconds to its first output line and to its end, its lines, and the
    cores other processes kept busy meanwhile (the machine's busy time less the command's)."""
    busy0, own0 = machine_busy(), _children_cpu()
    start = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    first, lines = None, 0
    for _ in proc.stdout:
        first = first or time.perf_counter() - start
        lines += 1
    if proc.wait() != 0:
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(command)}")
    wall = time.perf_counter() - start
    others = max(0.0, (machine_busy() - busy0) - (_children_cpu() - own0)) / wall
    return first or float("nan"), wall, lines, others


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


BUSY = 0.25  # cores other processes may keep busy before a table is called unreliable


def busy_note(others: list[float], cores: int | None) -> str | None:
    """A warning when other processes kept the machine busy during the timed runs (the
    most of any run, in cores): times then depend on them, and totals can swap order."""
    worst = max(others, default=0.0)
    if worst <= BUSY:
        return None
    return (
        f"  note: the machine was busy: other processes kept up to {worst:.1f} of "
        f"{cores or '?'} cores busy during these runs, so these times depend on them and "
        "the order of the totals may not hold on a quiet machine"
    )


def contenders(clip: Path, model: str, threads: int) -> dict[str, list[str]]:
    """The commands compared, by name."""
    path = str(zoo.resolve_model(model))
    labels = zoo.cache_dir() / "bench" / "kinetics600_labels.txt"
    labels.write_text("\n".join(kinetics600_labels()) + "\n")
    python = sys.executable
    official = [python, "-m", "vidcls.bench.official", str(clip), "--model", path]
    official += ["--labels", str(labels), "--threads", str(threads)]
    ours = [python, "-m", "vidcls.cli", "classify", str(clip), "--model", model]
    ours += ["--format", "jsonl", "--top-k", "3", "--threads", str(threads), "--no-progress"]
    return {
        "official loop": official,
        "vidcls": ours,
        "vidcls --skip-nonref": ours + ["--skip-nonref"],
    }


def run_end_to_end(model: str = "a0", rounds: int = 3, threads: int = 1) -> dict:
    """Print the table for both kinds of clip; returns the medians."""
    zoo.resolve_model(model)  # fetched now, not inside a timed run
    env_note = f"{os.cpu_count()} cores, {threads} inference thread(s), {rounds} rounds"
    print(f"end to end, each a fresh process: {env_note}")
    out = {}
    for bframes in (False, True):
        clip = phone_clip(bframes)
        commands = contenders(clip, model, threads)
        times: dict[str, list[tuple[float, float, int, float]]] = {n: [] for n in commands}
        for _ in range(rounds):
            for name, command in commands.items():
                times[name].append(timed(command))
        kind = "with B-frames (re-encoded)" if bframes else "no B-frames (as phones record)"
        print(f"\n{clip.name}: 1080x1920 30 fps H.264, 23 s, {kind}")
        print(f"  {'':22}{'first result s':>15}{'total s':>10}{'results':>9}{'speed-up':>10}")
        base = statistics.median(run[1] for run in times["official loop"])
        for name, runs in times.items():
            first = statistics.median(run[0] for run in runs)
            total = statistics.median(run[1] for run in runs)
            print(f"  {name:22}{first:>15.2f}{total:>10.2f}{runs[0][2]:>9}{base / total:>9.2f}x")
            out[(bframes, name)] = (first, total)
        note = busy_note([run[3] for runs in times.values() for run in runs], os.cpu_count())
        if note:
            print(note)
    return out
