"""``vidcls dataset check``: what is wrong with a folder of labelled clips, before training.

Each clip is opened and decoded once (every frame, so a truncated file is found), hashed
(exact copies) and fingerprinted (a 16x16 average hash of a frame a second: near copies,
which also last as long and have the same shape). The
findings, each one line with what to do: unreadable files, classes with too few clips, files
in two classes, copies within a class, near copies, clips shorter than the model needs,
classes far apart in size. Errors stop a training run from being trustworthy; warnings are
worth a look.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..errors import VidclsError
from .dataset import scan_classes

MIN_CLIPS = 3  # fewer: a class cannot be both trained and validated
FEW_CLIPS = 10  # fewer: a warning
SHORT_SECONDS = 2.0  # MoViNet at 5 fps sees fewer than 10 frames
IMBALANCE = 2.0  # largest class / smallest class
NEAR_BITS = 0.03  # share of fingerprint bits that may differ for a near copy
NEAR_SECONDS = 0.1  # and its length


@dataclass
class Finding:
    """One problem: ``level`` is ``error`` or ``warning``; ``message`` says what and what to do."""

    level: str
    kind: str
    message: str
    paths: list[str] = field(default_factory=list)


@dataclass
class ClipFacts:
    path: Path
    label: str
    seconds: float | None = None
    fps: float | None = None
    width: int = 0
    height: int = 0
    sha256: str = ""
    print_: np.ndarray | None = None  # the fingerprint bits
    error: str | None = None


@dataclass
class DatasetCheck:
    """The classes with their clips' facts, and the findings."""

    root: str
    classes: dict[str, dict] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.level == "error"]

    def to_dict(self) -> dict:
        return {
            "root": self.root,
            "classes": self.classes,
            "errors": len(self.errors),
            "warnings": len(self.findings) - len(self.errors),
            "findings": [asdict(f) for f in self.findings],
        }

    def table(self) -> str:
        lines = [f"{self.root}: {len(self.classes)} classes"]
        lines.append(f"  {'class':<20}{'clips':>6}{'seconds':>16}{'fps':>8}  sizes")
        for name, c in self.classes.items():
            secs = f"{c['seconds_min']:.1f}-{c['seconds_max']:.1f}" if c["clips"] else "-"
            fps = f"{c['fps_median']:.0f}" if c.get("fps_median") else "-"
            lines.append(f"  {name:<20}{c['clips']:>6}{secs:>16}{fps:>8}  {', '.join(c['sizes'])}")
        for f in self.findings:
            lines.append(f"{f.level}: {f.message}")
        if not self.findings:
            lines.append("no problems found")
        return "\n".join(lines) + "\n"


def check_dataset(root: str | os.PathLike) -> DatasetCheck:
    """Check every clip under ``root`` (one subfolder per class)."""
    skipped: list[str] = []
    by_class = scan_classes(root, skipped)
    report = DatasetCheck(str(root))
    for note in skipped:
        report.findings.append(Finding("warning", "skipped", f"{note}: skipped"))
    facts = [_facts(p, label) for label, paths in by_class.items() for p in paths]
    for label in by_class:
        report.classes[label] = _summary([f for f in facts if f.label == label and not f.error])
    report.findings += _unreadable(facts) + _sizes(report.classes)
    report.findings += _copies([f for f in facts if not f.error])
    report.findings += _short(facts)
    return report


def _facts(path: Path, label: str) -> ClipFacts:
    from ..media import VideoFile

    facts = ClipFacts(path, label)
    try:
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
        facts.sha256 = digest.hexdigest()
        with VideoFile(path) as video:
            info = video.info
            facts.fps, facts.width, facts.height = info.fps, info.width, info.height
            bits, last, due = [], 0.0, 0.0
            for t, frame in video.frames(None):  # every frame decoded (a cut file is found)
                last = t
                if t >= due and len(bits) < 8:  # one a second fingerprinted
                    gray = frame.to_ndarray(format="gray", width=16, height=16)
                    bits.append(gray > gray.astype(np.float32).mean())
                    due = t + 1.0
            facts.print_ = np.concatenate([b.ravel() for b in bits])
            facts.seconds = last + 1.0 / (info.fps or 30.0)  # the last frame lasts too
    except VidclsError as e:
        facts.error = e.message
    except OSError as e:
        facts.error = f"cannot be read ({e.strerror or e})"
    return facts


def _summary(clips: list[ClipFacts]) -> dict:
    seconds = [c.seconds for c in clips if c.seconds is not None]
    fps = [c.fps for c in clips if c.fps]
    sizes: dict[str, int] = {}
    for c in clips:
        key = f"{c.width}x{c.height}"
        sizes[key] = sizes.get(key, 0) + 1
    common = sorted(sizes, key=sizes.get, reverse=True)[:3]
    return {
        "clips": len(clips),
        "seconds_min": min(seconds, default=0.0),
        "seconds_max": max(seconds, default=0.0),
        "fps_median": float(np.median(fps)) if fps else None,
        "sizes": common,
    }


def _unreadable(facts: list[ClipFacts]) -> list[Finding]:
    return [
        Finding(
            "error",
            "unreadable",
            f"{f.path}: {f.error}; remove it, or re-encode it (ffmpeg -i IN -c:v libx264 OUT.mp4)",
            [str(f.path)],
        )
        for f in facts
        if f.error
    ]


def _sizes(classes: dict[str, dict]) -> list[Finding]:
    out = []
    for name, c in classes.items():
        n = c["clips"]
        if n < MIN_CLIPS:
            out.append(
                Finding(
                    "error",
                    "few clips",
                    f"class {name} has {n} readable clip{'s' * (n != 1)}: at least {MIN_CLIPS} "
                    "are needed to train and validate; add clips or leave the class out",
                )
            )
        elif n < FEW_CLIPS:
            out.append(
                Finding(
                    "warning",
                    "few clips",
                    f"class {name} has {n} clips: accuracy on it will be unsure; "
                    f"{FEW_CLIPS} or more help",
                )
            )
    counts = [c["clips"] for c in classes.values() if c["clips"]]
    if counts and min(counts) * IMBALANCE < max(counts):
        small = min(classes, key=lambda k: classes[k]["clips"])
        big = max(classes, key=lambda k: classes[k]["clips"])
        out.append(
            Finding(
                "warning",
                "imbalance",
                f"classes range from {min(counts)} clips ({small}) to {max(counts)} ({big}): "
                "the model will favour the large ones; add clips of the small ones",
            )
        )
    return out


def _copies(facts: list[ClipFacts]) -> list[Finding]:
    out, seen = [], {}
    for f in facts:
        first = seen.setdefault(f.sha256, f)
        if first is f:
            continue
        across = first.label != f.label
        where = f"in classes {first.label} and {f.label}" if across else f"twice in {f.label}"
        out.append(
            Finding(
                "error" if across else "warning",
                "duplicate",
                f"the same file {where}: {first.path} and {f.path}; keep one "
                + ("in the right class" if across else "copy"),
                [str(first.path), str(f.path)],
            )
        )
    unique = [f for f in facts if f.print_ is not None and seen[f.sha256] is f]
    for i, a in enumerate(unique):
        for b in unique[i + 1 :]:
            if _near(a, b):
                across = a.label != b.label
                out.append(
                    Finding(
                        "warning",
                        "near duplicate",
                        f"near copies {'across classes' if across else 'in ' + a.label}: "
                        f"{a.path} and {b.path}; if they are the same footage, keep one",
                        [str(a.path), str(b.path)],
                    )
                )
    return out


def _near(a: ClipFacts, b: ClipFacts) -> bool:
    """The same footage, re-encoded or resized: as long, the same shape, the same look."""
    if a.print_.shape != b.print_.shape or abs((a.seconds or 0) - (b.seconds or 0)) > NEAR_SECONDS:
        return False
    if abs(a.width * b.height - b.width * a.height) > 0.02 * a.width * b.height:
        return False
    return float(np.mean(a.print_ != b.print_)) <= NEAR_BITS


def _short(facts: list[ClipFacts]) -> list[Finding]:
    out = []
    for label in dict.fromkeys(f.label for f in facts):
        short = [f for f in facts if f.label == label and f.seconds is not None]
        short = [f for f in short if f.seconds < SHORT_SECONDS]
        if short:
            least = min(f.seconds for f in short)
            out.append(
                Finding(
                    "warning",
                    "short",
                    f"{len(short)} clip{'s' * (len(short) != 1)} of {label} last under "
                    f"{SHORT_SECONDS:g} s (shortest {least:.2f} s): at 5 fps the model would "
                    "see few frames (train feeds every frame when most clips are this short); "
                    "longer clips give it more to go on",
                    [str(f.path) for f in short],
                )
            )
    return out


def exit_code(report: DatasetCheck) -> int:
    """1 when there are errors, else 0."""
    return 1 if report.errors else 0
