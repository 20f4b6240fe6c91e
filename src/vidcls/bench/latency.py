"""``vidcls bench``: per-frame latency by stage, against the official example's loop.

Both pipelines decode and preprocess the same way (PyAV, OpenCV bilinear, /255); they differ in
how the model is run. vidcls: LiteRT CompiledModel with two swapped state-buffer sets. Official:
the Interpreter's signature runner, called with every state as a keyword argument, each output
copied back out (the Raspberry Pi and Android examples' loop). Its call is split into the same
steps SignatureRunner.__call__ takes, so state handling can be told apart from invoke.
"""

from __future__ import annotations

import os
import resource
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from .. import zoo
from ..classifier import ClassifierOptions, VideoClassifier, softmax
from ..labels import kinetics600_labels
from ..media import VideoFile
from ..model import StreamModel
from ..preprocess import Preprocessor
from .clips import synthetic_video
from .official import OfficialLoop

STAGES = ("decode", "preprocess", "invoke", "state", "postprocess")
WARMUP = 10


def _frames(path: str, fps: float, count: int) -> Iterator[tuple[float, object]]:
    """``count`` fed frames, looping over the file; yields (decode seconds, frame)."""
    n = 0
    while n < count:
        with VideoFile(path) as v:
            it = v.frames(fps)
            while n < count:
                t0 = time.perf_counter()
                try:
                    _, frame = next(it)
                except StopIteration:
                    break
                yield time.perf_counter() - t0, frame
                n += 1


def _bench_vidcls(model_path: Path, video: str, threads: int, frames: int) -> dict[str, list]:
    clf = VideoClassifier.create_from_options(
        ClassifierOptions(model=model_path, threads=threads, backend="compiled")
    )
    stream, pre = clf.stream, clf.preprocessor
    times = {k: [] for k in STAGES}
    clock = time.perf_counter
    for i, (dec, frame) in enumerate(_frames(video, clf.fps, frames + WARMUP)):
        t0 = clock()
        stream.load_image(pre.from_frame(frame))
        t1 = clock()
        stream.invoke()
        t2 = clock()
        stream.swap_state()
        t3 = clock()
        softmax(stream.read_logits(), out=clf.probabilities)
        clf.top()
        t4 = clock()
        if i >= WARMUP:
            for k, v in zip(STAGES, (dec, t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
                times[k].append(v)
    return times


def _bench_official(model_path: Path, video: str, threads: int, frames: int, fps: float):
    loop = OfficialLoop(model_path, threads)
    labels = kinetics600_labels()
    h, w = loop.image_shape[2:4]
    pre = Preprocessor(int(h), int(w))
    times = {k: [] for k in STAGES}
    clock = time.perf_counter
    for i, (dec, frame) in enumerate(_frames(video, fps, frames + WARMUP)):
        t0 = clock()
        image = pre.from_frame(frame)[None, None]
        t1 = clock()
        state, invoke, logits = loop.step(image)
        t2 = clock()
        # The example's post-processing: softmax, sort every class, keep the top 5.
        x = logits[0]
        probs = np.exp(x - x.max())
        probs /= probs.sum()
        order = np.argsort(-probs)
        top = [(labels[j] if j < len(labels) else str(j), float(probs[j])) for j in order[:5]]
        del top
        t3 = clock()
        if i >= WARMUP:
            for k, v in zip(STAGES, (dec, t1 - t0, invoke, state, t3 - t2), strict=True):
                times[k].append(v)
    return times


def _floor(model_path: Path, threads: int, frames: int) -> tuple[float, float]:
    """Median ms of invoke alone: CompiledModel run, Interpreter.invoke()."""
    m = StreamModel(model_path, num_threads=threads, backend="compiled")
    s = m.new_stream()
    s.load_image(np.full((m.layout.height, m.layout.width, 3), 0.5, np.float32))
    a = []
    for i in range(frames + WARMUP):
        t0 = time.perf_counter()
        s.invoke()
        if i >= WARMUP:
            a.append(time.perf_counter() - t0)
    loop = OfficialLoop(model_path, threads)
    loop.step(np.full(loop.image_shape, 0.5, np.float32))
    b = []
    for i in range(frames + WARMUP):
        t0 = time.perf_counter()
        loop.it.invoke()
        if i >= WARMUP:
            b.append(time.perf_counter() - t0)
    return 1e3 * float(np.median(a)), 1e3 * float(np.median(b))


def batch_probe(model_path: Path, batch: int = 2) -> str:
    """Whether the model runs ``batch`` streams in one invocation (inputs and states resized
    along their first dimension), and if so how its per-frame time compares."""
    import gc

    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=str(model_path), num_threads=1)
    runner = it.get_signature_runner(list(it.get_signature_list())[0])
    details = runner.get_input_details()
    del runner
    gc.collect()  # the runner holds views of the tensors; resizing needs none left
    try:
        for d in details.values():
            it.resize_tensor_input(d["index"], [batch, *d["shape"][1:]])
        it.allocate_tensors()
    except (RuntimeError, ValueError) as e:
        reason = " ".join(str(e).split())
        return f"refused by LiteRT ({reason[:160]})"
    for d in details.values():
        it.set_tensor(d["index"], np.zeros([batch, *d["shape"][1:]], d["dtype"]))
    times = []
    for _ in range(20):
        t0 = time.perf_counter()
        it.invoke()
        times.append(time.perf_counter() - t0)
    return f"runs, {1e3 * np.median(times) / batch:.3f} ms per stream-frame"


def _row(name: str, ours: list[float], theirs: list[float]) -> str:
    def cell(xs):
        x = 1e3 * np.asarray(xs)
        return f"{np.median(x):8.3f} {np.percentile(x, 90):8.3f}"

    return f"  {name:<12}{cell(ours)}   {cell(theirs)}"


def run_bench(model: str, video: str | None, threads: list[int], frames: int) -> None:
    """Print the per-stage latency table for each thread count."""
    model_path = zoo.resolve_model(model)
    tmp = None
    if video is None:
        tmp = tempfile.TemporaryDirectory(prefix="vidcls-bench-")
        print("encoding a synthetic 1280x720 30 fps H.264 clip with PyAV ...", file=sys.stderr)
        video = str(synthetic_video(Path(tmp.name) / "synthetic_720p.mp4"))
    with VideoFile(video) as v:
        info = v.info
    print(f"model  {model_path}")
    print(
        f"video  {video if tmp is None else 'synthetic'}: {info.codec} {info.width}x{info.height}"
        f" {info.fps or 0:.1f} fps, fed at 5 fps; {frames} frames timed after {WARMUP} warm-up"
    )
    print(f"cpu    {os.cpu_count()} cores; numpy {np.__version__}")
    try:
        for n in threads:
            ours = _bench_vidcls(model_path, video, n, frames)
            theirs = _bench_official(model_path, video, n, frames, 5.0)
            floor_cm, floor_it = _floor(model_path, n, frames)
            print(
                f"\nthreads={n}   per-frame ms    vidcls (median p90)    official loop (median p90)"
            )
            for k in STAGES:
                print(_row(k, ours[k], theirs[k]))
            tot_o = np.sum([ours[k] for k in STAGES], axis=0)
            tot_t = np.sum([theirs[k] for k in STAGES], axis=0)
            print(_row("total", tot_o, tot_t))
            eng_o = np.sum([ours[k] for k in STAGES[2:]], axis=0)
            eng_t = np.sum([theirs[k] for k in STAGES[2:]], axis=0)
            print(_row("model step", eng_o, eng_t))
            total_ratio = np.median(tot_t) / np.median(tot_o)
            step_ratio = np.median(eng_t) / np.median(eng_o)
            print(
                f"  ratio official/vidcls (median): total {total_ratio:.2f}x,"
                f" model step (invoke+state+post) {step_ratio:.2f}x"
            )
            print(
                f"  floor, invoke() alone back to back: CompiledModel {floor_cm:.3f} ms,"
                f" Interpreter {floor_it:.3f} ms"
            )
            print(
                f"  vidcls model step / its invoke in the loop"
                f" {np.median(eng_o) / np.median(ours['invoke']):.2f}x,"
                f" / invoke() alone {np.median(eng_o) * 1e3 / floor_cm:.2f}x"
            )
    finally:
        if tmp is not None:
            tmp.cleanup()
    print(f"\nseveral streams in one invoke (batch dimension 2): {batch_probe(model_path)}")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\npeak RSS {rss:.0f} MB")
