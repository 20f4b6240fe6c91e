"""Batch jobs: inputs, outputs, a failing file, SIGKILL at a random point and a resume, Ray;
the driver killed or interrupted, video URLs, a disk that fills up."""

from __future__ import annotations

import functools
import json
import os
import random
import resource
import signal
import subprocess
import sys
import textwrap
import threading
import time
from http.server import BaseHTTPRequestHandler, SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from cli_here import run_here
from cli_run import CLI, assert_clean_error
from cli_run import run as vidcls
from conftest import A0, VIDEOS, needs_shared

from vidcls import VidclsError
from vidcls.batch import BatchOptions, PartStore, list_inputs, run_batch

pytestmark = needs_shared


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    """Two copies (symlinks) of the shared clips in nested folders, plus one broken file."""
    root = tmp_path_factory.mktemp("archive")
    clips = sorted(p for p in VIDEOS.iterdir() if p.suffix in (".mp4", ".avi"))
    for i in range(2):
        folder = root / f"cam{i % 2}" / f"day{i}"
        folder.mkdir(parents=True)
        for clip in clips:
            (folder / f"{clip.stem}_{i}{clip.suffix}").symlink_to(clip)
    (root / "cam0" / "broken.mp4").write_bytes(b"not a video at all" * 100)
    (root / "cam0" / "notes.txt").write_text("ignored")
    return root


def rows_of(path: Path) -> list[dict]:
    """Rows read with pyarrow or json directly (not vidcls's reader)."""
    if path.suffix == ".parquet":
        return pq.read_table(path).to_pylist()
    return [json.loads(line) for line in path.read_text("utf-8").splitlines()]


def comparable(rows: list[dict]) -> dict:
    """Each input's result, scores rounded (so runs on other thread counts compare)."""
    out = {}
    for r in rows:
        top = [(c["label"], round(c["score"], 4)) for c in r["top"]]
        out[r["source"]] = (r["status"], r["frames"], top)
    return out


@pytest.fixture
def endless_video():
    """The URL of a video whose download never ends (a byte a second, never reaching its
    length): a chunk holding it is in flight until the job is stopped, on any machine."""
    stop = threading.Event()

    class Trickle(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "video/mp4")
            self.send_header("Content-Length", str(1 << 30))
            self.end_headers()
            try:
                while not stop.is_set():
                    self.wfile.write(b"\0")
                    self.wfile.flush()
                    stop.wait(1.0)
            except OSError:  # the worker reading it was stopped
                pass

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Trickle)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/endless.mp4"
    stop.set()
    server.shutdown()
    server.server_close()


# Seconds: only processes that were never told to end run this long (a local Ray's agents
# that lost their driver end by themselves about 60 s later: a guard below that).
HANG = 30.0


def process_table() -> dict[int, tuple[int, str, str]]:
    """pid -> (parent pid, state, command line) of every process, from /proc."""
    table = {}
    for d in Path("/proc").glob("[0-9]*"):
        try:
            stat = (d / "stat").read_text().rsplit(")", 1)[1].split()
            cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, IndexError):
            continue
        table[int(d.name)] = (int(stat[1]), stat[0], cmd)
    return table


def descendants(pid: int) -> dict[int, str]:
    """The processes ``pid`` started, and those they started: pid -> command line."""
    table, found, todo = process_table(), {}, [pid]
    while todo:
        parent = todo.pop()
        for child, (ppid, _, cmd) in table.items():
            if ppid == parent and child not in found:
                found[child] = cmd
                todo.append(child)
    return found


def left_running(processes: dict[int, str], within: float) -> dict[int, str]:
    """Those of ``processes`` still running (zombies are not) after up to ``within`` seconds;
    killed then, so that a failing test leaves nothing behind. The processes waited for would
    never end by themselves (a video that never ends, a sleep of minutes, a pool's idle
    workers): ``within`` is a hang guard, not a measure of speed."""
    deadline = time.monotonic() + within
    while True:
        running = {(p, cmd) for p, (_, state, cmd) in process_table().items() if state not in "ZX"}
        alive = {p: c for p, c in processes.items() if (p, c) in running}
        if not alive or time.monotonic() > deadline:
            for pid in alive:
                os.kill(pid, signal.SIGKILL)
            return alive
        time.sleep(0.1)


def start_job(*args: object, out: Path, parts: int = 1) -> subprocess.Popen:
    """``vidcls batch ARGS --out OUT`` in a session of its own, once it has committed
    ``parts`` parts."""
    cmd = [*CLI, "batch", *map(str, args), "-o", str(out)]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    deadline = time.monotonic() + 120
    while len(list(out.with_name(out.name + ".parts").glob("rows-*"))) < parts:
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()
        time.sleep(0.01)
    return proc


@pytest.fixture(scope="module")
def reference(archive, tmp_path_factory):
    """An uninterrupted local run."""
    out = tmp_path_factory.mktemp("ref") / "results.parquet"
    summary = run_batch(str(archive), out, BatchOptions(workers=2, chunk=2))
    return out, summary


def test_inputs_from_folder_glob_and_manifests(archive, tmp_path):
    from_folder = list_inputs(str(archive))
    assert len(from_folder) == 9 and all(os.path.isabs(p) for p in from_folder)
    assert not any(p.endswith(".txt") for p in from_folder)
    assert list_inputs(str(archive / "cam*" / "day*" / "*.avi")) == [
        p for p in from_folder if p.endswith(".avi")
    ]
    txt = tmp_path / "list.txt"
    txt.write_text("# clips\n" + "\n".join(os.path.relpath(p, tmp_path) for p in from_folder[:3]))
    assert list_inputs(str(txt)) == from_folder[:3]
    csv_file = tmp_path / "list.csv"
    csv_file.write_text("id,path\n" + "".join(f"{i},{p}\n" for i, p in enumerate(from_folder[:2])))
    assert list_inputs(str(csv_file)) == from_folder[:2]
    import pyarrow as pa

    pq.write_table(pa.table({"url": from_folder[:4]}), tmp_path / "list.parquet")
    assert list_inputs(str(tmp_path / "list.parquet")) == from_folder[:4]
    assert list_inputs("http://127.0.0.1:1/x.mp4") == ["http://127.0.0.1:1/x.mp4"]
    with pytest.raises(VidclsError, match="no such folder"):
        list_inputs(str(tmp_path / "missing"))


def test_every_input_once_and_the_broken_one_recorded(reference, archive):
    out, summary = reference
    rows = rows_of(out)
    assert [r["source"] for r in rows] == sorted(list_inputs(str(archive)))
    broken = [r for r in rows if r["status"] == "error"]
    assert [r["source"] for r in broken] == [str(archive / "cam0" / "broken.mp4")]
    assert "not a readable video" in broken[0]["error"]
    ok = [r for r in rows if r["status"] == "ok"]
    assert all(r["top"] and r["frames"] > 0 and r["label"] == r["top"][0]["label"] for r in ok)
    carving = [r for r in ok if "carving_ice" in r["source"]]
    assert carving and all(r["label"] == "carving ice" for r in carving)
    assert summary.processed == 9 and summary.failed == 1
    assert all(r["fps"] == 5.0 for r in ok) and broken[0]["fps"] is None  # a number, or null
    assert not out.with_name(out.name + ".parts").exists()  # parts merged and removed


def test_sigkill_at_a_random_point_then_resume(archive, reference, tmp_path):
    """Killed once a random number of its 9 videos (1 to 4) are committed, whatever the
    machine's speed: the other worker is somewhere in a video, and 5 or more are left."""
    out = tmp_path / "results.parquet"
    args = (archive, "--workers", "2", "--chunk", "1")
    proc = start_job(*args, out=out, parts=random.randint(1, 4))
    assert proc.poll() is None, "the job ended before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)  # the driver and its workers at once
    proc.wait()
    committed = len(list(out.with_name(out.name + ".parts").glob("rows-*")))
    assert 1 <= committed < 9 and not out.exists()
    before = PartStore(out).done()
    assert len(before) == committed
    r = vidcls("batch", *args, "-o", out)
    assert r.returncode == 0, r.stderr
    assert f"{committed} already done" in r.stderr
    rows = rows_of(out)
    assert len(rows) == len({x["source"] for x in rows}) == 9
    assert comparable(rows) == comparable(rows_of(reference[0]))  # the broken one included


def test_rerun_after_completion_does_nothing_and_new_inputs_are_added(archive, tmp_path):
    clips = list_inputs(str(archive))
    manifest = tmp_path / "m.txt"
    manifest.write_text("\n".join(clips[:3]))
    out = tmp_path / "r.jsonl"
    first = run_batch(str(manifest), out, BatchOptions(workers=1))
    assert first.processed == 3
    again = run_batch(str(manifest), out, BatchOptions(workers=1))
    assert (again.done_before, again.processed) == (3, 0)
    manifest.write_text("\n".join(clips[:5]))
    more = run_batch(str(manifest), out, BatchOptions(workers=1))
    assert (more.done_before, more.processed) == (3, 2)
    assert sorted(r["source"] for r in rows_of(out)) == sorted(clips[:5])


def test_per_frame_rows_and_segments_in_jsonl(archive, tmp_path):
    clip = next(p for p in list_inputs(str(archive)) if "carving_ice_rpi" in p)
    out = tmp_path / "one.jsonl"
    options = BatchOptions(workers=1, per_frame=True, segments=True, top_k=2)
    s = run_batch(clip, out, options)
    assert s.frames_output == tmp_path / "one.frames.jsonl"
    (row,) = rows_of(out)
    frames = rows_of(s.frames_output)
    assert len(frames) == 2 * row["frames"]
    assert {f["rank"] for f in frames} == {1, 2}
    assert [f["time"] for f in frames] == sorted(f["time"] for f in frames)
    assert row["segments"] and row["segments"][0]["label"] == "carving ice"


def test_bad_outputs_are_clear_errors(archive, tmp_path, capfd):
    r = run_here(capfd, "batch", archive, "-o", tmp_path / "r.csv")
    assert_clean_error(r, "must end in .parquet or .jsonl")
    r = run_here(capfd, "batch", tmp_path / "none", "-o", tmp_path / "r.parquet")
    assert_clean_error(r, "none")


def test_ray_gives_the_same_rows_and_leaves_nothing_running(reference, archive, tmp_path):
    """From Python: the local Ray the job started is shut down when it ends (its raylet and
    GCS would be this process's children). On each shared clip once and the broken file, in
    three chunks for the two actors."""
    ray = pytest.importorskip("ray")
    out, others = tmp_path / "ray.parquet", descendants(os.getpid())
    chosen = [*list_inputs(str(archive / "cam1" / "day1")), str(archive / "cam0" / "broken.mp4")]
    (manifest := tmp_path / "inputs.txt").write_text("\n".join(chosen))
    run_batch(str(manifest), out, BatchOptions(ray="", workers=2, chunk=2))
    expected = comparable(rows_of(reference[0]))
    assert comparable(rows_of(out)) == {k: expected[k] for k in sorted(chosen)}
    assert not ray.is_initialized()
    started = {p: c for p, c in descendants(os.getpid()).items() if p not in others}
    assert left_running(started, within=HANG) == {}


@pytest.mark.parametrize(
    "how",
    [(signal.SIGKILL, "local"), (signal.SIGINT, "local"), (signal.SIGINT, "ray")],
    ids=["kill-9", "ctrl-c", "ctrl-c-ray"],
)
def test_stopping_the_driver_alone_stops_its_workers(how, archive, endless_video, tmp_path):
    """``kill -9`` or Ctrl-C of the driver only: what it started ends within seconds (kill -9
    with a local Ray is left to Ray: its two agents end about 60 s later). Stopped once a part
    is committed, while one worker downloads a video that never ends and the other classifies
    the shared clips, two a chunk: the job cannot end first, and a driver that waited for the
    chunks in flight would never end."""
    sig, pool = how
    if pool == "ray":
        pytest.importorskip("ray")
    out, inputs = tmp_path / "r.jsonl", tmp_path / "inputs.txt"
    clips = [p for p in list_inputs(str(archive)) if "broken" not in p]
    inputs.write_text("\n".join([endless_video, *clips]))  # chunks: [endless, clip], [clip, clip]..
    on = ("--ray",) if pool == "ray" else ()
    proc = start_job(inputs, "--workers", "2", "--chunk", "2", *on, out=out)
    started = descendants(proc.pid)
    if pool == "local":
        assert sum("spawn_main" in c for c in started.values()) == 2
    os.kill(proc.pid, sig)
    assert left_running(started, within=HANG) == {}
    assert proc.wait(timeout=60) == (130 if sig == signal.SIGINT else -sig)
    assert list(out.with_name(out.name + ".parts").glob("rows-*")) and not out.exists()
    if sig == signal.SIGINT:  # before: the driver waited for the chunks being classified
        stderr = proc.stderr.read()
        assert stderr.splitlines()[-1] == "vidcls: error: interrupted", stderr
        assert "Traceback" not in stderr and "leaked" not in stderr


def test_a_worker_watching_its_parent_ends_with_it(tmp_path):
    """The portable fallback alone (no prctl): a thread ends a worker orphaned by kill -9."""
    script = tmp_path / "driver.py"
    script.write_text(
        textwrap.dedent("""
        import multiprocessing, os, time
        from concurrent.futures import ProcessPoolExecutor
        from vidcls.batch.lifeline import watch_parent
        if __name__ == "__main__":
            spawn = multiprocessing.get_context("spawn")
            pool = ProcessPoolExecutor(1, spawn, watch_parent, (os.getpid(),))
            print(pool.submit(os.getpid).result(), flush=True)
            pool.submit(time.sleep, 300)
            time.sleep(300)
        """)
    )
    driver = subprocess.Popen([sys.executable, script], stdout=subprocess.PIPE, text=True)
    worker = int(driver.stdout.readline())
    processes = {worker: descendants(driver.pid)[worker]}
    driver.kill()
    driver.wait()
    assert left_running(processes, within=HANG) == {}


RUN_BATCH_SCRIPT = """
from vidcls.batch import BatchOptions, run_batch

{indent}summary = run_batch({archive!r}, {out!r}, BatchOptions(workers=2, chunk=2))
{indent}print(summary.processed)
"""


@pytest.mark.parametrize("guarded", [False, True])
def test_run_batch_in_a_script_with_and_without_the_main_guard(archive, tmp_path, guarded):
    """Unguarded, each spawned worker imports the script and calls run_batch again: one clear
    error saying to add the guard (not a BrokenProcessPool traceback); guarded, it runs (on
    one folder of four clips: two chunks, one for each worker)."""
    out, folder = tmp_path / "r.jsonl", archive / "cam1" / "day1"
    text = RUN_BATCH_SCRIPT.format(archive=str(folder), out=str(out), indent="    " * guarded)
    if guarded:
        text = text.replace("\n    summary", '\nif __name__ == "__main__":\n    summary', 1)
    script = tmp_path / "job.py"
    script.write_text(text)
    r = subprocess.run([sys.executable, script], capture_output=True, text=True, timeout=300)
    if guarded:
        assert r.returncode == 0, r.stderr
        assert int(r.stdout) == len(list_inputs(str(folder))) == 4
        return
    assert r.returncode != 0
    assert "BrokenProcessPool" not in r.stderr
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("vidcls.errors.VidclsError: "), r.stderr
    assert 'if __name__ == "__main__":' in last and str(script) in last


@pytest.fixture
def http_videos():
    """The shared clips served by a real HTTP server on loopback: its base URL."""
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(VIDEOS))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def test_video_urls_each_once_and_a_missing_one_recorded(http_videos, reference, tmp_path):
    good = [f"{http_videos}/carving_ice_rpi.mp4", f"{http_videos}/eye_makeup.avi"]
    bad = f"{http_videos}/missing.mp4"
    manifest = tmp_path / "urls.txt"
    manifest.write_text("\n".join([*good, bad, good[0]]))  # listed twice: classified once
    out = tmp_path / "r.jsonl"
    r = vidcls("batch", manifest, "-o", out, "--workers", "2")
    assert r.returncode == 0, r.stderr
    rows = {x["source"]: x for x in rows_of(out)}
    assert sorted(rows) == sorted([*good, bad])
    assert rows[bad]["status"] == "error" and "HTTP 404" in rows[bad]["error"]
    assert f"vidcls: failed: {bad}: " in r.stderr and "(1 failed)" in r.stderr
    local = comparable(rows_of(reference[0]))
    for url in good:  # as the same clip from a local path
        (same,) = [v for k, v in local.items() if Path(k).stem == f"{Path(url).stem}_0"]
        assert comparable([rows[url]])[url] == same
    one = run_batch(good[0], tmp_path / "one.jsonl", BatchOptions(workers=1))
    assert one.processed == 1 and rows_of(tmp_path / "one.jsonl")[0]["source"] == good[0]


def test_a_full_disk_ends_the_job_and_a_rerun_finishes(archive, reference, tmp_path):
    (disk := tmp_path / "disk").mkdir()  # a small tmpfs (root only): parts fill it mid-job
    mount = ["mount", "-t", "tmpfs", "-o", "size=24k", "tmpfs", str(disk)]
    if subprocess.run(mount, capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here (test_a_failed_merge... covers write errors)")
    try:
        out = disk / "r.jsonl"
        args = ("batch", archive, "-o", out, "--workers", "2", "--chunk", "1")
        line = assert_clean_error(vidcls(*args), "No space left on device", "run the same")
        committed = len(PartStore(out).done())
        assert 1 <= committed < 9 and f"{committed} of 9 videos are committed" in line
        subprocess.run(["mount", "-o", "remount,size=1m", str(disk)], check=True)  # space freed
        r = vidcls(*args)
        assert r.returncode == 0 and f"{committed} already done" in r.stderr, r.stderr
        assert comparable(rows_of(out)) == comparable(rows_of(reference[0]))
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=True)


def test_a_failed_merge_keeps_every_part_and_a_rerun_merges(archive, reference, tmp_path):
    def small_files() -> None:  # writes past 2 kB fail (EFBIG), in the job and its workers
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # (a part is one row, about 0.5 kB;
        resource.setrlimit(resource.RLIMIT_FSIZE, (2048, 2048))  # the 9 merged, over 4 kB)

    out = tmp_path / "r.jsonl"
    args = ("batch", archive, "-o", out, "--chunk", "1", "--model", A0)  # no cache copy
    r = vidcls(*args, preexec_fn=small_files)  # each part fits, the merged output does not
    assert_clean_error(r, out, "cannot write (File too large)", "nothing is lost")
    assert len(PartStore(out).done()) == 9 and not out.exists()
    r = vidcls(*args)
    assert r.returncode == 0 and "9 already done, 0 classified" in r.stderr, r.stderr
    assert comparable(rows_of(out)) == comparable(rows_of(reference[0]))


def test_native_fps_is_null_and_jsonl_keeps_non_ascii(archive, tmp_path):
    clip = next(p for p in list_inputs(str(archive)) if "carving_ice_rpi" in p)
    folder = tmp_path / "vidéos"
    folder.mkdir()
    (folder / "sculpture_glacée.mp4").symlink_to(clip)
    out = tmp_path / "r.jsonl"
    r = vidcls("batch", folder, "-o", out, "--fps", "native", "--workers", "1")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [str(out)]
    assert "1 videos: 0 already done, 1 classified (0 failed)" in r.stderr
    text = out.read_text("utf-8")
    assert "sculpture_glacée.mp4" in text and "\\u00e9" not in text
    (row,) = rows_of(out)
    assert row["fps"] is None and row["status"] == "ok"
    default = run_batch(clip, tmp_path / "d.jsonl", BatchOptions(workers=1))
    assert default.processed == 1
    (five,) = rows_of(tmp_path / "d.jsonl")
    assert five["fps"] == 5.0 and row["frames"] > 2 * five["frames"]  # every frame of 30 fps


@pytest.mark.parametrize(
    "options",
    [{"chunk": 0}, {"workers": 0}, {"threads": 0}, {"prefetch": -1}, {"fps": -1.0}]
    + [{"fps": float("nan")}, {"top_k": -1}, {"threshold": 2.0}, {"window": 0.0}, {"ray": 5}],
)
def test_options_are_checked_when_made(options):
    with pytest.raises(VidclsError, match=next(iter(options))):
        BatchOptions(**options)


def test_bad_flags_and_models_are_one_line_errors(archive, tmp_path, capfd):
    out = tmp_path / "r.jsonl"
    assert_clean_error(run_here(capfd, "batch", archive, "-o", out, "--chunk", "0"), "chunk")
    assert_clean_error(run_here(capfd, "batch", archive, "-o", out, "--window", "-1"), "window")
    assert_clean_error(run_here(capfd, "batch", archive, "-o", out, "--model", "a9"), "a9")
    labels = tmp_path / "labels.txt"
    labels.write_text("one\ntwo\n")
    r = run_here(capfd, "batch", archive, "-o", out, "--labels", labels, "--workers", "2")
    assert_clean_error(r, labels, "label count 2")  # from the workers, as one line
    assert not out.exists()
