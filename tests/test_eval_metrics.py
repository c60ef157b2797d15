"""Evaluation metrics against hand-computed and library reference values, intervals, MAUVE, warnings."""

from __future__ import annotations

import hashlib
import math

import mailgen as gen
import numpy as np
import pytest
import sacrebleu
from rouge_score.rouge_scorer import RougeScorer

from trainer.evaluation import metrics
from trainer.evaluation.features import words

HYP = "The cat sat on the mat."
REF = "the cat, is on the mat"


def bag_of_words(texts):
    """A deterministic stand-in for the sentence embedder: hashed word counts."""
    out = np.zeros((len(texts), 32))
    for i, text in enumerate(texts):
        for w in words(text):
            out[i, int(hashlib.md5(w.encode()).hexdigest(), 16) % 32] += 1
    return out


def test_words_lower_case_without_punctuation_in_any_script():
    assert words("Hi Zoë, don't forget the e-mail (at 5:30)!") == ["hi", "zoë", "dont", "forget", "the", "email",
                                                                    "at", "530"]  # fmt: skip
    assert words("¿Qué tal?  Grüße — Jürgen") == ["qué", "tal", "grüße", "jürgen"]


def test_bleu_by_hand():
    """Words: the cat sat on the mat / the cat is on the mat (case and punctuation ignored)."""
    p1, p2, p3 = 5 / 6, 3 / 5, 1 / 4  # clipped 1-, 2-, 3-gram precisions; lengths equal, so no brevity penalty
    p4 = 1 / (2 * 3)  # no 4-gram of 3 matches: exp smoothing counts it as 1/2 of a match
    expected = {
        "bleu_1": p1,
        "bleu_2": math.sqrt(p1 * p2),
        "bleu_3": (p1 * p2 * p3) ** (1 / 3),
        "bleu_4": (p1 * p2 * p3 * p4) ** (1 / 4),
    }
    got = metrics.bleu([HYP], [REF])
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, abs=1e-9), key
    assert got["bleu"] == pytest.approx(sum(expected.values()) / 4, abs=1e-9)


def test_identical_texts_score_one_and_disjoint_score_zero():
    refs = ["Hi Rosa, can the plumber come on Monday?", "Thanks, I will send the receipt tonight."]
    same = metrics.score(refs, refs, embed=bag_of_words, n_boot=50, n_boot_mauve=3).metrics
    for key in ("bleu", "bleu_4", "sacrebleu", "chrf", "rouge_l", "length_ratio"):
        assert same[key] == pytest.approx(1.0), key
    other = ["Quarterly budget numbers attached below", "Lisbon offsite agenda draft"]
    apart = metrics.score(other, refs, embed=bag_of_words, n_boot=50, n_boot_mauve=3).metrics
    assert apart["bleu"] == 0 and apart["sacrebleu"] == 0 and apart["rouge_l"] == 0
    assert apart["chrf"] < 0.2


def test_sacrebleu_and_chrf_match_the_library_on_a_corpus():
    hyps = ["The plumber can come on Monday morning.", "I sent the receipt,\nplease check it.", "See you soon!"]
    refs = ["The plumber comes Monday morning.", "I have sent the receipt; please check.", "See you on Friday!"]
    flat_hyps, flat_refs = [" ".join(h.split()) for h in hyps], [" ".join(r.split()) for r in refs]
    expected_bleu = sacrebleu.corpus_bleu(flat_hyps, [flat_refs]).score / 100
    expected_chrf = sacrebleu.corpus_chrf(flat_hyps, [flat_refs]).score / 100
    assert 0 < expected_bleu < 1
    got = metrics.score(hyps, refs, embed=bag_of_words, n_boot=20, n_boot_mauve=2).metrics
    assert got["sacrebleu"] == pytest.approx(expected_bleu, abs=1e-4)  # summed per-pair statistics
    assert metrics.sacrebleu_score(hyps, refs) == pytest.approx(expected_bleu, abs=1e-12)
    assert got["chrf"] == pytest.approx(expected_chrf, abs=1e-4)


def test_rouge_l_and_length_ratio():
    assert metrics.rouge_l_each([HYP], [REF]) == [pytest.approx(5 / 6)]  # LCS "the cat on the mat"
    reference = RougeScorer(["rougeL"]).score(REF, HYP)["rougeL"].fmeasure  # rouge-score's own tokenizer
    assert reference == pytest.approx(5 / 6)
    got = metrics.score(["one two", "a b c d"], ["w x y z", "a b c d"], embed=bag_of_words, n_boot=20,
                        n_boot_mauve=2).metrics  # fmt: skip
    assert got["length_ratio"] == pytest.approx(6 / 8)  # corpus ratio, not the mean of 0.5 and 1.0


def test_verbatim_overlap_counts_drafts_that_copy_a_training_email():
    training = ["Hi team, the quarterly numbers are in the shared folder, please review them before Friday."]
    drafts = [
        "Hello! The quarterly numbers are in the shared folder, please review them before Friday. Thanks",
        "Hello! The quarterly numbers are in the shared folder. Thanks",
        "Nothing in common here at all, just a short note.",
    ]
    refs = ["a", "b", "c"]
    got = metrics.score(drafts, refs, training, embed=bag_of_words, n_boot=20, n_boot_mauve=2)
    assert got.metrics["verbatim_overlap"] == pytest.approx(1 / 3, abs=1e-4)
    assert got.items[0]["copied"].startswith("the quarterly numbers") and got.items[1]["copied"] is None


def test_intervals_are_seeded_percentiles_around_the_score():
    rng = np.random.default_rng(1)
    vocab = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa"]
    refs = [" ".join(rng.choice(vocab, rng.integers(5, 15))) for _ in range(30)]
    hyps = [" ".join(rng.choice(vocab, rng.integers(5, 15))) for _ in range(30)]
    a = metrics.score(hyps, refs, embed=bag_of_words, seed=3, n_boot=200, n_boot_mauve=5).metrics
    b = metrics.score(hyps, refs, embed=bag_of_words, seed=3, n_boot=200, n_boot_mauve=5).metrics
    assert a["intervals"] == b["intervals"]
    for key in ("bleu", "sacrebleu", "rouge_l", "length_ratio"):
        lo, hi = a["intervals"][key]
        assert lo <= a[key] <= hi and lo < hi, key
    lo, hi = a["intervals"]["mauve"]  # near 1, a percentile interval need not hold the estimate itself
    assert 0 <= lo <= hi <= 1
    assert metrics.score(hyps, refs, embed=bag_of_words, seed=4, n_boot=200, n_boot_mauve=5).metrics["intervals"] != (
        a["intervals"]
    )
    assert a["warnings"] and "fewer than 50" in a["warnings"][0]
    assert a["mauve_buckets"] == 3


def test_a_small_steady_gain_is_apart_from_zero_paired_though_the_two_intervals_overlap():
    rng = np.random.default_rng(2)
    refs, before, after = [], [], []
    for _ in range(30):
        vocab = [f"w{k}" for k in range(rng.integers(8, 60))]  # emails easy and hard to match
        ref, hyp = (list(rng.choice(vocab, 20)) for _ in range(2))
        refs.append(" ".join(ref))
        before.append(" ".join(hyp))
        after.append(" ".join([ref[0], *hyp[1:]]))  # the first word the reference's: more matches over all
    diff = metrics.bleu_difference(before, after, refs, seed=1, n_boot=300)
    lo, hi = diff["interval"]
    assert 0 < lo <= diff["difference"] <= hi and diff["above"] == 1.0
    assert diff["difference"] == pytest.approx(metrics.bleu(after, refs)["bleu"] - metrics.bleu(before, refs)["bleu"])
    side_by_side = [
        metrics.score(d, refs, embed=bag_of_words, seed=1, n_boot=300, n_boot_mauve=0).metrics["intervals"]["bleu"]
        for d in (before, after)
    ]
    assert side_by_side[1][0] < side_by_side[0][1]  # they overlap
    same = metrics.bleu_difference(before, before, refs, n_boot=50)
    assert same["difference"] == 0 and same["interval"] == [0, 0] and same["above"] == 0
    with pytest.raises(ValueError):
        metrics.bleu_difference(before, after[:-1], refs)


def _emails(n, seed):
    """Real emails and drafts of them that match some of their words, easy and hard ones."""
    rng = np.random.default_rng(seed)
    refs, drafts = [], []
    for _ in range(n):
        vocab = [f"w{k}" for k in range(rng.integers(8, 60))]
        refs.append(" ".join(rng.choice(vocab, 20)))
        drafts.append(" ".join(rng.choice(vocab, int(rng.integers(10, 30)))))
    return refs, drafts


def test_several_drafts_of_each_email_score_together_and_resample_with_their_email():
    refs, first = _emails(30, 3)
    _, second = _emails(30, 4)  # other drafts of other lengths, as another seed writes
    one = metrics.bleu_over_drafts([[d] for d in first], refs, seed=1, n_boot=200)
    scored = metrics.score(first, refs, embed=bag_of_words, seed=1, n_boot=200, n_boot_mauve=0).metrics
    assert one["bleu"] == pytest.approx(metrics.bleu(first, refs)["bleu"])
    assert one["interval"] == scored["intervals"]["bleu"]
    both = metrics.bleu_over_drafts([[a, b] for a, b in zip(first, second, strict=True)], refs, seed=1, n_boot=200)
    assert both["bleu"] == pytest.approx(metrics.bleu([*first, *second], [*refs, *refs])["bleu"])
    assert both["bleu"] != pytest.approx(one["bleu"])
    # Two equal drafts of each email count each email twice: the same score where every n-gram order has matches
    # (none smoothed), and the same interval only because each email is drawn with all of its drafts (drawn one by
    # one, the 60 drafts would give a narrower one).
    matched = [" ".join([*r.split()[:5], *d.split()]) for r, d in zip(refs, first, strict=True)]
    one = metrics.bleu_over_drafts([[d] for d in matched], refs, seed=1, n_boot=200)
    twice = metrics.bleu_over_drafts([[d, d] for d in matched], refs, seed=1, n_boot=200)
    assert twice["bleu"] == pytest.approx(one["bleu"]) and twice["interval"] == one["interval"]
    with pytest.raises(ValueError):
        metrics.bleu_over_drafts([[first[0]], *[[a, b] for a, b in zip(first[1:], second[1:], strict=True)]], refs)
    with pytest.raises(ValueError):
        metrics.bleu_over_drafts([[d] for d in first[:-1]], refs)


def test_a_paired_difference_over_several_drafts_of_each_email():
    refs, before = _emails(30, 5)
    after = [" ".join([ref.split()[0], *d.split()[1:]]) for ref, d in zip(refs, before, strict=True)]
    _, other = _emails(30, 6)
    before2 = [[a, b] for a, b in zip(before, other, strict=True)]
    after2 = [[a, b] for a, b in zip(after, other, strict=True)]
    over = metrics.bleu_difference_over_drafts(before2, after2, refs, seed=2, n_boot=200)
    pooled = [metrics.bleu_over_drafts(d, refs)["bleu"] for d in (before2, after2)]
    assert over["difference"] == pytest.approx(pooled[1] - pooled[0]) and over["difference"] > 0
    assert over["interval"][0] <= over["difference"] <= over["interval"][1]


def test_mauve_over_several_drafts_of_each_email_pools_them_and_resamples_with_their_email():
    rng = np.random.default_rng(3)
    real = rng.normal(size=(30, 16))
    near = real[:, None, :] + rng.normal(scale=0.3, size=(30, 3, 16))  # three drafts of each email, like it
    far = near + 4.0
    one = metrics.mauve_over_drafts(near[:, :1], real, seed=2, runs=3, n_boot=5)
    assert one["mauve"] == pytest.approx(metrics.mauve_mean(near[:, 0], real, 2, 3))  # one draft each: as score()
    pooled = metrics.mauve_over_drafts(near, real, seed=2, runs=3, n_boot=5)
    assert pooled["mauve"] == pytest.approx(metrics.mauve_mean(near.reshape(90, 16), real, 2, 3))
    assert pooled["mauve"] > 0.8 and metrics.mauve_over_drafts(far, real, seed=2, runs=3, n_boot=5)["mauve"] < 0.1
    lo, hi = pooled["interval"]
    assert 0 <= lo <= hi <= 1
    step = metrics.mauve_difference_over_drafts(far, near, real, seed=2, runs=3, n_boot=5)
    scored = [metrics.mauve_over_drafts(x, real, seed=2, runs=3, n_boot=0)["mauve"] for x in (far, near)]
    assert step["difference"] == pytest.approx(scored[1] - scored[0]) and step["difference"] > 0.7
    assert step["above"] == 1.0 and step["interval"][0] > 0.5
    given = metrics.mauve_difference_over_drafts(far, near, real, seed=2, runs=3, n_boot=5, means=tuple(scored))
    assert given == step  # the scores the caller has are the ones it would cluster again
    with pytest.raises(ValueError):
        metrics.mauve_over_drafts(near[:-1], real)  # one email fewer than the real ones
    with pytest.raises(ValueError):
        metrics.mauve_over_drafts(near[:, 0], real)  # not grouped by email


def test_each_mauve_resample_draws_emails_with_all_their_drafts_and_the_same_emails_for_both_sides(monkeypatch):
    rng = np.random.default_rng(4)
    real = rng.normal(size=(12, 8)).astype(np.float32)  # as the features are scored
    before, after = rng.normal(size=(2, 12, 3, 8)).astype(np.float32)
    calls = []

    def recorded(p, q, seed=0):
        calls.append((p, q, seed))
        return 0.5

    monkeypatch.setattr(metrics, "mauve_score", recorded)

    def email_of(rows: np.ndarray) -> list[int]:  # each row's email, found by its features
        return [int(np.flatnonzero((real == row).all(axis=1))[0]) for row in rows]

    metrics.mauve_over_drafts(after, real, seed=1, runs=2, n_boot=3)
    boot = calls[2:]  # after the 2 clusterings of the score
    assert len(boot) == 3 and [seed for *_, seed in boot] == [1, 2, 3]
    for p, q, _ in boot:
        drawn = email_of(q)
        assert np.array_equal(p, after[drawn].reshape(-1, 8))  # each drawn email with its 3 drafts, in order
    calls.clear()
    metrics.mauve_difference_over_drafts(before, after, real, seed=1, runs=2, n_boot=3)
    pairs = list(zip(calls[0:6:2], calls[1:6:2], strict=True))  # the resamples come first, before then after
    for (p_a, q_a, s_a), (p_b, q_b, s_b) in pairs:
        drawn = email_of(q_a)
        assert np.array_equal(q_a, q_b) and s_a == s_b
        assert np.array_equal(p_a, before[drawn].reshape(-1, 8)) and np.array_equal(p_b, after[drawn].reshape(-1, 8))
    assert len({tuple(email_of(q)) for (_, q, _), _ in pairs}) > 1  # resampled, not the same emails each time
    assert len(calls) == 6 + 2 * 2  # and the two scores, 2 clusterings each
    calls.clear()
    metrics.mauve_difference_over_drafts(before, after, real, seed=1, runs=2, n_boot=3, means=(0.5, 0.5))
    assert len(calls) == 6  # given the two scores: only the resamples are clustered


def test_no_warning_from_50_pairs():
    texts = [f"Note number {i} about the plan." for i in range(50)]
    got = metrics.score(texts, texts, embed=bag_of_words, n_boot=10, n_boot_mauve=1).metrics
    assert got["warnings"] == [] and got["mauve_buckets"] == 5


def test_mauve_on_features_separates_distributions():
    rng = np.random.default_rng(0)
    p, q = rng.normal(size=(60, 16)), rng.normal(size=(60, 16))
    assert metrics.mauve_score(p, q) > 0.8
    assert metrics.mauve_score(p, q + 4.0) < 0.1
    assert metrics.mauve_score(p[:1], q[:1]) is None


def test_mauve_is_the_mean_of_several_clusterings_each_seeded():
    rng = np.random.default_rng(5)
    p, q = rng.normal(size=(40, 16)), rng.normal(size=(40, 16)) + 0.3
    each = [metrics.mauve_score(p, q, seed) for seed in range(7, 7 + 6)]
    assert len(set(each)) > 1  # the seed alone moves one clustering's score
    assert metrics.mauve_mean(p, q, seed=7, runs=6) == pytest.approx(np.mean(each))
    assert metrics.mauve_mean(p, q, seed=7, runs=1) == each[0] and metrics.mauve_mean(p[:1], q[:1]) is None
    drafts = [f"note {i} about plan {i % 3}" for i in range(20)]
    refs = [f"plan {i % 4} is due on day {i}" for i in range(20)]
    got = metrics.score(drafts, refs, embed=bag_of_words, seed=7, n_boot=10, n_boot_mauve=2, mauve_runs=3).metrics
    features = np.asarray(bag_of_words([*drafts, *refs]), dtype=np.float32)
    assert got["mauve"] == pytest.approx(metrics.mauve_mean(features[:20], features[20:], 7, 3), abs=5e-5)  # rounded
    assert got["mauve_runs"] == 3


@pytest.mark.slow
def test_mauve_with_the_local_embedder_high_for_same_kind_low_for_other_text():
    bodies = [m.own_text for m in gen.generate_messages(200, seed=11) if m.own_text]
    a, b = bodies[:25], bodies[25:50]
    assert len(b) == 25
    rng = np.random.default_rng(2)
    noise = ["".join(rng.choice(list("qwxzjkv0123456789"), 80)) for _ in range(25)]
    from trainer.evaluation.features import embed

    same = metrics.score(a, b, embed=embed, n_boot=10, n_boot_mauve=2).metrics["mauve"]
    other = metrics.score(noise, b, embed=embed, n_boot=10, n_boot_mauve=2).metrics["mauve"]
    assert same > 0.5 and other < 0.1 and same > other
