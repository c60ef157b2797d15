"""bench/quality.py, the quality measurement's driver: its mailbox is the same on every run (so every run holds
out the same validation emails), and the CPU recipe it can give an older version is the one train chooses."""

from __future__ import annotations

import importlib.util
import json
import mailbox
from pathlib import Path

import numpy as np
import pytest

from assistant.drafting.backend import TOKENS_PER_WORD
from trainer.preflight import CPU_RECIPE

REPO = Path(__file__).resolve().parents[1]


def load_quality():
    spec = importlib.util.spec_from_file_location("quality_bench", REPO / "bench" / "quality.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_set_becomes_the_same_mailbox_on_every_run(tmp_path):
    quality = load_quality()
    dataset = tmp_path / "ana_lima_clean.jsonl"
    dataset.write_text("\n".join(json.dumps({"email": f"Hi,\n\nnote {n}.\n\nAna"}) for n in range(3)) + "\n")
    first = quality.write_mailbox(dataset, tmp_path / "a.mbox")
    second = quality.write_mailbox(dataset, tmp_path / "b.mbox")
    assert first == second == ("ana.lima@dataset.example", 3)
    ids = [message_ids(tmp_path / name) for name in ("a.mbox", "b.mbox")]
    assert ids[0] == ids[1] and len(set(ids[0])) == 3


def message_ids(path: Path) -> list[str]:
    box = mailbox.mbox(str(path))
    try:
        return [m["Message-ID"] for m in box]
    finally:
        box.close()


def test_the_recipe_stored_for_an_older_version_is_the_one_train_chooses_on_a_cpu():
    assert load_quality().OLDER_CPU_RECIPE == CPU_RECIPE


def test_training_prompts_are_counted_as_train_writes_them(db, tmp_path):
    from paired import paired_store

    quality = load_quality()
    paired = paired_store(db, tmp_path)

    def words(text: str) -> int:
        return len(text.split())

    roomy = quality.train_prompt_stats(paired, 4096, count_tokens=words)
    tight = quality.train_prompt_stats(paired, 160, count_tokens=words)
    assert roomy["n"] == tight["n"] > 20
    assert 0 < roomy["drawn"] == tight["drawn"] < roomy["n"]  # half of them, drawn alike at every length
    assert roomy["shown"] == roomy["drawn"] and roomy["per_prompt"] > 1  # with room, every draw shows examples
    assert tight["shown"] < roomy["shown"] and tight["tokens"] < roomy["tokens"]
    assert roomy["words_with"] and roomy["words_without"]


def test_the_penalty_of_drafts_as_long_as_asked_and_drafts_signed_as_another_are_counted(data_home, tmp_path):
    from paired import paired_store

    from assistant.store.db import open_store

    quality = load_quality()
    work = tmp_path / "work"
    db = paired_store(open_store(work / "data"), tmp_path)
    pairs = [p for p in db["pairs"].rows_where("split = 'validation' AND status = 'ok'")][:6]
    assert pairs
    # "--" is a word to a split at spaces but not to BLEU: the penalty counts words as BLEU does.
    items = [{"pair_id": p["id"], "real": "word " * (40 + 30 * n) + "-- " * 9} for n, p in enumerate(pairs)]
    report = {"kind": "ablations", "rows": [{"label": "stand-in", "items": items}]}
    requests = quality.requests_of(db, report)
    asked = quality.asked_words(db, requests)
    assert set(asked) == {p["id"] for p in pairs} and all(w > 0 for w in asked.values())
    exact = [dict(item, draft="word " * asked[item["pair_id"]]) for item in items]
    double = [dict(item, draft=item["real"] * 2) for item in items]
    others = quality.others_of(db, requests)
    pid = next(pid for pid, names in others.items() if names)  # a recipient with a name
    signed = [dict(i, draft=f"Done.\n\nBest,\n{others[pid][0]}" if i["pair_id"] == pid else i["real"]) for i in items]
    # a quarter of the words asked for, in prose and as hashes of many tokens each (past the floor in tokens)
    quarter = {pid: max(1, words // 4) for pid, words in asked.items()}
    prose = [dict(i, draft="word " * quarter[i["pair_id"]]) for i in items]
    code = [dict(i, draft="3f9a1c7be2d40c5e8a7b6f1d2e3c4b5a69788f0e " * quarter[i["pair_id"]]) for i in items]
    report["rows"] = [
        {"label": "as asked", "items": exact},
        {"label": "twice as long", "items": double},
        {"label": "signed as the recipient", "items": signed},
        {"label": "short prose", "items": prose},
        {"label": "short code", "items": code},
    ]
    (work / "report.json").write_text(json.dumps(report))
    (work / "eval.json").write_text(json.dumps({"json_path": str(work / "report.json")}))

    text = quality.bleu_parts(work)
    rows = {line.split(" | ")[0].strip("| "): line.split(" | ") for line in text.splitlines() if line.startswith("| ")}
    total_asked, total_real = sum(asked.values()), sum(len(i["real"].split()) - 9 for i in items)
    assert total_asked < total_real  # the real emails are longer than asked, so the drafts pay a penalty
    ceiling = float(text.rsplit("brevity penalty of ", 1)[1].rstrip("."))
    assert f"{total_asked} words for {total_real} real ones" in text
    assert ceiling < 1 and float(rows["as asked"][2]) == ceiling
    assert float(rows["twice as long"][2]) == 1.0
    stats = quality.length_stats(work)
    assert {label: s["signed_other"] for label, s in stats.items()} == {
        "as asked": 0,
        "twice as long": 0,
        "signed as the recipient": 1,
        "short prose": 0,
        "short code": 0,
    }
    assert stats["as asked"]["short"] == 0 and stats["as asked"]["per_word"] < 1.1  # a word a token
    assert stats["short prose"]["short"] == stats["short code"]["short"] == len(items)
    assert stats["short prose"]["short_past_floor"] == 0 and stats["short code"]["short_past_floor"] == len(items)
    assert stats["short code"]["per_word"] > 3 * TOKENS_PER_WORD
    table = quality.lengths(work)
    assert f"| {len(items)} ({len(items)}) |" in table and f"| {len(items)} (0) |" in table


def test_each_step_of_the_order_is_scored_paired_on_the_same_emails(tmp_path):
    quality = load_quality()
    work = tmp_path / "work"
    work.mkdir()
    reals = [f"the plan for week {n} is to move the review to friday and send the draft" for n in range(12)]
    worse = [" ".join(real.split()[:4]) for real in reals]
    better = [" ".join(real.split()[:8]) for real in reals]
    labels = {"base": worse, "base + examples": worse, "quality": better, "quality + examples": reals}
    rows = [
        {
            "label": k,
            "items": [{"pair_id": n, "real": r, "draft": d} for n, (r, d) in enumerate(zip(reals, v, strict=True))],
        }
        for k, v in labels.items()
    ]
    del rows[2]["items"][0]  # a request that failed in one configuration: the steps to and from it skip that email
    (work / "report.json").write_text(json.dumps({"kind": "ablations", "rows": rows}))
    (work / "eval.json").write_text(json.dumps({"json_path": str(work / "report.json")}))
    lines = {line.split(" | ")[0].strip("| "): line for line in quality.paired(work).splitlines()[2:]}
    assert list(lines) == [
        "base → base + examples (12)",
        "base + examples → quality (11)",
        "quality → quality + examples (11)",
        "base + examples → quality + examples (12)",
    ]
    assert "+0.000 (+0.000 to +0.000) | 0% |" in lines["base → base + examples (12)"]
    assert lines["base + examples → quality + examples (12)"].endswith("| 100% |")
    (work / "report.json").write_text(json.dumps({"kind": "ablations", "rows": rows[:1]}))
    with pytest.raises(SystemExit, match="one"):
        quality.paired(work)


def test_mauve_is_recomputed_as_the_mean_of_seeded_clusterings_and_each_step_judged_by_it(tmp_path):
    from paired import bag_of_words as embed

    from trainer.evaluation.metrics import MAUVE_RUNS, mauve_score

    quality = load_quality()
    work = tmp_path / "work"
    work.mkdir()
    reals = [f"the plan for week {n} is to move review {n % 5} to friday" for n in range(30)]
    drafts = {"base": [f"noise {n} {n * 7 % 11}" for n in range(30)], "quality": reals}

    rows = [{"label": label, "config": {"seed": 3}, "metrics": {"mauve": recorded},
             "items": [{"pair_id": n, "real": r, "draft": d} for n, (r, d) in enumerate(zip(reals, texts, strict=1))]}
            for (label, texts), recorded in zip(drafts.items(), (0.9, 0.5), strict=True)]  # fmt: skip
    (work / "report.json").write_text(json.dumps({"kind": "ablations", "rows": rows}))
    (work / "eval.json").write_text(json.dumps({"json_path": str(work / "report.json")}))
    out = quality.mauve_runs(work, embed=embed)
    features = embed(drafts["base"] + reals).astype(np.float32)
    mean = np.mean([mauve_score(features[:30], features[30:], 3 + run) for run in range(MAUVE_RUNS)])
    assert f"| base | 0.900 (1) | {mean:.3f} |" in out
    assert "| base → quality | -0.400 fails | " in out and out.rstrip().endswith("holds |")  # the same texts: 1
    del rows[1]["metrics"]["mauve"]  # a report that has no score for a row: recomputed all the same
    (work / "report.json").write_text(json.dumps({"kind": "ablations", "rows": rows}))
    out = quality.mauve_runs(work, embed=embed)
    assert "| quality | — | 1.000 |" in out and "| base → quality | — | " in out


def test_intervals_side_by_side_are_apart_only_when_the_second_starts_above_the_first():
    quality = load_quality()

    def row(label, bleu, mauve=None):
        return {"label": label, "intervals": {"bleu": bleu, **({"mauve": mauve} if mauve else {})}}

    rows = [row("base", [0.07, 0.09], [0.1, 0.5]), row("base + examples", [0.075, 0.0955], [0.4, 0.9]),
            row("quality", [0.0955, 0.13]), row("quality + examples", [0.0956, 0.14], [0.6, 0.99])]  # fmt: skip
    result = {"rows": rows}
    lines = quality.apart(result).splitlines()[2:]
    assert [line.split(" | ")[-2:] for line in lines] == [
        ["-0.0150", "no |"],
        ["+0.0000", "no |"],  # touching is not apart
        ["-0.0344", "no |"],
        ["+0.0001", "yes |"],
        ["-0.1000", "no |"],
        ["-0.3000", "no |"],  # the steps to and from a row without a MAUVE interval are left out
    ]
    assert lines[3].startswith("| bleu | base + examples (0.0750–0.0955) | quality + examples (0.0956–0.1400) |")


def test_drafts_that_repeat_a_style_example_shown_with_them_are_counted(data_home, tmp_path):
    from paired import paired_store

    from assistant.store.db import open_store

    quality = load_quality()
    work = tmp_path / "work"
    db = paired_store(open_store(work / "data"), tmp_path)
    (shown, body), (other, _) = db.execute(
        "SELECT id, body FROM messages WHERE sent_by_me = 1 AND length(body) > 120 ORDER BY id LIMIT 2"
    ).fetchall()
    items = [
        {"pair_id": 1, "real": "x", "draft": f"Sure. {body[:80]}", "examples": [shown]},
        {"pair_id": 2, "real": "x", "draft": f"Sure. {body[:80]}", "examples": [other]},  # not the one shown
        {"pair_id": 3, "real": "x", "draft": f"Sure. {body[:40]}", "examples": [shown]},  # under 50 characters
    ]
    rows = [
        {"label": "base", "items": [dict(i, examples=[]) for i in items]},
        {"label": "base + examples", "items": items},
    ]
    (work / "report.json").write_text(json.dumps({"kind": "ablations", "rows": rows}))
    (work / "eval.json").write_text(json.dumps({"json_path": str(work / "report.json")}))
    lines = quality.example_copies(work).splitlines()[2:]
    assert lines[0] == "| base | 0 | 0 |  |"
    assert lines[1].startswith("| base + examples | 3 | 1 | 1: “")


def test_drafts_changed_are_counted_per_configuration_by_email():
    quality = load_quality()
    before = [{"label": "base", "items": [{"pair_id": 1, "draft": "a"}, {"pair_id": 2, "draft": "b"}]}]
    after = [
        {"label": "base", "items": [{"pair_id": 2, "draft": "b"}, {"pair_id": 1, "draft": "a, changed"}]},
        {"label": "quality", "items": [{"pair_id": 1, "draft": "a"}]},  # no such row before: changed
    ]
    assert quality.changed_drafts(before, after) == {"base": 1, "quality": 1}
    assert quality.changed_drafts(before, before) == {"base": 0}


def test_against_a_folder_that_evaluated_other_emails_compares_only_the_emails_both_did(tmp_path):
    quality = load_quality()
    reals = [f"the plan for week {n} is to move the review to friday and send the draft" for n in range(15)]

    def folder(name, emails, quality_words):
        work = tmp_path / name
        work.mkdir()
        rows = [
            {
                "label": label,
                "items": [
                    {"pair_id": n, "real": reals[n], "draft": " ".join(reals[n].split()[:words])} for n in emails
                ],
            }
            for label, words in (("base", 4), ("quality", quality_words))
        ]
        (work / "report.json").write_text(json.dumps({"kind": "ablations", "rows": rows}))
        (work / "eval.json").write_text(json.dumps({"json_path": str(work / "report.json")}))
        return work

    before = folder("before", range(10), 6)
    after = folder("after", range(15), 10)  # more of the user's mail labelled: a larger validation split
    lines = quality.against(after, before).splitlines()
    assert lines[0].startswith("On the 10 emails both evaluated (before 10, after 15;")
    rows = {line.split(" | ")[0].strip("| "): line for line in lines[4:]}
    assert list(rows) == ["base (10)", "quality (10)"]
    assert "| +0.000 (+0.000 to +0.000) |" in rows["base (10)"]
    gain = rows["quality (10)"].split(" | ")[2]
    assert gain.startswith("+0.") and not gain.startswith("+0.000")
    with pytest.raises(SystemExit, match="no email in common"):
        quality.against(folder("other", range(10, 15), 10), before)


def test_each_configuration_is_scored_at_every_seed_with_the_mean_and_the_order_judged_by_the_means(tmp_path):
    quality = load_quality()

    def result(*scores):
        labels = ("base", "base + examples", "quality", "quality + examples")
        return {"rows": [{"label": label, "bleu": bleu, "mauve": mauve}
                         for label, (bleu, mauve) in zip(labels, scores, strict=True)]}  # fmt: skip

    assert quality.eval_file(0) == "eval.json" and quality.eval_file(2) == "eval-seed2.json"
    # written where the eval stage writes each seed's result
    (tmp_path / quality.eval_file(0)).write_text(json.dumps(result((0.10, 0.2), (0.12, 0.9), (0.16, 0.8), (0.15, 1.0))))
    (tmp_path / quality.eval_file(2)).write_text(json.dumps(result((0.08, 0.1), (0.10, 1.0), (0.11, 0.9), (0.16, 0.9))))
    (tmp_path / "other.json").write_text("{}")
    results = quality.seed_results(tmp_path)
    assert sorted(results) == [0, 2]
    text = quality.by_seed(results)
    assert "| bleu | quality | 0.1600 | 0.1100 | 0.1350 | 0.0500 |" in text
    assert "| mauve | base + examples | 0.9000 | 1.0000 | 0.9500 | 0.1000 |" in text
    # adapter → adapter + examples fails at seed 0 and holds by the means (0.135 → 0.155)
    assert "| bleu | quality → quality + examples | fails | holds | +0.0200 holds |" in text
    # the adapter's MAUVE is under base + examples' at both seeds
    assert "| mauve | base + examples → quality | fails | fails | -0.1000 fails |" in text
    assert "| mauve | base + examples → quality + examples | holds | fails | +0.0000 holds |" in text


def test_each_configuration_is_scored_over_every_seeds_drafts_together_on_the_emails_all_seeds_drafted(tmp_path):
    from paired import bag_of_words

    from trainer.evaluation.metrics import bleu, bleu_difference_over_drafts, mauve_over_drafts

    quality = load_quality()
    reals = [f"the plan for week {n} is to move the review to friday and send the draft" for n in range(12)]
    # each configuration writes more of the real email's words than the one before; seed 1 writes one word less
    kept = {"base": 2, "base + examples": 3, "quality": 6, "quality + examples": 12}

    def result(seed, skip=None):
        rows = [{"label": label, "items": [{"pair_id": n, "real": r, "draft": " ".join(r.split()[: k - seed])}
                                           for n, r in enumerate(reals) if n != skip]}
                for label, k in kept.items()]  # fmt: skip
        (tmp_path / f"report{seed}.json").write_text(json.dumps({"kind": "ablations", "rows": rows}))
        (tmp_path / quality.eval_file(seed)).write_text(json.dumps({"json_path": str(tmp_path / f"report{seed}.json")}))

    result(0)
    result(1, skip=0)  # a request that failed at seed 1: email 0 counts at neither seed
    text = quality.over_seeds(quality.seed_results(tmp_path), embed=bag_of_words, mauve_runs=3, mauve_boot=10)
    drafts = {label: [[" ".join(r.split()[: k - s]) for s in (0, 1)] for r in reals[1:]] for label, k in kept.items()}
    both = bleu([d for pair in drafts["quality"] for d in pair], [r for r in reals[1:] for _ in (0, 1)])["bleu"]
    assert "| configuration (11 emails, seeds 0, 1) | bleu (95% interval) |" in text
    assert f"| quality | {both:.4f} (" in text
    step = bleu_difference_over_drafts(drafts["base + examples"], drafts["quality + examples"], reals[1:])
    line = next(x for x in text.splitlines() if x.startswith("| base + examples → quality + examples |"))
    assert line.startswith(f"| base + examples → quality + examples | {step['difference']:+.4f} (")
    *_, above, gap, apart = line.rstrip(" |").split(" | ")
    assert above == "100%" and float(gap) > 0 and apart == "yes"
    steps = ["| base → base + examples", "| base + examples → quality", "| quality → quality + examples",
             "| base + examples → quality + examples"]  # fmt: skip
    rows = [x.split(" | ")[0] for x in text.splitlines() if " → " in x]
    assert rows == ["| from → to", *steps, "| from → to", *steps]  # bleu, then MAUVE
    # MAUVE: every seed's drafts of each email on the drafts' side, as metrics.mauve_over_drafts scores them
    assert "| configuration (11 emails, seeds 0, 1) | mauve (95% interval) |" in text
    features = np.asarray(bag_of_words([d for each in drafts["quality"] for d in each]), dtype=np.float32)
    got = mauve_over_drafts(features.reshape(11, 2, -1), np.asarray(bag_of_words(reals[1:]), dtype=np.float32),
                            runs=3, n_boot=10)  # fmt: skip
    assert f"| quality | {got['mauve']:.4f} ({got['interval'][0]:.4f}–{got['interval'][1]:.4f}) |" in text
    mauve_steps = text[text.index("mauve difference"):].splitlines()
    assert mauve_steps[-1].startswith("| base + examples → quality + examples | ")
    # one email drafted at every seed: bleu and its steps, and no MAUVE of one email
    one = {"kind": "ablations", "rows": [{**row, "items": row["items"][:1]} for row in
                                         json.loads((tmp_path / "report0.json").read_text())["rows"]]}  # fmt: skip
    (tmp_path / "report1.json").write_text(json.dumps(one))
    text = quality.over_seeds(quality.seed_results(tmp_path), embed=bag_of_words, mauve_runs=1, mauve_boot=2)
    assert "| configuration (1 emails, seeds 0, 1) | mauve (95% interval) |\n|---|---|\n| base | — |" in text
    assert text.rstrip().endswith("| base + examples → quality + examples | — | — | — | — |")
    result(1, skip=None)
    (tmp_path / "report1.json").write_text(json.dumps({"kind": "ablations", "rows": []}))
    with pytest.raises(SystemExit, match="same configurations"):
        quality.over_seeds(quality.seed_results(tmp_path))


def test_the_length_asked_for_is_compared_with_the_users_own_emails_by_each_rule(tmp_path):
    from test_drafting_length import ROSA, add

    from assistant.store import open_store

    work = tmp_path / "work"
    db = open_store(work / "data")
    lst = ("Dev list", "dev@lists.example.com")
    for _ in range(4):
        add(db, 20, reply=True)  # short replies to Rosa
        add(db, 300, reply=True, to=lst, cc=[ROSA])  # long ones to a list, copying her
    cells = [line.strip("| ").split(" | ") for line in load_quality().asked_lengths(work).splitlines()[2:]]
    rows = {rule: rest for rule, *rest in cells}
    # Each email left out: addressed mail gives each its own length; counting copies asks Rosa for the list's.
    assert rows["to this person (To)"] == ["1.00", "8", "0.000"]
    assert rows["to this person (To or Cc)"][:2] == ["8.00", "4"]  # (15 + 1) / 2 at the median
    assert rows["usual for the kind"][1] == "0"
