"""Checkpoints for exact resume: LoRA weights, optimizer, scheduler, RNG states and the trainer's position.

A checkpoint is a folder ``step-NNNNNNNN`` written under a temporary name and renamed when complete, with a
``manifest.json`` (size and SHA-256 of every file) written last. A folder without a manifest is a partial
write; a file that does not match its manifest is damage. Both are refused with a message, never half-loaded.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assistant.errors import MailvoiceError

FILES = ("adapter.safetensors", "optimizer.pt", "scheduler.pt", "rng.pt", "rng.json", "state.json")
_STEP = re.compile(r"step-(\d{8})")
VERSION = 1


class CheckpointError(MailvoiceError):
    """A checkpoint is partial or damaged."""


@dataclass
class Checkpoint:
    path: Path
    adapter: dict[str, Any]  # LoRA tensors by PEFT state-dict name
    optimizer: dict[str, Any]
    scheduler: dict[str, Any]
    state: dict[str, Any]  # step, epoch, batch, tokens, best eval, elapsed seconds...
    rng: dict[str, Any]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _fsync(path: Path) -> None:
    with path.open("rb") as f:
        os.fsync(f.fileno())


def capture_rng() -> dict[str, Any]:
    """Python, numpy and torch (CPU and CUDA) generator states."""
    import numpy as np
    import torch

    version, state, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)  # type: ignore[misc]
    return {
        "python": [version, list(state), gauss],
        "numpy": [kind, keys.tolist(), int(pos), int(has_gauss), float(cached)],
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def restore_rng(rng: dict[str, Any]) -> None:
    import numpy as np
    import torch

    version, state, gauss = rng["python"]
    random.setstate((version, tuple(state), gauss))
    kind, keys, pos, has_gauss, cached = rng["numpy"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(rng["torch"])
    if rng["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])


def save(
    parent: Path,
    step: int,
    adapter: dict[str, Any],
    optimizer: dict[str, Any],
    scheduler: dict[str, Any],
    state: dict[str, Any],
) -> Path:
    """Write checkpoint ``step`` atomically into ``parent``; return its folder."""
    import torch
    from safetensors.torch import save_file

    parent.mkdir(parents=True, exist_ok=True)
    final = parent / f"step-{step:08d}"
    tmp = parent / f".tmp-step-{step:08d}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        rng = capture_rng()
        save_file({k: v.detach().contiguous().cpu() for k, v in adapter.items()}, str(tmp / "adapter.safetensors"))
        torch.save(optimizer, tmp / "optimizer.pt")
        torch.save(scheduler, tmp / "scheduler.pt")
        torch.save({"torch": rng.pop("torch"), "cuda": rng.pop("cuda")}, tmp / "rng.pt")
        (tmp / "rng.json").write_text(json.dumps(rng))
        (tmp / "state.json").write_text(json.dumps({**state, "step": step}, indent=2))
        files = {}
        for name in FILES:
            _fsync(tmp / name)
            files[name] = {"size": (tmp / name).stat().st_size, "sha256": _sha256(tmp / name)}
        manifest = {"version": VERSION, "step": step, "files": files}
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2))  # last: its presence means complete
        _fsync(tmp / "manifest.json")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)  # a full disk: give back what the half-written one took
        raise
    if final.exists():  # the same step saved again (cancelled right after a resume)
        _discard(final)
    tmp.rename(final)
    return final


def _discard(folder: Path) -> None:
    """Delete a checkpoint folder without ever leaving a half-deleted ``step-`` folder behind: it is renamed to
    a temporary name first (one atomic step), and :func:`prune` clears such a name if a kill cut the delete."""
    doomed = folder.with_name(f".tmp-{folder.name}-{os.getpid()}-old")
    shutil.rmtree(doomed, ignore_errors=True)
    folder.rename(doomed)
    shutil.rmtree(doomed, ignore_errors=True)


def verify(path: Path) -> dict[str, Any]:
    """The manifest of a complete, undamaged checkpoint; :class:`CheckpointError` otherwise."""
    manifest_path = path / "manifest.json"
    if not manifest_path.is_file():
        raise CheckpointError(
            f"The checkpoint {path} is incomplete (no manifest.json: it was being written when training "
            "stopped). Delete that folder to resume from the checkpoint before it."
        )
    try:
        manifest = json.loads(manifest_path.read_text())
        files = manifest["files"]
    except (ValueError, KeyError, OSError) as exc:
        raise CheckpointError(f"The checkpoint {path} has a damaged manifest ({exc}). Delete that folder.") from exc
    for name, expected in files.items():
        f = path / name
        if not f.is_file() or f.stat().st_size != expected["size"] or _sha256(f) != expected["sha256"]:
            raise CheckpointError(
                f"The checkpoint {path} is damaged ({name} is missing or does not match its manifest). "
                "Delete that folder to resume from the checkpoint before it, or start a new run."
            )
    return manifest


def load(path: Path) -> Checkpoint:
    """Verify, then read a checkpoint (tensors on CPU)."""
    import torch
    from safetensors.torch import load_file

    verify(path)
    rng = json.loads((path / "rng.json").read_text())
    rng.update(torch.load(path / "rng.pt", weights_only=True))
    return Checkpoint(
        path=path,
        adapter=load_file(str(path / "adapter.safetensors")),
        optimizer=torch.load(path / "optimizer.pt", weights_only=True),
        scheduler=torch.load(path / "scheduler.pt", weights_only=True),
        state=json.loads((path / "state.json").read_text()),
        rng=rng,
    )


def all_steps(parent: Path) -> list[Path]:
    """Checkpoint folders (complete or not, never temporary ones), oldest first."""
    if not parent.is_dir():
        return []
    return sorted(p for p in parent.iterdir() if p.is_dir() and _STEP.fullmatch(p.name))


def latest(parent: Path) -> Path | None:
    """The newest checkpoint folder; a damaged or partial newest one is reported, not skipped silently."""
    found = all_steps(parent)
    return found[-1] if found else None


def prune(parent: Path, keep: int) -> None:
    """Delete all but the ``keep`` newest checkpoints, and temporary folders of interrupted writes."""
    for old in all_steps(parent)[:-keep]:
        _discard(old)
    for tmp in parent.glob(".tmp-step-*"):
        if not tmp.name.endswith(f"-{os.getpid()}"):
            shutil.rmtree(tmp, ignore_errors=True)
