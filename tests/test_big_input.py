"""Huge or broken input files get a clear answer, fast, in bounded memory: the email answered, the batch
instructions file and the pairs dataset."""

from __future__ import annotations

import json
import os
import tracemalloc
from pathlib import Path

import pytest
from fakes import FakeBackend

from assistant.drafting import batch, draft
from assistant.drafting import guard as guard_module
from assistant.drafting.batch import InstructionsError, read_instructions
from assistant.drafting.prompting import PromptError, ReplyContext, build_prompt, reply_from_file
from assistant.drafting.voice import Voice
from assistant.mail import sources
from assistant.overlap import CopyIndex
from trainer.pairs import dataset, import_pairs, list_pairs
from trainer.pairs.csvrows import FIELD_LIMIT
from trainer.pairs.errors import DatasetError

HEADERS = (
    "From: Rosa Diaz <rosa@properties.example.net>\nTo: Alex <alex@example.org>\nSubject: The tap\n"
    "Date: Mon, 3 Mar 2025 10:00:00 +0000\nMessage-ID: <big@example.net>\nContent-Type: text/plain\n\n"
)
SENTENCE = "The plumber can come on Monday if the keys are with the concierge by nine. "


def big_email(path: Path, chars: int) -> Path:
    """A plain-text email of about ``chars`` characters of body, a paragraph every four sentences."""
    para = SENTENCE * 4 + "\n\n"
    path.write_text(HEADERS + para * (chars // len(para) + 1), encoding="utf-8")
    return path


def peak_bytes(fn):
    """``fn()``'s result and the most memory Python allocated while it ran."""
    tracemalloc.start()
    try:
        result = fn()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def special_files(tmp_path: Path) -> list[tuple[str, str]]:
    """(path, what the refusal calls it) for a device and a named pipe, where this system has them."""
    found = []
    if Path("/dev/zero").exists():
        found.append(("/dev/zero", "is a device"))
    if hasattr(os, "mkfifo"):
        fifo = tmp_path / "pipe.eml"
        os.mkfifo(fifo)
        found.append((str(fifo), "is a named pipe"))
    if not found:
        pytest.skip("no device or named pipe on this system")
    return found


# --- the email answered (--reply-file) --------------------------------------------------------------------


@pytest.mark.timeout(20)  # reading a pipe would wait for a writer forever
def test_a_device_or_a_pipe_as_the_email_answered_is_refused_before_reading(tmp_path):
    for path, kind in special_files(tmp_path):
        with pytest.raises(PromptError, match=f"{kind}, not a file: give the path of a saved email"):
            reply_from_file(path)


def test_the_email_answered_is_read_only_up_to_the_import_cap(tmp_path, monkeypatch):
    monkeypatch.setattr(sources, "MAX_MESSAGE_BYTES", 64 * 1024)  # the importer's cap, made small
    path = big_email(tmp_path / "big.eml", 4_000_000)
    reply, peak = peak_bytes(lambda: reply_from_file(path))
    assert reply.subject == "The tap" and reply.body.startswith(SENTENCE.strip())
    assert len(reply.body) < 64 * 1024
    assert peak < 1_000_000  # the 4 MB file was never read whole


class CountingBackend(FakeBackend):
    """A fake that records how much text it was asked to count."""

    counted: list[int]

    def count_tokens(self, text: str) -> int:
        self.counted.append(len(text))
        return super().count_tokens(text)


def test_answering_a_huge_email_looks_only_at_what_the_prompt_can_hold(db, tmp_path, monkeypatch):
    indexed: list[int] = []

    class RecordingIndex(CopyIndex):
        def add(self, text, key=None):
            indexed.append(len(text))
            super().add(text, key)

    monkeypatch.setattr(guard_module, "CopyIndex", RecordingIndex)
    path = big_email(tmp_path / "big.eml", 600_000)
    whole = len(reply_from_file(path).body.strip())
    backend = CountingBackend()
    backend.counted = []
    result = draft(db, "answer Rosa", reply_file=path, backend=backend)
    most = backend.n_ctx * 10  # characters per token: far more than any tokenizer packs into one
    assert max(backend.counted) < most + 4000  # the prompt's own text around the email
    assert max(indexed) <= most  # the copy guard too
    assert any(f"of {whole:,} characters) was used" in n for n in result.notices)  # the whole email's length


def test_a_long_email_that_takes_few_tokens_is_still_cut_and_said_so(db):
    # Few, very long "words": what was looked at fits whole, yet the email goes on beyond it.
    reply = ReplyContext("x.eml", "file", "Rosa Diaz", "rosa@example.net", "", "The tap", "tap " + "x" * 100_000)
    prompt = build_prompt(db, "answer Rosa", Voice(), n_ctx=2048, count_tokens=lambda t: len(t.split()), reply=reply)
    assert len(prompt.messages[-1]["content"]) < 2048 * 10
    assert "was cut to fit" in prompt.messages[-1]["content"]
    assert any("of 100,004 characters) was used" in n for n in prompt.notices)


# --- the batch instructions file --------------------------------------------------------------------------


def test_one_over_long_line_is_skipped_by_number_and_the_rest_drafted(db, tmp_path):
    todo = tmp_path / "todo.txt"
    todo.write_text("thank Rosa\n" + "word " * 8000 + "\n# a comment\nask Kenji for the numbers\n")
    report = batch(
        db,
        todo,
        tmp_path / "out.csv",
        backend=FakeBackend(replies=["Hi Rosa,\n\nThanks for the receipt.", "Hi,\n\nOk?"]),
    )
    assert report.written == 2 and report.instructions == 3
    assert [s["line"] for s in report.skipped] == [2]
    assert report.skipped[0]["reason"].startswith("longer than 32 KB")
    assert report.to_json()["skipped"] == report.skipped


def test_an_instruction_too_long_for_the_model_is_skipped_and_the_rest_drafted(db, tmp_path):
    todo = tmp_path / "todo.txt"
    todo.write_text("thank Rosa\n\n" + "word " * 3000 + "\nask Kenji\n")  # 15 KB: under the cap, over 2,048 tokens
    report = batch(db, todo, tmp_path / "out.csv", backend=FakeBackend())
    assert report.written == 2
    assert report.skipped == [{"line": 3, "reason": report.skipped[0]["reason"]}]
    assert "too long for the model's 2,048-token context window" in report.skipped[0]["reason"]


def test_a_30_mb_line_is_passed_over_in_bounded_memory(tmp_path):
    todo = tmp_path / "todo.txt"
    with todo.open("wb") as f:
        f.write(b"x" * 30_000_000 + b"\nask Kenji for the numbers\n")
    found, peak = peak_bytes(lambda: read_instructions(todo))
    assert found == ["ask Kenji for the numbers"]
    assert peak < 4_000_000


@pytest.mark.timeout(20)
def test_a_device_or_a_pipe_as_the_instructions_file_is_refused(tmp_path):
    for path, kind in special_files(tmp_path):
        with pytest.raises(InstructionsError, match=f"{kind}, not a file"):
            read_instructions(path)


# --- the pairs dataset --------------------------------------------------------------------------------


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8", newline="")
    return path


def test_a_value_over_the_field_limit_is_refused_naming_its_row(db, tmp_path):
    text = "instruction,input,output\nSay hi.,,Hi.\n" + 'Say more.,,"' + "x" * (FIELD_LIMIT + 1) + '"\n'
    with pytest.raises(DatasetError, match=rf"row 3, line 3\): a value is longer than {FIELD_LIMIT:,} characters"):
        import_pairs(db, write(tmp_path / "big.csv", text))
    assert list_pairs(db) == []  # nothing of a refused file is stored


def test_a_csv_line_over_the_line_limit_is_refused(db, tmp_path, monkeypatch):
    from trainer.pairs import csvrows

    monkeypatch.setattr(csvrows, "LINE_LIMIT", 1000)
    text = "instruction,output\nSay hi.,Hi.\nSay more.," + "x" * 2000 + "\n"
    with pytest.raises(DatasetError, match="line 3 is longer than 1,000 characters"):
        import_pairs(db, write(tmp_path / "set.csv", text))


def test_an_over_long_jsonl_line_is_dropped_unread_and_the_rest_imported(db, tmp_path, monkeypatch):
    monkeypatch.setattr(dataset, "LINE_LIMIT", 1000)
    rows = [{"instruction": "Say hi.", "output": "Hi."}, {"instruction": "x", "output": "y" * 2000}]
    rows.append({"instruction": "Say bye.", "output": "Bye."})
    report = import_pairs(db, write(tmp_path / "set.jsonl", "".join(json.dumps(r) + "\n" for r in rows)))
    assert report.imported == 2 and report.dropped == [{"row": 2, "reason": "longer than 1,000 bytes"}]


@pytest.mark.timeout(20)
def test_a_device_or_a_pipe_as_a_dataset_is_refused(db, tmp_path):
    for path, kind in special_files(tmp_path):
        link = tmp_path / "data.jsonl"  # the format follows the name; the link leads to the device or pipe
        link.unlink(missing_ok=True)
        link.symlink_to(path)
        with pytest.raises(DatasetError, match=f"{kind}, not a file"):
            import_pairs(db, link)
