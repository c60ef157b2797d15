"""Replies ready in the user's voice for the newest mail that needs one (never sent anywhere).

Each is an ordinary saved draft made by the drafting core's reply path (the email answered, the user's adapter
and examples), linked from the message's triage row so that it is made once: a run that stops keeps the
drafts already written and the next run makes only the rest.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

INSTRUCTION = "Reply to this email: answer what it asks."
"""What the model is asked when the user has not said what to answer (they can draft again with their own)."""


@dataclass(frozen=True)
class Proposed:
    message: int  # messages.id
    draft: int  # drafts.id
    subject: str


def waiting_for_reply(db: Any, limit: int) -> list[tuple[int, str, str]]:
    """(id, Message-ID, subject) of the newest mail that needs a reply and has no proposed reply yet."""
    return [
        tuple(r)
        for r in db.execute(
            "SELECT m.id, m.message_id, ifnull(m.subject, '') FROM triage t JOIN messages m ON m.id = t.message_id "
            "LEFT JOIN drafts d ON d.id = t.reply_draft "
            "WHERE t.category = 'needs_reply' AND d.id IS NULL ORDER BY m.date DESC, m.id DESC LIMIT ?",
            [limit],
        )
    ]


def propose(
    db: Any,
    limit: int,
    *,
    backend: Any = None,
    progress: Callable[[int, int], None] | None = None,
    cancel: Callable[[], bool] | None = None,
    seed: int | None = None,
) -> list[Proposed]:
    """Draft a reply to each of the newest ``limit`` messages that need one and have none yet.

    Raises:
        Cancelled: ``cancel`` returned True (the replies finished before it are kept).
        MailvoiceError: the model cannot be loaded (as for any draft).
    """
    from assistant.drafting.drafts import DraftJob, draft_many
    from assistant.drafting.prompting import PromptError

    todo = waiting_for_reply(db, limit)
    if not todo:
        return []
    out: list[Proposed] = []
    tried = [0]

    def done(job: DraftJob, result: Any) -> None:
        mid, subject = job.tag
        tried[0] += 1
        if not isinstance(result, PromptError):  # one that cannot be drafted (too long...) waits, unanswered
            draft_id = result.drafts[0].id
            with db.conn:
                db.execute("UPDATE triage SET reply_draft = ? WHERE message_id = ?", [draft_id, mid])
            out.append(Proposed(mid, draft_id, subject))
        if progress is not None:
            progress(tried[0], len(todo))

    jobs = [DraftJob(INSTRUCTION, {"reply_to": message_id}, (mid, subject)) for mid, message_id, subject in todo]
    draft_many(db, jobs, done, backend=backend, cancel=cancel, seed=seed)
    order = {mid: i for i, (mid, _message_id, _subject) in enumerate(todo)}
    return sorted(out, key=lambda p: order[p.message])  # newest first, as asked, however they finished
