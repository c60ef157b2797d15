"""Building the chat prompt for one draft: voice, style examples and the email being answered, in budget.

The prompt texts live in ``resources/prompts/*.txt`` (first line ``# version: N``; the version is saved with
every draft). The context window is shared out in this order: the draft's own room (``max_tokens``), the
fixed instructions, the email being answered (cut, with a notice, when it is too long), then examples.
"""

from __future__ import annotations

import email.utils
import functools
import importlib.resources
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import sqlite_utils

from assistant.drafting.examples import Example, recipient_name, select_examples
from assistant.drafting.incomplete import signed_name
from assistant.drafting.length import CHOICES, Length, of_email, usual_length
from assistant.drafting.voice import Voice, first_name, recipients
from assistant.errors import MailvoiceError
from assistant.mail.identity import person_name
from assistant.mail.subjects import prompt_subject

PROMPT_NAMES = ("draft_system", "draft_user", "example_request", "reply_block")
EXAMPLES_K = 3
EXAMPLES_MAX_TOKENS = 1500  # beyond ~3 emails, more examples cost prompt time and add little voice
REPLY_SHARE = 0.7  # of the free context, what the email being answered may take when examples are on
MARGIN = 48  # per-message template tokens (role markers, BOS) not seen by count_tokens
TURN_MARKERS = 16  # an example's two turns' role markers, not seen by count_tokens
_DELIMITER = re.compile(r"<\s*/?\s*email\s*>", re.IGNORECASE)
# A chat template's control tokens (ChatML, Llama 3, Phi, Gemma, Mistral, Llama 2). llama-cpp-python reads the
# rendered prompt with special tokens on, so one of these in an email would become a real turn of the chat.
_CONTROL = re.compile(r"<\|[^|<>\n]{0,64}\|>|\[/?INST\]|<</?SYS>>|</?s>|<(?:start|end)_of_turn>", re.IGNORECASE)
_LOOKALIKE = str.maketrans({"<": "‹", ">": "›", "[": "⟦", "]": "⟧"})
HEADER_CHARS = 120  # a name or address from mail headers shown outside the <email> block
# More characters than any tokenizer packs into one token of mail text, on average: no more than this many
# characters per token of room are looked at, so a huge email costs no more than one that just fits.
MAX_CHARS_PER_TOKEN = 10


class PromptError(MailvoiceError):
    """The instruction or the email being answered cannot be turned into a prompt."""


@dataclass(frozen=True)
class PromptText:
    name: str
    version: int
    text: str

    def format(self, **values: str) -> str:
        return self.text.format_map(values)


@functools.cache
def load_prompt(name: str) -> PromptText:
    """``resources/prompts/NAME.txt`` without its ``# version: N`` line."""
    raw = (importlib.resources.files("resources") / "prompts" / f"{name}.txt").read_text(encoding="utf-8")
    first, _, rest = raw.partition("\n")
    m = re.fullmatch(r"#\s*version:\s*(\d+)\s*", first)
    if not m:
        raise ValueError(f"prompt {name}.txt must start with '# version: N'")
    return PromptText(name, int(m.group(1)), rest)


PromptTexts = dict[str, PromptText]  # the drafting prompt's files by name


def draft_texts() -> PromptTexts:
    """The drafting prompt as this version of Mailvoice ships it."""
    return {name: load_prompt(name) for name in PROMPT_NAMES}


def texts_to_json(texts: PromptTexts) -> dict[str, dict[str, object]]:
    """The texts as saved beside an adapter trained with them."""
    return {t.name: {"version": t.version, "text": t.text} for t in texts.values()}


def texts_from_json(data: dict[str, dict[str, object]]) -> PromptTexts:
    """Texts saved by :func:`texts_to_json`; ValueError when one is missing or malformed."""
    try:
        return {name: PromptText(name, int(data[name]["version"]), str(data[name]["text"])) for name in PROMPT_NAMES}
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"not a drafting prompt: {exc}") from exc


def adapter_texts(adapter_path: str | Path | None) -> PromptTexts | None:
    """The drafting prompt an adapter was trained with (saved in its ``adapter_config.json``), or None for an
    adapter trained before training used the drafting prompt (it drafts with the shipped one)."""
    if not adapter_path:
        return None
    try:
        config = json.loads((Path(adapter_path).parent / "adapter_config.json").read_text(encoding="utf-8"))
        saved = config.get("prompt") or {}
        return texts_from_json(saved["texts"]) if saved.get("kind") == "draft" else None
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


@dataclass
class ReplyContext:
    """The email being answered."""

    source: str  # its Message-ID, or the path of the .eml
    kind: str  # "message" or "file"
    sender_name: str
    sender_addr: str
    date: str
    subject: str
    body: str
    row_id: int | None = None


def answered_text(sender: str, subject: str, text: str, *, addr: str = "", date: str = "") -> str:
    """The email answered as a training pair's ``input`` holds it (``trainer.prompts.reply_context`` reads it
    back): who wrote it, its subject as drafting shows it, a blank line, its text. A correction keeps the
    sender's address and the date too (``addr``, ``date``), which its draft's prompt showed; a pair's sender
    is named only, for the labeller, and training reads the rest from the store."""
    sender, addr, date = (" ".join(s.split()) for s in (sender, addr, date))  # one line each
    if addr:
        sender = f'"{email.utils.quote(sender)}" <{addr}>' if sender else addr
    when = f"Date: {date}\n" if date else ""
    return f"From: {sender}\n{when}Subject: {prompt_subject(subject)}\n\n{text}"


def reply_from_store(db: sqlite_utils.Database, message_id: str) -> ReplyContext:
    """The stored message with this Message-ID (``<`` ``>`` optional) or row id."""
    wanted = message_id.strip().strip("<>")
    columns = "id, message_id, from_name, from_addr, date, subject, body"
    row = db.execute(f"SELECT {columns} FROM messages WHERE message_id = ?", [wanted]).fetchone()
    if row is None and wanted.isdigit():
        row = db.execute(f"SELECT {columns} FROM messages WHERE id = ?", [int(wanted)]).fetchone()
    if row is None:
        raise PromptError(
            f"No stored message has the Message-ID {message_id!r}. Copy it from the email's headers, or save "
            "the email as .eml and answer the file.",
            cli="Answer a file with --reply-file.",
        )
    return ReplyContext(
        row[1], "message", row[2] or "", row[3] or "", row[4] or "", row[5] or "", row[6] or "", row_id=row[0]
    )


def reply_from_file(path: str | Path) -> ReplyContext:
    """An email saved as a file (.eml): headers decoded, quoted history and signature removed.

    Like an import, only the first :data:`~assistant.mail.sources.MAX_MESSAGE_BYTES` are read: beyond them lie
    attachments, or text far past the little of an email that a prompt can hold. A device or a named pipe
    (``/dev/zero``, a FIFO) is refused before anything is read.
    """
    from assistant.mail.clean import clean_body
    from assistant.mail.parse import parse_message
    from assistant.mail.sources import MAX_MESSAGE_BYTES
    from assistant.userfiles import open_regular, read_capped

    path = Path(path)
    with open_regular(path, PromptError, "a saved email (.eml)") as f:
        try:
            raw, _more = read_capped(f, MAX_MESSAGE_BYTES)
        except OSError as exc:
            raise PromptError(f"Cannot read {path} ({exc.strerror}); give the path of a saved email (.eml).") from exc
    msg = parse_message(raw) if raw.strip() else None
    if msg is None or not (msg.from_addr or msg.subject or msg.headers.get("date")):
        raise PromptError(f"{path} is not an email: save the message as .eml from your mail program.")
    text = clean_body(msg.text, msg.subject).text
    return ReplyContext(str(path), "file", msg.from_name, msg.from_addr, msg.date or "", msg.subject, text)


def _defuse(match: re.Match[str]) -> str:
    return match.group(0).translate(_LOOKALIKE)


def _data(text: str) -> str:
    """Defuse tags inside quoted material so it cannot close our <email> block or open a turn of the chat."""
    return _CONTROL.sub(_defuse, _DELIMITER.sub(_defuse, text))


def _line(text: str) -> str:
    """A name or address from mail headers, for use outside the <email> block: defused, on one line (a
    decoded header can hold line breaks, which would start a line of our own), and not too long."""
    return _data(" ".join(text.split()))[:HEADER_CHARS]


def _cut(text: str, chars: int) -> str:
    """The first ``chars`` characters, ending at a paragraph, line or sentence end when one is near."""
    if len(text) <= chars:
        return text
    head = text[:chars]
    for sep in ("\n\n", "\n", ". "):
        at = head.rfind(sep)
        if at > chars * 0.8:
            return head[: at + len(sep)].rstrip()
    return head.rstrip()


@dataclass
class DraftPrompt:
    messages: list[dict[str, str]]
    max_tokens: int
    examples: list[Example] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    recipient: str = ""  # recipient's first name, for placeholders
    versions: dict[str, int] = field(default_factory=dict)
    length: Length | None = None
    others: tuple[str, ...] = ()  # the names of the recipient and of the sender of the email answered


def build_prompt(
    db: sqlite_utils.Database,
    instruction: str,
    voice: Voice,
    *,
    n_ctx: int,
    count_tokens: Callable[[str], int],
    reply: ReplyContext | None = None,
    to: str | None = None,
    tone: str | None = None,
    length: str | Length | None = None,
    examples: bool = True,
    exclude: Iterable[int] = (),
    answer_tokens: int | None = None,
    texts: PromptTexts | None = None,
    to_name: str | None = None,
    about: Iterable[tuple[str, str]] = (),
) -> DraftPrompt:
    """The chat messages for one draft, fitted into ``n_ctx`` tokens (see the module docstring).

    Training writes its examples with this same function, so an adapter sees at drafting time the prompt it
    was trained on.

    Args:
        length: short, medium, long, a :class:`Length`, or None for the user's usual length for this
            recipient and kind of email (:func:`assistant.drafting.length.usual_length`).
        exclude: message ids never shown as examples, nor learned from for the length (evaluation hides the
            emails it scores against; training, the email it trains on and its thread).
        answer_tokens: the room kept for the draft (training: the real email's tokens); by default the length's.
        texts: the prompt's files (an adapter's own, saved when it was trained); by default the shipped ones.
        to_name: the recipient's name as the user gave it (a mail merge's row); else the name their mail shows.
        about: (field, value) pairs the user gave about the recipient (a mail merge's row: company, role...),
            shown as one "About the recipient:" line.
    """
    instruction = " ".join(instruction.split())
    if not instruction:
        raise PromptError('The instruction is empty: say what the email should do, e.g. "ask Rosa to fix the tap".')
    if isinstance(length, str) and length not in CHOICES:
        raise PromptError(f"Unknown length {length!r}: use short, medium or long.")
    to_name = (to_name or "").strip() or (recipient_name(db, to) if to else "")
    if not to_name and reply and not to:
        to, to_name = reply.sender_addr, reply.sender_name
    if not isinstance(length, Length):
        length = usual_length(db, to, reply is not None, choice=length, exclude=exclude)
    max_tokens = answer_tokens or length.max_tokens(n_ctx)
    to_name = _line(to_name)  # from other people's mail headers: data, like the email itself
    recipient = first_name(to_name)
    me = voice.name or "the user"
    me_first = voice.first_name or me
    texts = texts or draft_texts()
    system = texts["draft_system"].format(me=me, habits=_habits(voice, recipient))
    details = []
    if to:
        details.append(f"Recipient: {to_name} <{_line(to)}>" if to_name else f"Recipient: {_line(to)}")
    elif to_name:
        details.append(f"Recipient: {to_name}")
    if tone:
        details.append(f"Tone: {' '.join(tone.split())}")
    facts = "; ".join(f"{_line(k)}: {_data(' '.join(v.split()))}" for k, v in about if v.strip())
    if facts:
        details.append(f"About the recipient: {facts}")
    details.append(f"Length: {length.guidance}")
    user = functools.partial(
        texts["draft_user"].format,
        me_first=me_first,
        instruction=instruction,
        to_whom=f", to {recipient}" if recipient else "",  # small models otherwise write as the recipient
        details="".join(d + "\n" for d in details),
    )

    fixed = count_tokens(system) + count_tokens(user(reply="")) + MARGIN
    free = n_ctx - max_tokens - fixed
    if free < 0:
        raise PromptError(f"The instruction is too long for the model's {n_ctx:,}-token context window; shorten it.")
    notices: list[str] = []
    reply_text = ""
    if reply is not None:
        room = int(free * REPLY_SHARE) if examples else free
        reply_text = _reply_block(texts["reply_block"], reply, me_first, room, count_tokens, notices)
    chosen: list[Example] = []
    if examples:
        room = min(EXAMPLES_MAX_TOKENS, free - count_tokens(reply_text))
        exclude = (*exclude, *((reply.row_id,) if reply is not None and reply.row_id else ()))
        chosen = select_examples(
            db, instruction, to=to, k=EXAMPLES_K, budget=room, count_tokens=count_tokens, exclude=exclude
        )
    # Examples go in as earlier turns of the conversation (request, then the user's real email as the
    # answer): instruction-tuned models imitate their own previous answers far more closely than text
    # quoted inside a request, and small models otherwise mix the examples into the new email.
    asked = _instructions(db, [ex.id for ex in chosen])
    request = functools.partial(_example_request, texts["example_request"], me_first=me_first)
    turns = [(request(ex, instruction=asked.get(ex.id, "")), _CONTROL.sub(_defuse, ex.body.strip())) for ex in chosen]
    # Selection counted each example's request as a fixed overhead; the requests as written are counted here,
    # and the last examples dropped if they still overflow (training would otherwise cut the email's tail).
    while turns and sum(count_tokens(r) + count_tokens(b) + TURN_MARKERS for r, b in turns) > room:
        turns.pop()
        chosen.pop()
    messages = [{"role": "system", "content": system}]
    for request, body in turns:
        messages.append({"role": "user", "content": request})
        messages.append({"role": "assistant", "content": body})
    messages.append({"role": "user", "content": user(reply=reply_text)})
    versions = {t.name: t.version for t in texts.values()}
    others = others_in_thread(to_name, reply)
    return DraftPrompt(messages, max_tokens, chosen, notices, recipient, versions, length, others)


def others_in_thread(to_name: str, reply: ReplyContext | None) -> tuple[str, ...]:
    """Who a draft must not be signed as: the recipient, and the sender of the email answered, by the name in
    its header and the one it signed with (a pasted email has no header)."""
    signed = signed_name(reply.body) if reply else None
    answered = (_line(reply.sender_name), signed[1] if signed else "") if reply else ()
    return tuple(dict.fromkeys(n for n in (_line(to_name), *answered) if n))


def _instructions(db: sqlite_utils.Database, ids: list[int]) -> dict[int, str]:
    """The instruction of each sent email among ``ids`` that is a training pair's (the user's review may have
    edited it): an example then shows the request that email answers, as a draft's request reads."""
    if not ids:
        return {}
    rows = db.execute(
        "SELECT m.id, p.instruction FROM messages m JOIN pairs p ON p.message_id = m.message_id "
        "WHERE m.id IN (SELECT value FROM json_each(?)) AND p.status = 'ok' AND trim(p.instruction) != '' "
        "ORDER BY p.id",
        [json.dumps(ids)],
    )
    return {row[0]: " ".join(row[1].split()) for row in rows}


def _example_request(text: PromptText, example: Example, me_first: str, instruction: str) -> str:
    """The request an example answers. The user's own mail, but its headers and text were written for people,
    not for this prompt: defused and on one line like the email answered (a name with a line break must not
    add a line of its own).

    Version 1 of ``example_request`` names the recipients and the subject. Version 2 reads as a draft's
    request does (``draft_user``): the instruction the email's pair was given (else "Write to Ana about
    "…"."), the recipient and the email's own length, so that a small model sees, in the examples, what it is
    asked for at the end: an instruction and a length, answered by an email of that length."""
    people = recipients(example.to)[:3]
    names = [_line(first_name(n) or a) for n, a in people]
    recipient = f" to {' and '.join(names)}" if names else ""
    subject = _line(prompt_subject(example.subject)) or "(no subject)"
    details = []
    if people:
        name, addr = people[0]
        name, addr = _line(name), _line(addr)
        details.append(f"Recipient: {name} <{addr}>" if name and addr else f"Recipient: {name or addr}")
    details.append(f"Length: {of_email(example.body).guidance}")
    return text.format(
        recipient=recipient,
        subject=subject,
        me_first=me_first,
        instruction=_line_text(instruction) or f'Write{recipient} about "{subject}".',
        details="".join(d + "\n" for d in details),
        to_whom=f", to {names[0]}" if names else "",
    )


def _line_text(text: str) -> str:
    return _data(" ".join(text.split()))


def _habits(voice: Voice, recipient: str) -> str:
    lines = []
    greeting = voice.greet(recipient) if recipient else None
    if greeting:
        lines.append(f'{voice.first_name or voice.name} opens emails with "{greeting}".')
    elif voice.greeting:
        lines.append(f'{voice.first_name or voice.name} usually opens emails like "{voice.greeting}".')
    if voice.signoff:
        lines.append(f"{voice.first_name or voice.name} signs off with:\n{voice.signoff}")
    return "".join(line + "\n" for line in lines)


def _reply_block(
    text: PromptText,
    reply: ReplyContext,
    me_first: str,
    room: int,
    count_tokens: Callable[[str], int],
    notices: list[str],
) -> str:
    # Named as a training pair's answered email names its sender (trainer.pairs.build: person_name, no address),
    # so a reply is drafted from the block the adapter learned from.
    sender = person_name(reply.sender_name, reply.sender_addr)
    whole = reply.body.strip()
    # Counting the tokens of all of a long email (a 30 MB .eml holds a million characters) takes seconds,
    # for text that cannot fit anyway: only the part that could is counted and cut.
    seen = whole[: room * MAX_CHARS_PER_TOKEN]
    body = _data(seen) or ("" if whole else "(no text)")

    def render(b: str, notice: str = "") -> str:
        return text.format(
            me_first=me_first,
            notice=notice,
            sender=_data(sender),
            date=reply.date,
            subject=_data(prompt_subject(reply.subject)),  # the topic, not the "[List] Re: Re:" pile
            body=b,
        )

    block = render(body)
    fits = count_tokens(block) <= room
    if fits and len(seen) == len(whole):
        return block
    overhead = count_tokens(render("")) + 40  # the notice sentence
    kept = _cut(body, len(body) - 1) if fits else body  # all that was looked at fits: end it where a line ends
    for _ in range(0 if fits else 6):  # shrink by the measured ratio until it fits (tokens per character vary)
        ratio = max(room - overhead, 0) / max(count_tokens(kept), 1)
        chars = int(len(kept) * min(ratio, 0.97))
        kept = _cut(body, chars)
        if count_tokens(kept) + overhead <= room or not kept:
            break
    share = len(kept) / max(len(whole), 1)
    message = (
        f"The email being answered is too long for the model's context window: only its first "
        f"{share:.0%} ({len(kept):,} of {len(whole):,} characters) was used."
    )
    notices.append(message)
    return render(
        kept + "\n[... the rest of this email was cut to fit ...]",
        " Only the beginning of it is shown; the rest was cut to fit.",
    )
