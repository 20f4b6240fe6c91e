"""Windowed classification on the real models: two staggered streams, the decayed stream,
and the switch they buy.

The acceptance test joins a carving-ice clip and a stretching/sit-up clip end to end: with a
4 s window the prediction follows the cut within seconds; cumulative pooling never does.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from cli_here import run_here
from cli_run import assert_clean_error, run
from conftest import A0, CUSTOM, needs_shared, video
from media import join_clips

from vidcls import ClassifierOptions, VideoClassifier, classify_video
from vidcls.errors import OptionError
from vidcls.layout import pool_pairs
from vidcls.media import read_frames
from vidcls.model import StreamModel
from vidcls.preprocess import Preprocessor
from vidcls.window import KEEP, DecayedStream, WindowedStreams

pytestmark = needs_shared

CARVING = "carving ice"
MAX_LATENCY = 4.0  # seconds after the cut by which a 4 s window must have switched


@pytest.fixture(scope="module")
def carving_then_other(tmp_path_factory):
    """carving_ice_android.mp4 then example_video01.mp4 (256², 25 fps, no audio), and the cut."""
    out = tmp_path_factory.mktemp("joined") / "carving_then_other.mp4"
    starts = join_clips([video("carving_ice_android.mp4"), video("example_video01.mp4")], out)
    return out, starts[1]


@pytest.fixture(scope="module")
def cumulative(carving_then_other):
    """carving_then_other classified without a window (two tests compare with it)."""
    return classify_video(carving_then_other[0])


@pytest.fixture(scope="module")
def other_then_carving(tmp_path_factory):
    out = tmp_path_factory.mktemp("joined") / "other_then_carving.mp4"
    starts = join_clips([video("example_video01.mp4"), video("carving_ice_android.mp4")], out)
    return out, starts[1]


# -- WindowedStreams against plain streams ------------------------------------------------


def random_frames(model, n: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    shape = (model.layout.height, model.layout.width, 3)
    return [rng.random(shape, dtype=np.float32) for _ in range(n)]


def expected_schedule(steps: int, window: int) -> list[tuple[int, int]]:
    """(stream, first frame of its current run) reported at each step, from the design alone.

    Stream 0 starts afresh at frames 0, W, 2W, ...; stream 1 at W/2, W/2 + W, ...; the one
    reported is the one that has seen more frames since its last fresh start (stream 0 on a tie).
    """
    restarts = (
        list(range(0, steps, window)),
        list(range(window // 2, steps, window)),
    )
    schedule = []
    for n in range(steps):
        seen = []
        for k in (0, 1):
            started = [r for r in restarts[k] if r <= n]
            seen.append((n - started[-1] + 1, started[-1]) if started else (0, None))
        k = 0 if seen[0][0] >= seen[1][0] else 1
        schedule.append((k, seen[k][1]))
    return schedule


def test_windowed_logits_equal_a_fresh_stream_fed_since_the_last_reset(a0_model):
    window, steps = 6, 27
    frames = random_frames(a0_model, steps)
    schedule = expected_schedule(steps, window)
    # Logits of a fresh plain stream fed frames[start:], for every start the schedule uses.
    fresh: dict[int, list[np.ndarray]] = {}
    for start in sorted({s for _, s in schedule}):
        stream = a0_model.new_stream()
        fresh[start] = [stream.step(f).copy() for f in frames[start : start + window]]
    cumulative = a0_model.new_stream()

    ws = WindowedStreams(a0_model, window)
    assert ws.window == window and ws.frames == 0
    actives = []
    for n, frame in enumerate(frames):
        logits = ws.step(frame)
        whole = cumulative.step(frame)
        k, start = schedule[n]
        actives.append(ws.active)
        assert ws.active == k, (n, ws.active, k)
        assert ws.frames == n + 1
        assert ws.streams[k].frames == n - start + 1, n
        assert logits is ws.logits
        np.testing.assert_array_equal(logits, fresh[start][n - start], err_msg=f"step {n}")
        if start > 0:  # after a reset the window really forgot the earlier frames
            assert not np.allclose(logits, whole, atol=1e-3), n
        else:
            np.testing.assert_array_equal(logits, whole, err_msg=f"step {n}")

    # Stream 0 for the first window, then the two take turns every W/2 frames.
    assert actives == [0] * 6 + [1, 1, 1, 0, 0, 0] * 3 + [1, 1, 1]


def test_windowed_reset_repeats_the_sequence_exactly(a0_model):
    frames = random_frames(a0_model, 16, seed=1)
    ws = WindowedStreams(a0_model, 6)
    first = [(ws.step(f).copy(), ws.active) for f in frames]
    ws.reset()
    assert ws.frames == 0 and ws.active == 0
    assert all(s.frames == 0 for s in ws.streams)
    second = [(ws.step(f).copy(), ws.active) for f in frames]
    assert [a for _, a in first] == [a for _, a in second]
    for n, ((a, _), (b, _)) in enumerate(zip(first, second, strict=True)):
        np.testing.assert_array_equal(a, b, err_msg=f"step {n}")


@pytest.mark.parametrize("window", [2, 5, 6])
def test_reported_stream_has_seen_half_a_window_to_a_window(a0_model, window):
    ws = WindowedStreams(a0_model, window)
    for n, frame in enumerate(random_frames(a0_model, 3 * window, seed=2)):
        ws.step(frame)
        seen = ws.streams[ws.active].frames
        if n + 1 < window / 2:
            assert seen == n + 1
        else:
            assert window / 2 <= seen <= window, (n, seen)


@pytest.mark.parametrize("window", [1, 0, -4])
def test_window_shorter_than_two_frames_is_rejected(a0_model, window):
    with pytest.raises(ValueError, match="at least 2 frames"):
        WindowedStreams(a0_model, window)


# -- the acceptance test -------------------------------------------------------------


def top1(result) -> list[tuple[float, str]]:
    return [(f.time, f.top[0].label) for f in result.frames]


def switch_latency(frames: list[tuple[float, str]], cut: float, settled) -> float | None:
    """Seconds from ``cut`` to the first frame after which every frame satisfies ``settled``."""
    after = [(t, label) for t, label in frames if t >= cut]
    for i, (t, _) in enumerate(after):
        if all(settled(label) for _, label in after[i:]):
            return t - cut
    return None


def seconds(latency: float | None) -> str:
    return "never" if latency is None else f"{latency:.2f} s"


def trace(frames, cut) -> str:
    return ", ".join(f"{t:.1f} {label}" for t, label in frames if t >= cut - 1.5)


def test_window_follows_the_cut_and_cumulative_does_not(carving_then_other, cumulative):
    joined, cut = carving_then_other
    windowed = classify_video(joined, window=4.0)
    assert windowed.window == 4.0 and cumulative.window is None
    w, c = top1(windowed), top1(cumulative)
    assert len(w) == len(c) and w[-1][0] > cut + MAX_LATENCY + 1, (len(w), w[-1], cut)

    before = [label for t, label in w if cut - 1.0 <= t < cut]
    assert before and all(label == CARVING for label in before), trace(w, cut)

    latency = switch_latency(w, cut, lambda label: label != CARVING)
    print(f"\ncarving ice -> example_video01 (cut {cut:.2f} s): windowed switch {seconds(latency)}")
    assert latency is not None and latency <= MAX_LATENCY, (latency, trace(w, cut))
    # The cumulative pooling still says carving ice at the end: that is what the window fixes.
    assert c[-1][1] == CARVING, trace(c, cut)
    assert cumulative.summary[0].label == CARVING
    assert windowed.summary[0].label != CARVING


def test_window_follows_the_cut_into_carving_ice(other_then_carving):
    joined, cut = other_then_carving
    windowed = classify_video(joined, window=4.0)
    w = top1(windowed)
    assert w[-1][0] > cut + MAX_LATENCY + 1
    assert all(label != CARVING for t, label in w if t < cut), trace(w, cut)
    latency = switch_latency(w, cut, lambda label: label == CARVING)
    print(f"\nexample_video01 -> carving ice (cut {cut:.2f} s): windowed switch {seconds(latency)}")
    assert latency is not None and latency <= MAX_LATENCY, (latency, trace(w, cut))
    assert windowed.summary[0].label == CARVING


def test_window_in_frames_follows_the_feed_rate(carving_then_other):
    joined, cut = carving_then_other
    clf = VideoClassifier.create_from_options(ClassifierOptions(window=4.0))
    assert clf.stream.window == 20  # 4 s at the model's 5 fps until told otherwise
    clf.set_feed_rate(25)
    assert isinstance(clf.stream, WindowedStreams) and clf.stream.window == 100
    clf.set_feed_rate(10)
    assert clf.stream.window == 40

    native = classify_video(joined, fps=0, classifier=clf)
    assert native.fps is None and native.window == 4.0
    assert clf.stream.window == 100  # the joined clip is 25 fps
    assert clf.stream.frames == len(native.frames)
    latency = switch_latency(top1(native), cut, lambda label: label != CARVING)
    print(f"\nnative 25 fps, 100-frame window: switch {seconds(latency)} after the cut")
    assert latency is not None and latency <= MAX_LATENCY, trace(top1(native), cut)

    classify_video(video("carving_ice_rpi.mp4"), classifier=clf)  # the same one back at 5 fps
    assert clf.stream.window == 20


def test_cumulative_classifier_has_no_window():
    clf = VideoClassifier.create_from_options(ClassifierOptions(model=A0))
    assert not isinstance(clf.stream, WindowedStreams)
    clf.set_feed_rate(25)
    assert not isinstance(clf.stream, WindowedStreams)


# -- command line --------------------------------------------------------------------------


def test_cli_window_in_json(carving_then_other):
    joined, _ = carving_then_other
    r = run("classify", joined, "--window", 4, "--format", "json", "--summary-only")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["window"] == 4.0
    assert doc["frames"] == []
    assert doc["summary"]["top"][0]["label"] != CARVING


@pytest.mark.parametrize("value", ["0", "-1"])
def test_cli_window_must_be_positive(value, capfd):
    r = run_here(capfd, "classify", video("carving_ice_rpi.mp4"), "--window", value)
    assert_clean_error(r, "--window")


def test_cli_infinite_window_is_a_clean_error(capfd):
    r = run_here(
        capfd, "classify", video("carving_ice_rpi.mp4"), "--window", "inf", "--summary-only"
    )
    assert_clean_error(r, "--window")


# -- the decayed window: one stream whose pool sums fade ------------------------------------

HEAD = ("state_head_pool_buffer", "state_head_pool_frame_count")


@pytest.fixture(scope="module")
def custom_model():
    return StreamModel(CUSTOM)


@pytest.fixture(scope="module")
def renamed_model(tmp_path_factory):
    """The A0 model with its frame counts renamed (same length, so the file stays valid): a
    real stream model whose pool sums cannot be paired with their counts by name."""
    path = tmp_path_factory.mktemp("renamed") / "a0_renamed.tflite"
    path.write_bytes(A0.read_bytes().replace(b"_pool_frame_count", b"_pool_frame_tally"))
    return StreamModel(path)


@pytest.fixture(scope="module")
def carving_images():
    pre = Preprocessor(172, 172)
    return [pre.from_array(f).copy() for f in read_frames(video("carving_ice_android.mp4"), 5)]


@pytest.mark.parametrize("which", ["a0", "custom"])
def test_pool_pairs_are_found_by_name(which, a0_model, custom_model):
    model = a0_model if which == "a0" else custom_model
    pairs = pool_pairs(model.layout)
    assert len(pairs) == 16  # 15 squeeze-excite pools and the head's
    for total, count in pairs:
        prefix = total.name.removesuffix("_pool_buffer")
        assert total.name != prefix and count.name == prefix + "_pool_frame_count"
        assert total.dtype == np.float32 and total.shape[:4] == (1, 1, 1, 1)
        assert count.dtype == np.int32 and count.shape == (1,)
    assert HEAD in [(t.name, c.name) for t, c in pairs]


def test_a_model_without_pool_pairs_falls_back_to_two_streams(renamed_model):
    assert pool_pairs(renamed_model.layout) == ()
    with pytest.raises(ValueError, match="no running pool sums"):
        DecayedStream(renamed_model, 20)
    clf = VideoClassifier(renamed_model, [str(i) for i in range(600)])
    assert isinstance(clf.new_stream(window=4.0, window_mode="decay").stream, WindowedStreams)


@pytest.mark.parametrize("backend", ["compiled", "interpreter"])
def test_decayed_equals_plain_until_its_first_decay_with_one_invoke_per_frame(backend):
    model = StreamModel(A0, backend=backend)
    frames = random_frames(model, 16, seed=3)
    window, kept = 6, int(6 * KEEP)  # 6 -> 2: decays after frames 6, 10 and 14
    plain, decayed = model.new_stream(), DecayedStream(model, window)
    counts, decays = [], []
    for n, frame in enumerate(frames):
        expected = plain.step(frame)
        logits = decayed.step(frame)
        assert logits is decayed.logits and decayed.frames == n + 1
        assert decayed.stream.frames == n + 1  # its one stream, stepped once: one invoke
        if n < window:
            np.testing.assert_array_equal(logits, expected, err_msg=f"step {n}")
        counts.append(int(decayed.stream.read_state(HEAD[1])[0]))
        decays.append(decayed.decays)
    assert not np.allclose(logits, expected, atol=1e-3)  # it did forget something
    # The model counts on from the count written into the state the next step reads.
    assert counts == [1, 2, 3, 4, 5, kept, 3, 4, 5, kept, 3, 4, 5, kept, 3, 4]
    assert decays == [0] * 5 + [1] * 4 + [2] * 4 + [3] * 3
    decayed.reset()
    assert decayed.frames == decayed.count == decayed.decays == 0
    assert int(decayed.stream.read_state(HEAD[1])[0]) == 0
    np.testing.assert_array_equal(decayed.step(frames[0]), model.new_stream().step(frames[0]))


def test_backends_decay_alike(a0_model):
    frames = random_frames(a0_model, 12, seed=4)
    a = DecayedStream(a0_model, 5)
    b = DecayedStream(StreamModel(A0, backend="interpreter"), 5)
    for n, frame in enumerate(frames):
        np.testing.assert_array_equal(a.step(frame), b.step(frame), err_msg=f"step {n}")


def _next_logits(model, frames, change) -> np.ndarray:
    """Logits of the last of ``frames`` after the others, ``change(stream)`` just before it."""
    stream = DecayedStream(model, 10_000)  # never decays on its own here
    for frame in frames[:-1]:
        stream.step(frame)
    change(stream)
    return stream.step(frames[-1]).copy()


def _scale(stream, total_factor: float, count_factor: float) -> None:
    for total, count in stream.pairs:
        s, c = stream.stream.read_state(total.name), stream.stream.read_state(count.name)
        if c[0] > 1:
            stream.stream.write_state(total.name, s * np.float32(total_factor))
            stream.stream.write_state(count.name, (c * count_factor).astype(c.dtype))


@pytest.mark.parametrize("which", ["a0", "custom"])
def test_decay_keeps_each_pool_mean(which, a0_model, custom_model, carving_images):
    """On a still picture every frame adds the mean itself, so a decay done right leaves the
    next logits as they were, up to the int8 rounding of the stored sums; halving only the sums
    or only the counts does not."""
    model = a0_model if which == "a0" else custom_model
    frames = [carving_images[10]] * (21 if which == "a0" else 9)  # the custom model is slow
    kept = _next_logits(model, frames, lambda s: None)
    decayed = _next_logits(model, frames, DecayedStream.decay)
    wrong = [
        _next_logits(model, frames, lambda s: _scale(s, 0.5, 1)),
        _next_logits(model, frames, lambda s: _scale(s, 1, 0.5)),
    ]
    error = np.abs(decayed - kept).mean()
    assert decayed.argmax() == kept.argmax()
    assert error < 0.4 * min(np.abs(w - kept).mean() for w in wrong), error
    if which == "custom":  # its logits' int8 step is 0.111: within one step
        assert np.abs(decayed - kept).max() < 0.12


def test_classifier_window_mode():
    clf = VideoClassifier.create_from_options(ClassifierOptions(window=4.0, window_mode="decay"))
    assert isinstance(clf.stream, DecayedStream) and clf.stream.window == 20
    clf.set_feed_rate(25)
    assert isinstance(clf.stream, DecayedStream) and clf.stream.window == 100
    assert isinstance(clf.new_stream(window_mode="two").stream, WindowedStreams)
    assert not isinstance(clf.new_stream(window=None).stream, (WindowedStreams, DecayedStream))
    assert ClassifierOptions().window_mode == "two"
    with pytest.raises(OptionError, match="window_mode must be two or decay"):
        ClassifierOptions(window=4.0, window_mode="fade")


def test_decayed_window_follows_the_cut_and_cumulative_does_not(carving_then_other, cumulative):
    joined, cut = carving_then_other
    decayed = classify_video(joined, window=4.0, window_mode="decay")
    d, c = top1(decayed), top1(cumulative)
    assert all(label == CARVING for t, label in d if cut - 1.0 <= t < cut), trace(d, cut)
    latency = switch_latency(d, cut, lambda label: label != CARVING)
    print(f"\ncarving ice -> example_video01 (cut {cut:.2f} s): decayed switch {seconds(latency)}")
    assert latency is not None and latency <= MAX_LATENCY, (latency, trace(d, cut))
    assert c[-1][1] == CARVING, trace(c, cut)
    assert decayed.summary[0].label != CARVING


def test_cli_window_mode_decay(carving_then_other, capfd):
    joined, _ = carving_then_other
    flags = ["--window", "4", "--window-mode", "decay", "--format", "json", "--summary-only"]
    r = run_here(capfd, "classify", joined, *flags)  # without --window-mode: a process above
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["summary"]["top"][0]["label"] != CARVING
