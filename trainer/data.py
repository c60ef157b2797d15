"""Training data: (instruction, context, email) examples from the store, a JSONL file or a list, made into
chat-formatted token sequences with the loss on the email only, and length-grouped, reproducible batches.

The prompt is the base model's own chat template (system, user, assistant turns), tokenized the way llama.cpp
sees it at drafting time: the prompt up to the assistant turn on its own, then the email. The labels of the
prompt tokens are -100, so the adapter learns to write emails, not to predict instructions.
"""

from __future__ import annotations

import importlib.resources
import json
import math
import random
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlite_utils
from jinja2 import TemplateError

from assistant.errors import MailvoiceError

IGNORE = -100  # label of tokens that carry no loss (torch's cross_entropy ignore_index)
SPLITS = ("train", "validation")
USER_TEMPLATE = "Instruction: {instruction}"
REPLY_TEMPLATE = "Replying to this email:\n<email>\n{context}\n</email>\n\n"
CUT_MARK = " [...]"


class DataError(MailvoiceError):
    """The training examples are missing, unreadable or too few."""


@dataclass(frozen=True)
class Example:
    instruction: str
    input: str  # the email answered ("" for a new email)
    output: str  # the user's email
    split: str = "train"
    message_id: str = ""  # the sent email it was made from ("" for examples from a file)
    messages: list[dict[str, str]] | None = field(default=None, compare=False)
    """The prompt as chat messages, written by the drafting prompt (trainer.prompts) when the run was created;
    None: the short training prompt (system_prompt) with the instruction and context."""
    source: str = ""  # "from_edit": the user's own instruction and the text they kept of a draft (corrections)
    recipient: str = ""  # who a correction's draft was to ("" for pairs: their sent email says)


@dataclass
class Encoded:
    input_ids: list[int]
    labels: list[int]
    cut: list[str] = field(default_factory=list)  # "context", "email": what truncation removed text from

    def __len__(self) -> int:
        return len(self.input_ids)


def system_prompt() -> str:
    """``resources/prompts/train_system.txt`` without its ``# version: N`` line: short and fixed."""
    raw = (importlib.resources.files("resources") / "prompts" / "train_system.txt").read_text(encoding="utf-8")
    first, _, rest = raw.partition("\n")
    if not re.fullmatch(r"#\s*version:\s*\d+\s*", first):
        raise ValueError("train_system.txt must start with '# version: N'")
    return rest.strip()


# --- loading ----------------------------------------------------------------------------------------------


def from_rows(rows: Iterable[dict[str, Any]], where: str = "the data") -> list[Example]:
    """Examples from dicts with ``instruction``, ``input`` (optional), ``output``, ``split`` (optional)."""
    examples = []
    for n, row in enumerate(rows, 1):
        instruction, output = str(row.get("instruction") or "").strip(), str(row.get("output") or "").strip()
        split = str(row.get("split") or "train")
        if not instruction or not output:
            raise DataError(f"{where}, example {n}: 'instruction' and 'output' must both be non-empty.")
        if split not in SPLITS:
            raise DataError(f"{where}, example {n}: split must be train or validation, not {split!r}.")
        messages = row.get("messages")
        if messages is not None and not (
            isinstance(messages, list)
            and all(isinstance(m, dict) and {"role", "content"} <= m.keys() for m in messages)
        ):
            raise DataError(f"{where}, example {n}: 'messages' must be a list of {{role, content}} objects.")
        context = str(row.get("input") or "").strip()
        examples.append(Example(instruction, context, output, split, str(row.get("message_id") or ""), messages,
                                str(row.get("source") or ""), str(row.get("recipient") or "")))  # fmt: skip
    return examples


def from_jsonl(path: str | Path) -> list[Example]:
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"Cannot read {path} ({exc}); give a JSONL file, one JSON object per line.") from exc
    rows = []
    for n, line in enumerate(lines, 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except ValueError as exc:
                raise DataError(f"{path}, line {n} is not JSON ({exc}).") from exc
    return from_rows(rows, str(path))


FROM_EDIT_WEIGHT = 2  # a correction counts as this many labelled pairs: the user's own instruction and text


def from_store(db: sqlite_utils.Database) -> list[Example]:
    """The included pairs, through the pairs feature's privacy scrub, and the user's corrections of drafts
    (all but the newest tenth, held out to measure; each :data:`FROM_EDIT_WEIGHT` times, marked ``from_edit``)."""
    rows = []
    if db["pairs"].exists():
        from trainer.pairs.store import list_pairs

        rows = [
            {"instruction": p.instruction, "input": p.input, "output": p.output, "split": p.split,
             "message_id": p.message_id or ""}
            for p in list_pairs(db, status="ok")
        ]  # fmt: skip
    return from_rows(rows, "the pairs table") + from_corrections(db)


def from_corrections(db: sqlite_utils.Database) -> list[Example]:
    """The corrections to learn from (:func:`trainer.edits.learnable`), as training examples (scrubbed as pairs
    are)."""
    if not db["corrections"].exists():
        return []
    from trainer.edits import learnable
    from trainer.pairs.scrub import load_settings, scrub

    settings = load_settings(db)
    learn = learnable(db)
    rows = [
        {"instruction": scrub(c.instruction, settings).text, "input": scrub(c.context, settings).text,
         "output": scrub(c.final_text, settings).text, "split": "train", "source": "from_edit",
         "recipient": c.recipient}
        for c in learn
        if c.instruction.strip() and c.final_text.strip()
    ]  # fmt: skip
    return from_rows(rows, "the corrections") * FROM_EDIT_WEIGHT


def load_examples(source: sqlite_utils.Database | str | Path | list[dict[str, Any]]) -> list[Example]:
    """Examples from the store, a JSONL file, or a list of dicts (tests, the GUI's preview)."""
    if isinstance(source, sqlite_utils.Database):
        return from_store(source)
    if isinstance(source, (str, Path)):
        return from_jsonl(source)
    return from_rows(source)


def save_jsonl(examples: list[Example], path: Path) -> None:
    """A run's data snapshot: resume trains on exactly these examples, whatever the store holds by then."""
    with path.open("w", encoding="utf-8") as f:
        for e in examples:
            row = {k: v for k, v in e.__dict__.items() if v or k in ("instruction", "input", "output", "split")}
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


# --- formatting and tokenizing ----------------------------------------------------------------------------


def messages(system: str, example: Example, context: str | None = None) -> list[dict[str, str]]:
    context = example.input if context is None else context
    user = (REPLY_TEMPLATE.format(context=context) if context else "") + USER_TEMPLATE.format(
        instruction=example.instruction
    )
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def _render(tokenizer: Any, msgs: list[dict[str, str]], reply: str) -> tuple[str, str]:
    """(prompt text, completion text) in the model's chat template."""
    try:
        prompt = tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
        full = tokenizer.apply_chat_template([*msgs, {"role": "assistant", "content": reply}], tokenize=False)
    except (TemplateError, ValueError) as exc:  # templates that refuse a system turn (Gemma): fold it into the user
        if msgs[0]["role"] != "system":
            raise DataError(f"The base model's chat template cannot format a conversation ({exc}).") from exc
        folded = [{"role": "user", "content": msgs[0]["content"] + "\n\n" + msgs[1]["content"]}]
        return _render(tokenizer, folded, reply)
    if not full.startswith(prompt):
        raise DataError("The base model's chat template renders the reply turn inconsistently; use another base.")
    return prompt, full[len(prompt) :]


def _ids(tokenizer: Any, text: str) -> list[int]:
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def encode(tokenizer: Any, example: Example, system: str, max_len: int, min_email: int = 32) -> Encoded | None:
    """Token ids and labels for one example, at most ``max_len`` tokens; None when the instruction alone
    leaves no room for ``min_email`` email tokens.

    Prompt and completion are tokenized apart, as llama.cpp does when it drafts: the prompt is tokenized, the
    email is generated after it.
    """
    prompt_text, completion_text = _render(tokenizer, example.messages or messages(system, example), example.output)
    prompt, completion = _ids(tokenizer, prompt_text), _ids(tokenizer, completion_text)
    cut: list[str] = []
    over = len(prompt) + len(completion) - max_len
    if over > 0 and example.input and not example.messages:  # written prompts were fitted when they were written
        # The context goes first: the instruction says what to write, the email is what is learned.
        context_ids = _ids(tokenizer, example.input)
        keep = len(context_ids) - over - 8  # a few tokens of slack for the cut mark and re-tokenization
        while True:
            context = tokenizer.decode(context_ids[: max(keep, 0)]).rstrip() + CUT_MARK if keep > 0 else ""
            prompt = _ids(tokenizer, _render(tokenizer, messages(system, example, context), example.output)[0])
            if len(prompt) + len(completion) <= max_len or keep <= 0:
                break
            keep -= max(8, len(prompt) + len(completion) - max_len)
        cut.append("context")
    if len(prompt) + min(len(completion), min_email) > max_len:
        return None
    if len(prompt) + len(completion) > max_len:
        completion = completion[: max_len - len(prompt)]  # the email's tail; its start carries the voice
        cut.append("email")
    return Encoded(prompt + completion, [IGNORE] * len(prompt) + completion, cut)


@dataclass
class Dataset:
    """Encoded examples of both splits, with what was skipped or cut."""

    train: list[Encoded]
    validation: list[Encoded]
    skipped: int = 0
    cut: dict[str, int] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        return {
            "train_examples": len(self.train),
            "validation_examples": len(self.validation),
            "train_tokens": sum(len(e) for e in self.train),
            "train_email_tokens": sum(sum(1 for x in e.labels if x != IGNORE) for e in self.train),
            "skipped_too_long": self.skipped,
            "cut": self.cut,
        }


def encode_all(tokenizer: Any, examples: list[Example], max_len: int, min_email: int = 32) -> Dataset:
    system = system_prompt()
    data = Dataset([], [])
    for example in examples:
        encoded = encode(tokenizer, example, system, max_len, min_email)
        if encoded is None:
            data.skipped += 1
            continue
        for what in encoded.cut:
            data.cut[what] = data.cut.get(what, 0) + 1
        (data.train if example.split == "train" else data.validation).append(encoded)
    if not data.train:
        raise DataError(
            "No training examples: build pairs from your sent mail first, or train on a file of examples."
            + (f" {data.skipped} examples had instructions too long for max_seq_len." if data.skipped else ""),
            cli="Build them with mailvoice pairs build, or give a file with --data.",
        )
    return data


# --- batching ---------------------------------------------------------------------------------------------


def plan_batches(lengths: list[int], batch_size: int, seed: int, epoch: int, group: bool = True) -> list[list[int]]:
    """The batches of one epoch (lists of example indices), the same for the same seed and epoch.

    With ``group``, examples are shuffled, then sorted by length inside windows of 16 batches, so a batch
    holds similar lengths (little padding) while the order stays random. The longest batch goes first, so a
    run that cannot fit in memory fails on its first step, not hours in.
    """
    rng = random.Random(f"{seed}:{epoch}")  # a str seed is hashed: stable across processes and versions
    order = list(range(len(lengths)))
    rng.shuffle(order)
    if not group:
        return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    window = batch_size * 16
    batches = []
    for start in range(0, len(order), window):
        chunk = sorted(order[start : start + window], key=lambda i: -lengths[i])
        batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    longest = max(range(len(batches)), key=lambda b: max(lengths[i] for i in batches[b]))
    batches.insert(0, batches.pop(longest))
    return batches


def step_batches(plan: list[list[int]], in_epoch: int, grad_accum: int, world: int = 1, rank: int = 0) -> list:
    """The micro-batches of ``plan`` (one epoch's batches) that rank ``rank`` runs in step ``in_epoch``.

    A step takes ``grad_accum x world`` consecutive batches, dealt out to the ranks in turn; the epoch's last
    step may take fewer. Under DDP every rank must run as many micro-batches as the others (each backward
    pass synchronises), so a rank short of batches wraps around to the epoch's start.
    """
    start = in_epoch * grad_accum * world
    count = max(1, min(grad_accum, math.ceil((len(plan) - start) / world)))
    return [plan[(start + m * world + rank) % len(plan)] for m in range(count)]


def collate(examples: list[Encoded], pad_id: int) -> dict[str, Any]:
    """Right-padded tensors: input_ids, attention_mask, labels (-100 on padding)."""
    import torch

    width = max(len(e) for e in examples)
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    for row, e in enumerate(examples):
        ids[row, : len(e)] = torch.tensor(e.input_ids)
        labels[row, : len(e)] = torch.tensor(e.labels)
        mask[row, : len(e)] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}
