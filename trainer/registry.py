"""The ``adapters`` table: trained adapters by name, with their base model, resolved config and metrics.

Drafting (``assistant.drafting.models.resolve_adapter``) reads ``name`` and ``path`` (relative to the data
folder, or absolute); ``mailvoice use NAME`` stores the default in the ``adapter`` setting.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import sqlite_utils

from assistant.drafting.models import ADAPTER_KEY, AdapterError
from assistant.store.db import get_setting, set_setting
from assistant.store.migrations import m005_adapters  # idempotent: safe on stores opened by hand


def _relative(path: Path, root: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(root.resolve()))
    except ValueError:
        return str(Path(path).resolve())


def unique_name(db: sqlite_utils.Database, wanted: str) -> str:
    m005_adapters(db)
    taken = {r[0] for r in db.execute("SELECT name FROM adapters")}
    name, n = wanted, 2
    while name in taken or name.lower() == "none":
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
    m005_adapters(db)
    chosen = get_setting(db, ADAPTER_KEY)
    return [_public(r, chosen) for r in db["adapters"].rows_where(order_by="created_at DESC, name")]


def use_adapter(db: sqlite_utils.Database, name: str) -> str | None:
    """Make ``name`` the default adapter for drafting; ``none`` drafts with the base model alone."""
    m005_adapters(db)
    if name.lower() == "none":
        set_setting(db, ADAPTER_KEY, None)
        return None
    if db.execute("SELECT 1 FROM adapters WHERE name = ?", [name]).fetchone() is None:
        known = [r[0] for r in db.execute("SELECT name FROM adapters ORDER BY name")]
        raise AdapterError(
            f"No adapter named {name!r}. Your adapters: {', '.join(known) or 'none'}.",
            cli="(Train one with: mailvoice train)",
        )
    set_setting(db, ADAPTER_KEY, name)
    return name
