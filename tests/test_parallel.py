"""Labelling several emails at once: the same pairs as one at a time, resumable, the width chosen and set."""

from __future__ import annotations

import json

import mailgen as gen
import pytest
from click.testing import CliRunner
from fakes import FakeBackend, FakeParallel

from assistant.cli.pairs import pairs
from assistant.drafting.backend import EngineSettings, GenerationParams, LlamaBackend
from assistant.drafting.models import embedded_model_path
from assistant.drafting.parallel import Job, ParallelEngine, _common, default_width
from assistant.importer import import_paths
from assistant.store.db import set_setting
from trainer.pairs import build_pairs, list_pairs
from trainer.pairs.build import _plan
from trainer.pairs.candidates import find_candidates, own_words, pick_useful
from trainer.pairs.instructions import VERBS, _words, grammar, longest_common_run, start
from trainer.pairs.prompt import load_prompt

PAIR_FIELDS = ("message_id", "instruction", "input", "output", "flags", "tries", "cache_key")


class Picky(FakeBackend):
    """A labeller whose answers depend only on the prompt and the sampling settings, as a seeded model's do:
    some emails' free answers are greetings (rejected, then retried or forced), so emails take 1 to 3 tries
    and end out of order when several run at once. Reports a parallel engine of the width asked for."""

    def stream(self, messages, params, cancel=None):
        request = messages[-1]["content"]
        subject = request.split('subject "', 1)[1].split('":', 1)[0] if 'subject "' in request else "it"
        if params.grammar is None and params.seed % 3:
            self.enqueue("Hello there, I hope you are well and that the week went fine for you all")
        else:
            self.enqueue(f"Tell them about {subject} now.")
        yield from super().stream(messages, params, cancel)

    def parallel(self, width=None):
        self.engine = FakeParallel(self, width or 5)
        return self.engine


def picky() -> Picky:
    return Picky(settings=EngineSettings(model_path="fake.gguf", n_ctx=2048))


@pytest.fixture
def mailbox(db, tmp_path):
    path = tmp_path / "mail.mbox"
    gen.write_mbox(path, gen.generate_messages(150, seed=11))
    import_paths(db, [path], me=[gen.ME_ADDR])
    return db


def snapshot(db) -> dict:
    pairs = {p.message_id: tuple(getattr(p, f, None) for f in PAIR_FIELDS) for p in list_pairs(db)}
    cache = db.execute("SELECT cache_key, instruction, flags, tries, completion_tokens FROM pair_cache").fetchall()
    return {"pairs": pairs, "cache": sorted(cache)}


def clear(db) -> None:
    with db.conn:
        db.execute("DELETE FROM pairs")
        db.execute("DELETE FROM pair_cache")


def test_four_at_once_makes_the_same_pairs_as_one_at_a_time(mailbox):
    alone = picky()
    one = build_pairs(mailbox, alone, limit=None, width=1)
    reference = snapshot(mailbox)
    clear(mailbox)
    many = picky()
    four = build_pairs(mailbox, many, limit=None, width=4)
    assert (one.width, four.width, four.status) == (1, 4, "done")
    assert snapshot(mailbox) == reference
    assert one.methods == four.methods and one.methods["model"] and one.methods["grammar"]
    assert (one.completion_tokens, one.rejected) == (four.completion_tokens, four.rejected)
    assert len(many.prompts) == len(alone.prompts)  # every try asked once, no email twice
    assert many.engine.closed and many.engine.peak == 4


def test_a_stopped_parallel_build_keeps_finished_pairs_and_resumes(mailbox):
    first = picky()
    report = build_pairs(mailbox, first, limit=None, width=4, cancel=lambda: len(first.prompts) >= 12)
    kept = mailbox.execute("SELECT COUNT(*) FROM pairs").fetchone()[0]
    assert report.status == "cancelled" and 0 < report.built == kept < report.selected
    resumed = build_pairs(mailbox, picky(), limit=None, width=4)
    assert resumed.cached == kept and resumed.built == resumed.usable - kept
    done = snapshot(mailbox)
    clear(mailbox)
    build_pairs(mailbox, picky(), limit=None, width=1)
    assert snapshot(mailbox)["pairs"] == done["pairs"]


def test_the_width_comes_from_the_setting_then_the_engine(mailbox):
    set_setting(mailbox, "label_width", 3)
    assert build_pairs(mailbox, picky(), limit=5).width == 3
    set_setting(mailbox, "label_width", 1)
    assert build_pairs(mailbox, picky(), limit=8).width == 1  # one at a time
    set_setting(mailbox, "label_width", None)
    assert build_pairs(mailbox, picky(), limit=12).width == 5  # the engine's own choice
    assert build_pairs(mailbox, FakeBackend(), limit=14, width=4).width == 1  # no engine: one at a time


def test_pairs_build_takes_width(mailbox):
    result = CliRunner().invoke(pairs, ["build", "--limit", "6", "--width", "3", "--json"], obj={"backend": picky()})
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["width"] == 3
    bad = CliRunner().invoke(pairs, ["build", "--width", "0"], obj={"backend": picky()})
    assert bad.exit_code == 2


def test_generate_many_keeps_the_jobs_order_and_reports_as_they_end():
    backend = FakeBackend(replies=["one two three four", "five", "six seven"])
    jobs = [Job([{"role": "user", "content": str(i)}], GenerationParams(), tag=i) for i in range(3)]
    ended = []
    out = FakeParallel(backend, 3).generate_many(jobs, lambda job, _c: ended.append(job.tag))
    assert [c.text for c in out] == ["one two three four", "five", "six seven"]
    assert ended == [1, 2, 0]


def test_default_width_by_model_size_and_memory():
    gib = 1 << 30
    assert default_width(135_000_000, 23_040, 2048, memory=16 * gib) == 1  # small, on the CPU: compute-bound
    assert default_width(135_000_000, 23_040, 2048, memory=16 * gib, gpu=True) == 8
    assert default_width(8_000_000_000, 131_072, 2048, memory=16 * gib) == 4
    assert default_width(8_000_000_000, 131_072, 2048, memory=gib) == 1  # a quarter of 1 GiB: no room to spare
    assert default_width(8_000_000_000, 131_072, 2048, memory=4 * gib) == 3  # 1 GiB: 4 contexts, one the prefix
    assert default_width(135_000_000, 0, 2048, memory=0, gpu=True) == 8  # unknown: by size alone


@pytest.mark.slow
def test_the_embedded_model_labels_four_at_once_reading_the_shared_prefix_once(mailbox):
    backend = LlamaBackend(EngineSettings(model_path=str(embedded_model_path()), n_ctx=2048))
    fallbacks = {}
    for width in (1, 4):
        clear(mailbox)
        report = build_pairs(mailbox, backend, limit=8, width=width)
        assert (report.built, report.width, report.status) == (8, width, "done")
        fallbacks[width] = report.methods["fallback"]
        for pair in list_pairs(mailbox):
            words = _words(pair.instruction)
            email = [w.lower() for w in _words(" ".join(own_words(pair.output)))]
            assert words and words[0] in VERBS and "\n" not in pair.instruction, pair.instruction
            assert longest_common_run(words, email) < len(email)
    assert fallbacks[4] == fallbacks[1]  # as many valid instructions written by the model

    # The engine alone: six emails' first tries, two of them with a forced start, four at a time.
    prompt = load_prompt()
    jobs = _plan(mailbox, pick_useful(find_candidates(mailbox)[0], 6), prompt, "m")
    asks = []
    for i, job in enumerate(jobs):
        lead = start(job.request) if i % 3 == 2 else None
        params = GenerationParams(max_tokens=24, temperature=0.2, seed=i, repeat_penalty=1.05, stop=("\n",),
                                  grammar=grammar(lead, job.request) if lead else None)  # fmt: skip
        asks.append(Job(prompt.messages(job.request, backend.count_tokens, 1800), params, tag=lead))
    engine = ParallelEngine(backend.settings, 4)
    tokens = [engine._format(a.messages, a.params)[0] for a in asks]
    shared = min(_common(tokens[0], t) for t in tokens[1:])
    ended = []
    feed = iter(asks)
    stats = engine.run(lambda: next(feed, None), lambda job, done: ended.append((job.tag, done.text)))
    engine.close()
    assert len(ended) == 6 and stats.peak == 4 and all(text.strip() for _lead, text in ended)
    assert all(lead is None or text.startswith(lead) for lead, text in ended), ended
    # The prefix is read once: the first prompt whole, every other prompt only past the shared part.
    assert shared > 300 and stats.prompt_tokens == sum(map(len, tokens))
    assert stats.prompt_decoded <= len(tokens[0]) + sum(len(t) - shared for t in tokens[1:])
