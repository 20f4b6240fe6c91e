"""``vidcls bench --nonref``: what ``--skip-nonref`` costs in accuracy and saves in time.

Each clip whose frame rate is at least twice the feed rate (where ``--skip-nonref`` applies) is
classified twice with the same loaded model, all frames decoded and then without the frames no
other frame needs, alternating which goes first. Printed per group of clips: how many were
classified, how many have B-frames at all, how often the per-frame and the final top-1 agree,
the largest difference of a final probability, and the time of each way (summed) with the
speed-up, measured in the same run.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from ..media import VideoFile
from ..pipeline import classify_video, load_classifier
from .clips import SOURCE_SUFFIXES, shared_folder

FPS = 5.0


def has_bframes(path: Path, packets: int = 120) -> bool:
    """Whether the first ``packets`` packets of the video stream show reordering (B-frames)."""
    with VideoFile(path) as v:
        last = None
        for n, packet in enumerate(v.container.demux(v.stream)):
            if packet.pts is None or packet.dts is None:
                continue
            if packet.pts != packet.dts and last is not None and packet.pts < last:
                return True
            last = packet.pts
            if n >= packets:
                break
    return False


def compare(classifier, path: Path, first_plain: bool) -> dict:
    """Both ways on one clip: agreement and times."""
    runs, times = {}, {}
    for skip in (False, True) if first_plain else (True, False):
        t0 = time.perf_counter()
        runs[skip] = classify_video(path, classifier=classifier, fps=FPS, skip_nonref=skip)
        times[skip] = time.perf_counter() - t0
    plain, skipped = runs[False], runs[True]
    n = min(len(plain.frames), len(skipped.frames))
    same = sum(plain.frames[i].top[0].index == skipped.frames[i].top[0].index for i in range(n))
    return {
        "frames": n,
        "same_frames": same,
        "same_final": plain.summary[0].index == skipped.summary[0].index,
        "max_diff": float(np.abs(_probabilities(plain) - _probabilities(skipped)).max()),
        "plain_s": times[False],
        "skip_s": times[True],
    }


def _probabilities(result) -> np.ndarray:
    """The final probabilities by class index (from a summary of every class)."""
    p = np.zeros(len(result.labels))
    for c in result.summary:
        p[c.index] = c.score
    return p


def clips_of(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in SOURCE_SUFFIXES)


def run_nonref(model: str, folders: list[Path], extra: list[Path] = ()) -> list[dict]:
    """Print a row per group (the shared clips, each folder, each extra clip); the rows."""
    classifier = load_classifier(model, top_k=0)
    groups = {"shared clips": clips_of(shared_folder())}
    groups.update({str(f): clips_of(f) for f in folders})
    groups.update({p.name: [p] for p in extra})
    print(f"model {classifier.model_name}, fed at {FPS:g} fps; each clip both ways, alternating")
    header = f"{'clips':<36}{'n':>4}{'B':>4}{'frames':>8}{'top-1 same':>11}"
    print(header + f"{'final same':>11}{'max dp':>8}{'all s':>8}{'nonref s':>9}{'speed-up':>9}")
    rows = []
    for name, clips in groups.items():
        usable = []
        for clip in clips:
            with VideoFile(clip) as v:
                if (v.info.fps or 0) >= 2 * FPS:
                    usable.append(clip)
        found = [compare(classifier, c, i % 2 == 0) for i, c in enumerate(usable)]
        if not found:
            print(f"{name[-36:]:<36}{0:>4}  (no clip at {2 * FPS:g} fps or more)")
            continue
        bframes = sum(has_bframes(c) for c in usable)
        frames = sum(r["frames"] for r in found)
        same = sum(r["same_frames"] for r in found) / frames
        final = sum(r["same_final"] for r in found)
        diff = max(r["max_diff"] for r in found)
        plain, skip = sum(r["plain_s"] for r in found), sum(r["skip_s"] for r in found)
        print(
            f"{name[-36:]:<36}{len(found):>4}{bframes:>4}{frames:>8}{same:>10.1%}"
            f"{final:>7}/{len(found):<3}{diff:>8.3f}{plain:>8.2f}{skip:>9.2f}{plain / skip:>8.2f}x"
        )
        rows.append({"group": name, "clips": len(found), "bframes": bframes, "same": same})
    return rows
