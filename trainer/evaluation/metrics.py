"""Scoring drafts against the real emails they stand in for, with bootstrap intervals.

Every score is on a 0-1 scale (sacrebleu's BLEU and chrF, usually shown as 0-100, are divided by 100), so
one chart can show them side by side:

- ``bleu``: the mean of corpus BLEU-1, -2, -3 and -4 (cumulative: BLEU-n is the geometric mean of the 1..n-gram
  precisions times the brevity penalty) on lower-cased words without punctuation (:func:`features.words`).
  Smoothing is sacrebleu's ``exp`` (Chen & Cherry 2014, method 3, as mteval-v13a): an n-gram order with
  no match counts as 1/2^k of a match instead of zeroing the score, which matters for small sets and
  short emails; with no word in common at all the score is 0. ``bleu_1`` .. ``bleu_4`` are reported too.
- ``sacrebleu``: sacrebleu's standard corpus BLEU (13a tokenisation, case kept, ``exp`` smoothing).
- ``chrf``: sacrebleu's corpus chrF (character 6-grams, word order 0, beta 2).
- ``rouge_l``: the mean ROUGE-L F-measure (rouge-score, no stemming, tokenised like ``bleu``).
- ``length_ratio``: the corpus ratio, all draft words / all real words (a mean of per-email ratios is
  dominated by a few very short real emails).
- ``verbatim_overlap``: the share of drafts that repeat 50+ consecutive characters of any training email
  (:mod:`assistant.overlap`).
- ``mauve``: MAUVE (mauve-text) between the drafts and the real emails, on sentence embeddings
  (:func:`features.embed`). The histograms have ``max(2, round(n / 10))`` buckets (the MAUVE authors'
  rule: about ten emails of each side per bucket); under 2 pairs there is no score. The score is the mean over
  ``MAUVE_RUNS`` k-means clusterings, each with its own seed (``mauve_runs``): with a few dozen emails in two to
  five buckets, one clustering's score moves by a standard deviation of 0.03-0.19 with the seed alone (the
  same drafts, ``bench/quality.py x --mauve``), more than the differences between configurations.

Intervals are 95% percentile bootstrap intervals over the pairs (the same resample of pairs for drafts and
real emails), seeded: 1,000 resamples, 50 for MAUVE (each one clusters again, with a seed of its own: the
interval holds the clustering's spread as well as the emails'). With fewer than 50 pairs a
warning says the scores are rough. Whether one configuration's ``bleu`` is above another's on the same emails is
better read from :func:`bleu_difference` (a paired interval) than from two intervals side by side. Drafted with
several seeds, a configuration's drafts of each email are scored together (:func:`bleu_over_drafts`,
:func:`bleu_difference_over_drafts`, :func:`mauve_over_drafts`, :func:`mauve_difference_over_drafts`), and each
resample draws an email with all of its drafts.
"""

from __future__ import annotations

import functools
import importlib
import logging
import types
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sacrebleu.metrics import BLEU, CHRF

from assistant.overlap import DEFAULT_MIN_CHARS, CopyIndex
from trainer.evaluation.features import Embed, WordTokenizer, words

log = logging.getLogger("mailvoice.evaluation")

METRICS = ("bleu", "sacrebleu", "chrf", "rouge_l", "mauve", "length_ratio", "verbatim_overlap")
FEW = 50  # fewer pairs than this: scores are rough, say so
N_BOOT = 1000
N_BOOT_MAUVE = 50
MAUVE_RUNS = 20  # clusterings a MAUVE score is the mean of: its seed's spread over the mean's is a fifth (1/sqrt 20)
ORDERS = 4
Step = Callable[[str, int, int], None]  # (phase, done, total)


@dataclass
class Scores:
    metrics: dict[str, Any]  # the METRICS keys, bleu_1..4, n, intervals, warnings, mauve_buckets
    items: list[dict[str, Any]] = field(default_factory=list)  # per pair: rouge_l, words, copied (or None)


def _one_line(text: str) -> str:
    return " ".join(text.split())


# --- BLEU from per-pair statistics (so bootstrap resamples only add up counts) -----------------------------


def _bleu_stats(metric: BLEU, hyps: Sequence[str], refs: Sequence[str]) -> np.ndarray:
    """Per pair: matched n-grams (ORDERS), hypothesis n-grams (ORDERS), hypothesis and reference length."""
    rows = []
    for hyp, ref in zip(hyps, refs, strict=True):
        s = metric.corpus_score([hyp], [[ref]])
        rows.append([*s.counts, *s.totals, s.sys_len, s.ref_len])
    return np.asarray(rows, dtype=np.int64).reshape(len(rows), 2 * ORDERS + 2)


def _bleu_n(summed: np.ndarray, order: int) -> float:
    correct = [int(x) for x in summed[:order]]
    total = [int(x) for x in summed[ORDERS : ORDERS + order]]
    sys_len, ref_len = int(summed[-2]), int(summed[-1])
    return BLEU.compute_bleu(correct, total, sys_len, ref_len, smooth_method="exp", max_ngram_order=order).score / 100


def _mean_bleu(summed: np.ndarray) -> float:
    return float(np.mean([_bleu_n(summed, n) for n in range(1, ORDERS + 1)]))


@functools.cache
def _word_bleu() -> BLEU:
    return BLEU(tokenize="none", smooth_method="exp", force=True)


def _word_stats(drafts: Sequence[str], references: Sequence[str]) -> np.ndarray:
    hyps = [" ".join(words(t)) for t in drafts]
    refs = [" ".join(words(t)) for t in references]
    return _bleu_stats(_word_bleu(), hyps, refs)


def bleu(drafts: Sequence[str], references: Sequence[str]) -> dict[str, float]:
    """``bleu`` (the mean) and ``bleu_1`` .. ``bleu_4`` (see the module docstring)."""
    summed = _word_stats(drafts, references).sum(axis=0)
    out = {f"bleu_{n}": _bleu_n(summed, n) for n in range(1, ORDERS + 1)}
    return {"bleu": float(np.mean(list(out.values()))), **out}


def bleu_difference(
    before: Sequence[str], after: Sequence[str], references: Sequence[str], *, seed: int = 0, n_boot: int = N_BOOT
) -> dict[str, Any]:
    """How much ``after``'s ``bleu`` is above ``before``'s, on the same real emails, with a paired 95% bootstrap
    interval: each resample draws the same emails for both, so what the two share (an email both find hard)
    does not widen it, as it does the two intervals of ``score`` side by side. ``above``: the share of resamples
    in which ``after`` scores higher (Koehn's paired bootstrap; 1 minus it is near a one-sided p-value only where
    the differences spread evenly about their centre)."""
    one_each = [[d] for d in before], [[d] for d in after]
    return bleu_difference_over_drafts(*one_each, references, seed=seed, n_boot=n_boot)


def _drafts_stats(drafts: Sequence[Sequence[str]], references: Sequence[str]) -> np.ndarray:
    """Per real email, the BLEU statistics of all of its drafts added up (``drafts[i]``: email i's drafts, as many
    for every email)."""
    if len(drafts) != len(references):
        raise ValueError("drafts and references differ in length")
    if not references:
        raise ValueError("nothing to score")
    if len({len(d) for d in drafts}) != 1 or not drafts[0]:
        raise ValueError("every email needs as many drafts, at least one")
    return sum(_word_stats([d[k] for d in drafts], references) for k in range(len(drafts[0])))


def bleu_over_drafts(
    drafts: Sequence[Sequence[str]], references: Sequence[str], *, seed: int = 0, n_boot: int = N_BOOT
) -> dict[str, Any]:
    """``bleu`` of several drafts of each real email together (``drafts[i]``: email i's, one per drafting seed), with
    a 95% bootstrap interval that resamples the emails, each with all of its drafts. One draft per email scores the
    configuration with one sampling of each draft: on a few dozen emails, another drafting seed moves ``bleu`` as far
    as configurations are apart (QUALITY.md). Several drafts of each average the sampling out of the score, and leave
    the interval to the emails' spread."""
    stats = _drafts_stats(drafts, references)
    resamples = np.random.default_rng(seed).integers(0, len(stats), size=(n_boot, len(stats)))
    return {
        "bleu": _mean_bleu(stats.sum(axis=0)),
        "interval": _interval([_mean_bleu(stats[i].sum(axis=0)) for i in resamples]),
    }


def bleu_difference_over_drafts(
    before: Sequence[Sequence[str]],
    after: Sequence[Sequence[str]],
    references: Sequence[str],
    *,
    seed: int = 0,
    n_boot: int = N_BOOT,
) -> dict[str, Any]:
    """``bleu_difference`` with several drafts of each email in each configuration, scored together as
    ``bleu_over_drafts`` scores them: each resample draws the same emails, with all their drafts, for both."""
    a, b = _drafts_stats(before, references), _drafts_stats(after, references)
    resamples = np.random.default_rng(seed).integers(0, len(a), size=(n_boot, len(a)))
    diffs = np.asarray([_mean_bleu(b[i].sum(axis=0)) - _mean_bleu(a[i].sum(axis=0)) for i in resamples])
    return {
        "difference": _mean_bleu(b.sum(axis=0)) - _mean_bleu(a.sum(axis=0)),
        "interval": _interval(diffs),
        "above": float((diffs > 0).mean()),
    }


def sacrebleu_score(drafts: Sequence[str], references: Sequence[str]) -> float:
    hyps, refs = [_one_line(t) for t in drafts], [_one_line(t) for t in references]
    return BLEU().corpus_score(hyps, [refs]).score / 100


def chrf(drafts: Sequence[str], references: Sequence[str]) -> float:
    hyps, refs = [_one_line(t) for t in drafts], [_one_line(t) for t in references]
    return CHRF().corpus_score(hyps, [refs]).score / 100


def rouge_l_each(drafts: Sequence[str], references: Sequence[str]) -> list[float]:
    from rouge_score.rouge_scorer import RougeScorer

    scorer = RougeScorer(["rougeL"], use_stemmer=False, tokenizer=WordTokenizer())
    return [scorer.score(ref, hyp)["rougeL"].fmeasure for hyp, ref in zip(drafts, references, strict=True)]


def copied_runs(drafts: Sequence[str], training: Sequence[str], min_chars: int = DEFAULT_MIN_CHARS) -> list[str | None]:
    """For each draft, the first run of ``min_chars``+ characters it repeats from a training email, or None."""
    index = CopyIndex(min_chars=min_chars)
    index.add_many(training)
    out: list[str | None] = []
    for text in drafts:
        found = index.find(text, first_only=True)
        out.append(found[0].copied if found else None)
    return out


# --- MAUVE ---------------------------------------------------------------------------------------------


def mauve_buckets(n: int) -> int:
    return max(2, round(n / 10))


@functools.cache
def _mauve() -> Callable[..., Any]:
    """``mauve.compute_mauve``, with faiss's k-means told that few points per bucket is expected.

    faiss prints a warning to the process's stderr for every clustering with under 39 points per bucket,
    which at ten per side is always; compute_mauve has no way to pass faiss's own switch for it, so the
    module's reference to faiss is given a Kmeans with that switch set.
    """
    import faiss

    cm = importlib.import_module("mauve.compute_mauve")  # the module: the package exports a function of its name

    kmeans = functools.partial(faiss.Kmeans, min_points_per_centroid=1)
    cm.faiss = types.SimpleNamespace(Kmeans=kmeans)
    # A few hundred points cluster in milliseconds; faiss's OpenMP threads only add start-up and contention
    # (measured: 7x slower than one thread for 60 points on a busy 2-core machine).
    faiss.omp_set_num_threads(1)
    return cm.compute_mauve


def mauve_score(p: np.ndarray, q: np.ndarray, seed: int = 0) -> float | None:
    """MAUVE between feature sets ``p`` (drafts) and ``q`` (real emails), or None under 2 pairs."""
    if len(p) < 2 or len(q) < 2:
        return None
    if not np.ptp(np.vstack([p, q]), axis=0).any():
        return 1.0  # every text at one point (a resample of one email): the same distribution, nothing to cluster
    compute = _mauve()
    out = compute(p_features=p, q_features=q, num_buckets=mauve_buckets(min(len(p), len(q))), seed=seed + 25)
    return float(out.mauve)


def mauve_scores(
    p: np.ndarray, q: np.ndarray, seed: int = 0, runs: int = MAUVE_RUNS, step: Step | None = None
) -> list[float | None]:
    """:func:`mauve_score` of ``runs`` clusterings (seeds ``seed`` .. ``seed + runs - 1``); ``step`` is told
    ("mauve", done, runs) before each."""
    scores = []
    for run in range(max(1, runs)):
        if step:
            step("mauve", run, max(1, runs))
        scores.append(mauve_score(p, q, seed + run))
    return scores


def mauve_mean(
    p: np.ndarray, q: np.ndarray, seed: int = 0, runs: int = MAUVE_RUNS, step: Step | None = None
) -> float | None:
    """The mean of :func:`mauve_scores` (None under 2 pairs)."""
    scores = mauve_scores(p, q, seed, runs, step)
    return None if scores[0] is None else float(np.mean(scores))


def _drafts_features(drafts: np.ndarray, references: np.ndarray) -> np.ndarray:
    drafts = np.asarray(drafts, dtype=np.float32)
    if drafts.ndim != 3 or len(drafts) != len(references) or not drafts.shape[1]:
        raise ValueError("drafts need the shape (emails, drafts of each, features), as many emails as references")
    return drafts


def mauve_over_drafts(
    drafts: np.ndarray,
    references: np.ndarray,
    *,
    seed: int = 0,
    runs: int = MAUVE_RUNS,
    n_boot: int = N_BOOT_MAUVE,
) -> dict[str, Any]:
    """MAUVE of several drafts of each real email together, as ``bleu_over_drafts`` scores bleu: ``drafts[i]`` holds
    the features of email i's drafts (one per drafting seed), ``references[i]`` its real email's. The drafts' side of
    the histograms is every draft of every email (the buckets are still set by the number of emails), so one
    sampling of each draft weighs less; the score is the mean of ``runs`` clusterings, and the 95% interval resamples
    the emails, each with all of its drafts, with a clustering of its own each (as :func:`score`)."""
    drafts = _drafts_features(drafts, references)
    q = np.asarray(references, dtype=np.float32)
    flat = drafts.reshape(-1, drafts.shape[-1])
    resamples = np.random.default_rng(seed).integers(0, len(q), size=(n_boot, len(q)))
    return {
        "mauve": mauve_mean(flat, q, seed, runs),
        "interval": _interval(
            [mauve_score(drafts[i].reshape(-1, drafts.shape[-1]), q[i], seed + b) for b, i in enumerate(resamples)]
        ),
    }


def mauve_difference_over_drafts(
    before: np.ndarray,
    after: np.ndarray,
    references: np.ndarray,
    *,
    seed: int = 0,
    runs: int = MAUVE_RUNS,
    n_boot: int = N_BOOT_MAUVE,
    means: tuple[float | None, float | None] | None = None,
) -> dict[str, Any]:
    """How much ``after``'s :func:`mauve_over_drafts` is above ``before``'s on the same emails (the difference of
    the two means of ``runs`` clusterings), with a 95% interval paired on the emails: each resample draws the same
    emails, with all their drafts, for both. Each side of a resample is one clustering of its own points (seeded
    alike, which pairs nothing: the points differ), so the interval holds two clusterings' spread as well as the
    emails', and ``above``, the share of resamples in which ``after`` scores higher, is drawn towards one half
    where the two are close. ``means``: the two scores (before, after) when the caller has them from
    :func:`mauve_over_drafts` with the same ``seed`` and ``runs``, which are not clustered again."""
    a, b = _drafts_features(before, references), _drafts_features(after, references)
    q = np.asarray(references, dtype=np.float32)
    dim = q.shape[-1]
    resamples = np.random.default_rng(seed).integers(0, len(q), size=(n_boot, len(q)))
    diffs = []
    for k, i in enumerate(resamples):
        was, now = (mauve_score(x[i].reshape(-1, dim), q[i], seed + k) for x in (a, b))
        if was is not None and now is not None:
            diffs.append(now - was)
    if means is None:
        means = mauve_mean(a.reshape(-1, dim), q, seed, runs), mauve_mean(b.reshape(-1, dim), q, seed, runs)
    was, now = means
    return {
        "difference": None if was is None or now is None else now - was,
        "interval": _interval(diffs),
        "above": float(np.mean(np.asarray(diffs) > 0)) if diffs else None,
    }


# --- all of it ------------------------------------------------------------------------------------------


def _interval(values: Sequence[float]) -> list[float] | None:
    finite = [v for v in values if v is not None and np.isfinite(v)]
    if not finite:
        return None
    lo, hi = np.percentile(finite, [2.5, 97.5])
    return [round(float(lo), 4), round(float(hi), 4)]


def score(
    drafts: Sequence[str],
    references: Sequence[str],
    training: Sequence[str] = (),
    *,
    embed: Embed | None = None,
    seed: int = 0,
    n_boot: int = N_BOOT,
    n_boot_mauve: int = N_BOOT_MAUVE,
    mauve_runs: int = MAUVE_RUNS,
    step: Step | None = None,
) -> Scores:
    """Every metric of the module docstring for ``drafts`` against ``references`` (same order, same length).

    Args:
        training: the training emails, for ``verbatim_overlap``.
        embed: texts -> features for MAUVE; the local MiniLM when None.
        seed: for the bootstrap and MAUVE's clusterings.
        mauve_runs: the clusterings MAUVE's score is the mean of.
        step: told (phase, done, total) while the slow parts run.
    """
    if len(drafts) != len(references):
        raise ValueError("drafts and references differ in length")
    n = len(drafts)
    if n == 0:
        raise ValueError("nothing to score")
    step = step or (lambda phase, done, total: None)
    step("scoring", 0, 1)
    draft_words = [len(words(t)) for t in drafts]
    ref_words = [len(words(t)) for t in references]
    word_stats = _word_stats(drafts, references)
    sacre_stats = _bleu_stats(BLEU(), [_one_line(t) for t in drafts], [_one_line(t) for t in references])
    rouge = np.asarray(rouge_l_each(drafts, references))
    copies = copied_runs(drafts, training)
    copied = np.asarray([c is not None for c in copies], dtype=float)
    lengths = np.asarray([draft_words, ref_words], dtype=float).T

    def length_ratio(rows: np.ndarray) -> float | None:
        total = rows.sum(axis=0)
        return float(total[0] / total[1]) if total[1] else None

    summed = word_stats.sum(axis=0)
    metrics: dict[str, Any] = {
        "n": n,
        "bleu": _mean_bleu(summed),
        **{f"bleu_{k}": _bleu_n(summed, k) for k in range(1, ORDERS + 1)},
        "sacrebleu": _bleu_n(sacre_stats.sum(axis=0), ORDERS),
        "chrf": chrf(drafts, references),
        "rouge_l": float(rouge.mean()),
        "length_ratio": length_ratio(lengths),
        "verbatim_overlap": float(copied.mean()),
        "mauve": None,
        "mauve_buckets": None,
        "mauve_runs": None,
    }
    rng = np.random.default_rng(seed)
    resamples = rng.integers(0, n, size=(n_boot, n))
    intervals = {
        "bleu": _interval([_mean_bleu(word_stats[i].sum(axis=0)) for i in resamples]),
        "sacrebleu": _interval([_bleu_n(sacre_stats[i].sum(axis=0), ORDERS) for i in resamples]),
        "rouge_l": _interval([float(rouge[i].mean()) for i in resamples]),
        "length_ratio": _interval([length_ratio(lengths[i]) for i in resamples]),
        "verbatim_overlap": _interval([float(copied[i].mean()) for i in resamples]),
        "mauve": None,
    }
    if n >= 2:
        step("embedding", 0, 1)
        if embed is None:
            from trainer.evaluation.features import embed
        features = np.asarray(embed([*drafts, *references]), dtype=np.float32)
        p, q = features[:n], features[n:]
        metrics["mauve"] = mauve_mean(p, q, seed, mauve_runs, step)
        metrics["mauve_buckets"] = mauve_buckets(n)
        metrics["mauve_runs"] = max(1, mauve_runs)
        boot = []
        for b, i in enumerate(resamples[:n_boot_mauve]):
            step("mauve interval", b, n_boot_mauve)
            boot.append(mauve_score(p[i], q[i], seed + b))
        intervals["mauve"] = _interval(boot)
    metrics["intervals"] = intervals
    metrics["warnings"] = (
        [f"Only {n} pairs were scored: with fewer than {FEW} the scores are rough; read them with their intervals."]
        if n < FEW
        else []
    )
    for key, value in metrics.items():
        if isinstance(value, float):
            metrics[key] = round(value, 4)
    items = [
        {"rouge_l": round(float(r), 4), "draft_words": d, "real_words": w, "copied": c}
        for r, d, w, c in zip(rouge, draft_words, ref_words, copies, strict=True)
    ]
    return Scores(metrics, items)
