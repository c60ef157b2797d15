"""Several drafts at once (batch and eval on the parallel engine): the same drafts as one at a time."""

from __future__ import annotations

import csv
import json
import zlib
from pathlib import Path

import pytest
from fakes import FakeBackend, FakeParallel
from paired import bag_of_words, paired_store

from assistant.drafting import batch
from assistant.drafting.backend import EngineSettings, LlamaBackend
from assistant.drafting.drafts import DraftJob, draft_many, list_drafts
from assistant.drafting.models import embedded_model_path
from assistant.drafting.prompting import PromptError
from assistant.store.db import set_setting
from trainer.evaluation import evaluate
from trainer.evaluation.run import validation_pairs

HOLLOW = "Best,\nAlex"


class Seeded(FakeBackend):
    """A model whose reply depends only on the prompt and the seed, as a seeded model's does. A third of the
    replies are a sign-off alone (the draft is written again with another seed); the others run on past the
    writer's sign-off (the sign-off ends them). Reports a parallel engine of the width asked for."""

    def stream(self, messages, params, cancel=None):
        h = zlib.crc32(f"{messages[-1]['content']}|{params.seed}".encode())
        if h % 3 == 0:
            self.enqueue(HOLLOW)
        else:
            words = " ".join(f"w{(h >> i) % 97}" for i in range(h % 9 + 2))
            self.enqueue(f"Hi Rosa,\n\nAbout {words}: done as asked.\n\nBest,\nAlex\n\nSent from my phone, and more")
        yield from super().stream(messages, params, cancel)

    def parallel(self, width=None):
        self.engine = FakeParallel(self, width or 5)
        return self.engine


def seeded() -> Seeded:
    return Seeded(settings=EngineSettings(model_path="fake.gguf", n_ctx=2048))


@pytest.fixture
def paired(db, tmp_path):
    paired_store(db, tmp_path)
    return db


INSTRUCTIONS = [f"ask Rosa about item {i} and the {w}" for i, w in enumerate(["tap", "rent", "keys", "roof"] * 3)]


def drafted(db) -> list[tuple]:
    """What every saved draft holds, timings aside, oldest first by instruction."""
    rows = []
    for d in list_drafts(db):
        params = json.loads(db.execute("SELECT params FROM drafts WHERE id = ?", [d["id"]]).fetchone()[0])
        params.pop("first_token_seconds")
        params["guard"].pop("ms")
        rows.append((d["instruction"], d["text"], d["flag"], json.dumps(params, sort_keys=True)))
    return sorted(rows)


def csv_rows(path: Path) -> list[tuple[str, str, str]]:
    with open(path, encoding="utf-8", newline="") as f:
        return [(r["instruction"], r["generated_email"], r["incomplete"]) for r in csv.DictReader(f)]


def test_batch_four_at_once_writes_the_same_drafts_in_the_files_order(paired, tmp_path):
    todo = tmp_path / "todo.txt"
    todo.write_text("\n".join(INSTRUCTIONS) + "\n")
    alone = seeded()
    one = batch(paired, todo, tmp_path / "one.csv", backend=alone, width=1, seed=5)
    reference = drafted(paired)
    paired.execute("DELETE FROM drafts")
    many = seeded()
    seen = []
    four = batch(paired, todo, tmp_path / "four.csv", backend=many, width=4, seed=5, progress=seen.append)
    assert (one.written, four.written, four.cancelled) == (12, 12, False)
    assert csv_rows(tmp_path / "four.csv") == csv_rows(tmp_path / "one.csv")
    assert [r[0] for r in csv_rows(tmp_path / "four.csv")] == INSTRUCTIONS
    assert drafted(paired) == reference
    assert len(many.prompts) == len(alone.prompts) > 12  # every retry asked once, nothing twice
    assert many.engine.closed and many.engine.peak == 4
    assert [p.done for p in seen] == list(range(13))
    texts = [r[1] for r in csv_rows(tmp_path / "four.csv")]
    assert all("Sent from my phone" not in t and t.endswith("Alex") for t in texts)  # the sign-off ended each


def test_a_stopped_parallel_batch_writes_every_finished_draft(paired, tmp_path):
    todo = tmp_path / "todo.txt"
    todo.write_text("\n".join(INSTRUCTIONS) + "\n")
    backend = seeded()
    report = batch(paired, todo, tmp_path / "out.csv", backend=backend, width=4, seed=5,
                   cancel=lambda: paired["drafts"].count >= 5)  # fmt: skip
    rows = csv_rows(tmp_path / "out.csv")
    assert report.cancelled and 0 < report.written == len(rows) == paired["drafts"].count < 12
    assert {r[0] for r in rows} <= set(INSTRUCTIONS) and all(r[1] for r in rows)


def test_a_draft_that_cannot_be_made_is_skipped_and_the_others_go_on(paired, tmp_path):
    todo = tmp_path / "todo.txt"
    long = "explain " + "all of it " * 1500
    todo.write_text(f"{INSTRUCTIONS[0]}\n{long}\n{INSTRUCTIONS[1]}\n")
    report = batch(paired, todo, tmp_path / "out.csv", backend=seeded(), width=3, seed=5)
    assert report.written == 2 and [s["line"] for s in report.skipped] == [2]
    assert [r[0] for r in csv_rows(tmp_path / "out.csv")] == INSTRUCTIONS[:2]


def test_the_width_comes_from_the_argument_then_the_setting_then_the_engine(paired):
    def width(backend, **options):
        got = []
        used = draft_many(paired, [DraftJob("ask Rosa about the tap")], lambda j, r: got.append(r), backend=backend,
                          seed=1, **options)  # fmt: skip
        assert len(got) == 1 and not isinstance(got[0], PromptError)
        return used

    assert width(seeded(), width=3) == 3
    set_setting(paired, "draft_width", 2)
    assert width(seeded()) == 2
    assert width(seeded(), width=1) == 1
    set_setting(paired, "draft_width", 1)
    assert width(seeded()) == 1
    set_setting(paired, "draft_width", None)
    assert width(seeded()) == 5  # the engine's own choice
    assert width(FakeBackend(), width=4) == 1  # no engine: one at a time


def test_eval_four_at_once_scores_the_same_drafts(paired):
    root = Path(paired.execute("PRAGMA database_list").fetchone()[2]).parent
    total = len(validation_pairs(paired))
    options = {"adapter": None, "examples": True, "limit": None, "embed": bag_of_words, "seed": 3}
    one = evaluate(paired, root, backend=seeded(), width=1, **options)
    paired.execute("DELETE FROM eval_drafts")
    many = seeded()
    four = evaluate(paired, root, backend=many, width=4, **options)
    assert four.rows[0].generated == total and many.engine.peak == min(4, total)
    assert [it["draft"] for it in four.rows[0].items] == [it["draft"] for it in one.rows[0].items]
    assert four.metrics["bleu"] == one.metrics["bleu"]


@pytest.mark.slow
def test_the_embedded_model_drafts_three_at_once(paired, tmp_path):
    """On llama.cpp's engine: each draft a real email, the sign-off ending it, as one at a time does."""
    backend = LlamaBackend(EngineSettings(model_path=str(embedded_model_path()), n_ctx=2048))
    todo = tmp_path / "todo.txt"
    todo.write_text("\n".join(INSTRUCTIONS[:3]) + "\n")
    texts = {}
    for width in (1, 3):
        paired.execute("DELETE FROM drafts")
        report = batch(paired, todo, tmp_path / f"w{width}.csv", backend=backend, width=width, seed=11,
                       length="short")  # fmt: skip
        assert report.written == 3 and report.width == width and not report.skipped
        texts[width] = [r[1] for r in csv_rows(tmp_path / f"w{width}.csv")]
        assert all(len(t.split()) >= 5 for t in texts[width]), texts[width]
    # Batched sums can tip a near-tie between two tokens; most drafts come out the same.
    assert sum(a == b for a, b in zip(texts[1], texts[3], strict=True)) >= 2, texts


def test_batch_and_eval_take_width(paired, tmp_path, monkeypatch):
    from click.testing import CliRunner

    import assistant.drafting.drafts as drafts_module
    from assistant.cli import cli
    from assistant.cli.evaluate import evaluate as evaluate_command

    backend = seeded()
    monkeypatch.setattr(drafts_module, "LlamaBackend", lambda settings: backend)
    home = ["--data-dir", str(Path(paired.execute("PRAGMA database_list").fetchone()[2]).parent)]
    todo = tmp_path / "todo.txt"
    todo.write_text("\n".join(INSTRUCTIONS[:5]) + "\n")
    result = CliRunner().invoke(cli, [*home, "batch", str(todo), "-o", str(tmp_path / "o.csv"), "--width", "3",
                                      "--json"])  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["width"] == 3 and backend.engine.peak == 3
    evaluating = seeded()
    result = CliRunner().invoke(evaluate_command, ["--limit", "3", "--width", "2", "--json"],
                                obj={"backend": evaluating, "embed": bag_of_words})  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["generated"] == 3 and evaluating.engine.peak == 2
    for command in (["batch", str(todo), "-o", str(tmp_path / "o.csv")], ["eval"]):
        assert CliRunner().invoke(cli, [*home, *command, "--width", "0"]).exit_code == 2


def merge_rows(path: Path) -> list[tuple[str, str, str, str]]:
    with open(path, encoding="utf-8", newline="") as f:
        return [(r["row"], r["to"], r["instruction"], r["generated_email"]) for r in csv.DictReader(f)]


def test_a_mail_merge_four_at_once_is_the_same_and_resumes_after_its_preview(paired, tmp_path):
    from assistant.drafting.mailmerge import mail_merge

    people = tmp_path / "people.csv"
    names = ["Rosa", "Kenji", "Grace", "Priya", "Marco", "Lena", "Sam", "Ana", "Omar"]
    lines = [f"{n},{n.lower()}@example.net,{'Acme' if i % 2 else 'Globex'}" for i, n in enumerate(names)]
    people.write_text("name,email,company\n" + "\n".join(lines[:4]) + "\nBroken,not an address,X\n"
                      + "\n".join(lines[4:]) + "\n")  # fmt: skip
    instruction = "invite {name} to the launch on May 3"
    one = mail_merge(paired, people, instruction, tmp_path / "one.csv", backend=seeded(), width=1, seed=5)
    reference = merge_rows(tmp_path / "one.csv")
    paired.execute("DELETE FROM drafts")
    preview = mail_merge(paired, people, instruction, tmp_path / "p.csv", backend=seeded(), width=4, seed=5, limit=3)
    assert preview.written == 3 and merge_rows(tmp_path / "p.csv") == reference[:3]
    many = seeded()
    rest = mail_merge(paired, people, instruction, tmp_path / "four.csv", backend=many, width=4, seed=5)
    assert (rest.resumed, rest.drafted, rest.written) == (3, 6, 9) and many.engine.peak == 4
    assert merge_rows(tmp_path / "four.csv") == reference and one.written == 9
    assert [s["row"] for s in rest.skipped] == [s["row"] for s in one.skipped] and len(rest.skipped) == 1


def test_nothing_to_draft_loads_no_model(paired, monkeypatch):
    import assistant.drafting.drafts as drafts_module

    def no_model(*_args, **_kwargs):
        raise AssertionError("the model was resolved with nothing to draft")

    monkeypatch.setattr(drafts_module, "engine_settings", no_model)
    assert draft_many(paired, iter(()), lambda job, result: None, width=4) == 1
