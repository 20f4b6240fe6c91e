"""Who may use a server: :class:`Users`, the names, roles, password hashes (argon2) and API
tokens kept in ``users.json`` in the data folder (``vidcls users``, read by ``vidcls serve``).

Passwords are stored only as argon2 hashes (argon2-cffi); a token is shown once when made and
stored only as its SHA-256 (tokens are 32 random bytes, so a fast hash is enough and a request
costs no argon2). The file is written whole to a temporary file and renamed (mode 0600), under
a lock, so a command and a running server never see half of it; the server reads it again when
it changes. Changing a password or removing a user ends that user's sign-ins.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import hmac
import json
import os
import re
import secrets
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import VidclsError

ROLES = ("viewer", "admin")
FILE = "users.json"
MIN_PASSWORD = 8
MAX_PASSWORD = 1024
TOKEN_PREFIX = "vidcls_"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}")


@dataclass
class User:
    """A user as the server sees it: ``epoch`` grows with each password change, so sign-ins
    made before it end."""

    name: str
    role: str
    epoch: int = 0
    tokens: dict[str, dict] = field(default_factory=dict)  # id: {"sha256", "created", "label"}

    @property
    def admin(self) -> bool:
        return self.role == "admin"


def check_name(name: str) -> str:
    """``name`` if it is a valid user name, else VidclsError."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise VidclsError(
            f"bad user name {name[:80]!r}: 1-64 letters, digits and _ . @ -, starting with a "
            "letter or digit"
        )
    return name


def check_password(password: str) -> str:
    """``password`` if long enough and not absurdly long, else VidclsError (never shown)."""
    if len(password) < MIN_PASSWORD:
        raise VidclsError(f"the password must have at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise VidclsError(f"the password may have at most {MAX_PASSWORD} characters")
    return password


def _hasher():
    try:
        from argon2 import PasswordHasher
    except ImportError:
        raise VidclsError("sign-in needs argon2-cffi: pip install 'vidcls[serve]'") from None
    # OWASP's argon2id minimum (19 MiB, 2 passes, 1 lane): a guess costs memory, and a
    # sign-in stays quick on a Raspberry Pi-class board (the library's default takes 64 MiB
    # and 4 lanes, which a 2-core box cannot run at once).
    return PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class Users:
    """The users of the data folder ``folder`` (``users.json``; absent: no users)."""

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = Path(folder)
        self.file = self.folder / FILE
        self._seen: tuple[int, int] | None = None
        self._data: dict = {"users": {}}
        self._hasher = None
        self._dummy: str | None = None  # verified against when the name is unknown (timing)

    # reading ---------------------------------------------------------------------------
    def _read(self) -> dict:
        """The file's contents, read again only when it changed."""
        try:
            st = self.file.stat()
        except FileNotFoundError:
            self._seen, self._data = None, {"users": {}}
            return self._data
        except OSError as e:
            raise VidclsError(f"cannot read the users ({e.strerror})", self.file) from None
        stamp = (st.st_mtime_ns, st.st_size)
        if stamp != self._seen:
            try:
                data = json.loads(self.file.read_text(encoding="utf-8"))
                if not isinstance(data, dict) or not isinstance(data.get("users"), dict):
                    raise ValueError("no users table")
            except (OSError, ValueError, UnicodeDecodeError) as e:
                raise VidclsError(f"not a users file ({e})", self.file) from None
            self._data, self._seen = data, stamp
        return self._data

    def get(self, name: str) -> User | None:
        """The user called ``name``, or None."""
        entry = self._read()["users"].get(name) if isinstance(name, str) else None
        if not isinstance(entry, dict):
            return None
        return User(
            name, entry.get("role", "viewer"), entry.get("epoch", 0), entry.get("tokens", {})
        )

    def names(self) -> list[User]:
        """Every user, by name."""
        return [u for n in sorted(self._read()["users"]) if (u := self.get(n)) is not None]

    def __len__(self) -> int:
        return len(self._read()["users"])

    def verify(self, name: str, password: str) -> User | None:
        """The user when ``password`` is theirs, else None (as slow either way)."""
        hasher = self._hasher = self._hasher or _hasher()
        entry = self._read()["users"].get(name) if isinstance(name, str) else None
        if not isinstance(entry, dict) or not isinstance(entry.get("hash"), str):
            self._dummy = self._dummy or hasher.hash(secrets.token_hex(16))
            with contextlib.suppress(Exception):
                hasher.verify(self._dummy, password)
            return None
        try:
            hasher.verify(entry["hash"], password)
        except Exception:  # mismatch, or a damaged hash: no sign-in either way
            return None
        return self.get(name)

    def check_token(self, token: str) -> User | None:
        """The user a ``vidcls_ID_SECRET`` token belongs to, or None (revoked, unknown)."""
        if not isinstance(token, str) or not token.startswith(TOKEN_PREFIX):
            return None
        token_id = token[len(TOKEN_PREFIX) :].split("_", 1)[0]
        digest = _sha256(token)
        for user in self.names():
            entry = user.tokens.get(token_id)
            if isinstance(entry, dict) and hmac.compare_digest(
                str(entry.get("sha256", "")), digest
            ):
                return user
        return None

    # changing --------------------------------------------------------------------------
    @contextlib.contextmanager
    def _change(self) -> Iterator[dict]:
        """The table to change, written back atomically (0600) under a lock."""
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            lock = os.open(self.folder / (FILE + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as e:
            raise VidclsError(f"cannot write the users ({e.strerror})", self.folder) from None
        try:
            fcntl.flock(lock, fcntl.LOCK_EX)
            self._seen = None
            data = self._read()
            yield data["users"]
            fd, tmp = tempfile.mkstemp(prefix=".users-", dir=self.folder)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as f:
                    json.dump(data, f, indent=1, sort_keys=True)
                    f.flush()
                    os.fsync(f.fileno())
                os.chmod(tmp, 0o600)
                os.replace(tmp, self.file)
            except OSError as e:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise VidclsError(f"cannot write the users ({e.strerror})", self.file) from None
            self._seen = None
        finally:
            os.close(lock)

    def _entry(self, table: dict, name: str) -> dict:
        if name not in table:
            raise VidclsError(f"no user called {name!r}", self.file)
        return table[name]

    def add(self, name: str, password: str, role: str = "viewer") -> None:
        """A new user; VidclsError when the name is taken or a value is bad."""
        check_name(name)
        if role not in ROLES:
            raise VidclsError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
        digest = (self._hasher or _hasher()).hash(check_password(password))
        with self._change() as table:
            if name in table:
                raise VidclsError(f"there is already a user called {name!r}", self.file)
            table[name] = {"role": role, "hash": digest, "epoch": 0, "tokens": {}}

    def passwd(self, name: str, password: str) -> None:
        """A new password; the user's sign-ins end."""
        digest = (self._hasher or _hasher()).hash(check_password(password))
        with self._change() as table:
            entry = self._entry(table, name)
            entry["hash"], entry["epoch"] = digest, int(entry.get("epoch", 0)) + 1

    def set_role(self, name: str, role: str) -> None:
        """A new role; the user's sign-ins end."""
        if role not in ROLES:
            raise VidclsError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
        with self._change() as table:
            entry = self._entry(table, name)
            entry["role"], entry["epoch"] = role, int(entry.get("epoch", 0)) + 1

    def remove(self, name: str) -> None:
        """The user, their sign-ins and tokens, gone."""
        with self._change() as table:
            self._entry(table, name)
            del table[name]

    def new_token(self, name: str, label: str = "") -> tuple[str, str]:
        """(id, token): a new API token of ``name``'s; only its hash is kept."""
        token_id = secrets.token_hex(4)
        token = f"{TOKEN_PREFIX}{token_id}_{secrets.token_urlsafe(32)}"
        with self._change() as table:
            tokens = self._entry(table, name).setdefault("tokens", {})
            tokens[token_id] = {"sha256": _sha256(token), "created": time.time(), "label": label}
        return token_id, token

    def revoke(self, name: str, token_id: str | None) -> int:
        """Revoke one token of ``name``'s (None: all of them); how many were revoked."""
        with self._change() as table:
            tokens = self._entry(table, name).setdefault("tokens", {})
            if token_id is None:
                count = len(tokens)
                tokens.clear()
                return count
            if token_id not in tokens:
                raise VidclsError(f"{name!r} has no token {token_id!r}", self.file)
            del tokens[token_id]
            return 1
