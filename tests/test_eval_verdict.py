"""The evaluation verdict in words: compared with the plain model, too small to tell, copies and lengths."""

from __future__ import annotations

import pytest

from assistant.paths import data_dir
from trainer.evaluation import store
from trainer.evaluation.verdict import plain_model_scores, verdict

PLAIN = {"n": 60, "chrf": 0.30, "rouge_l": 0.20, "length_ratio": 1.0, "verbatim_overlap": 0.0}


@pytest.mark.parametrize(
    ("moves", "compared", "start"),
    [
        ({"chrf": 0.36, "rouge_l": 0.25}, "better", "style-a writes closer to your own emails than the plain model"),
        ({"chrf": 0.24, "rouge_l": 0.15}, "worse", "style-a writes less like your emails than the plain model"),
        ({"chrf": 0.36, "rouge_l": 0.19}, "same", "No clear difference between style-a and the plain model"),
        ({"chrf": 0.305, "rouge_l": 0.205}, "same", "No clear difference"),  # half a point: noise
    ],
)
def test_the_adapter_is_judged_against_the_plain_model(moves, compared, start):
    found = verdict({**PLAIN, **moves}, "style-a", PLAIN)
    assert found.compared == compared and found.text.startswith(start), found.text
    assert "Only" not in found.text  # 60 emails: not a rough verdict


def test_too_few_emails_gives_no_verdict_at_all():
    found = verdict({**PLAIN, "n": 1, "rouge_l": 0.9}, "style-a", PLAIN)
    assert found.compared == "unknown" and found.text.startswith("Too few emails to tell: 1 validation email was")


@pytest.mark.parametrize(
    ("extra", "note"),
    [
        ({"length_ratio": 0.4}, "Drafts are much shorter than your emails (0.4×)."),
        ({"length_ratio": 2.0}, "Drafts are much longer than your emails (2.0×)."),
        ({"verbatim_overlap": 0.25}, "25% of the drafts repeat a training email word for word."),
    ],
)
def test_cautions_are_added(extra, note):
    assert verdict({**PLAIN, **extra}, None).text.endswith(note)


def test_the_plain_models_scores_are_those_of_the_same_size_and_setting(db):
    root = data_dir()
    store.ensure(db)
    for n, examples, chrf in ((60, True, 0.31), (60, False, 0.5), (20, True, 0.6)):
        scores = {"base": {**PLAIN, "n": n, "chrf": chrf}}
        store.record(db, kind="eval", adapter=None, n=n, seed=0, config=[{"examples": examples}], metrics=scores,
                     report_dir=root, root=root, seconds=1.0)  # fmt: skip
    store.record(db, kind="eval", adapter="style-a", n=60, seed=0, config=[{"examples": True}],
                 metrics={"style-a": {**PLAIN, "chrf": 0.9}}, report_dir=root, root=root, seconds=1.0)  # fmt: skip
    assert plain_model_scores(db, root, 60, True)["chrf"] == 0.31
    assert plain_model_scores(db, root, 60, False)["chrf"] == 0.5
    assert plain_model_scores(db, root, 40, True) is None
