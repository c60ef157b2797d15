"""The parity verdict and the base model's preparation checks (fast; the real check runs in test_train_e2e)."""

from __future__ import annotations

import numpy as np
import pytest

from assistant.drafting.models import embedded_model_path
from trainer import base_model
from trainer.base_model import BaseModelError, identify, prepare_base
from trainer.parity import PARITY_ROOM, ParityReport, _agree, _decisive, too_big
from trainer.shapes import shape_of


def report(agreement, base_agreement):
    return ParityReport(agreement, base_agreement, adapter_changed=0.2, positions=100, examples=4)


def test_passes_at_95_percent_or_when_no_worse_than_the_base_alone():
    assert report(0.95, 0.99).passed
    assert report(0.94, 0.94).passed  # quantization alone flips 6%: the export is not to blame
    assert not report(0.94, 0.97).passed
    assert report(0.97, 0.99).to_json()["threshold"] == 0.95


def test_decisive_agreement_ignores_near_ties():
    a, b = [np.array([1, 2, 3, 4])], [np.array([1, 2, 9, 9])]
    margins = [np.array([3.0, 2.0, 0.1, 0.2])]  # the two disagreements are near-ties
    assert _agree(a, b) == 0.5
    assert _agree(*_decisive(a, b, margins)) == 1.0


def test_the_check_is_skipped_with_its_reason_where_the_full_precision_base_does_not_fit():
    """It loads the base in float32 beside the GGUF: for an 8B base more than many GPU machines have free."""
    gguf = embedded_model_path()
    need = shape_of(gguf).parameters * 4 + gguf.stat().st_size + PARITY_ROOM
    assert too_big(gguf, need) is None
    why = too_big(gguf, need - 1)
    assert why is not None and why.startswith("Skipped the llama.cpp check of the adapter")
    assert f"~{need / 1e9:.1f} GB of memory" in why and "The adapter is exported and ready" in why


def test_base_identity_is_stable_and_keys_the_cache(tmp_path):
    first, second = identify(embedded_model_path()), identify(embedded_model_path())
    assert first == second and first.kind == "gguf" and len(first.key) == 16
    assert first.size == embedded_model_path().stat().st_size


def test_not_a_model_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(BaseModelError, match="neither a GGUF"):
        identify(tmp_path / "notes.txt")
    with pytest.raises(BaseModelError, match="no config.json"):
        identify(tmp_path)


def test_too_little_disk_is_refused_before_any_work(tmp_path, monkeypatch):
    class Usage:
        free = 10 << 20

    monkeypatch.setattr(base_model.shutil, "disk_usage", lambda _path: Usage())
    with pytest.raises(BaseModelError, match=r"needs 0\.\d GB of disk.*0\.0 GB free"):
        prepare_base(embedded_model_path(), tmp_path)
    assert not list((tmp_path / "base").iterdir())  # nothing half-written
