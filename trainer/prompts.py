"""Training prompts: every example is written with the drafting prompt itself.

An adapter learns the prompt it is trained on. Trained on a short fixed prompt and served with the drafting
prompt (the ghostwriter text, the user's habits, similar past emails, the email answered), it did worse with
the examples shown than without (QUALITY.md). So each training example goes through
:func:`assistant.drafting.prompting.build_prompt`, as a draft would: the same system text and habits, the
same reply block, the recipient, the email's own length said the way drafting says it, and, for a share of
the examples (``examples_probability``; Panza's retrieval-augmented fine-tuning uses about half), the
user's most similar sent emails retrieved the same way. Retrieval never shows the email being trained on,
its thread, or any validation mail. Evaluation builds its requests with the same :func:`request_for`.

The prompts are written once, when a run is created, and frozen in its data file with the prompt texts used,
which are saved beside the adapter: drafting with it uses the prompt it was trained with.
"""

from __future__ import annotations

import email.utils
import json
import random
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import sqlite_utils

from assistant.drafting.length import Length, of_email, usual_length
from assistant.drafting.prompting import (
    PromptError,
    PromptTexts,
    ReplyContext,
    build_prompt,
    draft_texts,
    reply_from_store,
    texts_to_json,
)
from assistant.drafting.voice import learn_voice
from trainer.data import Example
from trainer.pairs.scrub import load_settings, scrub
from trainer.pairs.split import VALIDATION

PROMPT_FILE = "prompt.json"  # in a run folder: the drafting prompt's texts its examples were written with
ANSWER_MARGIN = 8  # tokens: the email as the chat template renders it may take a few more than counted
UNFITTED_CTX = 8192  # the room a prompt too long for max_seq_len is written in (the email answered is cut to it)


@dataclass(frozen=True)
class Request:
    """What a draft for one pair is asked with: the recipient, the email answered, mail never to show."""

    to: str | None
    reply: ReplyContext | None
    own: tuple[int, ...]  # the pair's own message and the rest of its thread
    answers: bool = False  # the email answers another (In-Reply-To), whether or not that one is in the archive

    def length(self, db: sqlite_utils.Database, exclude: tuple[int, ...]) -> Length:
        """The length a draft of this email is asked for: the user's usual length to its recipient (a reply's:
        the sender answered, as drafting takes it) for its kind. A reply whose email answered is not in the
        archive is drafted as a new email (there is nothing to show), but its length is a reply's: on a mailing
        list, the user's "new" emails are patches and announcements several times longer (linaro-mm-sig:
        the length asked for was a median 1.35 times the real email's, 1.17 counted this way; QUALITY.md)."""
        to = self.to or (self.reply.sender_addr if self.reply is not None else None)
        return usual_length(db, to, self.reply is not None or self.answers, exclude=exclude)


def held_out_ids(db: sqlite_utils.Database) -> tuple[int, ...]:
    """Message ids never shown as style examples in training or evaluation: every message of a validation
    thread, every message a validation pair was made from, and every sent message whose text is a validation
    email's."""
    rows = db.execute(
        "SELECT id FROM messages WHERE message_id IN "
        "  (SELECT message_id FROM pairs WHERE split = :v AND message_id IS NOT NULL) "
        "UNION SELECT id FROM messages WHERE thread_id IN "
        "  (SELECT thread_id FROM pairs WHERE split = :v AND thread_id IS NOT NULL AND thread_id != '') "
        "UNION SELECT id FROM messages WHERE sent_by_me = 1 AND trim(body) IN "
        "  (SELECT trim(output) FROM pairs WHERE split = :v)",
        {"v": VALIDATION},
    )
    return tuple(sorted(r[0] for r in rows))


def reply_context(text: str, source: str = "") -> ReplyContext | None:
    """The email a pair answers, from its ``input`` (``From:``/``Subject:`` lines, a blank line, the text)."""
    text = text.strip()
    if not text:
        return None
    head, sep, body = text.partition("\n\n")
    fields: dict[str, str] = {}
    for line in head.splitlines() if sep else []:
        name, colon, value = line.partition(":")
        if not colon or name.strip().lower() not in ("from", "subject", "date", "to"):
            fields = {}
            break
        fields[name.strip().lower()] = value.strip()
    if not fields:
        body = text  # free text (an imported dataset's input): all of it is the email
    sender_name, sender_addr = email.utils.parseaddr(fields.get("from", ""))
    if not sender_addr or "@" not in sender_addr:
        sender_name, sender_addr = fields.get("from", ""), ""
    return ReplyContext(
        source=source,
        kind="pair",
        sender_name=sender_name,
        sender_addr=sender_addr,
        date=fields.get("date", ""),
        subject=fields.get("subject", ""),
        body=body.strip(),
    )


def request_for(db: sqlite_utils.Database, message_id: str | None, context: str, source: str = "") -> Request:
    """How a draft of the email ``message_id`` is asked for: a reply names no recipient (drafting takes the
    sender answered, as ``--reply-to`` does, with the sender's address, the date and the whole text the store
    holds); a new email names its first recipient, as ``--to`` would."""
    reply = reply_context(context, source)
    to, own, answers = None, (), False
    if message_id:
        row = db.execute(
            "SELECT id, thread_id, to_json, in_reply_to FROM messages WHERE message_id = ?", [message_id]
        ).fetchone()
        if row is not None:
            own = tuple(r[0] for r in db.execute("SELECT id FROM messages WHERE thread_id = ?", [row[1]]))
            own = own or (row[0],)
            answers = bool(row[3])
            if reply is None:
                to = _first_address(row[2])
            elif row[3]:
                reply = _as_stored(db, row[3], reply)
    return Request(to, reply, own, answers)


def _as_stored(db: sqlite_utils.Database, answered: str, reply: ReplyContext) -> ReplyContext:
    """The email a pair answers as drafting reads it from the store
    (:func:`~assistant.drafting.prompting.reply_from_store`): the header's name and address (the recipient
    line, the user's usual length to them and the emails retrieved for them), the date, and the whole text.
    The pair's input is what the labeller saw: the sender's name only, and the first
    :data:`~trainer.pairs.build.INPUT_CHARS` of the text. A longer email is cut by the prompt as drafting cuts
    it, to the room left and with a notice, or shown whole where it fits. Training scrubs the whole prompt."""
    try:
        stored = reply_from_store(db, answered)
    except PromptError:
        return reply
    return replace(stored, source=reply.source, kind=reply.kind)


def _first_address(to_json: str | None) -> str | None:
    try:
        found = [str(a) for _n, a in json.loads(to_json or "[]") if a and "@" in str(a)]
    except (ValueError, TypeError):
        return None
    return found[0] if found else None


def write_prompts(
    db: sqlite_utils.Database,
    examples: list[Example],
    *,
    count_tokens: Callable[[str], int],
    max_seq_len: int,
    examples_probability: float,
    seed: int,
    texts: PromptTexts | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[Example]:
    """``examples`` with their chat ``messages`` written by the drafting prompt (see the module docstring).

    Whether an example is shown with retrieved emails is drawn from ``seed`` and its position, so the same run
    writes the same prompts. Every text is scrubbed as the pairs are (the retrieved emails too).
    """
    texts = texts or draft_texts()
    voice = learn_voice(db)
    held = held_out_ids(db)
    settings = load_settings(db)
    out = []
    for n, example in enumerate(examples):
        request = request_for(db, example.message_id or None, example.input, f"pair {n}")
        shown = drawn_to_show(seed, n, examples_probability)
        answer = count_tokens(example.output) + ANSWER_MARGIN
        kwargs = dict(
            reply=request.reply,
            to=request.to or (None if request.reply else example.recipient or None),  # a correction's recipient
            length=of_email(example.output),
            exclude=(*held, *request.own),
            answer_tokens=answer,
            texts=texts,
        )
        try:
            prompt = build_prompt(
                db, example.instruction, voice, n_ctx=max_seq_len, count_tokens=count_tokens, examples=shown, **kwargs
            )
        except PromptError:  # no room at this length: written whole, then the email's tail is cut (or it is
            # skipped as too long) when it is tokenized, as for any example over max_seq_len. The email answered
            # is the pair's first INPUT_CHARS: written whole, the stored email would leave the example no room.
            if request.reply is not None and example.input:
                kwargs["reply"] = replace(request.reply, body=reply_context(example.input).body)
            prompt = build_prompt(
                db, example.instruction, voice, n_ctx=max(max_seq_len, UNFITTED_CTX) + answer,
                count_tokens=count_tokens, examples=False, **kwargs,
            )  # fmt: skip
        messages = [{"role": m["role"], "content": scrub(m["content"], settings).text} for m in prompt.messages]
        out.append(replace(example, messages=messages))
        if progress is not None:
            progress(n + 1, len(examples))
    return out


def drawn_to_show(seed: int, n: int, examples_probability: float) -> bool:
    """Whether the n-th example of a run is written with retrieved emails (when they fit): drawn from the run's
    seed and the example's position, so a run writes the same prompts every time."""
    return random.Random(f"{seed}:{n}").random() < examples_probability


def save_texts(run_dir: Path, texts: PromptTexts) -> None:
    (run_dir / PROMPT_FILE).write_text(json.dumps({"kind": "draft", "texts": texts_to_json(texts)}, indent=2) + "\n")


def saved_prompt(run_dir: Path) -> dict | None:
    """What a run's examples were written with (None for a run whose examples use the short training prompt)."""
    try:
        return json.loads((run_dir / PROMPT_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def token_counter(base: str) -> Callable[[str], int]:
    """Count tokens with the base model's own vocabulary: llama.cpp reads a GGUF's (vocabulary only, in a
    fraction of a second), transformers a Hugging Face folder's tokenizer."""
    path = Path(base)
    if path.is_file():
        import llama_cpp
        from llama_cpp._internals import LlamaModel  # the model alone: Llama would add a context, and its warning

        params = llama_cpp.llama_model_default_params()
        params.vocab_only = True
        vocab = LlamaModel(path_model=str(path), params=params, verbose=False)
        return lambda text: len(vocab.tokenize(text.encode("utf-8"), add_bos=False, special=False))
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(path))
    return lambda text: len(tokenizer(text, add_special_tokens=False)["input_ids"])
