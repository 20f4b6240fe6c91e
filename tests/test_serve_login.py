"""Signing in (vidcls.serve.login, vidcls.serve.signins): the session cookie's flags, wrong
passwords limited per address (429 with Retry-After, on a clock the test moves), sessions that
end with sign-out, a new password, a new role or the user's removal, bearer tokens and their
revocation, the audit log, sign-in on by default off loopback, and no secret in any log line or
file but the hash store, on a real server process."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import httpx
import pytest
from conftest import MODELS, needs_shared, video
from serve_process import ServerProcess, server_env

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from vidcls import VidclsError  # noqa: E402
from vidcls.serve import ServeOptions  # noqa: E402
from vidcls.serve.app import create_app  # noqa: E402
from vidcls.serve.users import Users  # noqa: E402

pytestmark = needs_shared
PASSWORD = "correct-horse-1"


class Clock:
    """Seconds the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def app(tmp_path):
    users = Users(tmp_path)
    users.add("ada", PASSWORD, role="admin")
    users.add("vic", PASSWORD, role="viewer")
    os.environ["VIDCLS_MIRROR"] = str(MODELS)
    application = create_app(ServeOptions(data=str(tmp_path), auth=True, max_threads=1))
    application.state.users = users
    yield application
    application.state.vidcls.close()


def client(app, address: str = "10.0.0.1") -> TestClient:
    return TestClient(app, client=(address, 40000), follow_redirects=False)


def login(c: TestClient, name: str, password: str) -> httpx.Response:
    return c.post("/login", json={"name": name, "password": password})


def test_the_cookie_is_httponly_strict_and_expires(app):
    r = login(client(app), "ada", PASSWORD)
    assert r.status_code == 200 and r.json() == {"name": "ada", "role": "admin", "auth": True}
    cookie = r.headers["set-cookie"].lower()
    for flag in ("httponly", "samesite=strict", "max-age=604800", "path=/"):
        assert flag in cookie, cookie
    assert "secure" not in cookie  # plain HTTP here; under --certfile it is Secure
    form = client(app).post("/login", data={"name": "ada", "password": PASSWORD})
    assert form.status_code == 200  # the form works too
    assert client(app).post("/login", content=b"x" * 10_000).status_code == 413
    assert client(app).post("/login", json=["ada"]).status_code == 400


def test_the_sixth_wrong_password_from_an_address_is_429_other_addresses_still_sign_in(app):
    clock = Clock()
    app.state.vidcls.attempts.clock = clock
    attacker = client(app, "10.0.0.66")
    for _ in range(5):
        assert login(attacker, "ada", "guess").status_code == 401
        clock.now += 1
    r = login(attacker, "ada", "guess")
    assert r.status_code == 429 and r.json()["detail"].startswith("too many wrong passwords")
    assert int(r.headers["retry-after"]) == 55  # the first of the five leaves the minute then
    assert login(attacker, "ada", PASSWORD).status_code == 429  # not even the right one
    assert login(client(app, "10.0.0.2"), "ada", PASSWORD).status_code == 200
    clock.now += 55
    assert login(attacker, "ada", PASSWORD).status_code == 200
    # Guesses at one name from many addresses are slowed too (10 a minute).
    for i in range(10):
        assert login(client(app, f"10.1.0.{i}"), "vic", "guess").status_code == 401
    assert login(client(app, "10.2.0.1"), "vic", PASSWORD).status_code == 429
    entries = [e["action"] for e in app.state.vidcls.audit.recent(100)]
    assert entries.count("sign-in failed") == 15 and entries.count("sign-in") == 2


def test_a_session_ends_with_sign_out_a_new_password_a_new_role_or_removal(app):
    users = app.state.users
    for end in ("logout", "passwd", "role", "remove"):
        if users.get("vic") is None:
            users.add("vic", PASSWORD, role="viewer")
        else:
            users.passwd("vic", PASSWORD)
            users.set_role("vic", "viewer")
        c = client(app)
        assert login(c, "vic", PASSWORD).status_code == 200
        assert c.get("/api/events").status_code != 401
        if end == "logout":
            assert c.post("/logout").status_code == 200
        elif end == "passwd":
            users.passwd("vic", "another-password")
        elif end == "role":
            users.set_role("vic", "admin")
        else:
            users.remove("vic")
        assert c.get("/api/me").status_code == 401, end
    assert login(client(app), "vic", PASSWORD).status_code == 401  # removed


def test_tokens_carry_the_role_and_stop_when_revoked(app):
    users = app.state.users
    token_id, token = users.new_token("vic", "home assistant")
    bearer = {"authorization": f"Bearer {token}"}
    c = client(app)
    assert c.get("/api/me", headers=bearer).json() == {
        "name": "vic",
        "role": "viewer",
        "auth": True,
        "pages": {"events": True, "teach": True},  # the pages this server has
    }
    assert c.get("/api/events", headers=bearer).status_code != 401
    assert c.post("/api/teach/undo", headers=bearer).status_code == 403  # a viewer's token
    wrong = {"authorization": f"Bearer {token[:-2]}xx"}
    assert c.get("/api/me", headers=wrong).status_code == 401
    users.revoke("vic", token_id)
    assert c.get("/api/me", headers=bearer).status_code == 401


def test_changes_are_audited_with_the_user(app):
    admin = client(app)
    login(admin, "ada", PASSWORD)
    clip = video("carving_ice_rpi.mp4").read_bytes()
    name = admin.post("/api/teach/upload", files={"file": ("a.mp4", clip)}).json()["name"]
    assert admin.post(f"/api/teach/clips/{name}", json={"label": "ice"}).status_code == 200
    assert admin.post("/api/teach/undo").status_code == 400  # nothing deployed: still recorded
    entries = admin.get("/api/audit").json()["entries"]
    done = [(e["action"], e["user"], e.get("status"), e.get("label")) for e in entries[:4]]
    assert done == [
        ("POST /api/teach/undo", "ada", 400, None),
        (f"POST /api/teach/clips/{name}", "ada", 200, "ice"),
        ("POST /api/teach/upload", "ada", 200, None),
        ("sign-in", "ada", None, None),
    ]
    viewer = client(app)
    login(viewer, "vic", PASSWORD)
    assert viewer.get("/api/audit").status_code == 403


def test_sign_in_is_on_off_loopback_and_no_auth_there_needs_two_yeses(tmp_path, monkeypatch):
    with pytest.raises(VidclsError, match="has no users: add one with vidcls users add"):
        create_app(ServeOptions(data=str(tmp_path / "empty"), auth=True))
    monkeypatch.delenv("VIDCLS_NO_AUTH_ON_NETWORK", raising=False)
    assert not ServeOptions().auth_on and ServeOptions(auth=True).auth_on
    assert ServeOptions(host="0.0.0.0").auth_on and ServeOptions(host="192.168.1.5").auth_on
    with pytest.raises(VidclsError, match="VIDCLS_NO_AUTH_ON_NETWORK=1"):
        ServeOptions(host="0.0.0.0", auth=False)
    monkeypatch.setenv("VIDCLS_NO_AUTH_ON_NETWORK", "1")
    assert not ServeOptions(host="0.0.0.0", auth=False).auth_on
    monkeypatch.delenv("VIDCLS_NO_AUTH_ON_NETWORK")
    env = server_env(tmp_path / "cache", MODELS)
    env.pop("VIDCLS_NO_AUTH_ON_NETWORK", None)
    for flags, words in [
        (["--host", "0.0.0.0"], "has no users: add one with vidcls users add NAME --role admin"),
        (["--host", "0.0.0.0", "--no-auth"], "also set VIDCLS_NO_AUTH_ON_NETWORK=1"),
    ]:
        cmd = [sys.executable, "-m", "vidcls", "serve", "--data", str(tmp_path / "d"), *flags]
        run = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
        assert run.returncode == 2, run.stderr
        assert run.stderr.count("\n") == 1 and words in run.stderr, run.stderr


def cut_off_sign_in(port: int) -> None:
    """A sign-in whose client goes away mid-body (chunked): the server just drops it."""
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        head = b"POST /login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        sock.sendall(head + b'Transfer-Encoding: chunked\r\n\r\n5\r\n{"nam\r\n')
        sock.shutdown(socket.SHUT_WR)
        sock.recv(4096)  # the server's answer, or its close


def test_no_password_token_or_cookie_reaches_a_log_or_a_file_but_the_hashes(tmp_path):
    data = tmp_path / "data"
    users = Users(data)
    users.add("ada", PASSWORD, role="admin")
    _, token = users.new_token("ada")
    wrong = "wrong-password-77"
    env = server_env(tmp_path / "cache", MODELS)
    args = ["--auth", "--data", str(data), "--log-level", "debug"]
    with ServerProcess(args, env, tmp_path / "server.log") as server:
        with httpx.Client(base_url=server.url) as c:
            assert c.post("/login", json={"name": "ada", "password": wrong}).status_code == 401
            assert c.post("/login", data={"name": wrong, "password": wrong}).status_code == 401
            assert c.post("/login", json={"name": "ada", "password": PASSWORD}).status_code == 200
            cookie = c.cookies["vidcls_session"]
            assert c.get("/api/me").json()["name"] == "ada"
            assert c.post("/logout").status_code == 200
        bearer = {"authorization": f"Bearer {token}"}
        assert httpx.get(server.url + "/api/me", headers=bearer).status_code == 200
        cut_off_sign_in(server.port)
        assert server.health()["status"] == "ok"
        log = server.output()
    assert "Traceback" not in log
    assert "GET /api/me" in log  # the access log was on
    secrets = [PASSWORD, wrong, token, cookie]
    for secret in secrets:
        assert secret not in log
    for path in data.rglob("*"):
        if path.is_file():
            text = path.read_bytes()
            for secret in secrets:
                assert secret.encode() not in text, path
    stored = json.loads((data / "users.json").read_text())
    assert stored["users"]["ada"]["hash"].startswith("$argon2")
    assert oct((data / "users.json").stat().st_mode & 0o777) == "0o600"
    assert [e["action"] for e in map(json.loads, (data / "audit.jsonl").open())] == [
        "sign-in failed",
        "sign-in failed",
        "sign-in",
        "sign-out",
    ]
