"""The evaluation tables: drafts cached per (configuration, pair) so a stopped run resumes, and finished runs.

Tables are made by the ``m006_evals`` migration; :func:`ensure` applies it to stores opened without
migrations (tests, tools), as ``assistant.store.adapters`` does for adapters.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path
from typing import Any

import sqlite_utils

from assistant.store.migrations import m006_evals


def now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def ensure(db: sqlite_utils.Database) -> None:
    m006_evals(db)  # idempotent (if_not_exists)


def pair_hash(instruction: str, context: str, output: str) -> str:
    blob = json.dumps([instruction, context, output], ensure_ascii=False).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()[:32]


def cached_drafts(db: sqlite_utils.Database, config_key: str) -> dict[int, dict[str, Any]]:
    """pair id -> {pair_hash, text, examples, seconds} of the drafts already made with ``config_key``."""
    rows = db.execute(
        "SELECT pair_id, pair_hash, text, examples, seconds FROM eval_drafts WHERE config_key = ?", [config_key]
    )
    return {
        pid: {"pair_hash": h, "text": text, "examples": json.loads(ex or "[]"), "seconds": sec}
        for pid, h, text, ex, sec in rows
    }


def save_draft(
    db: sqlite_utils.Database, key: str, pair_id: int, digest: str, text: str, examples: list[int], seconds: float
) -> None:
    """Keep one evaluation draft; committed at once, so a killed run loses at most the draft in progress."""
    with db.conn:
        db.execute(
            "INSERT OR REPLACE INTO eval_drafts (config_key, pair_id, pair_hash, text, examples, seconds, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            [key, pair_id, digest, text, json.dumps(examples), round(seconds, 3), now()],
        )


def record(
    db: sqlite_utils.Database,
    *,
    kind: str,
    adapter: str | None,
    n: int,
    seed: int,
    config: list[dict[str, Any]],
    metrics: dict[str, Any],
    report_dir: Path,
    root: Path,
    seconds: float,
) -> int:
    """Add a finished evaluation to the ``evals`` table; return its id."""
    try:
        where = str(report_dir.resolve().relative_to(root.resolve()))
    except ValueError:
        where = str(report_dir.resolve())
    with db.conn:
        cursor = db.execute(
            "INSERT INTO evals (created_at, kind, adapter, n, seed, config, metrics, report_dir, seconds) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [now(), kind, adapter or "", n, seed, json.dumps(config, default=str),
             json.dumps(metrics, default=str), where, round(seconds, 3)],
        )  # fmt: skip
    return int(cursor.lastrowid)


def list_evals(db: sqlite_utils.Database, root: Path, adapter: str | None = None) -> list[dict[str, Any]]:
    """Finished evaluations, newest first (one adapter's when ``adapter`` is given; ``"none"``: the base's),
    with absolute ``json_path`` and ``html_path``."""
    ensure(db)
    sql, args = "SELECT * FROM evals", []
    if adapter is not None:
        sql += " WHERE adapter = ?"
        args.append("" if adapter.lower() == "none" else adapter)
    out = []
    for row in db.query(sql + " ORDER BY id DESC", args):
        folder = Path(row["report_dir"])
        folder = folder if folder.is_absolute() else root / folder
        out.append(
            {
                **row,
                "adapter": row["adapter"] or None,
                "config": json.loads(row["config"] or "[]"),
                "metrics": json.loads(row["metrics"] or "{}"),
                "json_path": str(folder / "report.json"),
                "html_path": str(folder / "report.html"),
            }
        )
    return out
