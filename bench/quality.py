"""Run the whole Mailvoice pipeline on a single-author email set and record the evaluation (see QUALITY.md).

A dataset is a JSONL file with one sent email per line (``email``, optional ``subject``), such as the sets in
``../shared/datasets/``, or a real mailbox (``.mbox``) with the author's addresses given by ``--me``. A JSONL set
becomes an mbox of mail sent by one person; then both go through the same commands a user runs: ``import`` →
``pairs build`` → ``train`` → ``eval --ablations``. Every stage is resumable, so the script can be stopped and
started again; results land in ``WORK/eval.json`` (drafted with ``--seed N`` other than 0, in
``WORK/eval-seedN.json``: ``--by-seed`` sets the seeds side by side).

    python bench/quality.py ../shared/datasets/jeff_johnson_clean.jsonl --work /tmp/q/jeff
    python bench/quality.py ../shared/corpora/linaro-mm-sig/koenig-and-parents.mbox --work /tmp/q/linaro \
        --me christian.koenig@amd.com --me ckoenig.leichtzumerken@gmail.com
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import mailbox
import re
import subprocess
import sys
import time
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

RECIPIENT = "Colleague <colleague@dataset.example>"


def person(path: Path) -> tuple[str, str]:
    """'jeff_johnson_clean.jsonl' → ('Jeff Johnson', 'jeff.johnson@dataset.example')."""
    words = [w for w in re.split(r"[_\-\s]+", path.stem) if w.lower() not in ("clean", "emails", "email")]
    name = " ".join(w.capitalize() for w in words) or "Author"
    return name, ".".join(w.lower() for w in words) + "@dataset.example"


def subject_of(record: dict) -> str:
    if record.get("subject"):
        return str(record["subject"])
    words = str(record["email"]).split()
    return " ".join(words[:7]) + ("…" if len(words) > 7 else "")


def write_mailbox(dataset: Path, out: Path) -> tuple[str, int]:
    """Write the dataset as an mbox of sent mail, one message per email, a day apart; return (address, count)."""
    name, address = person(dataset)
    start = dt.datetime(2001, 1, 1, 9, 0, tzinfo=dt.UTC)
    if out.exists():
        out.unlink()
    box = mailbox.mbox(str(out), create=True)
    n = 0
    with dataset.open(encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            record = json.loads(line)
            msg = EmailMessage()
            msg["From"] = f"{name} <{address}>"
            msg["To"] = RECIPIENT
            msg["Subject"] = subject_of(record)
            msg["Date"] = format_datetime(start + dt.timedelta(days=n))
            # Fixed ids: the validation split follows the thread, so every run of a set holds out the same emails.
            msg["Message-ID"] = f"<q{n}.{address.partition('@')[0]}@dataset.example>"
            msg.set_content(str(record["email"]))
            box.add(msg)
            n += 1
    box.flush()
    box.close()
    return address, n


def mailvoice(work: Path, *args: str) -> dict:
    cmd = [str(Path(sys.executable).with_name("mailvoice")), "--data-dir", str(work / "data"), "--json", *args]
    print("$ mailvoice", " ".join(args), file=sys.stderr, flush=True)
    started = time.monotonic()
    done = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"mailvoice {' '.join(args)} failed with status {done.returncode}")
    print(f"  ({time.monotonic() - started:,.0f} s)", file=sys.stderr, flush=True)
    return json.loads(done.stdout or "{}")


# The recipe `train` chooses on a CPU (trainer.preflight.CPU_RECIPE), written out for --store-cpu-recipe: a version
# before that choice, run on the same mailbox for a before/after comparison, has no CPU_RECIPE to import.
OLDER_CPU_RECIPE = {"max_seq_len": 1024, "batch_size": 2, "grad_accum": 2, "eval_every": 10, "eval_max_examples": 16,
                    "checkpoint_every": 10, "parity_examples": 2, "gradient_checkpointing": False}  # fmt: skip
METRICS = ("bleu", "sacrebleu", "chrf", "rouge_l", "mauve", "length_ratio", "verbatim_overlap")


def table(result: dict) -> str:
    """The ablation of one ``eval --ablations --json`` result as a Markdown table, with 95% intervals."""
    lines = ["| configuration | n | " + " | ".join(METRICS) + " |", "|---|---|" + "---|" * len(METRICS)]
    for row in result["rows"]:
        cells = []
        for m in METRICS:
            value, ci = row.get(m), (row.get("intervals") or {}).get(m)
            text = "–" if value is None else f"{value:.3f}"
            cells.append(f"{text} ({ci[0]:.3f}–{ci[1]:.3f})" if ci and value is not None else text)
        lines.append(f"| {row['label']} | {row.get('n')} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def method_of(flags: list[str]) -> str:
    """How a pair's instruction was made (as ``pairs build`` counts them): fallback, grammar, retried or model."""
    return next((m for m in ("fallback", "grammar", "retried") if m in flags), "model")


def by_instruction(work: Path) -> str:
    """``bleu`` of each configuration of the last ``eval --ablations`` split by how the validation pair's
    instruction was made (the model's first answer, a retry, a forced start, the extractive fallback), as a
    Markdown table, with each method's share of all pairs."""
    from assistant.store.db import open_store
    from trainer.evaluation.metrics import bleu

    report = last_report(work)
    db = open_store(work / "data")
    methods = {pid: method_of(json.loads(f or "[]")) for pid, f in db.execute("SELECT id, flags FROM pairs")}
    lines = ["| kind (n) | " + " | ".join(row["label"] for row in report["rows"]) + " |"]
    lines.append("|---|" + "---|" * len(report["rows"]))
    for name in ("model", "retried", "grammar", "fallback"):
        cells, n = [], 0
        for row in report["rows"]:
            items = [x for x in row["items"] if methods.get(x["pair_id"]) == name]
            n = len(items)
            score = bleu([x["draft"] for x in items], [x["real"] for x in items])["bleu"] if items else None
            cells.append("–" if score is None else f"{score:.3f}")
        if n:
            lines.append(f"| {name} ({n}) | " + " | ".join(cells) + " |")
    total = max(1, len(methods))
    shares = ", ".join(f"{m} {sum(v == m for v in methods.values()) / total:.0%}"
                       for m in ("model", "retried", "grammar", "fallback"))  # fmt: skip
    return "\n".join(lines) + f"\n\nOf all {len(methods)} pairs: {shares}."


def last_report(work: Path) -> dict:
    """The report of WORK's last ``eval --ablations`` (``eval.json`` names it)."""
    return json.loads(Path(json.loads((work / "eval.json").read_text())["json_path"]).read_text())


def requests_of(db, report: dict) -> dict:
    """How each evaluated email's draft was asked for (``trainer.prompts.Request``), by pair id."""
    from trainer.prompts import request_for

    requests = {}
    for item in report["rows"][0]["items"]:
        pair = db["pairs"].get(item["pair_id"])
        requests[item["pair_id"]] = request_for(db, pair["message_id"], pair["input"])
    return requests


def asked_words(db, requests: dict) -> dict[int, int]:
    """The words each evaluated email's draft was asked for, by pair id (of :func:`requests_of`): the user's usual
    length, as drafting chose it for that email with the validation mail hidden (the same for every
    configuration)."""
    from trainer.prompts import held_out_ids

    held_out = held_out_ids(db)
    return {pid: request.length(db, held_out).words for pid, request in requests.items()}


def others_of(db, requests: dict) -> dict[int, tuple[str, ...]]:
    """The names each evaluated email's draft must not be signed with, by pair id (of :func:`requests_of`), as
    drafting finds them."""
    from assistant.drafting.examples import recipient_name
    from assistant.drafting.prompting import others_in_thread

    return {pid: others_in_thread(recipient_name(db, r.to) if r.to else "", r.reply) for pid, r in requests.items()}


def word_ratio(draft: str, real: str) -> float:
    """A draft's words over its real email's (the per-email length ratio of ``--lengths`` and ``--against``)."""
    return len(draft.split()) / max(1, len(real.split()))


def length_stats(work: Path) -> dict[str, dict]:
    """Per configuration of the last ``eval --ablations`` (by label): the median over emails of draft words / real
    words (``ratio``; ``length_ratio`` in the tables is the corpus ratio, all draft words / all real words), the
    median of draft words / the words the draft was asked for (``asked``: the user's usual length, as drafting
    chose it for that email; ``asked_real``: the words asked for / real words, the same for every configuration),
    how many drafts fall within 0.8–1.25 of their email's length (``inside`` of ``n``), how many stop short of the
    floor (``short``: under ``FLOOR`` of the words asked for, where the hold on the close ends), and how many have no
    message (``hollow``: empty, or only a greeting or a sign-off, or the name of the user or of someone in the thread,
    as ``check_draft`` says and drafting writes again), and how many are signed
    with a name not the user's (``signed_other``: the person they answer or write to, a name made up under a
    closing, the user's misspelt or with an address they do not sign with, as ``sign_as_user`` finds them: drafted
    by a version that signs them with the user's name, none are); and in tokens of the embedded model (the drafts
    as saved, once cleaned, tokenized again), the median tokens a word of the drafts (``per_word``) and how many of
    the ``short`` ones have as many tokens as their floor (``short_past_floor``: where drafting counted tokens
    alone, before ``EVAL_VERSION`` 23, the close was no longer held back for them)."""
    import statistics

    from assistant.drafting.backend import FLOOR
    from assistant.drafting.incomplete import alone_names, check_draft, sign_as_user
    from assistant.drafting.length import Length
    from assistant.drafting.models import embedded_model_path
    from assistant.drafting.voice import learn_voice
    from assistant.store.db import open_store
    from trainer.prompts import token_counter

    report = last_report(work)
    db = open_store(work / "data")
    voice = learn_voice(db)
    names = [voice.first_name, voice.name]
    requests = requests_of(db, report)
    asked, others = asked_words(db, requests), others_of(db, requests)
    count = token_counter(str(embedded_model_path()))  # the vocabulary the drafts were written with
    signoff = voice.usual_signoff()

    def floor(words: int) -> int:  # as drafting has it (drafts.aimed_length)
        length = Length(words, "usual")
        return (length.closing_with(count("\n" + signoff)) if signoff else length).floor_tokens

    stats = {}
    for row in report["rows"]:
        items = row["items"]
        ratios = [word_ratio(x["draft"], x["real"]) for x in items]
        flags = [check_draft(x["draft"], names=alone_names(names, others[x["pair_id"]])) for x in items]
        short = [x for x in items if len(x["draft"].split()) < FLOOR * asked[x["pair_id"]]]
        stats[row["label"]] = {
            "ratio": statistics.median(ratios),
            "asked": statistics.median(len(x["draft"].split()) / asked[x["pair_id"]] for x in items),
            "asked_real": statistics.median(asked[x["pair_id"]] / max(1, len(x["real"].split())) for x in items),
            "inside": sum(0.8 <= r <= 1.25 for r in ratios),
            "short": len(short),
            "short_past_floor": sum(count(x["draft"]) >= floor(asked[x["pair_id"]]) for x in short),
            "per_word": statistics.median(count(x["draft"]) / max(1, len(x["draft"].split())) for x in items),
            "n": len(ratios),
            "hollow": sum(f is not None and f.code in ("empty", "signoff_only") for f in flags),
            "signed_other": sum(bool(sign_as_user(x["draft"], others[x["pair_id"]], voice)[1]) for x in items),
        }
    return stats


def asked_lengths(work: Path) -> str:
    """The words a draft is asked for against the words the user wrote, over every email of theirs in WORK's store
    that drafting learns lengths from, each left out with its thread: by the length to its person (a reply's: the
    sender answered, where the archive holds that email; else the first address in To) counting mail addressed
    to them (To, as drafting does), counting mail they were copied on too (the rule before), and by the user's
    usual length for the kind (reply or new) alone. For each rule: the median of asked / real, how many fall
    within 0.8–1.25, and the mean of |log(asked / real)|."""
    import math
    import statistics

    import sqlite_utils

    from assistant.drafting.length import to_addresses, usual_length, words_of

    db = sqlite_utils.Database(work / "data" / "mailvoice.db")
    senders = dict(db.execute("SELECT message_id, from_addr FROM messages WHERE message_id IS NOT NULL"))
    rules = {"to this person (To)": [], "to this person (To or Cc)": [], "usual for the kind": []}
    emails = db.execute(
        "SELECT id, body, in_reply_to, to_json, thread_id FROM messages "
        "WHERE sent_by_me = 1 AND automated = 0 AND is_forward = 0 AND trim(body) != ''"
    ).fetchall()
    for row_id, body, in_reply_to, to_json, thread in emails:
        to = senders.get(in_reply_to) if in_reply_to else None
        to = to or next(iter(to_addresses(to_json)), None)
        left_out = [row_id] + [
            r[0] for r in db.execute("SELECT id FROM messages WHERE thread_id = ? AND thread_id != ''", [thread or ""])
        ]
        real, reply = words_of(body), bool(in_reply_to)
        asked = (
            usual_length(db, to, reply, exclude=left_out),
            usual_length(db, to, reply, exclude=left_out, copied=True),
            usual_length(db, None, reply, exclude=left_out),
        )
        for ratios, length in zip(rules.values(), asked, strict=True):
            ratios.append(length.words / real)
    lines = [
        f"| rule ({len(emails)} emails) | median words asked for / real | within 0.8–1.25 | mean abs log ratio |",
        "|---|---|---|---|",
    ]
    for rule, ratios in rules.items():
        inside = sum(0.8 <= r <= 1.25 for r in ratios)
        spread = statistics.mean(abs(math.log(r)) for r in ratios)
        lines.append(f"| {rule} | {statistics.median(ratios):.2f} | {inside} | {spread:.3f} |")
    return "\n".join(lines)


def lengths(work: Path) -> str:
    """:func:`length_stats` as a Markdown table."""
    from assistant.drafting.backend import FLOOR

    lines = [
        "| configuration | median length ratio | median draft / words asked for | median words asked for / real "
        f"| drafts within 0.8–1.25 | under {FLOOR:.0%} of the words asked for (of those, with their floor's tokens) "
        "| median tokens a word | no message | signed as another |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for label, s in length_stats(work).items():
        lines.append(f"| {label} | {s['ratio']:.2f} | {s['asked']:.2f} | {s['asked_real']:.2f} "
                     f"| {s['inside']} of {s['n']} | {s['short']} ({s['short_past_floor']}) | {s['per_word']:.2f} "
                     f"| {s['hollow']} | {s['signed_other']} |")  # fmt: skip
    return "\n".join(lines)


def train_prompt_stats(db, max_len: int, count_tokens=None) -> dict:
    """How the training prompts of the store's pairs show style examples at ``max_seq_len`` = ``max_len``, as
    ``train`` would write them (:func:`trainer.prompts.write_prompts`, the data folder's settings otherwise): of the
    train split's examples (``n``), how many were drawn to be shown with examples (``drawn``) and how many got at
    least one (``shown``), how many examples those show on average (``per_prompt``), the median words of the email
    trained on with and without examples shown, and the tokens of the epoch's prompts and emails (each up to
    ``max_len``). An adapter learns from this whether an email shown with examples is short."""
    import statistics

    from trainer.data import from_store
    from trainer.jobs import resolve_config
    from trainer.prompts import drawn_to_show, token_counter, write_prompts

    train = [e for e in from_store(db) if e.split == "train"]
    cfg = resolve_config(db, max_seq_len=max_len)
    count = count_tokens or token_counter(cfg.base)
    written = write_prompts(db, train, count_tokens=count, max_seq_len=max_len,
                            examples_probability=cfg.examples_probability, seed=cfg.seed)  # fmt: skip
    shown = [(len(e.messages) - 2) // 2 for e in written]  # the system text, example turns, the request
    words = [len(e.output.split()) for e in written]
    with_ = [w for w, k in zip(words, shown, strict=True) if k]
    without = [w for w, k in zip(words, shown, strict=True) if not k]
    return {
        "n": len(written),
        "drawn": sum(drawn_to_show(cfg.seed, n, cfg.examples_probability) for n in range(len(written))),
        "shown": len(with_),
        "per_prompt": statistics.mean(k for k in shown if k) if with_ else 0.0,
        "words_with": statistics.median(with_) if with_ else None,
        "words_without": statistics.median(without) if without else None,
        "tokens": sum(min(max_len, sum(count(m["content"]) for m in e.messages) + count(e.output)) for e in written),
    }


def train_prompts(work: Path, lengths: list[int]) -> str:
    """:func:`train_prompt_stats` of WORK's pairs at each length, as a Markdown table."""
    from assistant.store.db import open_store

    db = open_store(work / "data")
    lines = [
        "| max_seq_len | train examples | drawn to show examples | shown ≥ 1 | examples per prompt that shows any "
        "| median words, email shown with examples | median words, without | tokens in the epoch |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for max_len in lengths:
        s = train_prompt_stats(db, max_len)
        lines.append(f"| {max_len:,} | {s['n']} | {s['drawn']} | {s['shown']} | {s['per_prompt']:.2f} "
                     f"| {s['words_with']} | {s['words_without']} | {s['tokens']:,} |")  # fmt: skip
    return "\n".join(lines)


def against(work: Path, before: Path) -> str:
    """Per configuration, the evaluation in ``before`` (the same pairs and adapter, evaluated by another version)
    → the one in ``work``: bleu and MAUVE with their 95% intervals, the median length ratio, the median draft /
    words asked for, the drafts within 0.8–1.25 of their email's length, and how many drafts' text differs, as a
    Markdown table."""
    reports = [last_report(w) for w in (before, work)]
    ids = [{x["pair_id"] for x in r["rows"][0]["items"]} for r in reports]
    if ids[0] != ids[1]:
        return against_common(*(r["rows"] for r in reports), ids[0] & ids[1])
    results = [json.loads((w / "eval.json").read_text()) for w in (before, work)]
    stats = [length_stats(w) for w in (before, work)]
    lines = [
        "| configuration (emails) | bleu | mauve | median length ratio | median draft / words asked for "
        "| drafts within 0.8–1.25 | drafts changed |",
        "|---|---|---|---|---|---|---|",
    ]
    changed = changed_drafts(*(r["rows"] for r in reports))

    def score(row: dict, metric: str) -> str:
        lo, hi = row["intervals"][metric]
        return f"{row[metric]:.3f} ({lo:.3f}–{hi:.3f})"

    for old, new in zip(*(r["rows"] for r in results), strict=True):
        label = new["label"]
        was, now = stats[0][label], stats[1][label]
        lines.append(
            f"| {label} ({new['n']}) | {score(old, 'bleu')} → {score(new, 'bleu')} "
            f"| {score(old, 'mauve')} → {score(new, 'mauve')} | {was['ratio']:.2f} → {now['ratio']:.2f} "
            f"| {was['asked']:.2f} → {now['asked']:.2f} | {was['inside']} → {now['inside']} of {now['n']} "
            f"| {changed[label]} |"
        )
    return "\n".join(lines)


def changed_drafts(before: list[dict], after: list[dict]) -> dict[str, int]:
    """Per configuration (by label): how many of ``after``'s drafts differ in text from ``before``'s draft of the
    same email (one ``before`` lacks counts as changed)."""
    was = {row["label"]: {x["pair_id"]: x["draft"] for x in row["items"]} for row in before}
    return {
        row["label"]: sum(x["draft"] != was.get(row["label"], {}).get(x["pair_id"]) for x in row["items"])
        for row in after
    }


def against_common(before: list[dict], after: list[dict], common: set[int]) -> str:
    """``--against`` when the two folders evaluated different emails (one labelled more of the user's mail, so its
    validation split holds more): per configuration, bleu on the emails both evaluated, before → after, with the
    paired difference and its 95% interval (``metrics.bleu_difference``), and the median length ratio on them.
    MAUVE compares a whole row's drafts with the real emails; on a part of the row it is not comparable, and
    is left out."""
    import statistics

    from trainer.evaluation.metrics import bleu, bleu_difference

    if not common:
        raise SystemExit("--against: the two folders evaluated no email in common")
    lines = [
        f"On the {len(common)} emails both evaluated (before {len(before[0]['items'])}, after "
        f"{len(after[0]['items'])}; MAUVE left out: it is not comparable on part of a row):",
        "",
        "| configuration | bleu | difference (paired 95% interval) | median length ratio |",
        "|---|---|---|---|",
    ]
    for old, new in zip(before, after, strict=True):
        was = {x["pair_id"]: x for x in old["items"] if x["pair_id"] in common}
        both = [(was[x["pair_id"]], x) for x in new["items"] if x["pair_id"] in was]
        drafts = [[a["draft"] for a, _ in both], [b["draft"] for _, b in both]]
        real = [b["real"] for _, b in both]
        got = bleu_difference(*drafts, real)
        lo, hi = got["interval"]
        ratio = [statistics.median(map(word_ratio, ds, real)) for ds in drafts]
        scores = [bleu(d, real)["bleu"] for d in drafts]
        lines.append(
            f"| {new['label']} ({len(both)}) | {scores[0]:.3f} → {scores[1]:.3f} "
            f"| {got['difference']:+.3f} ({lo:+.3f} to {hi:+.3f}) | {ratio[0]:.2f} → {ratio[1]:.2f} |"
        )
    return "\n".join(lines)


def bleu_parts(work: Path) -> str:
    """Per configuration of the last ``eval --ablations``: ``bleu`` as its two factors. Every corpus BLEU-n is
    the brevity penalty (1 when the drafts have at least as many words as the real emails, all together; else
    e^(1 - real/draft)) times the geometric mean of the n-gram precisions; so ``bleu`` is the penalty times the
    mean of those precision terms. Drafts that stop at the user's usual (median) length fall short, all
    together, of mail whose long emails pull the total up: the penalty, not the words, then decides rows. The line
    under the table says how far: the penalty of drafts of exactly the words asked for, counted as BLEU counts
    the real emails' words (a draft's own words are counted so too, so its punctuation may make it pay more)."""
    import math

    from assistant.store.db import open_store
    from trainer.evaluation.features import words
    from trainer.evaluation.metrics import bleu

    def penalty_of(drafted: int, real: int) -> float:
        return 1.0 if drafted >= real else math.exp(1 - real / max(drafted, 1))

    report = last_report(work)
    lines = [
        "| configuration | bleu | brevity penalty | bleu without it | all draft words / all real words |",
        "|---|---|---|---|---|",
    ]
    for row in report["rows"]:
        drafts, reals = [x["draft"] for x in row["items"]], [x["real"] for x in row["items"]]
        score = bleu(drafts, reals)["bleu"]
        drafted, real = sum(len(words(t)) for t in drafts), sum(len(words(t)) for t in reals)
        penalty = penalty_of(drafted, real)
        lines.append(f"| {row['label']} | {score:.3f} | {penalty:.3f} | {score / penalty:.3f} | {drafted / real:.2f} |")
    db = open_store(work / "data")
    asked = sum(asked_words(db, requests_of(db, report)).values())
    real = sum(len(words(x["real"])) for x in report["rows"][0]["items"])
    lines.append(
        f"\nDrafts of exactly the words asked for: {asked} words for {real} real ones ({asked / real:.2f}), "
        f"a brevity penalty of {penalty_of(asked, real):.3f}."
    )
    return "\n".join(lines)


def order_steps(rows: list[dict]) -> list[tuple[dict, dict]]:
    """The steps of the order base → base + examples → adapter → adapter + examples, each row to the next, and
    with all four rows base + examples → adapter + examples."""
    return [*zip(rows, rows[1:], strict=False), *([(rows[1], rows[3])] if len(rows) == 4 else [])]


def paired(work: Path) -> str:
    """Per step of the order base → base + examples → adapter → adapter + examples, and from base + examples to
    adapter + examples: how much higher the second row's bleu is, on the same emails, with a paired 95%
    bootstrap interval (``metrics.bleu_difference``), and the share of resamples in which it is higher."""
    from trainer.evaluation.metrics import bleu_difference

    rows = last_report(work)["rows"]
    if len(rows) < 2:
        raise SystemExit("--paired compares configurations: WORK's last evaluation has one (run eval --ablations)")
    steps = order_steps(rows)
    lines = ["| from → to (emails) | bleu difference (paired 95% interval) | resamples higher |", "|---|---|---|"]
    for before, after in steps:
        # Both rows' drafts of the same emails: a pair whose request failed in one configuration only is in neither.
        was = {x["pair_id"]: x for x in before["items"]}
        both = [(was[x["pair_id"]], x) for x in after["items"] if x["pair_id"] in was]
        if not both:
            raise SystemExit(f"{before['label']} and {after['label']} drafted no email in common")
        got = bleu_difference(
            [a["draft"] for a, _ in both], [b["draft"] for _, b in both], [b["real"] for _, b in both]
        )
        lo, hi = got["interval"]
        lines.append(
            f"| {before['label']} → {after['label']} ({len(both)}) | {got['difference']:+.3f} ({lo:+.3f} to {hi:+.3f}) "
            f"| {got['above']:.0%} |"
        )
    return "\n".join(lines)


def apart(result: dict, metrics: tuple[str, ...] = ("bleu", "mauve")) -> str:
    """For each step of the order (as ``paired``) on each metric: the two rows' 95% intervals side by side, at
    four decimals, and the gap from the first's upper end to the second's lower end: above zero, the intervals
    are apart."""
    steps = order_steps(result["rows"])
    lines = ["| metric | from (interval) | to (interval) | gap | apart |", "|---|---|---|---|---|"]
    for metric in metrics:
        for before, after in steps:
            low, high = (before.get("intervals") or {}).get(metric), (after.get("intervals") or {}).get(metric)
            if not low or not high:
                continue
            gap = high[0] - low[1]
            lines.append(
                f"| {metric} | {before['label']} ({low[0]:.4f}–{low[1]:.4f}) | {after['label']} ({high[0]:.4f}–"
                f"{high[1]:.4f}) | {gap:+.4f} | {'yes' if gap > 0 else 'no'} |"
            )
    return "\n".join(lines)


def eval_file(seed: int) -> str:
    """Where the eval stage keeps its result: ``eval.json`` for the default seed 0, ``eval-seed{N}.json`` else."""
    return "eval.json" if seed == 0 else f"eval-seed{seed}.json"


def by_seed(results: dict[int, dict], metrics: tuple[str, ...] = ("bleu", "mauve")) -> str:
    """The same configurations drafted with several seeds (``results``: each seed's ``eval --ablations``
    result): per configuration and metric, the score at each seed, their mean and range; then whether each step
    of the order (as ``paired``) holds at each seed and by the means. On a few dozen emails, a draft's sampling
    moves a row as far as the steps of the order are apart; the mean over seeds says more than one seed."""
    import statistics

    seeds = sorted(results)
    labels = [row["label"] for row in results[seeds[0]]["rows"]]
    score = {(s, row["label"], m): row.get(m) for s in seeds for row in results[s]["rows"] for m in metrics}
    lines = [
        "| metric | configuration | " + " | ".join(f"seed {s}" for s in seeds) + " | mean | range |",
        "|---|---|" + "---|" * (len(seeds) + 2),
    ]
    means = {}
    for m in metrics:
        for label in labels:
            values = [score.get((s, label, m)) for s in seeds]
            if any(v is None for v in values):
                continue
            means[label, m] = statistics.mean(values)
            lines.append(f"| {m} | {label} | " + " | ".join(f"{v:.4f}" for v in values)
                         + f" | {means[label, m]:.4f} | {max(values) - min(values):.4f} |")  # fmt: skip
    rows = [{"label": label} for label in labels]
    lines += ["", "| metric | step | " + " | ".join(f"seed {s}" for s in seeds) + " | by the means |",
              "|---|---|" + "---|" * (len(seeds) + 1)]  # fmt: skip
    for m in metrics:
        for before, after in order_steps(rows):
            a, b = before["label"], after["label"]
            if (a, m) not in means or (b, m) not in means:
                continue
            cells = ["holds" if score[s, b, m] >= score[s, a, m] else "fails" for s in seeds]
            gap = means[b, m] - means[a, m]
            lines.append(f"| {m} | {a} → {b} | " + " | ".join(cells)
                         + f" | {gap:+.4f} {'holds' if gap >= 0 else 'fails'} |")  # fmt: skip
    return "\n".join(lines)


def over_seeds(
    results: dict[int, dict], embed=None, mauve_runs: int | None = None, mauve_boot: int | None = None
) -> str:
    """The configurations drafted with several seeds (``results``, as ``by_seed`` takes them), each scored on all of
    its drafts of an email together: bleu over every seed's drafts, with a 95% interval that resamples the emails,
    each with all of its drafts (``metrics.bleu_over_drafts``); then per step of the order (as ``paired``), the
    paired difference (``metrics.bleu_difference_over_drafts``) and the two intervals side by side (as ``apart``).
    Then MAUVE the same way (``metrics.mauve_over_drafts``, ``metrics.mauve_difference_over_drafts``), on ``embed``'s
    features (the local MiniLM, as evaluation embeds, when None), with ``mauve_runs`` clusterings a score and
    ``mauve_boot`` resamples (the metrics module's when None). Only the emails every seed drafted in every
    configuration count; a score there is none of (MAUVE of one email) shows as "—"."""
    import numpy as np

    from trainer.evaluation.metrics import (
        MAUVE_RUNS,
        N_BOOT_MAUVE,
        bleu_difference_over_drafts,
        bleu_over_drafts,
        mauve_difference_over_drafts,
        mauve_over_drafts,
    )

    mauve = {"runs": mauve_runs or MAUVE_RUNS, "n_boot": N_BOOT_MAUVE if mauve_boot is None else mauve_boot}

    def shown(value, spec: str = ".4f") -> str:
        return "—" if value is None else format(value, spec)

    def around(span: list[float] | None, spec: str, between: str) -> str:
        return "" if span is None else f" ({format(span[0], spec)}{between}{format(span[1], spec)})"

    if embed is None:
        from trainer.evaluation.features import embed

    seeds = sorted(results)
    reports = {s: json.loads(Path(results[s]["json_path"]).read_text()) for s in seeds}
    labels = [row["label"] for row in reports[seeds[0]]["rows"]]
    items = {(s, row["label"]): {x["pair_id"]: x for x in row["items"]} for s in seeds for row in reports[s]["rows"]}
    if any((s, label) not in items for s in seeds for label in labels):
        raise SystemExit("--over-seeds needs the same configurations at every seed (eval --ablations)")
    common = sorted(set.intersection(*(set(found) for found in items.values())))
    if not common:
        raise SystemExit("no email was drafted at every seed in every configuration")
    real = [items[seeds[0], labels[0]][pid]["real"] for pid in common]
    drafts = {label: [[items[s, label][pid]["draft"] for s in seeds] for pid in common] for label in labels}
    real_features = np.asarray(embed(real), dtype=np.float32)
    features = {
        label: np.asarray(embed([d for each in drafts[label] for d in each]), dtype=np.float32).reshape(
            len(common), len(seeds), -1
        )
        for label in labels
    }
    steps = [(a["label"], b["label"]) for a, b in order_steps([{"label": label} for label in labels])]
    lines = []
    for metric in ("bleu", "mauve"):
        if metric == "bleu":
            scored = {label: bleu_over_drafts(drafts[label], real) for label in labels}
            difference = {(a, b): bleu_difference_over_drafts(drafts[a], drafts[b], real) for a, b in steps}
        else:
            scored = {label: mauve_over_drafts(features[label], real_features, **mauve) for label in labels}
            difference = {
                (a, b): mauve_difference_over_drafts(
                    features[a], features[b], real_features, **mauve, means=(scored[a]["mauve"], scored[b]["mauve"])
                )
                for a, b in steps
            }
        lines += [
            f"| configuration ({len(common)} emails, seeds {', '.join(map(str, seeds))}) | {metric} (95% interval) |",
            "|---|---|",
        ]
        lines += [f"| {label} | {shown(scored[label][metric])}{around(scored[label]['interval'], '.4f', '–')} |"
                  for label in labels]  # fmt: skip
        lines += [
            "",
            f"| from → to | {metric} difference (paired 95% interval) | resamples higher "
            "| intervals side by side: gap | apart |",
            "|---|---|---|---|---|",
        ]
        for a, b in steps:
            got = difference[a, b]
            spans = scored[a]["interval"], scored[b]["interval"]
            gap = None if None in spans else spans[1][0] - spans[0][1]
            apart = "—" if gap is None else "yes" if gap > 0 else "no"
            lines.append(f"| {a} → {b} | {shown(got['difference'], '+.4f')}{around(got['interval'], '+.4f', ' to ')} "
                         f"| {shown(got['above'], '.0%')} | {shown(gap, '+.4f')} | {apart} |")  # fmt: skip
        lines.append("")
    return "\n".join(lines).rstrip("\n")


def seed_results(work: Path) -> dict[int, dict]:
    """WORK's evaluations by seed: ``eval.json`` (seed 0) and each ``eval-seed{N}.json``."""
    found = {0: work / "eval.json"} | {int(p.stem.removeprefix("eval-seed")): p for p in work.glob("eval-seed*.json")}
    return {s: json.loads(p.read_text()) for s, p in sorted(found.items()) if p.exists()}


def mauve_runs(work: Path, embed=None) -> str:
    """Per configuration of the last evaluation: its MAUVE as the report has it (with the clusterings it is the
    mean of: 1 for a report that does not say), and recomputed from the same drafts and real emails as the mean,
    standard deviation and range over ``metrics.MAUVE_RUNS`` clusterings, seeded as evaluation seeds them; then
    whether each step of the order (as ``paired``) holds by the recorded score and by the mean. ``embed``: the
    local MiniLM, as evaluation embeds, when None."""
    import numpy as np

    from trainer.evaluation.metrics import MAUVE_RUNS, mauve_scores

    if embed is None:
        from trainer.evaluation.features import embed

    report = last_report(work)
    lines = [
        f"| configuration | mauve in the report (clusterings) | mean of {MAUVE_RUNS} clusterings | sd | range |",
        "|---|---|---|---|---|",
    ]
    means = {}
    for row in report["rows"]:
        items, seed = row["items"], int(row["config"].get("seed", report.get("seed", 0)))
        n = len(items)
        features = np.asarray(embed([x["draft"] for x in items] + [x["real"] for x in items]), dtype=np.float32)
        runs = mauve_scores(features[:n], features[n:], seed)
        if runs[0] is None:
            continue
        means[row["label"]] = float(np.mean(runs))
        recorded = row["metrics"].get("mauve")
        shown = "—" if recorded is None else f"{recorded:.3f} ({row['metrics'].get('mauve_runs') or 1})"
        lines.append(
            f"| {row['label']} | {shown} | {np.mean(runs):.3f} "
            f"| {np.std(runs, ddof=1):.3f} | {min(runs):.3f}–{max(runs):.3f} |"
        )
    lines += ["", "| step | by the report | by the mean |", "|---|---|---|"]
    for before, after in order_steps(report["rows"]):
        a, b = before["label"], after["label"]
        if a not in means or b not in means:
            continue
        was, now = before["metrics"].get("mauve"), after["metrics"].get("mauve")
        recorded = "—" if was is None or now is None else f"{now - was:+.3f} {'holds' if now >= was else 'fails'}"
        mean = means[b] - means[a]
        lines.append(f"| {a} → {b} | {recorded} | {mean:+.3f} {'holds' if mean >= 0 else 'fails'} |")
    return "\n".join(lines)


def example_copies(work: Path) -> str:
    """Per configuration of the last evaluation: its drafts shown style examples, and those that repeat 50+
    characters of one of them (``assistant.overlap``, as the copy guard counts), with the run. The report's
    ``verbatim_overlap`` counts runs of training pairs only; examples may be any of the user's sent mail."""
    from assistant.overlap import CopyIndex
    from assistant.store.db import open_store

    db = open_store(work / "data")
    lines = ["| configuration | drafts shown examples | repeating one | runs |", "|---|---|---|---|"]
    for row in last_report(work)["rows"]:
        shown, runs = 0, []
        for item in row["items"]:
            if not item.get("examples"):
                continue
            shown += 1
            index = CopyIndex()
            for (body,) in db.execute(
                f"SELECT body FROM messages WHERE id IN ({','.join('?' * len(item['examples']))})", item["examples"]
            ):
                index.add(body)
            runs += [f"{item['pair_id']}: “{c.copied[:60]}”" for c in index.find(item["draft"])[:1]]
        lines.append(f"| {row['label']} | {shown} | {len(runs)} | {'; '.join(runs)} |")
    return "\n".join(lines)


def sample_instructions(work: Path, n: int, seed: int = 0) -> str:
    """``n`` instructions drawn at random (fixed seed) from the included pairs, as a Markdown table with the
    start of each email, so a reader can judge them."""
    import random

    from assistant.store.db import open_store

    db = open_store(work / "data")
    rows = db.execute("SELECT id, instruction, output, flags FROM pairs WHERE status = 'ok' ORDER BY id").fetchall()
    chosen = sorted(random.Random(seed).sample(rows, min(n, len(rows))))
    lines = ["| pair | instruction | kind | the email begins |", "|---|---|---|---|"]
    for pid, instruction, output, flags in chosen:
        kind = method_of(json.loads(flags or "[]"))
        start = " ".join(output.split())[:90]
        cells = [str(pid), instruction, kind, start + ("…" if len(" ".join(output.split())) > 90 else "")]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dataset", type=Path, help="a JSONL set of one author's emails, or an .mbox (with --me)")
    ap.add_argument("--me", action="append", default=[], help="the author's address in an .mbox (repeatable)")
    ap.add_argument("--work", type=Path, required=True, help="working folder (data dir, mbox, results)")
    ap.add_argument("--stages", default="import,pairs,train,eval", help="comma-separated stages to run")
    ap.add_argument("--pairs", type=int, default=300, help="how many sent emails to label (pairs build --limit)")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--max-steps", type=int, default=None)
    ap.add_argument("--gpu-recipe", action="store_true", help="train with the default recipe, not the CPU one")
    ap.add_argument(
        "--store-cpu-recipe",
        action="store_true",
        help="store the CPU recipe as the data folder's train setting (for a version before 'train' chose it)",
    )
    ap.add_argument("--limit", type=int, default=None, help="evaluate on at most N validation pairs")
    ap.add_argument(
        "--seed",
        type=int,
        default=0,
        help="the eval stage's drafting and bootstrap seed; other than 0, its result goes to WORK/eval-seedN.json",
    )
    ap.add_argument(
        "--by-seed",
        action="store_true",
        help="print each configuration's bleu and MAUVE at every seed evaluated (--seed) with their mean, and stop",
    )
    ap.add_argument(
        "--over-seeds",
        action="store_true",
        help="print each configuration's bleu and MAUVE over the drafts of every seed evaluated (--seed) together,"
        " with intervals that resample the emails, and each step of the order on each, and stop",
    )
    ap.add_argument("--table", action="store_true", help="print WORK/eval.json as a Markdown table and stop")
    ap.add_argument("--instructions", type=int, metavar="N", help="print N random instructions as a table and stop")
    ap.add_argument(
        "--by-instruction",
        action="store_true",
        help="print bleu on model-written vs fallback instructions (of WORK/eval.json's report) and stop",
    )
    ap.add_argument("--lengths", action="store_true", help="print each configuration's median length ratio and stop")
    ap.add_argument(
        "--asked-lengths",
        action="store_true",
        help="print how near the length asked for comes to the user's own emails, by rule, and stop",
    )
    ap.add_argument(
        "--bleu-parts",
        action="store_true",
        help="print each configuration's bleu as its brevity penalty times the rest, and stop",
    )
    ap.add_argument(
        "--paired",
        action="store_true",
        help="print how much higher each row's bleu is than the row before (and adapter + examples than base +"
        " examples), with paired intervals, and stop",
    )
    ap.add_argument(
        "--apart",
        action="store_true",
        help="print whether each step's 95%% intervals are apart side by side (four decimals), and stop",
    )
    ap.add_argument(
        "--mauve",
        action="store_true",
        help="print each configuration's MAUVE as the mean of several clusterings of the same drafts, and stop",
    )
    ap.add_argument(
        "--example-copies",
        action="store_true",
        help="print how many drafts repeat 50+ characters of a style example shown with them, and stop",
    )
    ap.add_argument(
        "--train-prompts",
        metavar="LEN,LEN",
        help="print how training prompts at each max_seq_len show style examples (of WORK's pairs), and stop",
    )
    ap.add_argument(
        "--against",
        type=Path,
        metavar="BEFORE",
        help="print BEFORE's evaluation (a copy of WORK evaluated by another version) next to WORK's and stop",
    )
    args = ap.parse_args()
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    if args.table:
        print(table(json.loads((work / "eval.json").read_text())))
        return
    if args.by_instruction:
        print(by_instruction(work))
        return
    if args.lengths:
        print(lengths(work))
        return
    if args.asked_lengths:
        print(asked_lengths(work))
        return
    if args.bleu_parts:
        print(bleu_parts(work))
        return
    if args.paired:
        print(paired(work))
        return
    if args.apart:
        print(apart(json.loads((work / "eval.json").read_text())))
        return
    if args.mauve:
        print(mauve_runs(work))
        return
    if args.by_seed:
        print(by_seed(seed_results(work)))
        return
    if args.over_seeds:
        print(over_seeds(seed_results(work)))
        return
    if args.example_copies:
        print(example_copies(work))
        return
    if args.train_prompts:
        print(train_prompts(work, [int(x) for x in args.train_prompts.split(",")]))
        return
    if args.against:
        print(against(work, args.against.resolve()))
        return
    if args.instructions:
        print(sample_instructions(work, args.instructions))
        return
    stages = set(args.stages.split(","))
    log: dict = json.loads((work / "log.json").read_text()) if (work / "log.json").exists() else {}

    def record(stage: str, result: dict) -> None:
        log[stage] = result
        (work / "log.json").write_text(json.dumps(log, indent=2))

    if "import" in stages:
        if args.dataset.suffix == ".mbox":
            if not args.me:
                raise SystemExit("a mailbox needs the author's addresses: --me ADDRESS (repeatable)")
            me = [x for a in args.me for x in ("--me", a)]
            record("import", mailvoice(work, "import", str(args.dataset.resolve()), *me))
        else:
            address, n = write_mailbox(args.dataset, work / "sent.mbox")
            record("import", mailvoice(work, "import", str(work / "sent.mbox"), "--me", address) | {"emails": n})
    if "pairs" in stages:
        record("pairs", mailvoice(work, "pairs", "build", "--limit", str(args.pairs)))
    if "train" in stages:
        from assistant.store.db import open_store, set_setting
        from trainer.config import TrainConfig

        if args.gpu_recipe:  # train chooses the CPU recipe by itself on a CPU; setting the defaults overrides it
            defaults = TrainConfig()
            set_setting(open_store(work / "data"), "train", {k: getattr(defaults, k) for k in OLDER_CPU_RECIPE})
        elif args.store_cpu_recipe:
            set_setting(open_store(work / "data"), "train", OLDER_CPU_RECIPE)
        have = mailvoice(work, "adapters").get("adapters", [])
        if not any(a.get("name") == "quality" for a in have):
            extra = ["--max-steps", str(args.max_steps)] if args.max_steps else []
            runs = work / "data" / "runs"
            if runs.exists() and any(runs.iterdir()):  # a stopped run continues with its own saved settings
                record("train", mailvoice(work, "train", "--resume"))
            else:
                record("train", mailvoice(work, "train", "--name", "quality", "--epochs", str(args.epochs), *extra))
    if "eval" in stages:
        extra = (["--limit", str(args.limit)] if args.limit else []) + ["--seed", str(args.seed)]
        result = mailvoice(work, "eval", "--ablations", "--adapter", "quality", *extra)
        record(eval_file(args.seed).removesuffix(".json"), result)
        (work / eval_file(args.seed)).write_text(json.dumps(result, indent=2))
    print(json.dumps(log, indent=2))


if __name__ == "__main__":
    main()
