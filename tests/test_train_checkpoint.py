"""Checkpoints: exact round trip (weights, optimizer, scheduler, RNG), atomic writes, clear errors on damage."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from trainer import checkpoint
from trainer.checkpoint import CheckpointError
from trainer.config import cosine_with_warmup


def _trained_pieces():
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 2)
    opt = torch.optim.AdamW(model.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1 / (s + 1))
    for _ in range(3):
        model(torch.randn(3, 4)).sum().backward()
        opt.step()
        sched.step()
        opt.zero_grad()
    return model, opt, sched


def _save(parent, step=3):
    model, opt, sched = _trained_pieces()
    path = checkpoint.save(parent, step, model.state_dict(), opt.state_dict(), sched.state_dict(), {"epoch": 1})
    return path, model, opt, sched


def test_round_trip_is_exact(tmp_path):
    path, model, opt, sched = _save(tmp_path)
    assert path.name == "step-00000003" and (path / "manifest.json").is_file()
    loaded = checkpoint.load(path)
    for k, v in model.state_dict().items():
        assert torch.equal(loaded.adapter[k], v)
    fresh = torch.optim.AdamW(torch.nn.Linear(4, 2).parameters(), lr=0.1)
    fresh.load_state_dict(loaded.optimizer)
    assert torch.equal(fresh.state_dict()["state"][0]["exp_avg"], opt.state_dict()["state"][0]["exp_avg"])
    assert loaded.scheduler["last_epoch"] == sched.state_dict()["last_epoch"]
    assert loaded.state == {"epoch": 1, "step": 3}


def test_rng_states_are_restored(tmp_path):
    path, *_ = _save(tmp_path)
    expected = (random.random(), np.random.rand(), torch.rand(1).item())
    checkpoint.restore_rng(checkpoint.load(path).rng)
    # The checkpoint captured the generators just before `expected` was drawn.
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected


def test_partial_checkpoint_is_refused_with_what_to_do(tmp_path):
    path, *_ = _save(tmp_path)
    (path / "manifest.json").unlink()
    with pytest.raises(CheckpointError, match="incomplete.*Delete that folder"):
        checkpoint.load(path)


@pytest.mark.parametrize("victim", ["optimizer.pt", "adapter.safetensors", "rng.json"])
def test_damaged_checkpoint_is_refused(tmp_path, victim):
    path, *_ = _save(tmp_path)
    data = bytearray((path / victim).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (path / victim).write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=f"damaged \\({victim}"):
        checkpoint.load(path)


def test_missing_file_is_refused(tmp_path):
    path, *_ = _save(tmp_path)
    (path / "scheduler.pt").unlink()
    with pytest.raises(CheckpointError, match="scheduler.pt is missing"):
        checkpoint.verify(path)


def test_latest_ignores_temporary_folders_and_prune_keeps_the_newest(tmp_path):
    for step in (1, 2, 3):
        _save(tmp_path, step)
    (tmp_path / ".tmp-step-00000004-1").mkdir()  # an interrupted write
    assert checkpoint.latest(tmp_path).name == "step-00000003"
    checkpoint.prune(tmp_path, keep=2)
    assert [p.name for p in checkpoint.all_steps(tmp_path)] == ["step-00000002", "step-00000003"]
    assert not (tmp_path / ".tmp-step-00000004-1").exists()


def test_a_full_disk_mid_save_leaves_the_last_checkpoint_and_no_partial_one(tmp_path, monkeypatch):
    import errno

    first, *_ = _save(tmp_path, step=3)
    calls = []

    def full(obj, path, *args, **kwargs):
        calls.append(path)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real(obj, path, *args, **kwargs)

    real = torch.save
    monkeypatch.setattr(torch, "save", full)
    with pytest.raises(OSError, match="No space left"):
        _save(tmp_path, step=6)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step-00000003"]  # the half-written one is gone
    assert checkpoint.latest(tmp_path) == first and checkpoint.verify(first)


def test_saving_the_same_step_again_replaces_it(tmp_path):
    """Step 5 saved again (cancelled right after a resume): the new save replaces the old folder whole."""
    _save(tmp_path, 5)
    old = tmp_path / "step-00000005"
    (old / "manifest.json").unlink()  # the earlier one left incomplete
    (old / "stale.bin").write_bytes(b"from the earlier save")
    path, *_ = _save(tmp_path, 5)
    assert path == old and checkpoint.verify(path) and not (path / "stale.bin").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step-00000005"]


def test_schedule_warms_up_then_decays_without_wasted_steps():
    factors = [cosine_with_warmup(s, warmup=2, total=10) for s in range(10)]
    assert factors[:3] == [0.5, 1.0, 1.0]
    assert all(a >= b for a, b in zip(factors[1:], factors[2:], strict=False))
    assert 0 < factors[-1] < 0.1
