"""The int8 guard on real exported files: a sound export agrees with its float head, and an
export whose int8 logits collapse (their range blown up by one outlier row) is caught with a
warning saying what to try."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import A0, needs_shared, video

from vidcls.media import read_clip
from vidcls.training.dataset import Clip, Dataset
from vidcls.training.export import export_model
from vidcls.training.features import FeatureExtractor, Features
from vidcls.training.fit import fit_softmax
from vidcls.training.guard import CHECK_CLIPS, Int8Check, check_clips, verify
from vidcls.training.methods import Fitted

pytestmark = needs_shared
CLIPS = ["carving_ice_rpi.mp4", "example_video01.mp4", "eye_makeup.avi", "carving_ice_android.mp4"]
FPS = 5.0  # the rate train feeds clips of 2 s or more at (22 to 50 frames of these clips)


@pytest.fixture(scope="module")
def checked():
    """The clips (two classes), their float features decoded at FPS as classify decodes, and
    a classifier fitted on them."""
    extractor = FeatureExtractor(A0)
    clips = [Clip(video(n), "ice" if "ice" in n else "other", int("ice" not in n)) for n in CLIPS]
    rows = [extractor(read_clip(c.path, FPS)[0]) for c in clips]
    features = Features(
        np.array([r[0] for r in rows]),
        np.array([r[1] for r in rows]),
        np.array([c.index for c in clips]),
        np.array([(i, 0) for i in range(len(clips))]),
    )
    head = fit_softmax(features.hidden, features.labels, 2, 1e-3, 200)
    return clips, features, Fitted(head, "classifier", 1e-3, None)


def test_a_sound_export_agrees_with_its_float_head(checked, tmp_path):
    clips, features, fitted = checked
    out = tmp_path / "m.tflite"
    export_model(A0, fitted.head, ["ice", "other"], FPS, features.hidden, out)
    _, check = verify(out, clips, "training", ["ice", "other"], fitted, features, FPS)
    assert check.clips == 4 and check.agreement == 1.0 and check.drop == 0
    assert check.max_difference < 0.1 and check.warning() is None


def test_a_collapsed_export_is_caught_with_what_to_try(checked, tmp_path):
    clips, features, fitted = checked
    out = tmp_path / "m.tflite"
    outlier = np.vstack([features.hidden, features.hidden[:1] * 5000])  # logits range x1000s
    export_model(A0, fitted.head, ["ice", "other"], FPS, outlier, out)
    _, check = verify(out, clips, "training", ["ice", "other"], fitted, features, FPS)
    print(check)
    assert check.agreement < 0.9 or check.drop > 0.05
    assert "--l2" in check.warning() and f"{check.clips} training clips" in check.warning()


def test_thresholds_and_which_clips_are_checked():
    ok = Int8Check("validation", 20, 0.95, 0.8, 0.78, 0.05)
    assert ok.warning() is None
    assert Int8Check("validation", 20, 0.85, 0.8, 0.8, 0.05).warning()  # disagrees too often
    assert Int8Check("validation", 20, 0.95, 0.8, 0.7, 0.05).warning()  # loses 10 points
    train = [Clip(Path(f"c{i}.mp4"), "a", 0) for i in range(100)]
    got, part = check_clips(Dataset(["a"], train, []))
    assert part == "training" and len(got) <= CHECK_CLIPS
    val = train[:3]
    assert check_clips(Dataset(["a"], train, val)) == (val, "validation")
