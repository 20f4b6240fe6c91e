"""The official example's loop, as the TensorFlow Lite Raspberry Pi example runs a stream
model, for comparison: the Interpreter's signature runner called with every state as an
argument and every output copied back out, frames read, converted and resized with OpenCV.

``python -m vidcls.bench.official VIDEO [--model PATH] [--fps 5] [--threads 1]`` runs it on a
file, every frame decoded and converted by OpenCV and the frame nearest each ``1/fps`` step fed
(the example paces a camera the same way), printing a line per result as it comes;
:mod:`vidcls.bench.endtoend` times it against ``vidcls classify``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np


class OfficialLoop:
    """The official examples' per-frame call (``runner(**states, image=...)``), done with the
    Interpreter's public calls that SignatureRunner.__call__ makes, so that state handling can
    be timed apart from invoke."""

    def __init__(self, model_path: Path, threads: int) -> None:
        from ai_edge_litert.interpreter import Interpreter

        self.it = Interpreter(model_path=str(model_path), num_threads=threads)
        key = list(self.it.get_signature_list())[0]
        runner = self.it.get_signature_runner(key)
        details = runner.get_input_details()
        self.inputs = {n: d["index"] for n, d in details.items()}
        self.outputs = {n: d["index"] for n, d in runner.get_output_details().items()}
        self.image_name = next(n for n, d in details.items() if len(d["shape"]) == 5)
        self.image_shape = details[self.image_name]["shape"]
        self.states = {
            n: np.zeros(d["shape"], d["dtype"]) for n, d in details.items() if n != self.image_name
        }
        self.logits_name = next(n for n in self.outputs if n not in details)

    def step(self, image: np.ndarray, clock=time.perf_counter) -> tuple[float, float, np.ndarray]:
        """Returns (state seconds, invoke seconds, logits); same steps as runner(**inputs)."""
        it = self.it
        inputs = {**self.states, self.image_name: image}
        t0 = clock()
        for name, value in inputs.items():
            it.resize_tensor_input(self.inputs[name], value.shape)
        it.allocate_tensors()
        for name, value in inputs.items():
            it.set_tensor(self.inputs[name], value)
        t1 = clock()
        it.invoke()
        t2 = clock()
        outputs = {name: it.get_tensor(index) for name, index in self.outputs.items()}
        logits = outputs.pop(self.logits_name)
        self.states = outputs
        t3 = clock()
        return (t1 - t0) + (t3 - t2), t2 - t1, logits


def main(argv: list[str] | None = None) -> int:
    import cv2

    p = argparse.ArgumentParser(prog="python -m vidcls.bench.official", description=__doc__)
    p.add_argument("video")
    p.add_argument("--model", required=True, help="a stream .tflite")
    p.add_argument("--labels", help="label file, one per line (default: class numbers)")
    p.add_argument("--fps", type=float, default=5.0)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    loop = OfficialLoop(Path(args.model), args.threads)
    labels = Path(args.labels).read_text().splitlines() if args.labels else None
    height, width = (int(x) for x in loop.image_shape[2:4])
    cap = cv2.VideoCapture(args.video)
    next_time = 0.0
    while True:
        ok, bgr = cap.read()
        if not ok:
            break
        t = cap.get(cv2.CAP_PROP_POS_MSEC) / 1000
        if t + 1e-6 < next_time:
            continue
        next_time += 1.0 / args.fps
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        image = cv2.resize(rgb, (width, height)).astype(np.float32)[None, None] / 255
        _, _, logits = loop.step(image)
        x = logits[0]
        probs = np.exp(x - x.max())
        probs /= probs.sum()
        top = np.argsort(-probs)[:3]
        shown = "  ".join(f"{labels[i] if labels else i} {probs[i]:.3f}" for i in top)
        print(f"{t:.2f} {shown}", flush=True)
    cap.release()
    return 0


if __name__ == "__main__":
    sys.exit(main())
