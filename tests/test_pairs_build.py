"""Building pairs with a fake model: reply context, cache, resume after a stop or a kill -9, progress."""

from __future__ import annotations

import dataclasses
import inspect
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

import mailgen as gen
import pytest
from fakes import FakeBackend

from assistant.drafting.backend import EngineSettings
from assistant.importer import import_paths
from assistant.store import open_store
from trainer.pairs import build_pairs, edit_instruction, list_pairs, set_status
from trainer.pairs.errors import PairsError
from trainer.pairs.prompt import load_prompt


class Labeller(FakeBackend):
    """Answers every prompt with a valid instruction about the email's subject, so one prompt = one pair."""

    def stream(self, messages, params, cancel=None):
        request = messages[-1]["content"]
        subject = request.split('subject "', 1)[1].split('":', 1)[0] if 'subject "' in request else "it"
        self.enqueue(f"Tell them about {subject} now.")
        yield from super().stream(messages, params, cancel)


@pytest.fixture
def mailbox(db, tmp_path):
    path = tmp_path / "mail.mbox"
    gen.write_mbox(path, gen.generate_messages(150, seed=11))
    import_paths(db, [path], me=[gen.ME_ADDR])
    return db


def labeller(model: str = "fake.gguf") -> FakeBackend:
    return Labeller(settings=EngineSettings(model_path=model, n_ctx=2048))


def test_build_makes_one_pair_per_usable_email_with_reply_context(mailbox):
    backend = labeller()
    report = build_pairs(mailbox, backend, limit=None)
    assert report.status == "done" and report.built == report.usable == report.selected > 20
    assert report.filtered.get("forward", 0) >= 1 and len(backend.prompts) == report.built
    pairs = list_pairs(mailbox)
    assert len(pairs) == report.built and all(p.source == "built" and p.status == "ok" for p in pairs)
    replies = [p for p in pairs if p.input]
    assert replies and all(p.input.startswith("From: ") and "\nSubject: " in p.input for p in replies)
    assert {p.split for p in pairs} == {"train", "validation"}
    row = mailbox.execute("SELECT body FROM messages WHERE message_id = ?", [pairs[0].message_id]).fetchone()
    assert pairs[0].output == row[0].strip()
    assert set(report.to_json()) >= {"built", "cached", "filtered", "seconds"}


def test_a_second_build_generates_nothing(mailbox):
    first = build_pairs(mailbox, labeller(), limit=15)
    again = labeller()
    second = build_pairs(mailbox, again, limit=15)
    assert (first.built, second.built, second.cached) == (15, 0, 15) and again.prompts == []
    more = labeller()
    third = build_pairs(mailbox, more, limit=20)  # the pick for 15 is the start of the pick for 20
    assert (third.built, third.cached, len(more.prompts)) == (5, 15, 5)


def test_a_stopped_build_resumes_without_regenerating_finished_pairs(mailbox):
    first = labeller()
    report = build_pairs(mailbox, first, limit=None, cancel=lambda: len(first.prompts) >= 5)
    assert report.status == "cancelled" and report.built == 4  # the fifth was cut mid-answer
    assert mailbox.execute("SELECT COUNT(*) FROM pairs").fetchone()[0] == 4
    second = labeller()
    resumed = build_pairs(mailbox, second, limit=None)
    assert resumed.cached == 4 and resumed.built == resumed.usable - 4 == len(second.prompts)


def test_kill_9_mid_build_loses_nothing_finished(mailbox, data_home):
    total = build_pairs(mailbox, labeller(), limit=None, cancel=lambda: True).usable
    child = textwrap.dedent(
        f"""
        import sys, time
        sys.path.insert(0, {os.path.dirname(os.path.abspath(__file__))!r})  # the tests' own fakes
        from assistant.drafting.backend import EngineSettings
        from fakes import FakeBackend
        from assistant.store import open_store
        from trainer.pairs import build_pairs
        {textwrap.indent(inspect.getsource(Labeller), "        ").strip()}

        class Slow(Labeller):
            def stream(self, messages, params, cancel=None):
                time.sleep(0.05)
                yield from super().stream(messages, params, cancel)

        db = open_store(sys.argv[1])
        build_pairs(db, Slow(settings=EngineSettings(model_path="fake.gguf")), limit=None)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", child, str(data_home)])
    watch = sqlite3.connect(data_home / "mailvoice.db", timeout=30)
    deadline = time.monotonic() + 60
    try:
        while watch.execute("SELECT COUNT(*) FROM pairs").fetchone()[0] < 5:
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.02)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    db = open_store(data_home, check=True)
    done = db.execute("SELECT COUNT(*) FROM pairs").fetchone()[0]
    assert 5 <= done < total
    backend = labeller()
    report = build_pairs(db, backend, limit=None)
    assert report.cached == done and report.built == len(backend.prompts) == total - done
    assert db.execute("SELECT COUNT(DISTINCT message_id) FROM pairs").fetchone()[0] == total


def test_a_new_prompt_version_regenerates_but_keeps_edits_and_exclusions(mailbox):
    build_pairs(mailbox, labeller(), limit=10)
    edited = edit_instruction(mailbox, 1, "Tell Leila the write-up comes this afternoon.")
    set_status(mailbox, 2, "excluded")
    backend = labeller()
    newer = dataclasses.replace(load_prompt(), version=load_prompt().version + 1)
    report = build_pairs(mailbox, backend, limit=10, prompt=newer)
    assert (report.built, report.cached, len(backend.prompts)) == (8, 2, 8)
    pairs = {p.id: p for p in list_pairs(mailbox)}
    assert pairs[1].instruction == edited.instruction and pairs[1].source == "edited"
    assert pairs[2].status == "excluded" and len(pairs) == 10


def test_switching_back_to_a_model_reuses_its_instructions(mailbox):
    build_pairs(mailbox, labeller("a.gguf"), limit=6)
    other = labeller("b.gguf")
    assert build_pairs(mailbox, other, limit=6).built == 6 and len(other.prompts) == 6
    back = labeller("a.gguf")
    report = build_pairs(mailbox, back, limit=6)
    assert (report.built, report.cached, back.prompts) == (0, 6, [])
    assert {p.model for p in list_pairs(mailbox)} == {"a.gguf"}


def test_failed_answers_fall_back_and_are_flagged(mailbox):
    backend = FakeBackend()  # answers "Reply N": too short every time
    report = build_pairs(mailbox, backend, limit=3, tries=2)
    assert report.fallback == 3 and report.retried == 3 and len(backend.prompts) == 6
    assert report.rejected == {"too_short": 6}
    assert all("fallback" in p.flags and p.instruction for p in list_pairs(mailbox))


def test_progress_reports_an_estimate_first_then_eta(mailbox):
    events = []
    build_pairs(mailbox, labeller(), limit=8, progress=events.append)
    phases = [e.phase for e in events]
    assert phases[0] == "start" and phases[-1] == "done" and phases.count("pair") == 8
    estimate = next(e for e in events if e.phase == "estimate")
    assert estimate.done == 3 and estimate.estimate is not None and estimate.estimate_from == "first 3 emails"
    assert [e.eta for e in events if e.phase == "pair"][-1] == 0
    later = []
    build_pairs(mailbox, labeller(), limit=12, progress=later.append)
    assert later[0].estimate is not None and later[0].estimate_from == "last build"  # known before any work


def test_the_first_estimate_is_made_again_once_enough_labelling_is_measured(mailbox, monkeypatch):
    import trainer.pairs.build as build_module

    monkeypatch.setattr(build_module, "ESTIMATE_AGAIN", 0.0)  # a minute of labelling on a real model
    events = []
    build_pairs(mailbox, labeller(), limit=8, progress=events.append)
    estimates = [(e.done, e.estimate_from) for e in events if e.phase == "estimate"]
    assert estimates == [(3, "first 3 emails"), (4, "first 4 emails")]  # once more, then no more


def test_secrets_in_mail_are_scrubbed_in_the_review(mailbox):
    mid = mailbox.execute("SELECT message_id FROM messages WHERE sent_by_me = 1 AND automated = 0 "
                          "AND is_forward = 0 ORDER BY date DESC LIMIT 1").fetchone()[0]  # fmt: skip
    with mailbox.conn:
        mailbox.execute("UPDATE messages SET body = body || ? WHERE message_id = ?",
                        ["\n\nPS: the door code is 4411, the wifi password is Tr0ub4dor&3.", mid])  # fmt: skip
    build_pairs(mailbox, labeller(), limit=1)
    (pair,) = list_pairs(mailbox)
    assert pair.message_id == mid and "[CODE]" in pair.output and "[PASSWORD]" in pair.output
    assert "4411" not in pair.output and pair.scrubbed == {"CODE": 1, "PASSWORD": 1}


def test_nothing_to_build_says_what_to_do(db):
    with pytest.raises(PairsError, match="mailvoice import"):
        build_pairs(db, labeller())


def test_a_full_disk_is_a_clear_error_and_the_build_resumes_where_it_stopped(mailbox, tmp_path):
    from assistant.errors import StoreError

    pages = mailbox.execute("PRAGMA page_count").fetchone()[0]
    mailbox.execute(f"PRAGMA max_page_count = {pages + 3}")  # room for a few pairs, then "disk full"
    with pytest.raises(StoreError, match="is full. Free some space"):
        build_pairs(mailbox, labeller(), limit=None)
    assert mailbox.execute("PRAGMA quick_check").fetchone()[0] == "ok"
    kept = mailbox.execute("SELECT COUNT(*) FROM pairs").fetchone()[0]
    mailbox.execute("PRAGMA max_page_count = 1073741823")
    again = labeller()
    report = build_pairs(mailbox, again, limit=None)
    assert report.status == "done" and report.cached == kept and report.built == len(again.prompts)
    assert kept > 0 and report.built > 0  # the disk filled up in the middle of the build
    assert report.cached + report.built == report.usable
    # The same pairs as a build that never ran out of space.
    reference = open_store(tmp_path / "reference")
    import_paths(reference, [tmp_path / "mail.mbox"], me=[gen.ME_ADDR])
    build_pairs(reference, labeller(), limit=None)
    query = "SELECT message_id, instruction, output, split FROM pairs ORDER BY message_id"
    assert mailbox.execute(query).fetchall() == reference.execute(query).fetchall()


# --- how each instruction was made -----------------------------------------------------------------------


class TinyLabeller(FakeBackend):
    """A model as small as the embedded one: free answers are the email ("Hi there,"); with a forced start it
    goes on from that start with the subject the prompt shows, as a grammar would make it."""

    def stream(self, messages, params, cancel=None):
        if params.grammar is None:
            self.enqueue("Hi there, thanks for the update.")
        else:
            start, link = re.match(r'root ::= \(?"([^"]+)"[^"]*"([^"]+)"', params.grammar).groups()
            subject = messages[-1]["content"].split('subject "', 1)[1].split('":', 1)[0]
            self.enqueue(f"{start}{link}{subject} now.")
        yield from super().stream(messages, params, cancel)


def test_the_report_says_how_each_instruction_was_made(mailbox):
    report = build_pairs(mailbox, TinyLabeller(), limit=6)
    assert report.methods == {"model": 0, "retried": 0, "grammar": 6, "fallback": 0} and report.fallback_share == 0
    assert report.to_json()["methods"] == report.methods and report.to_json()["fallback_share"] == 0
    assert report.rejected == {"not_imperative": 6}
    pairs = list_pairs(mailbox)
    assert {p.method for p in pairs} == {"grammar"} and all("grammar" in p.flags for p in pairs)
    assert all(p.to_json()["method"] == "grammar" for p in pairs)
    failing = build_pairs(mailbox, FakeBackend(), limit=10, tries=2)  # "Reply N": too short every time
    assert failing.methods == {"model": 0, "retried": 0, "grammar": 0, "fallback": 4} and failing.fallback_share == 1
    assert [p.method for p in list_pairs(mailbox)].count("fallback") == 4
    edited = edit_instruction(mailbox, list_pairs(mailbox)[0].id, "Tell Leila the write-up comes this afternoon.")
    assert edited.method == ""  # a person's instruction was made by no path of the builder


def test_build_prints_the_share_of_each_method(mailbox):
    from click.testing import CliRunner

    from assistant.cli.pairs import pairs

    result = CliRunner().invoke(pairs, ["build", "--limit", "5", "--json"], obj={"backend": TinyLabeller()})
    payload = json.loads(result.stdout)
    assert payload["methods"] == {"model": 0, "retried": 0, "grammar": 5, "fallback": 0}
    assert payload["fallback_share"] == 0
    result = CliRunner().invoke(pairs, ["build", "--limit", "8"], obj={"backend": FakeBackend()})
    assert "Instructions: 0 written by the model at once, 0 on a retry, 0 with a forced start (flag: grammar), " \
        "3 extracted from the email (100%, flag: fallback)." in result.stdout  # fmt: skip


def test_instructions_name_people_not_list_addresses():
    from trainer.pairs.build import _recipients

    to = [("Robert Mader", "robert@example.org"), ("", "dri-devel@lists.example.org"), ("Raman, Priya", "p@x.org")]
    assert _recipients(to) == "Robert Mader and Priya Raman"
    assert _recipients([("Thomas Hellström (Intel)", "t@x.org")]) == "Thomas Hellström"  # not his employer
    assert _recipients([('"Thomas" (Intel)', "t@x.org"), ("(Jane Doe)", "j@x.org")]) == "Thomas and (Jane Doe)"
    # a name that is only the address's own local part, as a mail client fills it in, names nobody
    assert _recipients([("zhaoyang.huang", "zhaoyang.huang@x.com"), ("Sumit Semwal", "s@x.org")]) == "Sumit Semwal"
    assert _recipients([("Andy.Hsieh", "andy.hsieh@x.com"), ("Sumit", "s@x.org")]) == "Andy.Hsieh and Sumit"  # typed
    assert _recipients([("", "phasta@kernel.org"), ("", "simona@ffwll.ch")]) == "phasta and simona"  # nobody named
    # Lists by their display names, as a kernel maintainer's reply addresses them (linaro-mm-sig), and the user
    # on his own copy: only the people are named.
    me = frozenset({"christian.koenig@amd.com"})
    to = [("Daniel Vetter", "daniel@ffwll.ch"), ("Christian König", "Christian.Koenig@amd.com"),
          ("moderated list:DMA BUFFER SHARING FRAMEWORK", "linaro-mm-sig@lists.linaro.org"),
          ("open list:DMA BUFFER SHARING FRAMEWORK", "linux-media@vger.kernel.org"),
          ("DRI Development", "dri-devel@lists.freedesktop.org"), ("Linux Media Mailing List", "media@example.org"),
          ("intel-gfx", "intel-gfx@example.org"), ("Sumit Semwal", "sumit.semwal@linaro.org")]  # fmt: skip
    assert _recipients(to, me) == "Daniel Vetter and Sumit Semwal"
    assert _recipients(to) == "Daniel Vetter and Christian König and Sumit Semwal"  # not told whose it is
    # lists alone: by their addresses, not "moderated" or "open"
    lists = [("moderated list:DMA BUFFER SHARING FRAMEWORK", "linaro-mm-sig@lists.linaro.org"),
             ("DRI Development", "dri-devel@lists.freedesktop.org")]  # fmt: skip
    assert _recipients(lists, me) == "linaro-mm-sig and dri-devel"
    assert _recipients([("Christian König", "christian.koenig@amd.com")], me) == ""  # a note to himself


@pytest.mark.corpora
def test_a_list_authors_instructions_name_the_people_he_answers_not_his_lists_or_himself(db, corpora):
    """linaro-mm-sig: Christian König writes to people with four lists and often himself on To and Cc."""
    from trainer.pairs.build import _plan
    from trainer.pairs.candidates import find_candidates

    mine = ["christian.koenig@amd.com", "ckoenig.leichtzumerken@gmail.com"]
    import_paths(db, [corpora / "linaro-mm-sig" / "koenig-and-parents.mbox"], me=mine)
    candidates, _ = find_candidates(db)
    named = [job.request.to for job in _plan(db, candidates, load_prompt(), "model")]
    assert len(named) == len(candidates) > 400
    words = {w for to in named for w in re.split(r",\s*|\s+and\s+|\s+", to)}
    assert not words & {"moderated", "open", "list", "List", "DRI", "Development", "Christian", "König"}, words
    assert {"Daniel", "Sumit", "Jason"} <= words
    assert sum(1 for to in named if to) == len(named)  # nobody left unnamed: a list alone by its address


def test_a_list_is_told_from_a_person_by_its_host_its_name_or_its_own_addresses():
    from assistant.mail.identity import is_list_address

    lists = [("", "dri-devel@lists.freedesktop.org"), ("open list", "linux-kernel@vger.kernel.org"),
             ("Linux Media Mailing List", "linux-media@example.org"), ("moderated list:DRM", "x@example.org"),
             ("intel-gfx", "intel-gfx@lists.example.org"), ("", "dev-request@example.org"),
             ("Ann", "team@googlegroups.com")]  # fmt: skip
    people = [("Daniel Vetter", "daniel@ffwll.ch"), ("", "phasta@kernel.org"), ("Lister, Ann", "ann@example.org"),
              ("Sumit Semwal", "sumit.semwal@linaro.org"), ("ann", "ann@example.org"),
              ("Callista Ray", "c@mailinglistsoftware.example"), ("Ivan Petrov", "ivan@list.ru"),
              ("Sepp Hochreiter", "hochreiter@ml.jku.at"), ("Jane", "jane@ml.com"), ("Doe, John (IT: Ops)", "j@x.org"),
              ("Friedrich List", "f.list@example.org"), ("List, Tobias", "t@example.org"),
              ("john.doe", "john.doe@example.org"), ("Mary-Ann", "mary-ann@example.org")]  # fmt: skip
    assert [is_list_address(n, a) for n, a in lists] == [True] * len(lists)
    assert [is_list_address(n, a) for n, a in people] == [False] * len(people)
