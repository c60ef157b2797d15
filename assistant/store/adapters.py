"""The ``adapters`` table, and the one module that reads or writes it: trained adapters by name, with their base
model, resolved config and metrics, and which one drafting uses.

Training registers an adapter (:func:`register`); ``mailvoice use NAME`` (and the Settings page) chooses the one
drafting uses (:func:`use_adapter`, the ``adapter`` setting); drafting finds its file (:func:`stored_path`);
evaluation takes the chosen one, else the newest (:func:`default_adapter`). ``path`` is relative to the data
folder, or absolute.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import sqlite_utils

from assistant.errors import MailvoiceError
from assistant.store.db import get_setting, set_setting
from assistant.store.migrations import m005_adapters  # idempotent: safe on stores opened by hand

ADAPTER_KEY = "adapter"  # the adapter chosen with `mailvoice use` (its name), if any
NONE = "none"  # the name that means "the base model alone"


class AdapterError(MailvoiceError):
    """The adapter asked for is not registered or its file is gone."""


def _relative(path: Path, root: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(root.resolve()))
    except ValueError:
        return str(Path(path).resolve())


def adapter_names(db: sqlite_utils.Database) -> list[str]:
    """Every registered adapter's name, sorted."""
    if not db["adapters"].exists():
        return []
    return [r[0] for r in db.execute("SELECT name FROM adapters ORDER BY name")]


def unique_name(db: sqlite_utils.Database, wanted: str) -> str:
    """``wanted``, or ``wanted-2``, ``wanted-3``… when it is taken (``none`` is never a name)."""
    taken = set(adapter_names(db))
    name, n = wanted, 2
    while name in taken or name.lower() == NONE:
        name, n = f"{wanted}-{n}", n + 1
    return name


def register(
    db: sqlite_utils.Database,
    root: Path,
    name: str,
    gguf: Path,
    base: dict[str, Any],
    config: dict[str, Any],
    metrics: dict[str, Any],
    run_dir: Path,
) -> dict[str, Any]:
    """Add (or replace) adapter ``name``; return its row as :func:`list_adapters` shows it."""
    m005_adapters(db)
    row = {
        "name": name,
        "path": _relative(gguf, root),
        "base_path": base["path"],
        "base_size": base["size"],
        "base_sha256": base["sha256"],
        "config": json.dumps(config, sort_keys=True),
        "metrics": json.dumps(metrics, sort_keys=True, default=str),
        "run_dir": _relative(run_dir, root),
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    with db.conn:
        db["adapters"].upsert(row, pk="name")
    return _public(row, None)


def _public(row: dict[str, Any], chosen: str | None) -> dict[str, Any]:
    return {
        "name": row["name"],
        "path": row["path"],
        "base": {"path": row["base_path"], "size": row["base_size"], "sha256": row["base_sha256"]},
        "config": json.loads(row["config"] or "{}"),
        "metrics": json.loads(row["metrics"] or "{}"),
        "run_dir": row["run_dir"],
        "created_at": row["created_at"],
        "in_use": row["name"] == chosen,
    }


def list_adapters(db: sqlite_utils.Database) -> list[dict[str, Any]]:
    """Every adapter, newest first, with whether drafting uses it."""
    if not db["adapters"].exists():
        return []
    chosen = get_setting(db, ADAPTER_KEY)
    return [_public(r, chosen) for r in db["adapters"].rows_where(order_by="created_at DESC, name")]


def use_adapter(db: sqlite_utils.Database, name: str) -> str | None:
    """Make ``name`` the default adapter for drafting; ``none`` drafts with the base model alone."""
    if name.lower() == NONE:
        set_setting(db, ADAPTER_KEY, None)
        return None
    if name not in adapter_names(db):
        raise AdapterError(
            f"No adapter named {name!r}. Your adapters: {', '.join(adapter_names(db)) or 'none'}.",
            cli="(Train one with: mailvoice train)",
        )
    set_setting(db, ADAPTER_KEY, name)
    return name


def chosen_adapter(db: sqlite_utils.Database, name: str | None) -> str | None:
    """The adapter a draft asks for: ``name``, else the one chosen; None for ``none`` or nothing."""
    if name is None:
        name = get_setting(db, ADAPTER_KEY)
    return None if not name or name.lower() == NONE else name


def default_adapter(db: sqlite_utils.Database) -> str | None:
    """The adapter chosen with ``mailvoice use``, else the newest registered one, else None."""
    chosen = get_setting(db, ADAPTER_KEY)
    if chosen or not db["adapters"].exists():
        return chosen or None
    row = db.execute("SELECT name FROM adapters ORDER BY created_at DESC, name LIMIT 1").fetchone()
    return row[0] if row else None


def stored_path(db: sqlite_utils.Database, name: str) -> Path:
    """Where adapter ``name``'s GGUF is (relative paths resolved against the data folder); it may be gone."""
    row = db.execute("SELECT path FROM adapters WHERE name = ?", [name]).fetchone() if db["adapters"].exists() else None
    if row is None:
        known = adapter_names(db)  # read only to say what there is
        if not known:  # nothing trained yet
            raise AdapterError(
                f"No adapter named {name!r}: no adapters are trained yet. Train one, or draft without one.",
                cli="(mailvoice train trains one; --adapter none drafts without one)",
            )
        raise AdapterError(
            f"No adapter named {name!r}. Your adapters: {', '.join(known)}; or draft without one.",
            cli="(mailvoice adapters lists them; --adapter none drafts without one)",
        )
    path = Path(row[0]).expanduser()
    if not path.is_absolute():  # stored relative to the data folder, which holds the database
        folder = db.execute("PRAGMA database_list").fetchone()[2]
        path = Path(folder).parent / path if folder else path
    return path
