"""The data folder of a server (:mod:`vidcls.serve.state`, :func:`default_data_folder`):
plain ``vidcls serve`` keeps its events and teaching in ``--data``, else ``$VIDCLS_DATA``, else
``$XDG_DATA_HOME/vidcls``, else ``~/.local/share/vidcls``, the same folder ``vidcls users``
writes; when that folder cannot be made the pages are off and the navigation leaves them
out; ``--config`` with a camera that cannot be opened serves the others and names it."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from cli_run import run
from conftest import needs_shared, video

pytest.importorskip("fastapi", reason="the server needs: pip install -e '.[serve]'")
from fastapi.testclient import TestClient  # noqa: E402

from vidcls.errors import VidclsError  # noqa: E402
from vidcls.serve import ServeOptions  # noqa: E402
from vidcls.serve.app import create_app  # noqa: E402
from vidcls.serve.options import default_data_folder  # noqa: E402

pytestmark = needs_shared


def no_data_settings(monkeypatch, home: Path) -> None:
    """Nothing set: no VIDCLS_DATA, no XDG_DATA_HOME, and HOME at ``home``."""
    monkeypatch.delenv("VIDCLS_DATA", raising=False)
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    monkeypatch.setenv("HOME", str(home))


def test_the_default_is_vidcls_data_else_xdg_data_home_else_the_home(tmp_path, monkeypatch):
    no_data_settings(monkeypatch, tmp_path)
    assert default_data_folder() == str(tmp_path / ".local" / "share" / "vidcls")
    monkeypatch.setenv("XDG_DATA_HOME", "relative/is/ignored")  # as the XDG spec says
    assert default_data_folder() == str(tmp_path / ".local" / "share" / "vidcls")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert default_data_folder() == str(tmp_path / "xdg" / "vidcls")
    monkeypatch.setenv("VIDCLS_DATA", str(tmp_path / "mine"))
    assert default_data_folder() == str(tmp_path / "mine")
    assert ServeOptions(data=str(tmp_path / "given")).data_folder == str(tmp_path / "given")


def pages_work(client: TestClient, folder: Path) -> None:
    """/api/me says Events and Teach are on, and both keep their data in ``folder``."""
    me = client.get("/api/me").json()
    assert me["pages"] == {"events": True, "teach": True}, me
    assert client.get("/api/events").json() == {"events": [], "next": None}
    clip = video("carving_ice_rpi.mp4")
    up = client.post(
        "/api/teach/upload",
        params={"filename": "ice.mp4"},
        content=clip.read_bytes(),
        headers={"content-type": "video/mp4"},
    )
    assert up.status_code == 200, up.text
    assert client.get("/api/teach").json()["clips"]["unlabelled"] == [up.json()["name"]]
    assert (folder / "events.db").is_file()
    assert [p.name for p in (folder / "teach" / "clips" / "unlabelled").iterdir()] == [
        up.json()["name"]
    ]


@pytest.mark.parametrize("setting", ["VIDCLS_DATA", "nothing"])
def test_plain_serve_has_working_events_and_teach_pages(tmp_path, monkeypatch, setting):
    no_data_settings(monkeypatch, tmp_path / "home")
    folder = tmp_path / "home" / ".local" / "share" / "vidcls"
    if setting == "VIDCLS_DATA":
        folder = tmp_path / "data"
        monkeypatch.setenv("VIDCLS_DATA", str(folder))
    with TestClient(create_app(ServeOptions(max_threads=1))) as client:
        pages_work(client, folder)
        assert client.get("/events").status_code == 200
        assert client.get("/teach").status_code == 200


def test_users_added_with_no_data_flag_sign_in_to_plain_serve(tmp_path, monkeypatch):
    """``vidcls users add`` and ``vidcls serve`` agree on the default folder."""
    no_data_settings(monkeypatch, tmp_path)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    added = run(
        "users", "add", "ann", "--role", "admin", "--password-stdin", input="a long password\n"
    )
    assert added.returncode == 0, added.stderr
    assert str(tmp_path / "xdg" / "vidcls" / "users.json") in added.stdout
    app = create_app(ServeOptions(auth=True, max_threads=1))
    with TestClient(app) as client:
        assert client.get("/api/me").status_code == 401
        signed = client.post("/login", json={"name": "ann", "password": "a long password"})
        assert signed.status_code == 200, signed.text
        pages_work(client, tmp_path / "xdg" / "vidcls")


def test_a_default_folder_that_cannot_be_made_turns_the_pages_off(tmp_path, monkeypatch, caplog):
    afile = tmp_path / "afile"
    afile.write_text("x")
    no_data_settings(monkeypatch, tmp_path)
    monkeypatch.setenv("XDG_DATA_HOME", str(afile))  # .../afile/vidcls cannot be made
    with TestClient(create_app(ServeOptions(max_threads=1))) as client:
        assert client.get("/api/me").json()["pages"] == {"events": False, "teach": False}
        assert client.get("/api/events").status_code == 404
        teach = client.get("/api/teach")
        assert teach.status_code == 404 and "--data DIR" in teach.json()["detail"]
        assert client.get("/v1/models").status_code == 200  # the rest is served
    assert "no events or teaching pages (give a folder: --data DIR)" in caplog.text
    assert afile.read_text() == "x"
    with pytest.raises(VidclsError, match="afile"):  # asked for by name: an error
        create_app(ServeOptions(data=str(afile / "vidcls"), max_threads=1))


def test_serve_config_watches_the_others_and_names_the_cameras_that_cannot_open(
    tmp_path, monkeypatch
):
    """A missing camera and one that is not a video are named in /healthz while the third
    plays; its clip, in a clips folder given relative to where the server started (as in
    docs/cameras.example.yml), is served at /media/CAMERA/..."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.mp4").write_bytes(b"not a video")
    config = tmp_path / "cameras.yml"
    config.write_text(
        f"""\
replay: true
clips: {{folder: results/clips}}
cameras:
  gone: {{source: {tmp_path / "missing.mp4"}}}
  ice: {{source: {video("carving_ice_rpi.mp4")}}}
  bad: {{source: {tmp_path / "bad.mp4"}}}
"""
    )
    options = ServeOptions(config=str(config), data=str(tmp_path / "data"), max_threads=1)
    with TestClient(create_app(options)) as client:
        deadline = time.monotonic() + 120  # a hang guard: the file is replayed at once
        while (health := client.get("/healthz").json())["cameras"] != "done":
            assert time.monotonic() < deadline, health
            time.sleep(0.1)
        failed = health["failed_cameras"]
        assert sorted(failed) == ["bad", "gone"], failed
        assert "no such file" in failed["gone"] and "cannot open" in failed["bad"]
        events = client.get("/api/events").json()["events"]
        assert [(e["source"], e["label"]) for e in events] == [("ice", "carving ice")]
        assert events[0]["clip"].startswith("/media/ice/"), events[0]
        clip = client.get(events[0]["clip"])
        assert clip.status_code == 200 and clip.headers["content-type"] == "video/mp4"
        assert (tmp_path / "results" / "clips" / events[0]["clip"][len("/media/") :]).is_file()
