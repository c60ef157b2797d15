"""Where the recipe runs: device, compute dtype and, under ``accelerate launch``, the process group.

With one process every helper here is a no-op, so the recipe reads the same either way. With several
(``WORLD_SIZE`` > 1, set by accelerate launch / torchrun), accelerate's ``PartialState`` joins the process
group (NCCL on GPUs, gloo on CPUs) and the model is wrapped in ``DistributedDataParallel``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

from trainer import base_model
from trainer.config import TrainConfig


class Runtime:
    """Device, dtype, rank and world size of this process."""

    def __init__(self, cfg: TrainConfig):
        import torch

        if cfg.cpu_threads:
            torch.set_num_threads(cfg.cpu_threads)
        device = base_model.pick_device(cfg.device)
        self.rank, self.world, self.distributed = 0, 1, False
        if int(os.environ.get("WORLD_SIZE", "1")) > 1:
            from accelerate import PartialState

            state = PartialState(cpu=device == "cpu")  # initialises the process group
            self.rank, self.world, self.distributed = state.process_index, state.num_processes, True
            device = str(state.device) if device == "cuda" else device  # cuda:LOCAL_RANK
        self.device = device
        self.dtype = base_model.compute_dtype(cfg.compute_dtype, device.split(":")[0])

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.distributed:
            import torch.distributed as dist

            dist.barrier()

    @contextlib.contextmanager
    def main_first(self) -> Iterator[None]:
        """Rank 0 runs the block first (filling caches); the other ranks then find them complete."""
        if not self.main:
            self.barrier()
        yield
        if self.main:
            self.barrier()

    def wrap(self, model: Any) -> Any:
        if not self.distributed:
            return model
        from torch.nn.parallel import DistributedDataParallel

        ids = [int(self.device.split(":")[1])] if self.device.startswith("cuda:") else None
        return DistributedDataParallel(model, device_ids=ids)

    def sum(self, *values: float) -> list[float]:
        """``values`` summed over every rank (as they are with one process)."""
        if not self.distributed:
            return list(values)
        import torch
        import torch.distributed as dist

        summed = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.all_reduce(summed)
        return summed.tolist()

    def any(self, flag: bool) -> bool:
        """True on every rank when it is true on one: all ranks must stop at the same step."""
        return self.sum(1.0 if flag else 0.0)[0] > 0

    def shutdown(self) -> None:
        if self.distributed:
            import torch.distributed as dist

            if dist.is_initialized():
                dist.destroy_process_group()
