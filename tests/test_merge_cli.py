"""mailvoice batch RECIPIENTS.csv --instruction: the mail merge's output, --json keys, resume and exit codes."""

from __future__ import annotations

import csv
import json

import pytest
from test_drafting_cli import fake, one_line_error, run  # noqa: F401 - fake is a fixture

BATCH_KEYS = {"out", "instructions", "written", "seconds", "draft_ids", "cancelled", "skipped", "incomplete", "width"}


@pytest.fixture
def people(tmp_path):
    path = tmp_path / "people.csv"
    path.write_text("name,email,company\nAnn Lee,ann@a.example,Acme\n\nBob Roe,bob@b.example,Bee\n", encoding="utf-8")
    return path


def test_a_merge_writes_a_row_per_recipient_with_the_batch_columns_first(fake, people, tmp_path):  # noqa: F811
    out = tmp_path / "out.csv"
    code, stdout, _ = run("batch", str(people), "--instruction", "invite {name} to the fair", "-o", str(out), "--json")
    payload = json.loads(stdout)
    assert code == 0 and set(payload) >= BATCH_KEYS
    assert (payload["rows"], payload["written"], payload["drafted"], payload["resumed"]) == (3, 2, 2, 0)
    assert payload["skipped"] == [{"line": 3, "row": 3, "reason": "an empty row"}]
    assert payload["columns"] == ["name", "email", "company"] and payload["instruction"] == "invite {name} to the fair"
    with open(out, encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0][:7] == ["instruction", "generated_email", "draft_id", "model", "adapter", "seconds", "incomplete"]
    assert rows[0][7:] == ["row", "to", "subject", "known_recipient"]
    assert [(r[0], r[7], r[8]) for r in rows[1:]] == [("invite Ann Lee to the fair", "2", "ann@a.example"),
                                                      ("invite Bob Roe to the fair", "4", "bob@b.example")]  # fmt: skip
    assert "About the recipient: company: Acme" in fake.prompts[0][-1]["content"]


def test_running_it_again_drafts_nothing_twice(fake, people, tmp_path):  # noqa: F811
    out = tmp_path / "out.csv"
    args = ("batch", str(people), "--instruction", "invite {name}", "-o", str(out))
    assert run(*args)[0] == 0 and len(fake.prompts) == 2
    code, stdout, stderr = run(*args)
    assert code == 0 and len(fake.prompts) == 2
    assert "Resuming: 2 rows of this merge were drafted before" in stderr
    assert stdout.startswith(f"Wrote 2 drafts to {out} (2 drafted by an earlier run) in ")
    assert "Skipped row 3 of" in stderr and "an empty row" in stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--instruction", "invite {nom}"], "The instruction uses {nom}, but"),
        (["--instruction", ""], "The instruction is empty"),
    ],
)
def test_an_instruction_the_file_cannot_fill_is_one_clear_error(fake, people, tmp_path, args, message):  # noqa: F811
    assert one_line_error(*run("batch", str(people), *args, "-o", str(tmp_path / "o.csv")), message)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"ann@a.example,Ann\n", "has no header row"),
        (b"name,email\nZo\xeb,zoe@a.example\n", "is not UTF-8 text (line 2)"),
        (b"name,email\n", "has a header but no recipients"),
    ],
)
def test_a_file_that_cannot_be_merged_is_one_clear_error(fake, tmp_path, content, message):  # noqa: F811
    bad = tmp_path / "bad.txt"  # --instruction makes any file a CSV of recipients
    bad.write_bytes(content)
    assert one_line_error(*run("batch", str(bad), "--instruction", "hi {name}", "-o", str(tmp_path / "o.csv")), message)


def test_usage_errors_of_a_merge_exit_2(fake, people, tmp_path):  # noqa: F811
    out = str(tmp_path / "o.csv")
    code, _, err = run("batch", str(people), "-o", out)
    assert code == 2 and "give --instruction" in err
    assert run("batch", str(people), "--instruction", "hi", "--to", "x@y.example", "-o", out)[0] == 2
    assert fake.prompts == []


def test_an_instructions_file_is_still_one_draft_per_line(fake, tmp_path):  # noqa: F811
    todo = tmp_path / "todo.txt"
    todo.write_text("first one\nsecond one\n")
    code, stdout, _ = run("batch", str(todo), "-o", str(tmp_path / "out.csv"), "--json")
    payload = json.loads(stdout)
    assert code == 0 and set(payload) == BATCH_KEYS and payload["written"] == 2
