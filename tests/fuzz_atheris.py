"""Coverage-guided fuzzing (atheris / libFuzzer) of the pure-Python parsers of untrusted bytes.

Targets and what each must do with any input (anything else, e.g. another exception, is
reported by libFuzzer as a crash, with the input saved as ``crash-<sha1>``):

- ``labels``: ``vidcls.labels.read_labels`` on a file: a non-empty list of str, or VidclsError.
- ``jpeg``: ``vidcls.media.jpeg_size``: None or two ints in 0..65535; ``decode_jpeg``: an
  RGB array within the size limit, or VidclsError.
- ``embedded``: ``embedded_labels`` / ``embedded_config`` on a model file (a zip appended to a
  .tflite, as TFLite metadata packs it): None or a list of str / a dict.
- ``model``: ``vidcls.modelcheck.check_model_file``, the checks made in this process before a
  model is tried in a child (size, identifier): None or VidclsError.

    .venv/bin/pip install -e '.[fuzz]'
    python tests/fuzz_atheris.py labels --seconds 60
    python tests/fuzz_atheris.py embedded --seconds 300 --corpus /tmp/corpus-embedded
    python tests/fuzz_atheris.py embedded crash-0123abcd          # re-run one saved input

Arguments after the target that are not ours go to libFuzzer (``-max_len=4096``, ...).
"""

from __future__ import annotations

import argparse
import inspect
import io
import os
import shutil
import sys
import tempfile
import zipfile
from pathlib import Path

import atheris

with atheris.instrument_imports(include=["vidcls"]):
    from vidcls import labels as vlabels
    from vidcls import media
    from vidcls.errors import VidclsError
    from vidcls.modelcheck import check_flatbuffer, check_model_file

HERE = Path(__file__).resolve().parent
# libFuzzer ends the process without running atexit: each run removes the scratch folders
# of runs that are over, and names its own by its pid.
TMP = Path("/dev/shm" if os.path.isdir("/dev/shm") else tempfile.gettempdir())
for old in TMP.glob("vidcls-atheris-*"):
    if not Path(f"/proc/{old.name.rsplit('-', 1)[-1]}").exists():
        shutil.rmtree(old, ignore_errors=True)
SCRATCH = TMP / f"vidcls-atheris-{os.getpid()}"
SCRATCH.mkdir(exist_ok=True)


def _file(data: bytes, name: str = "input") -> Path:
    path = SCRATCH / name
    path.write_bytes(data)
    return path


def target_labels(data: bytes) -> None:
    try:
        names = vlabels.read_labels(_file(data, "labels.txt"))
    except VidclsError:
        return
    assert names and all(isinstance(n, str) for n in names), names


def target_jpeg(data: bytes) -> None:
    size = media.jpeg_size(data)
    assert size is None or all(isinstance(v, int) and 0 <= v <= 65535 for v in size), size
    try:
        rgb = media.decode_jpeg(data)
    except VidclsError:
        return
    assert rgb.ndim == 3 and rgb.shape[2] == 3, rgb.shape
    assert max(rgb.shape[:2]) <= media.MAX_FRAME_SIDE, rgb.shape


def target_embedded(data: bytes) -> None:
    path = _file(data, "model.tflite")
    names = vlabels.embedded_labels(path)
    assert names is None or all(isinstance(n, str) for n in names), names
    config = vlabels.embedded_config(path)
    assert isinstance(config, dict), config


def target_model(data: bytes) -> None:
    try:
        check_model_file(_file(data, "model.tflite"))
    except VidclsError:
        return


def instrument_module(module) -> None:
    """Coverage feedback from an already imported module's functions and methods."""
    for obj in list(vars(module).values()):
        if getattr(obj, "__module__", None) != module.__name__:
            continue
        if isinstance(obj, type):
            for name, member in list(vars(obj).items()):
                if inspect.isfunction(member):
                    setattr(obj, name, atheris.instrument_func(member))
        elif inspect.isfunction(obj):
            setattr(module, obj.__name__, atheris.instrument_func(obj))


def target_verifier(data: bytes) -> None:
    try:
        check_flatbuffer(_file(data, "model.tflite"))
    except VidclsError:
        return


TARGETS = {
    "labels": target_labels,
    "jpeg": target_jpeg,
    "embedded": target_embedded,
    "model": target_model,
    "verifier": target_verifier,
}


def seeds(target: str) -> dict[str, bytes]:
    """Small valid inputs to start from."""
    if target == "labels":
        return {"seven": b"walking\nstanding\nlying\neating\ndrinking\n\n", "crlf": b"a\r\nb\r\n"}
    if target == "jpeg":
        import cv2
        import numpy as np

        img = (np.arange(24 * 32 * 3) % 251).astype(np.uint8).reshape(24, 32, 3)
        progressive = [cv2.IMWRITE_JPEG_PROGRESSIVE, 1]
        return {
            "baseline": cv2.imencode(".jpg", img)[1].tobytes(),
            "progressive": cv2.imencode(".jpg", img, progressive)[1].tobytes(),
        }
    if target == "embedded":
        out = {}
        for name, method in (("stored", zipfile.ZIP_STORED), ("deflated", zipfile.ZIP_DEFLATED)):
            buf = io.BytesIO()
            buf.write(b"\x1c\x00\x00\x00TFL3" + bytes(56))
            with zipfile.ZipFile(buf, "a", compression=method) as z:
                z.writestr("labels.txt", "a\nb\nc\n")
                z.writestr("vidcls.json", '{"fps": 5.0, "classes": ["a", "b", "c"]}')
            out[name] = buf.getvalue()
        return out
    sys.path.insert(0, str(HERE))  # model, verifier
    from cli_run import stream_free_model

    return {"relu": stream_free_model(SCRATCH / "seed.tflite").read_bytes()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("target", choices=sorted(TARGETS))
    p.add_argument("--seconds", type=int, default=60, help="time budget [60]")
    p.add_argument("--corpus", type=Path, help="corpus folder, kept between runs [a temporary one]")
    p.add_argument("--artifacts", type=Path, default=Path("."), help="where crash files go [.]")
    args, rest = p.parse_known_args()
    if args.target == "embedded":  # guided by the zip and JSON parsers' branches too
        import json.decoder

        for module in (zipfile, json.decoder):
            instrument_module(module)
    inputs = [a for a in rest if not a.startswith("-")]
    flags = [a for a in rest if a.startswith("-")]
    if not inputs:  # a fuzzing run: a corpus seeded with valid inputs
        corpus = args.corpus or SCRATCH / "corpus"
        corpus.mkdir(parents=True, exist_ok=True)
        for name, data in seeds(args.target).items():
            (corpus / f"seed-{name}").write_bytes(data)
        inputs = [str(corpus)]
        flags.append(f"-max_total_time={args.seconds}")
    args.artifacts.mkdir(parents=True, exist_ok=True)
    flags.append(f"-artifact_prefix={args.artifacts.resolve()}/{args.target}-")
    atheris.Setup([sys.argv[0], *flags, *inputs], TARGETS[args.target])
    atheris.Fuzz()


if __name__ == "__main__":
    main()
