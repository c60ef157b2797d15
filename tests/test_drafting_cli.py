"""The drafting commands' contract: output, --json keys, exit codes (0 ok, 1 user error, 2 bad usage)."""

from __future__ import annotations

import csv
import json
import os

import pytest
from click.testing import CliRunner
from fakes import FakeBackend

from assistant.cli import cli
from assistant.drafting import drafts as drafts_module


@pytest.fixture
def fake(monkeypatch):
    """Every command drafts with one FakeBackend instead of loading llama.cpp."""
    backend = FakeBackend()

    def make(settings):
        backend.configure(settings)
        return backend

    monkeypatch.setattr(drafts_module, "LlamaBackend", make)
    return backend


def run(*args: str):
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def one_line_error(code: int, out: str, err: str, text: str) -> bool:
    return code == 1 and out == "" and err.startswith("Error: ") and text in err and err.count("\n") == 1


def test_draft_streams_to_stdout_and_reports_on_stderr(fake):
    fake.enqueue("Hi Rosa,\n\nMonday works.\n\nBest,\nAlex")
    code, out, err = run("draft", "tell Rosa Monday works", "--seed", "3")
    assert code == 0 and out == "Hi Rosa,\n\nMonday works.\n\nBest,\nAlex\n"
    assert "Saved as draft #1" in err


def test_draft_json_keys_and_alternatives(fake):
    fake.enqueue("Hi,\n\nOne.", "Hi,\n\nTwo.")
    code, out, _ = run("draft", "say hi", "--n", "2", "--json", "--length", "short", "--tone", "formal")
    assert code == 0
    payload = json.loads(out)
    assert {"drafts", "model", "adapter", "seconds", "tokens_per_second"} <= set(payload)
    assert payload["drafts"] == [{"id": 1, "text": "Hi,\n\nOne."}, {"id": 2, "text": "Hi,\n\nTwo."}]
    assert payload["adapter"] is None and payload["model"].endswith(".gguf")


def test_draft_human_mode_separates_alternatives(fake):
    fake.enqueue("Hi,\n\nOne.", "Hi,\n\nTwo.")
    code, out, _ = run("draft", "say hi", "--n", "2")
    assert code == 0 and out == "--- Draft 1 of 2 ---\nHi,\n\nOne.\n\n--- Draft 2 of 2 ---\nHi,\n\nTwo.\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["draft", ""], "The instruction is empty"),
        (["draft", "hi", "--reply-to", "nope@x"], "No stored message has the Message-ID"),
        (
            ["draft", "hi", "--adapter", "mine"],
            "trained yet. Train one, or draft without one. (mailvoice train trains one;",
        ),
        (["draft", "hi", "--reply-file", "missing.eml"], "Cannot read missing.eml"),
    ],
)
def test_draft_user_errors_exit_1_with_one_line(fake, args, message):
    assert one_line_error(*run(*args), message)


def test_draft_with_a_file_that_is_not_a_model(fake, tmp_path):
    junk = tmp_path / "notes.gguf"
    junk.write_text("just some notes")
    assert one_line_error(*run("draft", "hi", "--model", str(junk)), "is not a GGUF model file")


@pytest.mark.parametrize(
    "args", [["draft"], ["draft", "hi", "--length", "epic"], ["draft", "hi", "--n", "0"], ["batch", "x.txt"]]
)
def test_bad_usage_exits_2(fake, args):
    assert run(*args)[0] == 2


def test_batch_and_export_commands(fake, tmp_path):
    todo = tmp_path / "todo.txt"
    todo.write_text("# comment\nfirst one\n\nsecond one\n")
    fake.enqueue("Hi,\n\nFirst.", "Hi,\n\nSecond.")
    out = tmp_path / "out.csv"
    code, stdout, _ = run("batch", str(todo), "-o", str(out), "--json")
    assert code == 0 and json.loads(stdout)["written"] == 2
    with open(out, encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0][:2] == ["instruction", "generated_email"] and [r[:2] for r in rows[1:]] == [
        ["first one", "Hi,\n\nFirst."],
        ["second one", "Hi,\n\nSecond."],
    ]
    export = tmp_path / "all.csv"
    code, stdout, _ = run("export", "drafts", str(export), "--excel", "--json")
    assert code == 0 and json.loads(stdout) == {"out": str(export), "drafts": 2}
    assert export.read_bytes().startswith(b"\xef\xbb\xbfinstruction,generated_email,created_at,model,adapter,")


def test_batch_bad_files_exit_1(fake, tmp_path):
    binary = tmp_path / "image.txt"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    assert one_line_error(*run("batch", str(binary), "-o", str(tmp_path / "o.csv")), "is a binary file")
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    assert one_line_error(*run("batch", str(empty), "-o", str(tmp_path / "o.csv")), "has no instructions")


def test_stats_counts_drafts(fake):
    run("draft", "say hi")
    code, out, _ = run("stats", "--json")
    assert code == 0 and json.loads(out)["drafts"] == 1


def test_batch_names_a_skipped_line_and_drafts_the_rest(fake, tmp_path):
    todo = tmp_path / "todo.txt"
    todo.write_text("first one\n" + "word " * 8000 + "\nthird one\n")
    fake.enqueue("Hi,\n\nFirst.", "Hi,\n\nThird.")
    out = tmp_path / "out.csv"
    code, stdout, stderr = run("batch", str(todo), "-o", str(out))
    assert code == 0 and stdout.startswith("Wrote 2 drafts to ")
    assert f"Skipped line 2 of {todo}: longer than 32 KB" in stderr
    with open(out, encoding="utf-8", newline="") as f:
        assert [r[0] for r in csv.reader(f)][1:] == ["first one", "third one"]
    fake.enqueue("Hi,\n\nFirst.", "Hi,\n\nThird.")
    code, stdout, _ = run("batch", str(todo), "-o", str(out), "--json")
    payload = json.loads(stdout)
    assert code == 0 and payload["written"] == 2 and [s["line"] for s in payload["skipped"]] == [2]


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="no /dev/zero here")
@pytest.mark.timeout(20)  # before the fix /dev/zero was read without end
@pytest.mark.parametrize("args", [["draft", "hi", "--reply-file", "/dev/zero"], ["batch", "/dev/zero", "-o", "o.csv"]])
def test_a_device_given_as_a_file_is_one_clear_error(fake, args):
    assert one_line_error(*run(*args), "/dev/zero is a device, not a file")
