"""Who may call what (vidcls.serve.access), on the real app: every route the app registers is
walked without credentials, as a viewer and as an admin; every state-changing route is sent a
foreign Origin, with sign-in on and off, and nothing on disk changes; a route added later is
locked without being listed."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from conftest import MODELS, needs_shared, video

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402
from starlette.routing import Mount, WebSocketRoute  # noqa: E402
from starlette.testclient import WebSocketDenialResponse  # noqa: E402

from vidcls.serve import ServeOptions  # noqa: E402
from vidcls.serve.access import routes_of  # noqa: E402
from vidcls.serve.app import create_app  # noqa: E402
from vidcls.serve.users import Users  # noqa: E402

pytestmark = needs_shared
# Named here, not read from the code under test: the routes anyone may call.
PUBLIC = {"/login", "/healthz", "/static", "/static-offline-docs"}
# What a viewer may call (the rest needs an admin).
VIEWER = {"/", "/file", "/events", "/api/events", "/api/groups", "/media/{path:path}",
          "/v1/models",
          "/api/playable/{path:path}",
          "/v1/classify", "/v1/stream", "/openapi.json", "/docs", "/docs/oauth2-redirect",
          "/redoc", "/logout", "/api/me"}  # fmt: skip
PAGES = {"/", "/file", "/events", "/teach", "/docs", "/redoc"}
ADMIN_PW, VIEWER_PW = "admin-password", "viewer-password"
FOREIGN = {"origin": "http://evil.example"}


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    data = tmp_path_factory.mktemp("data")
    users = Users(data)
    users.add("ada", ADMIN_PW, role="admin")
    users.add("vic", VIEWER_PW, role="viewer")
    return data


def make_app(folder: Path, auth: bool):
    os.environ["VIDCLS_MIRROR"] = str(MODELS)
    return create_app(ServeOptions(data=str(folder), auth=auth, max_threads=1))


@pytest.fixture(scope="module")
def app(folder):
    application = make_app(folder, auth=True)
    yield application
    application.state.vidcls.close()


def signed_in(app, name: str | None, password: str = "") -> TestClient:
    client = TestClient(app, follow_redirects=False)
    if name is not None:
        r = client.post("/login", json={"name": name, "password": password})
        assert r.status_code == 200, r.text
    return client


def concrete(path: str) -> str:
    """A request path for a route's template."""
    path = path.replace("{path:path}", "cam/x.mp4")
    return re.sub(r"\{[^}]+\}", "x", path)


def calls(app) -> list[tuple[str, str, str]]:
    """(route path, method, request path) for every route the app registers."""
    out = []
    for route in routes_of(app):
        if isinstance(route, Mount):
            out.append((route.path, "GET", route.path + "/x.css"))
        elif isinstance(route, WebSocketRoute):
            out.append((route.path, "WS", concrete(route.path)))
        else:
            for method in sorted(route.methods - {"HEAD"}):
                out.append((route.path, method, concrete(route.path)))
    return out


def status(client: TestClient, method: str, path: str, **kwargs) -> int:
    if method == "WS":
        try:
            with client.websocket_connect(path, **kwargs) as ws:
                ws.close()
                return 101
        except WebSocketDenialResponse as e:
            return e.status_code
    return client.request(method, path, **kwargs).status_code


def test_every_route_is_locked_by_role_and_only_the_named_ones_are_public(app):
    table = calls(app)
    paths = {p for p, _, _ in table}
    assert {"/api/teach/upload", "/api/teach/undo", "/v1/stream", "/media/{path:path}"} <= paths
    assert len(table) >= 30, table
    nobody, viewer = signed_in(app, None), signed_in(app, "vic", VIEWER_PW)
    admin = signed_in(app, "ada", ADMIN_PW)
    for route, method, path in table:
        anonymous = status(nobody, method, path)
        if route in PUBLIC:
            assert anonymous not in (401, 403), (method, path, anonymous)
            continue
        if route in PAGES and method == "GET":
            r = nobody.get(path)
            assert r.status_code == 303 and r.headers["location"].startswith("/login?next=/")
        else:
            assert anonymous == 401, (method, path, anonymous)
        if route == "/logout":  # it would sign the walk's users out
            viewer_now, admin_now = (
                signed_in(app, "vic", VIEWER_PW),
                signed_in(app, "ada", ADMIN_PW),
            )
        else:
            viewer_now, admin_now = viewer, admin
        as_viewer = status(viewer_now, method, path)
        if route in VIEWER:
            assert as_viewer not in (401, 403), (method, path, as_viewer)
        else:
            assert as_viewer == 403, (method, path, as_viewer)
        assert status(admin_now, method, path) not in (401, 403), (method, path)
    # A path that is no route gives nothing away without a sign-in.
    assert nobody.get("/no/such/thing").status_code == 401
    assert viewer.get("/no/such/thing").status_code == 404


def test_a_route_added_later_needs_an_admin_without_being_listed(folder):
    app = make_app(folder, auth=True)
    try:
        assert signed_in(app, None).get("/healthz").status_code == 200  # the app has started
        app.add_api_route("/api/new-thing", lambda: {"ok": True}, methods=["POST"])
        assert status(signed_in(app, None), "POST", "/api/new-thing") == 401
        assert status(signed_in(app, "vic", VIEWER_PW), "POST", "/api/new-thing") == 403
        assert status(signed_in(app, "ada", ADMIN_PW), "POST", "/api/new-thing") == 200
    finally:
        app.state.vidcls.close()


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``folder``: (size, mtime_ns), the audit log left out (it records the
    refused requests' sign-ins, not them)."""
    return {
        str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != "audit.jsonl"
    }


@pytest.mark.parametrize("auth", [True, False], ids=["signed-in", "no-sign-in"])
def test_every_state_changing_route_refuses_a_foreign_origin_and_changes_nothing(tmp_path, auth):
    data = tmp_path / "data"
    Users(data).add("ada", ADMIN_PW, role="admin")
    app = make_app(data, auth=auth)
    try:
        client = signed_in(app, "ada" if auth else None, ADMIN_PW)
        clip = video("carving_ice_rpi.mp4").read_bytes()
        r = client.post("/api/teach/upload", files={"file": ("a.mp4", clip)})
        assert r.status_code == 200, r.text
        name = r.json()["name"]
        before = snapshot(data)
        changing = [(p, m, x) for p, m, x in calls(app) if m not in ("GET",)]
        assert len(changing) >= 10, changing
        for route, method, path in changing:
            path = path.replace("/x", f"/{name}") if "{name}" in route else path
            kwargs = {"files": {"file": ("b.mp4", clip)}} if route.endswith("upload") else {}
            if method == "WS":
                with client.websocket_connect(path, headers=FOREIGN) as ws:
                    refusal = ws.receive_json()
                assert refusal["fatal"] and "cross-origin" in refusal["message"], path
                continue
            r = client.request(method, path, headers=FOREIGN, **kwargs)
            assert r.status_code == 403, (method, path, r.status_code, r.text)
            assert "cross-origin" in r.json()["detail"]
            r = client.request(method, path, headers={"sec-fetch-site": "cross-site"}, **kwargs)
            assert r.status_code == 403, (method, path, r.status_code)
        assert snapshot(data) == before
        # The same origin still works: the clip can be discarded.
        same = {"origin": "http://testserver"}
        assert client.delete(f"/api/teach/clips/{name}", headers=same).status_code == 200
        assert snapshot(data) != before
    finally:
        app.state.vidcls.close()


def test_odd_credentials_and_origins_are_refused_never_a_500(app):
    """Seeded random Cookie, Authorization, Origin and Sec-Fetch-Site values: each request is
    refused or let through as its credentials say, never an error."""
    import itertools
    import random

    rng = random.Random(27)
    pieces = ["vidcls_session=", "Bearer ", "vidcls_", "http://", "[::1", "\x00", "é", ";", "=",
              '"', ",", " ", "null", "x" * 5000, "vidcls_ab_", "..", "%00", "\\", "\t"]  # fmt: skip
    nobody = signed_in(app, None)
    app.state.vidcls.attempts.clock = itertools.count(0, 61).__next__  # never rate-limited
    for _ in range(300):
        value = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 6)))
        name = rng.choice(["cookie", "authorization", "origin", "sec-fetch-site"])
        method, path = rng.choice([("GET", "/api/me"), ("POST", "/api/teach/undo"),
                                   ("GET", "/events"), ("POST", "/login")])  # fmt: skip
        try:
            headers = {name: value.encode("utf-8").decode("latin-1")}
            r = nobody.request(method, path, headers=headers, json={"name": "a", "password": "b"})
        except Exception as e:  # the client itself refuses a header (a NUL, say): skip it
            assert "header" in str(e).lower() or isinstance(e, ValueError), e
            continue
        assert r.status_code in (303, 400, 401, 403, 404), (name, value, r.status_code)
