"""The pairs commands' contract: --json keys, human output, exit codes (0 ok, 1 user error, 2 bad usage)."""

from __future__ import annotations

import json
import re

import mailgen as gen
import pytest
from click.testing import CliRunner
from fakes import FakeBackend

from assistant.cli.pairs import pairs
from assistant.importer import import_paths


class Labeller(FakeBackend):
    def stream(self, messages, params, cancel=None):
        self.enqueue("Tell them about the plan for next week.")
        yield from super().stream(messages, params, cancel)


@pytest.fixture
def mailbox(db, tmp_path):
    path = tmp_path / "mail.mbox"
    gen.write_mbox(path, gen.generate_messages(120, seed=5))
    import_paths(db, [path], me=[gen.ME_ADDR])
    return db


def run(*args: str, backend=None):
    result = CliRunner().invoke(pairs, list(args), obj={"backend": backend or Labeller()})
    return result.exit_code, result.stdout, result.stderr


def test_build_json_keys_and_progress_on_stderr(mailbox):
    code, out, err = run("build", "--limit", "6", "--json")
    assert code == 0, err
    payload = json.loads(out)
    assert {"built", "cached", "filtered", "seconds"} <= set(payload)
    assert payload["built"] == 6 and payload["cached"] == 0 and isinstance(payload["filtered"], dict)
    assert "6 emails to label" in err and "Estimated time on this machine" in err
    code, out, err = run("build", "--limit", "6", "--json")
    assert json.loads(out)["cached"] == 6 and json.loads(out)["built"] == 0


def test_build_human_summary(mailbox):
    code, out, _ = run("build", "--limit", "4")
    assert code == 0 and "Built 4 pairs" in out and "Pairs: " in out and "not picked" in out
    # The estimate shown before labelling, beside the time it took, at the end.
    assert re.search(r"Estimated: about .+ for 4 emails \(measured on the .+\); took .+\.", out), out


def test_build_without_mail_is_a_one_line_error(db):
    code, out, err = run("build")
    assert code == 1 and out == "" and err.startswith("Error: ") and "mailvoice import" in err
    assert err.count("\n") == 1


def test_build_with_a_model_that_is_not_gguf_is_a_user_error(mailbox, tmp_path):
    fake = tmp_path / "model.gguf"
    fake.write_bytes(b"<html>404</html>")
    result = CliRunner().invoke(pairs, ["build", "--model", str(fake)])  # no backend handed in: the real path
    assert result.exit_code == 1 and "is not a GGUF model file" in result.stderr


def test_review_list_edit_exclude_include(mailbox):
    run("build", "--limit", "5")
    code, out, _ = run("list", "--json")
    listed = json.loads(out)
    assert code == 0 and len(listed["pairs"]) == 5 and listed["counts"]["total"] == 5
    first = listed["pairs"][0]
    assert {"id", "instruction", "input", "output", "split", "status", "source", "flags"} <= set(first)
    code, out, _ = run("edit", str(first["id"]), "--instruction", "Ask Leila for the notes by Friday.", "--json")
    assert code == 0 and json.loads(out)["pair"]["source"] == "edited"
    assert run("exclude", str(first["id"]))[0] == 0
    code, out, _ = run("list", "--json")
    assert json.loads(out)["counts"]["excluded"] == 1
    excluded = json.loads(run("list", "--status", "excluded", "--json")[1])["pairs"]
    assert [p["instruction"] for p in excluded] == ["Ask Leila for the notes by Friday."]
    assert run("include", str(first["id"]))[0] == 0
    code, out, _ = run("list")
    assert code == 0 and "Ask Leila for the notes by Friday." in out and "edited" in out
    code, out, _ = run("show", str(first["id"]))
    assert code == 0 and "Instruction: Ask Leila" in out and "Output:" in out
    for split in ("train", "validation"):
        listed = json.loads(run("list", "--split", split, "--json")[1])["pairs"]
        assert all(p["split"] == split for p in listed)


def test_unknown_pair_is_exit_1_and_bad_usage_is_exit_2(mailbox):
    code, out, err = run("edit", "999", "--instruction", "Ask Rosa.")
    assert code == 1 and "no pair 999" in err and "mailvoice pairs list" in err
    assert run("exclude", "999")[0] == 1
    assert run("edit", "1")[0] == 2  # --instruction missing
    assert run("list", "--split", "test")[0] == 2
    assert run("build", "--limit", "-3")[0] == 2
    assert run("edit", "1", "--instruction", "   ")[0] == 1


def test_export_and_import(mailbox, tmp_path):
    run("build", "--limit", "5")
    out_file = tmp_path / "pairs.jsonl"
    code, out, _ = run("export", str(out_file), "--json")
    assert code == 0 and json.loads(out) == {"exported": 5, "path": str(out_file)}
    assert run("export", str(tmp_path / "pairs.txt"))[0] == 1
    bad = tmp_path / "bad.csv"
    bad.write_text("instruction,input,output\nAsk Rosa.,,Hi Rosa\nTell Kenji.,,\n", encoding="utf-8")
    code, out, _ = run("import", str(bad), "--json")
    payload = json.loads(out)
    assert code == 0 and payload["imported"] == 1
    assert payload["dropped"] == [{"row": 3, "reason": "no output (the email text is missing or empty)"}]
    code, out, _ = run("import", str(bad))
    assert code == 0 and "row 3: no output" in out and "1 were already there" in out
    assert run("import", str(tmp_path / "missing.csv"))[0] == 2  # click checks the path exists


def test_scrub_settings(mailbox):
    code, out, _ = run("scrub", "--json")
    assert code == 0 and json.loads(out)["phones"] is False
    code, out, _ = run("scrub", "--phones", "--json")
    assert json.loads(out) == {"always": ["codes", "passwords", "cards", "ibans", "accounts"], "phones": True,
                               "addresses": False}  # fmt: skip
    assert "phones" in run("scrub")[1]


def test_the_list_marks_instructions_written_from_a_forced_start(mailbox):
    from assistant.paths import data_dir
    from assistant.store import open_store

    run("build", "--limit", "3")
    db = open_store(data_dir())
    first = db.execute("SELECT id FROM pairs ORDER BY id LIMIT 1").fetchone()[0]
    db.execute("UPDATE pairs SET flags = ? WHERE id = ?", ['["grammar"]', first])
    db.conn.commit()
    code, out, _ = run("list")
    row = next(line for line in out.splitlines() if line.strip().startswith(str(first)))
    assert code == 0 and " G " in row and "G written from a forced start" in out
