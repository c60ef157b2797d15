"""Schema migrations as named functions, applied once each and recorded in ``_migrations``.

Add a new ``@migration`` function at the end to change the schema; never edit one that has shipped.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable

import sqlite_utils

from assistant.store.recipients import INSERT, _recipient_rows, insert_trigger_sql, set_indexed_upto

MIGRATIONS: list[Callable[[sqlite_utils.Database], None]] = []


def migration(fn: Callable[[sqlite_utils.Database], None]) -> Callable[[sqlite_utils.Database], None]:
    MIGRATIONS.append(fn)
    return fn


def _pending(db: sqlite_utils.Database) -> list[Callable[[sqlite_utils.Database], None]]:
    if "_migrations" not in db.table_names():
        return list(MIGRATIONS)
    done = {row[0] for row in db.execute("SELECT name FROM _migrations")}
    return [fn for fn in MIGRATIONS if fn.__name__ not in done]


def apply(db: sqlite_utils.Database) -> list[str]:
    """Apply every migration not yet applied; return the names applied now.

    Safe when several threads or processes open a new database at once (the app's pages, a worker): the
    first takes the write lock (``BEGIN IMMEDIATE``) and the others wait for it, then find the work done.
    """
    if not _pending(db):
        return []
    db.conn.execute("BEGIN IMMEDIATE")  # waits (busy timeout) while another connection migrates
    try:
        db["_migrations"].create({"name": str, "applied_at": str}, pk="name", if_not_exists=True)
        applied = []
        for fn in _pending(db):  # read again under the lock: another connection may have applied them
            # All or nothing per migration: a kill part-way must not leave tables without the record of
            # their migration (the next start would fail on "table already exists").
            with db.atomic():
                fn(db)
                db["_migrations"].insert({"name": fn.__name__, "applied_at": dt.datetime.now(dt.UTC).isoformat()})
            applied.append(fn.__name__)
        db.conn.execute("COMMIT")
    except BaseException:
        if db.conn.in_transaction:
            db.conn.execute("ROLLBACK")
        raise
    return applied


@migration
def m001_messages(db: sqlite_utils.Database) -> None:
    db["messages"].create(
        {
            "id": int,
            "message_id": str,  # without <>; synthesised from the content hash when missing
            "thread_id": str,
            "in_reply_to": str,
            "refs": str,  # space-separated Message-IDs from References
            "date": str,  # ISO 8601, UTC; NULL when the message has no usable date
            "from_name": str,
            "from_addr": str,  # the real author (list-munged senders resolved through Reply-To)
            "from_key": str,  # from_addr normalised (case, +tags, Gmail dots): what "me" is matched on
            "to_json": str,  # JSON [[name, addr], ...]
            "cc_json": str,
            "reply_to": str,
            "subject": str,
            "body": str,  # the author's own words, sign-off kept
            "quoted": str,
            "signature": str,
            "is_forward": int,
            "folder": str,
            "labels": str,  # JSON list, merged over duplicate copies
            "sent_by_me": int,
            "in_sent": int,  # found in a Sent folder or with a Sent label (evidence for identities)
            "automated": int,
            "auto_reason": str,
            "list_id": str,
            "has_html": int,
            "attachments": str,  # JSON list of file names (content is never stored)
            "content_hash": str,
            "size": int,
            "truncated": int,
            "notes": str,  # what the importer had to repair (guessed charset, broken MIME...)
            "source_file": str,
            "source_offset": int,
            "import_run": int,
        },
        pk="id",
    )
    db["messages"].create_index(["message_id"], unique=True)
    db["messages"].create_index(["content_hash"])
    db["messages"].create_index(["thread_id"])
    db["messages"].create_index(["from_key"])
    db["messages"].create_index(["sent_by_me", "date"])
    # Full-text search over subject and the user's words. New rows are indexed in bulk after each
    # import (assistant.store.fts.index_pending: three times faster than a per-row trigger); the
    # triggers, written by hand rather than by sqlite-utils, keep deletes and subject/body edits in
    # step, and leave re-labelling and threading (which touch every row) alone.
    db.executescript(
        """
        CREATE VIRTUAL TABLE messages_fts USING fts5(subject, body, content='messages', content_rowid='id');
        CREATE TRIGGER messages_ad AFTER DELETE ON messages BEGIN
            INSERT INTO messages_fts(messages_fts, rowid, subject, body)
                VALUES ('delete', old.id, old.subject, old.body);
        END;
        CREATE TRIGGER messages_au AFTER UPDATE OF subject, body ON messages BEGIN
            INSERT INTO messages_fts(messages_fts, rowid, subject, body)
                VALUES ('delete', old.id, old.subject, old.body);
            INSERT INTO messages_fts(rowid, subject, body) VALUES (new.id, new.subject, new.body);
        END;
        """
    )


@migration
def m002_imports(db: sqlite_utils.Database) -> None:
    db["import_runs"].create(
        {
            "id": int,
            "started_at": str,
            "finished_at": str,
            "status": str,  # running | done | cancelled | interrupted | failed
            "paths": str,
            "seen": int,
            "imported": int,
            "duplicates": int,
            "skipped": int,
            "sent_by_me": int,
            "in_sent": int,  # found in a Sent folder or with a Sent label (evidence for identities)
            "seconds": float,
        },
        pk="id",
    )
    db["skipped"].create({"id": int, "run_id": int, "location": str, "reason": str}, pk="id")
    db["skipped"].create_index(["run_id"])
    # One row per source file: how far import got (resume point) and whether it finished.
    db["import_files"].create(
        {"path": str, "size": int, "mtime_ns": int, "kind": str, "offset": int, "done": int, "messages": int},
        pk="path",
    )
    db["settings"].create({"key": str, "value": str}, pk="key")


@migration
def m003_drafts(db: sqlite_utils.Database) -> None:
    db["drafts"].create(
        {
            "id": int,
            "instruction": str,
            "context_kind": str,  # "message" (a stored email answered), "file" (an .eml answered) or ""
            "context": str,  # the Message-ID or file path of the email answered
            "recipient": str,  # --to address, if given
            "subject": str,  # when the model wrote a "Subject:" line (removed from text)
            "text": str,  # the cleaned draft
            "model": str,  # GGUF file name
            "adapter": str,  # adapter name, "" for none
            "params": str,  # JSON: sampling, seed, tone, length, example ids, prompt versions, notices
            "created_at": str,  # ISO 8601 UTC
            "seconds": float,
            "tokens": int,
        },
        pk="id",
    )
    db["drafts"].create_index(["created_at"])


@migration
def m004_pairs(db: sqlite_utils.Database) -> None:
    # Training pairs (instruction -> email). Texts are stored as written; the privacy scrub is applied
    # whenever they are shown, exported or trained on, so changing the scrub settings needs no rebuild.
    db["pairs"].create(
        {
            "id": int,
            "message_id": str,  # the sent email (NULL for imported pairs)
            "thread_id": str,  # the split keeps whole threads on one side
            "instruction": str,
            "input": str,  # context: the email answered, trimmed ("" for none)
            "output": str,  # the email
            "split": str,  # train | validation
            "split_fixed": int,  # 1: the split came with an imported dataset and is kept
            "status": str,  # ok | excluded
            "source": str,  # built | imported | edited
            "origin": str,  # imported: "FILE row N"
            "flags": str,  # JSON list: fallback, retried, context_trimmed, ...
            "scrubbed": str,  # JSON {placeholder kind: count} under the scrub settings when written
            "generated_instruction": str,  # the model's instruction, kept when the user edits it
            "tries": int,
            "prompt_version": int,
            "model": str,  # model identity (file name, size, header hash)
            "cache_key": str,
            "created_at": str,
            "updated_at": str,
        },
        pk="id",
    )
    db.execute("CREATE UNIQUE INDEX idx_pairs_message ON pairs(message_id) WHERE message_id IS NOT NULL")
    db["pairs"].create_index(["cache_key"])
    db["pairs"].create_index(["split", "status"])
    # Instructions by cache key (content + prompt version + model): switching models back, or a pair's
    # email coming back after an exclusion, costs no generation.
    db["pair_cache"].create(
        {
            "cache_key": str,
            "instruction": str,
            "flags": str,
            "tries": int,
            "prompt_tokens": int,
            "completion_tokens": int,
            "seconds": float,
            "created_at": str,
        },
        pk="cache_key",
    )


@migration
def m005_adapters(db: sqlite_utils.Database) -> None:
    """Trained LoRA adapters, registered by ``mailvoice train`` (see assistant/store/adapters.py)."""
    db["adapters"].create(
        {
            "name": str,  # what `mailvoice use` and `draft --adapter` take
            "path": str,  # the llama.cpp LoRA GGUF, relative to the data folder when inside it
            "base_path": str,  # the base model trained on (an adapter works on that exact model only)
            "base_size": int,
            "base_sha256": str,  # of the GGUF's header (see trainer.base_model.identify)
            "config": str,  # JSON: the resolved TrainConfig
            "metrics": str,  # JSON: steps, train_loss, eval_loss, seconds, parity...
            "run_dir": str,  # the run folder (checkpoints, metrics.jsonl), relative to the data folder
            "created_at": str,
        },
        pk="name",
        if_not_exists=True,
    )


@migration
def m006_evals(db: sqlite_utils.Database) -> None:
    """Evaluation runs and the drafts they made (see trainer/evaluation/)."""
    db["evals"].create(
        {
            "id": int,
            "created_at": str,
            "kind": str,  # eval (one configuration) | ablations (base, examples, adapter, adapter + examples)
            "adapter": str,  # the adapter evaluated, "" for the base model only
            "n": int,  # validation pairs scored
            "seed": int,
            "config": str,  # JSON: each configuration evaluated (model, adapter, examples, limit...)
            "metrics": str,  # JSON: {configuration label: metrics}
            "report_dir": str,  # report.json and report.html, relative to the data folder
            "seconds": float,
        },
        pk="id",
        if_not_exists=True,
    )
    # Drafts made for evaluation, kept apart from the user's drafts: a stopped evaluation resumes from them.
    db["eval_drafts"].create(
        {
            "config_key": str,  # hash of what a draft depends on: model, adapter, examples, seed, prompts
            "pair_id": int,
            "pair_hash": str,  # of the pair's instruction, input and output: an edited pair is drafted again
            "text": str,
            "examples": str,  # JSON list of the message ids shown as style examples
            "seconds": float,
            "created_at": str,
        },
        pk=("config_key", "pair_id"),
        if_not_exists=True,
    )


@migration
def m007_mail_class(db: sqlite_utils.Database) -> None:
    """What each message is: ``yours``, ``received``, ``list`` (a person writing to a discussion list) or
    ``automated`` (machine-sent or bulk). Stored mail is classed from its stored columns; ``automated`` follows
    the class, so discussion-list mail is no longer automated."""
    db["messages"].add_column("mail_class", str, not_null_default="")
    software = re.compile(r"-(?:request|owner|bounces?|admin|leave|join|(?:un)?subscribe)(?:[+][^@]*)?@", re.I)
    # A list where people reply is a discussion list: its mail without replies starts a thread.
    reply = "(ifnull(in_reply_to, '') != '' OR ifnull(refs, '') != '')"
    lists_with_replies = (
        f"SELECT DISTINCT list_id FROM messages WHERE list_id != '' AND {reply} "
        "AND (auto_reason LIKE 'mailing list %' OR auto_reason IN ('Precedence: bulk', 'Precedence: junk'))"
    )
    discussion = {lid for (lid,) in db.execute(lists_with_replies)}
    reasons = []
    for rid, lid, replying, sender in db.execute(
        f"SELECT id, list_id, {reply}, ifnull(from_addr, '') "
        "FROM messages WHERE list_id != '' "
        "AND (auto_reason LIKE 'mailing list %' OR auto_reason IN ('Precedence: bulk', 'Precedence: junk'))"
    ).fetchall():
        if software.search(sender):
            reasons.append((f"bulk list mail {lid}: sent by the list software", rid))
        elif replying or lid in discussion:
            reasons.append((f"mailing list {lid}", rid))
        else:
            reasons.append((f"bulk list mail {lid}: no replies on this list", rid))
    db.conn.executemany("UPDATE messages SET auto_reason = ? WHERE id = ?", reasons)
    db.execute(
        "UPDATE messages SET mail_class = CASE "
        "WHEN ifnull(auto_reason, '') != '' AND auto_reason NOT LIKE 'mailing list %' "
        "AND NOT (sent_by_me = 1 AND auto_reason LIKE 'bulk list mail %') THEN 'automated' "
        "WHEN sent_by_me = 1 THEN 'yours' WHEN ifnull(list_id, '') != '' THEN 'list' ELSE 'received' END"
    )
    auto = "(mail_class = 'automated')"
    db.execute(f"UPDATE messages SET automated = {auto} WHERE automated IS NOT {auto}")


@migration
def m008_recipients(db: sqlite_utils.Database) -> None:
    """Who the user wrote to: an index of the addresses in To and Cc of the user's own mail (not machine
    mail, not forwards), so the first draft to someone finds their mail without reading every message.

    Triggers keep it in step with every writer (the importer, ``mailvoice me`` re-marking mail, forgetting),
    so none of them needs to know it exists; rows are added only for the user's mail, which keeps the
    import of received mail at the cost of one WHEN test per message.
    """
    changed = " OR ".join(
        f"old.{c} IS NOT new.{c}" for c in ("sent_by_me", "automated", "is_forward", "to_json", "cc_json", "date")
    )
    statements = [
        """CREATE TABLE sent_recipients (
            address TEXT NOT NULL,  -- lower case
            date TEXT NOT NULL,  -- the message's, '' when unknown: newest first without reading messages
            message INTEGER NOT NULL,  -- messages.id
            domain TEXT NOT NULL,  -- after the @
            name TEXT NOT NULL,  -- the display name written with the address in that message
            PRIMARY KEY (address, date, message)
        ) WITHOUT ROWID""",
        # The mail stored before this migration, in key order and before the other indexes exist: twice as
        # fast as in storage order (3.8 s -> 1.8 s of CPU for 100,000 sent emails).
        f"{INSERT} {_recipient_rows('m', 'messages m')} ORDER BY 1, 2, 3",
        "CREATE INDEX sent_recipients_domain ON sent_recipients(domain, date, message)",
        "CREATE INDEX sent_recipients_message ON sent_recipients(message)",
        insert_trigger_sql(),  # dropped by m012_recipients_in_bulk
        """CREATE TRIGGER sent_recipients_ad AFTER DELETE ON messages BEGIN
            DELETE FROM sent_recipients WHERE message = old.id;
        END""",
        f"""CREATE TRIGGER sent_recipients_au AFTER UPDATE OF sent_by_me, automated, is_forward, to_json, cc_json,
        date ON messages WHEN {changed} BEGIN
            DELETE FROM sent_recipients WHERE message = old.id;
            {INSERT} {_recipient_rows("new")};
        END""",
    ]
    for statement in statements:  # one by one: executescript would commit the migration's transaction
        db.execute(statement)


@migration
def m009_import_window(db: sqlite_utils.Database) -> None:
    # The dates each file was read with (first day, day after the last; "" = open-ended), so that a file read
    # with --since is read again when wider dates are asked for. NULL on files imported before this: not known,
    # so they are read once more (duplicates are recognised; only mail missed before is added).
    db.execute("ALTER TABLE import_files ADD COLUMN read_since TEXT")
    db.execute("ALTER TABLE import_files ADD COLUMN read_before TEXT")


@migration
def m010_draft_flags(db: sqlite_utils.Database) -> None:
    """Why a saved draft looks unfinished (see assistant/drafting/incomplete.py): "" for a whole email."""
    db.execute("ALTER TABLE drafts ADD COLUMN flag TEXT NOT NULL DEFAULT ''")


@migration
def m011_browse_order(db: sqlite_utils.Database) -> None:
    """The Mail page lists mail newest first, all of it or one class at a time, a page at a time: with these
    indexes a page is read in a millisecond at 100,000 messages instead of sorting them all (bench/browse_bench.py).
    Each index ends with the row id, so ``ORDER BY date DESC, id DESC`` is read straight from it."""
    db["messages"].create_index(["date"], index_name="messages_date")
    db["messages"].create_index(["mail_class", "date"], index_name="messages_class_date")


@migration
def m012_recipients_in_bulk(db: sqlite_utils.Database) -> None:
    """New mail joins the recipients index in bulk after it is stored (assistant/store/recipients.py), no
    longer by a trigger on each insert, which nearly doubled the CPU time of storing mail. The update and
    delete triggers stay (re-marking mail with ``mailvoice me``, deletes). Every stored message was indexed by
    the insert trigger, so the high-water mark starts at the newest."""
    db.execute("DROP TRIGGER IF EXISTS sent_recipients_ai")
    newest = db.execute("SELECT max(id) FROM messages").fetchone()[0] or 0
    set_indexed_upto(db, newest)


@migration
def m013_corrections(db: sqlite_utils.Database) -> None:
    """What the user did with a draft (assistant/drafting/corrections.py): one row per draft, the model's text
    and the text the user kept, how far apart they are, and whether it is left out of training."""
    db["corrections"].create(
        {
            "id": int,
            "draft_id": int,
            "instruction": str,
            "context_kind": str,
            "context": str,
            "recipient": str,
            "model_text": str,
            "final_text": str,
            "kind": str,  # accepted / small / rewrite
            "distance": float,
            "how": str,  # saved / copied / opened
            "model": str,
            "adapter": str,
            "prompts": str,  # JSON: the prompt versions the draft was written with
            "created_at": str,
            "updated_at": str,
            "excluded": int,
        },
        pk="id",
        not_null={"draft_id", "model_text", "final_text", "kind", "created_at", "updated_at"},
        defaults={"excluded": 0, "instruction": "", "context_kind": "", "context": "", "recipient": "",
                  "how": "saved", "model": "", "adapter": "", "prompts": "{}"},  # fmt: skip
    )
    db["corrections"].create_index(["draft_id"], unique=True)
    db["corrections"].create_index(["updated_at"])


@migration
def m014_correction_reply_source(db: sqlite_utils.Database) -> None:
    """A correction keeps the text of the email its draft answered (``context``, as a pair's input) and, here,
    where that email came from (its Message-ID, or the .eml file)."""
    db.execute("ALTER TABLE corrections ADD COLUMN reply_source TEXT NOT NULL DEFAULT ''")


@migration
def m015_triage(db: sqlite_utils.Database) -> None:
    """The inbox: each message's category, suggested folder, events and tasks, kept so that only new mail is
    triaged again (``version`` says which rules made a row; older rows are made again)."""
    db["triage"].create(
        {
            "message_id": int,  # messages.id
            "category": str,
            "confidence": float,
            "reason": str,
            "category_source": str,  # rules | model
            "filing": str,  # JSON: {"folder", "sure", "top": [{"folder", "p"}]}, or null with no filing model
            "events": str,  # JSON list, each valid against resources/schemas/inbox-items.schema.json
            "tasks": str,  # JSON list
            "extraction": str,  # JSON: where the items came from and what was dropped
            "reply_draft": int,  # drafts.id of the reply proposed for it (mail that needs a reply), or null
            "version": int,
            "triaged_at": str,
        },
        pk="message_id",
    )  # no foreign key: a message deleted later leaves a row no query joins to, removed at the next triage
    db["triage"].create_index(["category"])
