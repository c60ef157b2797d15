"""Which addresses are the user's: proposals from the archive, the stored choice, and re-labelling.

Evidence, strongest first: mail found in a Sent folder or with Gmail's Sent label; then what any archive
shows, even one without folders (a list archive, one mbox of everything): how often an address writes, how
often it answers mail addressed to it, which address its mail asks replies to go to (Reply-To), and the
addresses that share its display name. Choosing addresses (``mailvoice me``) re-labels every stored
message as sent or received, and re-classes it (see :func:`assistant.mail.identity.mail_class`).
"""

from __future__ import annotations

import email.utils
import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from typing import Any

import sqlite_utils

from assistant.errors import MailvoiceError
from assistant.mail.identity import (
    AUTOMATED,
    BULK_LIST,
    CLASSES,
    DISCUSSION,
    is_list_munged,
    is_list_software,
    normalize_address,
)
from assistant.store.adapters import adapter_names
from assistant.store.db import get_setting, set_setting

ME_KEY = "me"
_ADDRESS = re.compile(r"[^@\s<>()\[\],;:\"]+@[\w-]+(?:\.[\w-]+)*")


def _class_sql(mine: str = "sent_by_me") -> str:
    """The same rule as mail_class, over stored columns, with ``mine`` saying whether the user sent the message:
    the user's own posts to a list are theirs."""
    return (
        f"CASE WHEN ifnull(auto_reason, '') != '' AND auto_reason NOT LIKE '{DISCUSSION}%' "
        f"AND NOT ({mine} = 1 AND auto_reason LIKE '{BULK_LIST}%') THEN '{AUTOMATED}' "
        f"WHEN {mine} = 1 THEN 'yours' WHEN ifnull(list_id, '') != '' THEN 'list' ELSE 'received' END"
    )


CLASS_SQL = _class_sql()


def load_me(db: sqlite_utils.Database) -> list[str]:
    return list(get_setting(db, ME_KEY, []))


def own_addresses(values: Iterable[str]) -> list[str]:
    """The addresses in ``values`` ("ann@example.org" or "Ann <ann@example.org>"), lower-cased.

    Raises:
        MailvoiceError: a value holds no email address.
    """
    found = []
    for value in values:
        _name, addr = email.utils.parseaddr(value.strip())
        addr = addr.strip().lower()
        if not _ADDRESS.fullmatch(addr):
            raise MailvoiceError(
                f"{value.strip()!r} is not an email address: give addresses such as ann@example.org.",
                cli="(mailvoice identities lists those found in your mail)",
            )
        found.append(addr)
    return found


def relabel(db: sqlite_utils.Database, addresses: list[str]) -> int:
    """Store ``addresses`` as the user's and re-mark every message; return how many are sent by the user.

    Raises:
        MailvoiceError: one of ``addresses`` is not an email address (nothing is changed).
    """
    addresses = sorted(set(own_addresses(a for a in addresses if a.strip())))
    set_setting(db, ME_KEY, addresses)
    keys = sorted({normalize_address(a) for a in addresses})
    marks = ",".join(f"?{i}" for i in range(1, len(keys) + 1)) or "NULL"
    # A message in the Sent folder that lost its From header is still the user's.
    mine = f"(from_key IN ({marks}) OR (from_key = '' AND in_sent = 1 AND ?{len(keys) + 1}))"
    kind = _class_sql(mine)
    auto = f"({kind} = '{AUTOMATED}')"
    with db.conn:
        # Sent flag, class and automated flag in one statement: each changed row (and its recipients) once.
        db.execute(f"UPDATE messages SET sent_by_me = {mine}, mail_class = {kind}, automated = {auto} "
                   f"WHERE sent_by_me IS NOT {mine} OR mail_class IS NOT {kind} OR automated IS NOT {auto}",
                   [*keys, int(bool(keys))])  # fmt: skip
    return db.execute("SELECT COUNT(*) FROM messages WHERE sent_by_me = 1").fetchone()[0]


def _reclass(db: sqlite_utils.Database) -> None:
    """Class every message again from its stored columns; ``automated`` follows the class."""
    db.execute(f"UPDATE messages SET mail_class = {CLASS_SQL} WHERE mail_class IS NOT {CLASS_SQL}")
    auto = f"(mail_class = '{AUTOMATED}')"
    db.execute(f"UPDATE messages SET automated = {auto} WHERE automated IS NOT {auto}")


def class_list_threads(db: sqlite_utils.Database) -> int:
    """Mail that starts a thread on a list where people reply is discussion too; return how many were re-classed.

    One message cannot show it (many discussion lists, such as the kernel's, set no List-Post), but the
    archive can: run after each import.
    """
    with db.conn:
        changed = db.execute(
            f"UPDATE messages SET auto_reason = '{DISCUSSION}' || list_id "
            f"WHERE auto_reason LIKE '{BULK_LIST}%: no replies%' AND list_id IN ("  # not "sent by the list software"
            "SELECT DISTINCT list_id FROM messages WHERE list_id != '' AND mail_class IN ('list', 'yours') "
            "AND (ifnull(in_reply_to, '') != '' OR ifnull(refs, '') != ''))"
        ).rowcount
        if changed:
            _reclass(db)
    return changed


def unmatched(db: sqlite_utils.Database, addresses: Iterable[str]) -> list[str]:
    """The ``addresses`` that no stored message is from (a typo, or mail not imported yet)."""
    found = "SELECT 1 FROM messages WHERE from_key = ? LIMIT 1"
    return [a for a in addresses if not db.execute(found, [normalize_address(a)]).fetchone()]


def propose(db: sqlite_utils.Database, limit: int = 10) -> list[dict[str, Any]]:
    """Candidate own addresses, best first, each with counts and the reasons it is proposed.

    Machine senders (mostly automated mail) and a list's own address are never proposed.
    """
    senders = _senders(db)
    answered = _answered(db)
    replies_to = _reply_to_links(db, senders)
    total_sent_folder = sum(s["in_sent"] for s in senders.values())
    total = db.execute("SELECT COUNT(*) FROM messages").fetchone()[0]
    me = {normalize_address(a) for a in load_me(db)}
    out = []
    for key, s in senders.items():
        if s["automated"] >= s["messages"] / 2 or s["list_address"]:
            continue  # no-reply senders, bulk mail and the list itself are never the user
        reasons = []
        if s["in_sent"]:
            share = f" ({s['in_sent'] / total_sent_folder:.0%} of it)" if total_sent_folder else ""
            reasons.append(f"sent {s['in_sent']} messages found in a Sent folder or with a Sent label{share}")
        if s["messages"]:
            share = f"{s['messages'] / total:.0%}" if s["messages"] >= total / 200 else "under 1%"
            reasons.append(f"sender of {s['messages']} messages ({share} of all)")
        if s["list_reply_to"]:  # how a list that rewrites From ("Ann via Dev") still shows who wrote
            reasons.append(f"named by Reply-To in {s['list_reply_to']} of its list posts")
        if answered.get(key):
            reasons.append(f"answered {answered[key]} messages addressed to it")
        reasons += [f"Reply-To of {n} messages from {other}" for other, n in replies_to["to"].get(key, [])]
        reasons += [f"asks for replies at {other} in {n} messages" for other, n in replies_to["from"].get(key, [])]
        out.append({"address": s["address"], "name": s["name"], "messages": s["messages"], "in_sent": s["in_sent"],
                    "answered": answered.get(key, 0), "chosen": key in me, "reasons": reasons})  # fmt: skip
    out.sort(key=_strength, reverse=True)
    links = [(a, b) for a, targets in replies_to["from"].items() for b, _n in targets]
    out = _by_person(out, links)[:limit]
    _mark_aliases(out)
    return out


def _strength(c: dict[str, Any]) -> tuple[int, int]:
    """Sent-folder evidence first; then mail written, where answering mail addressed to one counts double."""
    return c["in_sent"], c["messages"] + c["answered"]


def _by_person(candidates: list[dict[str, Any]], links: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """Group the addresses of one person (the same display name, or one asking for replies at the other), rank
    people by their addresses' evidence together, and keep each person's addresses next to each other."""
    index = {normalize_address(c["address"]): i for i, c in enumerate(candidates)}
    parent = list(range(len(candidates)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    by_name: dict[str, int] = {}
    for i, c in enumerate(candidates):
        name = _same_name_key(c["name"])
        if name:
            parent[root(i)] = root(by_name.setdefault(name, i))
    for a, b in links:
        if a in index and normalize_address(b) in index:
            parent[root(index[normalize_address(b)])] = root(index[a])
    groups: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for i, c in enumerate(candidates):  # already best first: each group keeps that order
        groups[root(i)].append(c)

    def group_strength(members: list[dict[str, Any]]) -> tuple[int, int]:
        return tuple(sum(x) for x in zip(*(_strength(c) for c in members), strict=True))  # type: ignore[return-value]

    return [c for members in sorted(groups.values(), key=group_strength, reverse=True) for c in members]


def _same_name_key(name: str) -> str:
    """A display name folded for comparison; "" for names that say nothing about a person."""
    folded = " ".join(name.casefold().replace('"', "").split())
    return folded if len(folded) > 2 and "@" not in folded else ""


def _senders(db: sqlite_utils.Database) -> dict[str, dict[str, Any]]:
    """Per sender key: its address, most used name, counts, and whether it is a list's own address."""
    lists = {lid.lower() for (lid,) in db.execute("SELECT DISTINCT list_id FROM messages WHERE list_id != ''")}
    senders: dict[str, dict[str, Any]] = {}
    names: dict[str, Counter] = defaultdict(Counter)
    rows = db.execute(
        "SELECT from_key, min(from_addr), from_name, COUNT(*), ifnull(SUM(in_sent), 0), ifnull(SUM(automated), 0), "
        "SUM(list_id != '' AND lower(ifnull(reply_to, '')) = from_addr) "
        "FROM messages WHERE from_key != '' GROUP BY from_key, from_name"
    )
    for key, addr, name, count, in_sent, automated, list_reply_to in rows:
        s = senders.setdefault(key, {"address": addr, "messages": 0, "in_sent": 0, "automated": 0, "munged": 0,
                                     "list_reply_to": 0})  # fmt: skip
        s["messages"] += count
        s["in_sent"] += in_sent
        s["automated"] += automated
        s["list_reply_to"] += list_reply_to or 0
        if is_list_munged(name):
            s["munged"] += count
        names[key][name or ""] += count
    for key, s in senders.items():
        named = [n for n, _ in names[key].most_common() if n]
        s["name"] = named[0] if named else ""
        # "Ann via Dev" <dev@lists…> with no Reply-To: the list's address, not a person's.
        s["list_address"] = (
            key.replace("@", ".", 1) in lists or is_list_software(s["address"]) or s["munged"] >= s["messages"] / 2
        )
    return senders


def _answered(db: sqlite_utils.Database) -> dict[str, int]:
    """Per sender key: how many of its messages answer a stored message that was addressed to it."""
    rows = db.execute(
        "SELECT m.from_key, COUNT(*) FROM messages m JOIN messages p ON p.message_id = m.in_reply_to "
        "WHERE m.from_key != '' AND m.from_addr != '' AND p.from_key != m.from_key "
        "AND (instr(lower(p.to_json), '\"' || lower(m.from_addr) || '\"') "
        "OR instr(lower(p.cc_json), '\"' || lower(m.from_addr) || '\"')) GROUP BY m.from_key"
    )
    return dict(rows.fetchall())


def _reply_to_links(db: sqlite_utils.Database, senders: dict[str, dict[str, Any]]) -> dict[str, dict[str, list]]:
    """Senders whose mail asks for replies at another person's address: one person's two addresses.

    Returns ``{"from": {sender key: [(reply-to address, n)]}, "to": {reply-to key: [(sender address, n)]}}``;
    a list's own address on either side (lists that set Reply-To to themselves) is no evidence.
    """
    links: dict[str, dict[str, list]] = {"from": defaultdict(list), "to": defaultdict(list)}
    rows = db.execute(
        "SELECT from_key, min(from_addr), lower(reply_to), COUNT(*) FROM messages "
        "WHERE from_key != '' AND ifnull(reply_to, '') != '' AND lower(reply_to) != from_addr "
        "GROUP BY from_key, lower(reply_to) ORDER BY COUNT(*) DESC"
    )
    for key, addr, reply_to, n in rows:
        other = normalize_address(reply_to)
        sender, target = senders.get(key), senders.get(other)
        if other == key or not sender or sender["list_address"] or (target and target["list_address"]):
            continue
        if is_list_software(reply_to) or (target is None and n < 2):
            continue  # one stray Reply-To to an address that never writes says little
        links["from"][key].append((reply_to, n))
        links["to"][other].append((addr, n))
    return links


def _mark_aliases(candidates: list[dict[str, Any]]) -> None:
    """Say when a candidate shares its display name with a better one: probably one person's two addresses."""
    for i, c in enumerate(candidates):
        name = _same_name_key(c["name"])
        others = [o for o in candidates if o is not c and name and _same_name_key(o["name"]) == name]
        if others:
            better = [o for o in candidates[:i] if o in others]
            c["reasons"].append(f"same name as {(better or others)[0]['address']}: probably an alias")


def adopt_if_obvious(db: sqlite_utils.Database) -> bool:
    """With no address chosen yet, take the one that clearly owns the Sent folder; True if adopted.

    Conservative: an archive without a Sent folder or Sent labels adopts nothing (the most frequent sender
    of a list archive is not necessarily its owner), and neither a list's own address nor a machine sender
    is ever adopted (:func:`propose` leaves them out).
    """
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

    classes = dict.fromkeys(CLASSES, 0)
    classes.update(
        (kind, n)
        for kind, n in db.execute("SELECT mail_class, COUNT(*) FROM messages GROUP BY mail_class")
        if kind in classes
    )
    return {
        "messages": count("SELECT COUNT(*) FROM messages"),
        "sent": count("SELECT COUNT(*) FROM messages WHERE sent_by_me = 1"),
        "received": count("SELECT COUNT(*) FROM messages WHERE sent_by_me = 0"),
        "automated": count("SELECT COUNT(*) FROM messages WHERE automated = 1"),
        "classes": classes,  # yours | received (person to person) | list (discussion lists) | automated
        "threads": count("SELECT COUNT(DISTINCT thread_id) FROM messages"),
        "pairs": count("SELECT COUNT(*) FROM pairs"),
        "drafts": count("SELECT COUNT(*) FROM drafts"),
        "adapters": len(adapter_names(db)),
        "skipped": count("SELECT COUNT(*) FROM skipped"),
        "import_runs": count("SELECT COUNT(*) FROM import_runs"),
        "me": load_me(db),
        "date_range": list(db.execute("SELECT min(date), max(date) FROM messages").fetchone()),
        "folders": dict(db.execute(
            "SELECT folder, COUNT(*) FROM messages GROUP BY folder ORDER BY COUNT(*) DESC LIMIT 20").fetchall()),
    }  # fmt: skip
