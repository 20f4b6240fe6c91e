"""The one frame loop: every way in (files, arrays, prepared inputs) gives the same results."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import needs_shared, video

import vidcls
from vidcls.media import VideoFile, read_frames
from vidcls.pipeline import Pipeline, feed_rate

pytestmark = needs_shared


@pytest.fixture(scope="module")
def classifier():
    return vidcls.load_classifier("a0", top_k=3)


def test_iter_video_yields_what_classify_video_returns(classifier):
    clip = video("carving_ice_android.mp4")
    whole = vidcls.classify_video(clip, classifier=classifier)
    results, info = vidcls.iter_video(clip, classifier=classifier)
    assert info == whole.info and info.width == 360 and info.frames == 200  # known at once
    lazy = list(results)
    assert [f.to_dict() for f in lazy] == [f.to_dict() for f in whole.frames]
    assert whole.summary == lazy[-1].top and lazy[-1].top  # every result is a real frame


def test_iter_video_checks_the_file_when_called(tmp_path):
    bad = tmp_path / "notes.mp4"
    bad.write_text("not a video")
    with pytest.raises(vidcls.VidclsError, match="notes.mp4"):
        vidcls.iter_video(bad)  # before any result is asked for


def test_arrays_and_decoded_frames_give_the_same_probabilities(classifier):
    """Feeding RGB arrays (what evaluate and the server do) equals feeding PyAV frames."""
    clip = video("eye_makeup.avi")
    by_frame = Pipeline(classifier.new_stream(), keep_probabilities=True)
    with VideoFile(clip) as v:
        a = [by_frame.feed(t, f) for t, f in v.frames(5.0)]
    by_array = Pipeline(classifier.new_stream(), keep_probabilities=True)
    b = [by_array.feed(i / 5, rgb) for i, rgb in enumerate(read_frames(clip, 5.0))]
    assert len(a) == len(b) > 20
    np.testing.assert_array_equal(a[-1].probabilities, b[-1].probabilities)


def test_prefetch_changes_nothing(classifier):
    clip = video("carving_ice_rpi.mp4")
    plain = vidcls.classify_video(clip, classifier=classifier, keep_probabilities=True)
    ahead = vidcls.classify_video(clip, classifier=classifier, keep_probabilities=True, prefetch=4)
    np.testing.assert_array_equal(plain.probabilities, ahead.probabilities)


def test_segment_events_come_with_the_frames_that_cause_them(classifier):
    clip = video("carving_ice_android.mp4")
    frames = list(vidcls.iter_video(clip, classifier=classifier, segments=True)[0])
    events = [e for f in frames for e in f.events]
    assert [e.kind for e in events] == ["start", "end"]
    assert events[0].segment.label == "carving ice"
    assert all(f.top for f in frames)  # no empty result at the end:
    assert frames[-1].events == events[-1:]  # the last frame carries the closing end event
    assert events[-1].time >= frames[-1].time
    whole = vidcls.classify_video(clip, classifier=classifier, segments=True)
    assert whole.segments == [events[0].segment]


def test_timings_only_when_asked(classifier):
    clip = video("carving_ice_rpi.mp4")
    results, _ = vidcls.iter_video(clip, classifier=classifier)
    assert all(f.infer_ms is None for f in results)
    pipeline = Pipeline(classifier.new_stream(), timed=True)
    with VideoFile(clip) as v:
        t, frame = next(v.frames(5.0))
        result = pipeline.feed(t, frame)
    assert result.infer_ms > 0 and "infer_ms" in result.to_dict()


def test_reset_starts_a_new_clip(classifier):
    clip = video("carving_ice_rpi.mp4")
    frames = read_frames(clip, 5.0)
    pipeline = Pipeline(classifier.new_stream(), keep_probabilities=True)
    first = [pipeline.feed(i / 5, f) for i, f in enumerate(frames)][-1]
    pipeline.feed(0.0, frames[0])
    pipeline.reset()
    again = [pipeline.feed(i / 5, f) for i, f in enumerate(frames)][-1]
    np.testing.assert_array_equal(first.probabilities, again.probabilities)


def test_fps_none_is_the_model_rate_and_zero_every_frame(classifier):
    assert feed_rate(classifier, None) == 5.0
    assert feed_rate(classifier, 0) is None
    assert feed_rate(classifier, 2.5) == 2.5
    with pytest.raises(ValueError):
        feed_rate(classifier, -1)
    every = vidcls.classify_video(video("carving_ice_rpi.mp4"), classifier=classifier, fps=0)
    assert every.fps is None and len(every.frames) == 131
    assert every.to_dict()["fps"] is None


def test_a_classifier_or_options_not_both(classifier):
    with pytest.raises(TypeError):
        vidcls.classify_video(video("carving_ice_rpi.mp4"), classifier=classifier, top_k=2)
