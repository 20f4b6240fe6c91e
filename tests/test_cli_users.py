"""``vidcls users`` (vidcls.cli.users, vidcls.serve.users): users added, listed, given a new
password or role, removed; tokens made (shown once, stored as a hash) and revoked; bad input
is one line and exit 2; the file is 0600 and never holds a secret in clear."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import pytest
from cli_here import run_here

pytest.importorskip("argon2")
from vidcls.serve.users import Users  # noqa: E402


def users(data, *args: str, password: str | None = None) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "vidcls", "users", "--data", str(data), *args]
    stdin = None if password is None else password + "\n"
    return subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=120)


def test_add_list_token_revoke_passwd_role_remove(tmp_path):
    run = users(
        tmp_path, "add", "ada", "--role", "admin", "--password-stdin", password="pw-ada-123"
    )
    assert run.returncode == 0 and "added ada (admin)" in run.stdout, run.stderr
    assert users(tmp_path, "add", "vic", "--password-stdin", password="pw-vic-123").returncode == 0
    token = users(tmp_path, "token", "vic", "--label", "home assistant")
    assert token.returncode == 0 and "shown once" in token.stderr
    secret = token.stdout.strip()
    assert secret.startswith("vidcls_") and len(secret) > 40
    listed = users(tmp_path, "list").stdout
    assert "ada\tadmin\t0 token(s)" in listed and "vic\tviewer\t1 token(s)" in listed
    assert "home assistant" in listed and secret not in listed
    store = Users(tmp_path)
    assert store.check_token(secret).name == "vic"
    assert store.verify("vic", "pw-vic-123").role == "viewer"
    text = (tmp_path / "users.json").read_text()
    assert "pw-vic-123" not in text and secret not in text
    assert (tmp_path / "users.json").stat().st_mode & 0o777 == 0o600
    token_id = next(iter(json.loads(text)["users"]["vic"]["tokens"]))
    assert users(tmp_path, "revoke", "vic", token_id).returncode == 0
    assert store.check_token(secret) is None
    assert (
        users(tmp_path, "passwd", "vic", "--password-stdin", password="new-pw-456").returncode == 0
    )
    assert store.verify("vic", "pw-vic-123") is None and store.verify("vic", "new-pw-456")
    assert users(tmp_path, "role", "vic", "admin").returncode == 0
    assert store.get("vic").role == "admin"
    assert users(tmp_path, "remove", "vic").returncode == 0
    assert store.get("vic") is None and [u.name for u in store.names()] == ["ada"]


@pytest.mark.parametrize(
    ("args", "password", "words"),
    [
        (["add", "bad name"], "long-enough-1", "bad user name 'bad name'"),
        (["add", "x" * 65], "long-enough-1", "bad user name"),
        (["add", "short"], "1234567", "at least 8 characters"),
        (["add", "ada"], "long-enough-1", "already a user called 'ada'"),
        (["add", "tty"], None, "no terminal to ask for the password: use --password-stdin"),
        (["passwd", "nobody"], "long-enough-1", "no user called 'nobody'"),
        (["remove", "nobody"], None, "no user called 'nobody'"),
        (["token", "nobody"], None, "no user called 'nobody'"),
        (["revoke", "ada"], None, "name one token id, or --all"),
        (["revoke", "ada", "abcd"], None, "'ada' has no token 'abcd'"),
        (["role", "ada", "root"], None, "invalid choice: 'root'"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, capfd, monkeypatch, args, password, words):
    Users(tmp_path).add("ada", "ada-password-1", role="admin")
    monkeypatch.setattr(sys, "stdin", io.StringIO("" if password is None else password + "\n"))
    flag = ["--password-stdin"] if password is not None else []  # tty: not a terminal, no flag
    run = run_here(capfd, "users", "--data", tmp_path, *args, *flag)
    assert run.returncode == 2, (run.stdout, run.stderr)
    assert run.stderr.count("\n") == 1 and words in run.stderr, run.stderr
    assert "Traceback" not in run.stderr


def test_a_damaged_users_file_is_one_line(tmp_path):
    (tmp_path / "users.json").write_text("{not json")
    run = users(tmp_path, "list")
    assert run.returncode == 2 and "not a users file" in run.stderr, run.stderr
    assert run.stderr.count("\n") == 1
