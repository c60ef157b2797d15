"""Which addresses are the user's: proposals from the archive, the stored choice, and re-labelling.

Evidence, strongest first: mail found in a Sent folder or with Gmail's Sent label, then how often an
address sends. Addresses that share the display name of a strong candidate are proposed as aliases.
Choosing addresses (``mailvoice me``) re-labels every stored message as sent or received.
"""

from __future__ import annotations

from typing import Any

import sqlite_utils

from assistant.mail.identity import normalize_address
from assistant.store.db import get_setting, set_setting

ME_KEY = "me"


def load_me(db: sqlite_utils.Database) -> list[str]:
    return list(get_setting(db, ME_KEY, []))


def relabel(db: sqlite_utils.Database, addresses: list[str]) -> int:
    """Store ``addresses`` as the user's and re-mark every message; return how many are sent by the user."""
    addresses = sorted({a.strip().lower() for a in addresses if a.strip()})
    set_setting(db, ME_KEY, addresses)
    keys = sorted({normalize_address(a) for a in addresses})
    marks = ",".join("?" * len(keys)) or "NULL"
    with db.conn:
        # A message in the Sent folder that lost its From header is still the user's.
        mine = f"(from_key IN ({marks}) OR (from_key = '' AND in_sent = 1 AND ?))"
        db.execute(f"UPDATE messages SET sent_by_me = {mine} WHERE sent_by_me IS NOT {mine}",
                   [*keys, int(bool(keys))] * 2)  # fmt: skip
        # List traffic is not the user's voice, except the user's own posts to the list.
        auto = "(auto_reason != '' AND NOT (auto_reason LIKE 'mailing list %' AND sent_by_me = 1))"
        db.execute(f"UPDATE messages SET automated = {auto} WHERE automated IS NOT {auto}")
    return db.execute("SELECT COUNT(*) FROM messages WHERE sent_by_me = 1").fetchone()[0]


def propose(db: sqlite_utils.Database, limit: int = 10) -> list[dict[str, Any]]:
    """Candidate own addresses, best first, each with counts and the reasons it is proposed."""
    total_sent_folder = db.execute("SELECT COUNT(*) FROM messages WHERE in_sent = 1").fetchone()[0]
    rows = db.execute(
        "SELECT from_key, min(from_addr), max(from_name), COUNT(*), SUM(in_sent), SUM(automated) "
        "FROM messages WHERE from_key != '' GROUP BY from_key "
        "ORDER BY SUM(in_sent) DESC, COUNT(*) DESC LIMIT ?",
        [limit * 3],
    ).fetchall()
    me = {normalize_address(a) for a in load_me(db)}
    out: list[dict[str, Any]] = []
    for key, addr, name, count, in_sent, automated in rows:
        reasons = []
        if in_sent:
            share = f" ({in_sent / total_sent_folder:.0%} of it)" if total_sent_folder else ""
            reasons.append(f"sent {in_sent} messages found in a Sent folder or with a Sent label{share}")
        if automated and automated >= count / 2:
            continue  # no-reply senders and bulk mail are never the user
        reasons.append(f"sender of {count} messages")
        out.append({"address": addr, "name": name or "", "messages": count, "in_sent": in_sent or 0,
                    "chosen": key in me, "reasons": reasons})  # fmt: skip
    _mark_aliases(out)
    out.sort(key=lambda c: (c["in_sent"], c["messages"]), reverse=True)
    return out[:limit]


def _mark_aliases(candidates: list[dict[str, Any]]) -> None:
    strong = [c for c in candidates if c["in_sent"]]
    for c in candidates:
        for s in strong:
            if c is not s and c["name"] and c["name"].lower() == s["name"].lower():
                c["reasons"].append(f"same name as {s['address']}: probably an alias")
                break


def adopt_if_obvious(db: sqlite_utils.Database) -> bool:
    """With no address chosen yet, take the one that clearly owns the Sent folder; True if adopted."""
    candidates = propose(db, limit=3)
    if not candidates or not candidates[0]["in_sent"]:
        return False
    top = candidates[0]
    total = db.execute("SELECT COUNT(*) FROM messages WHERE in_sent = 1").fetchone()[0]
    if top["in_sent"] < 2 or top["in_sent"] < 0.5 * total:
        return False
    relabel(db, [top["address"]])
    return True


def stats(db: sqlite_utils.Database) -> dict[str, Any]:
    def count(sql: str) -> int:
        table = sql.split(" FROM ")[1].split()[0]
        if not db[table].exists():  # tables later features add (pairs, drafts, adapters)
            return 0
        return db.execute(sql).fetchone()[0] or 0

    return {
        "messages": count("SELECT COUNT(*) FROM messages"),
        "sent": count("SELECT COUNT(*) FROM messages WHERE sent_by_me = 1"),
        "received": count("SELECT COUNT(*) FROM messages WHERE sent_by_me = 0"),
        "automated": count("SELECT COUNT(*) FROM messages WHERE automated = 1"),
        "threads": count("SELECT COUNT(DISTINCT thread_id) FROM messages"),
        "pairs": count("SELECT COUNT(*) FROM pairs"),
        "drafts": count("SELECT COUNT(*) FROM drafts"),
        "adapters": count("SELECT COUNT(*) FROM adapters"),
        "skipped": count("SELECT COUNT(*) FROM skipped"),
        "import_runs": count("SELECT COUNT(*) FROM import_runs"),
        "me": load_me(db),
        "date_range": list(db.execute("SELECT min(date), max(date) FROM messages").fetchone()),
        "folders": dict(db.execute(
            "SELECT folder, COUNT(*) FROM messages GROUP BY folder ORDER BY COUNT(*) DESC LIMIT 20").fetchall()),
    }  # fmt: skip
