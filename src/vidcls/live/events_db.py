"""Which events database a server keeps: ``events_db`` (the ``vidcls serve --events-db`` flag
or the config's key), a ``postgresql://`` URL (:mod:`.store_pg`) or an SQLite file
(:mod:`.store`); without one, ``events.db`` in the data folder."""

from __future__ import annotations

import os

from ..errors import VidclsError
from .store import EventStore, Store
from .store_pg import PostgresStore, check_url, is_postgres


def open_events_db(events_db: str | None, data_folder: str | os.PathLike) -> Store:
    """The events database ``events_db`` names (None: the data folder's ``events.db``);
    VidclsError, naming it, when it cannot be opened."""
    if events_db is None or events_db == "":
        return EventStore(os.path.join(data_folder, "events.db"))
    if is_postgres(events_db):
        return PostgresStore(events_db)
    return EventStore(os.path.expanduser(events_db))


def check_events_db(events_db: str) -> str:
    """``events_db`` if it is a PostgreSQL URL that can be taken apart, or a file path;
    VidclsError if not (checked when a config is loaded, before anything runs)."""
    if is_postgres(events_db):
        return check_url(events_db)
    if "://" in events_db:
        scheme = events_db.partition("://")[0]
        raise VidclsError(
            f"{scheme}:// is not a database vidcls keeps events in: "
            "postgresql://user:pass@host/db, or an SQLite file"
        )
    return events_db
