"""The eval command's contract: --json keys, ablation rows, human table, exit codes; one real end-to-end run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from fakes import FakeBackend
from paired import bag_of_words, paired_store

from assistant.cli import cli
from assistant.cli.evaluate import evaluate
from trainer.evaluation import METRICS


@pytest.fixture
def paired(db, tmp_path):
    return paired_store(db, tmp_path)


def run(*args: str, backend=None):
    obj = {"backend": backend or FakeBackend(), "embed": bag_of_words}
    result = CliRunner().invoke(evaluate, list(args), obj=obj)
    return result.exit_code, result.stdout, result.stderr


def test_json_has_every_metric_and_the_report(paired):
    code, out, err = run("--json", "--limit", "3", "--no-examples", "--seed", "5")
    assert code == 0, err
    payload = json.loads(out)
    assert set(METRICS) <= set(payload) and set(METRICS) == {"bleu", "sacrebleu", "chrf", "rouge_l", "mauve",
                                                             "length_ratio", "verbatim_overlap"}  # fmt: skip
    assert {"intervals", "n", "json_path", "html_path", "warnings", "bleu_1", "bleu_4"} <= set(payload)
    assert payload["n"] == 3 and payload["examples"] is False and payload["seed"] == 5 and payload["adapter"] is None
    assert Path(payload["html_path"]).is_file() and json.loads(Path(payload["json_path"]).read_text())["n"] == 3
    assert "fewer than 50" in err  # the small-sample warning goes to stderr
    assert paired["drafts"].count == 0


def test_ablations_print_each_row(paired):
    code, out, err = run("--ablations", "--json", "--limit", "2")
    assert code == 0, err
    payload = json.loads(out)
    assert [r["label"] for r in payload["rows"]] == ["base", "base + examples"]
    assert all(set(METRICS) <= set(r) for r in payload["rows"])
    assert "adapter rows are skipped" in err


def test_human_table(paired):
    code, out, _ = run("--limit", "2")
    lines = out.splitlines()
    assert code == 0 and "bleu" in lines[0] and "verbatim overlap" in lines[0]
    assert lines[1].startswith("base + examples") and "Report: " in out and "2 validation pairs" in out


def test_user_errors_are_one_line_exit_1(db, paired):
    code, out, err = run("--adapter", "ghost")
    assert code == 1 and out == "" and err.startswith("Error: ") and "ghost" in err and err.count("\n") == 1
    assert run("--limit", "0")[0] == 2


def test_no_pairs_says_what_to_run(db):
    code, out, err = run()
    assert code == 1 and "Run: mailvoice pairs build" in err and err.count("\n") == 1


@pytest.mark.slow
def test_eval_end_to_end_on_the_embedded_model(paired):
    """mailvoice eval --limit 3 through the real command: llama.cpp on SmolLM2, MiniLM for MAUVE."""
    result = CliRunner().invoke(cli, ["eval", "--limit", "3", "--no-examples", "--json"])
    assert result.exit_code == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["n"] == 3 and payload["model"].endswith(".gguf")
    for key in ("bleu", "sacrebleu", "chrf", "rouge_l", "mauve", "verbatim_overlap"):
        assert 0 <= payload[key] <= 1, key
    assert payload["length_ratio"] > 0 and payload["mauve_buckets"] == 2
    report = json.loads(Path(payload["json_path"]).read_text())
    assert all(item["draft"].strip() for item in report["rows"][0]["items"])
