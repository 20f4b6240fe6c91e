"""``vidcls bench --memory``: resident memory per live camera, with and without event clips.

Each (cameras, clips) pair runs in a fresh process (memory a process once held is not given
back, so runs in one process would count each other's), watching N copies of the simulated
camera clip played as files at their real speed, exactly as ``vidcls live`` (decoding
processes by default). After the warm-up it reads the resident memory of the process and its
decoding processes. The cost of one more camera is the slope between the smallest and the
largest N, decoding processes being the same number at both (a process's own ~95 MB of
Python and libraries is not a camera's).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time

SETTLE = 12.0  # seconds watched before memory is read


def measure(n: int, clips: bool) -> dict:
    """In this process: watch ``n`` cameras (with clips and snapshots if ``clips``); the
    resident memory of this process and of each decoding process, MB."""
    from ..classifier import ClassifierOptions, VideoClassifier
    from ..cpu import resident_mb
    from ..live.clips import ClipOptions
    from ..live.sources import SourceSpec
    from ..live.watch import Watch
    from .cameras import camera_clip

    classifier = VideoClassifier.create_from_options(
        ClassifierOptions(model="a0", window=4.0, window_mode="decay", top_k=3)
    )
    clip = str(camera_clip())
    with tempfile.TemporaryDirectory() as folder:
        watch = Watch(
            classifier,
            [SourceSpec(f"cam{i}", clip) for i in range(n)],
            loop=True,
            decoders=None,
            segments=True,
            clips=ClipOptions(folder) if clips else None,
        )
        out: dict = {}

        def read() -> None:
            time.sleep(SETTLE)
            out["main"] = resident_mb(os.getpid())
            out["decoders"] = [resident_mb(p) for p in watch.pool.pids()] if watch.pool else []

        reader = threading.Thread(target=read)
        reader.start()
        watch.run(duration=SETTLE + 1)
        reader.join()
    return out


def run_memory(counts: list[int]) -> list[dict]:
    """Each N of ``counts`` without and with clips, each in a fresh process; a row each and
    the memory one more camera costs."""
    print(f"{'cameras':>7} {'clips':>5} {'main MB':>8} {'decoders MB':>14} {'total MB':>9}")
    rows = []
    for clips in (False, True):
        for n in counts:
            cmd = [sys.executable, "-m", "vidcls.bench.memory", str(n), "1" if clips else "0"]
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
            if done.returncode != 0:
                raise SystemExit(f"vidcls: error: memory run failed: {done.stderr.strip()[-300:]}")
            row = {"cameras": n, "clips": clips, **json.loads(done.stdout.splitlines()[-1])}
            row["total"] = row["main"] + sum(row["decoders"])
            decoders = "+".join(f"{d:.0f}" for d in row["decoders"]) or "-"
            print(
                f"{n:>7} {'yes' if clips else 'no':>5} {row['main']:>8.0f} {decoders:>14} "
                f"{row['total']:>9.0f}",
                flush=True,
            )
            rows.append(row)
    for clips in (False, True):
        ends = [r for r in rows if r["clips"] == clips]
        a, b = ends[0], ends[-1]
        if b["cameras"] > a["cameras"] and len(a["decoders"]) == len(b["decoders"]):
            slope = (b["total"] - a["total"]) / (b["cameras"] - a["cameras"])
            label = "with clips" if clips else "without clips"
            print(f"one more camera, {label}: {slope:.1f} MB")
    return rows


if __name__ == "__main__":  # one run: python -m vidcls.bench.memory N CLIPS(0|1)
    result = measure(int(sys.argv[1]), sys.argv[2] == "1")
    print(json.dumps(result))
