"""Merge a llama.cpp LoRA adapter into its base GGUF: one model file that drafts at the base model's speed.

llama.cpp applies an unmerged adapter as an extra ``scale * B @ (A @ x)`` for every adapted matrix at every
token; merged, the update is folded into the weights once, ``W' = W + scale * B @ A``, and a token costs what
it costs on a plain model. The adapter GGUF (``trainer.export``) is already in llama.cpp's layout (tensor
names, ``[out, in]`` in numpy order, q/k rows permuted for RoPE), so the merge happens in that layout and
nothing is permuted here. ``scale`` is llama.cpp's: ``lora_scale * alpha / r`` (``lora_scale`` alone when the
adapter records no alpha).

The merged file is a copy of the base: every metadata key (chat template, tokenizer, architecture numbers)
and every tensor the adapter does not touch, byte for byte in its original quantisation. Touched tensors are
dequantized with ``gguf.quants``, merged in float32 and written as:

- ``f16``: half precision, nearly exact; 2 bytes a weight (a Q4_1 tensor takes 0.625).
- ``q8_0``: 8-bit blocks, close to f16 in output; 1.06 bytes a weight.
- ``same``: the base tensor's own type when ``gguf.quants`` can write it (F32, F16, BF16, Q4_0, Q4_1, Q5_0,
  Q5_1, Q8_0): the file keeps the base's size, but rounding the merged weights to 4 bits again loses part of
  a small update. ``gguf.quants`` has no writer for K-quants and i-quants (the tensors of a Q4_K_M file):
  those are written as Q8_0.

A row whose length is not a whole number of quantisation blocks is written as f16.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import gguf
import numpy as np
from gguf import GGMLQuantizationType as Q

from assistant.drafting.models import MERGED_ADAPTER_KEY
from assistant.errors import MailvoiceError
from trainer.base_model import Progress, identify
from trainer.events import Phase

TYPES = ("f16", "q8_0", "same")
MARGIN = 64 << 20  # disk left free beyond the estimated file size
# What gguf.quants can write, with the numpy dtype GGUFWriter takes each as.
WRITABLE = {Q.F32: np.float32, Q.F16: np.float16, Q.BF16: np.uint8} | dict.fromkeys(
    (Q.Q4_0, Q.Q4_1, Q.Q5_0, Q.Q5_1, Q.Q8_0), np.uint8
)
FILE_TYPES = {Q.F32: gguf.LlamaFileType.ALL_F32} | {
    t: gguf.LlamaFileType[f"MOSTLY_{t.name}"] for t in WRITABLE if t != Q.F32
}

BASE_OPTION = "(--base PATH.gguf)"  # how the command line names the base model
LIST_ADAPTERS = "(mailvoice adapters lists them)"


class MergeError(MailvoiceError):
    """The adapter cannot be merged into this base, or the result cannot be written."""


@dataclass
class MergeInfo:
    path: str
    base: str
    adapter: str
    type: str
    scale: float
    merged: int  # tensors the adapter changed
    copied: int  # tensors copied byte for byte
    written_types: dict[str, int]  # merged tensors by the type they were written as
    size_bytes: int
    seconds: float
    adapter_name: str = ""  # recorded in the merged model

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Plan:
    """One tensor of the output, in file order: copied (``a`` is None) or merged and written as ``qtype``."""

    tensor: Any  # the base's gguf ReaderTensor
    qtype: Any
    shape: tuple[int, ...]  # as GGUFWriter takes it: bytes per row for block types
    dtype: Any
    nbytes: int
    a: np.ndarray | None = None  # lora_a, [r, in]
    b: np.ndarray | None = None  # lora_b, [out, r]


def merge_adapter(
    base: str | Path,
    adapter: str | Path,
    out: str | Path,
    out_type: str = "f16",
    lora_scale: float = 1.0,
    expected_base: dict[str, Any] | None = None,
    adapter_name: str = "",
    overwrite: bool = False,
    progress: Progress | None = None,
) -> MergeInfo:
    """Write ``base`` with ``adapter`` merged in to ``out``, atomically (a temporary file, then a rename).

    Args:
        base: the GGUF model the adapter was trained on; it is only read.
        adapter: a llama.cpp LoRA GGUF.
        out_type: ``f16``, ``q8_0`` or ``same`` (see the module docstring).
        lora_scale: the scale drafting applies to the adapter (the ``lora_scale`` setting).
        expected_base: the base identity recorded with the adapter (``sha256`` and ``size`` as
            :func:`trainer.base_model.identify` gives them); by default read from ``adapter_config.json``
            beside the adapter. Without one, only the architecture and the tensor shapes are compared.
        adapter_name: recorded in the merged model (drafting never applies that adapter to it again).
        overwrite: replace ``out`` when it exists (never the base or the adapter).
        progress: receives :class:`trainer.events.Phase` events (``phase`` ``merge``, with a ``fraction``) as
            their ``to_json()`` dicts.
    """
    started = time.perf_counter()
    base, adapter, out = Path(base).expanduser(), Path(adapter).expanduser(), Path(out).expanduser()
    if out_type not in TYPES:
        raise MergeError(f"Unknown type {out_type!r}: choose one of {', '.join(TYPES)}.")
    _check_paths(base, adapter, out, overwrite)
    base_reader, lora_reader = _readers(base, adapter)
    _check_same_base(base, adapter, base_reader, lora_reader, expected_base)
    plans, rank = _plan(base_reader, lora_reader, out_type)
    alpha = float(_field(lora_reader, gguf.Keys.Adapter.LORA_ALPHA) or 0.0)
    scale = lora_scale * alpha / rank if alpha else lora_scale
    _check_disk(out, base_reader, plans)
    name = adapter_name or adapter.parent.name
    extra = {
        MERGED_ADAPTER_KEY: name,  # drafting never applies this adapter to the merged model again
        "mailvoice.merged.adapter_sha256": hashlib.sha256(adapter.read_bytes()).hexdigest(),
        "mailvoice.merged.scale": scale,
        "mailvoice.merged.type": out_type,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    try:
        _write(tmp, base_reader, plans, name, extra, scale, progress)
        tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)
    touched = [p for p in plans if p.a is not None]
    return MergeInfo(
        path=str(out),
        base=str(base),
        adapter=str(adapter),
        type=out_type,
        scale=scale,
        merged=len(touched),
        copied=len(plans) - len(touched),
        written_types=dict(Counter(p.qtype.name for p in touched)),
        size_bytes=out.stat().st_size,
        seconds=time.perf_counter() - started,
        adapter_name=name,
    )


def resolve(db: Any, adapter: str, base: str | Path | None = None) -> tuple[str, Path, Path, dict[str, Any] | None]:
    """(name, adapter GGUF, base GGUF, recorded base identity) for a registered adapter's name or an adapter
    GGUF's path; ``base`` defaults to the model the adapter was trained on. Raises with what to do."""
    from assistant.drafting.models import resolve_adapter
    from assistant.store.adapters import list_adapters

    registered = {row["name"]: row for row in list_adapters(db)}
    if adapter in registered:
        _, found = resolve_adapter(db, adapter)  # a missing file raises, naming what to do
        path = Path(str(found))
        name, expected = adapter, recorded_base(path) or registered[adapter]["base"]
    else:
        path = Path(adapter).expanduser()
        if not path.is_file():
            if path.suffix.lower() == ".gguf":
                raise MergeError(f"{path} does not exist. Give an adapter GGUF, or the name of one of your adapters.",
                                 cli=LIST_ADAPTERS)  # fmt: skip
            if resolve_adapter(db, adapter)[1] is None:  # an unknown name raises, listing the known ones
                raise MergeError("Name the adapter to merge, or give an adapter GGUF.", cli=LIST_ADAPTERS)
        name = path.parent.name if path.name == "adapter.gguf" else path.stem
        expected = recorded_base(path)
    if base is not None:
        return name, path, Path(base).expanduser(), expected
    recorded = (expected or {}).get("path")
    if not recorded:
        raise MergeError(f"It is not recorded which model {name} was trained on: give that model as the base.",
                         cli=BASE_OPTION)  # fmt: skip
    if not Path(recorded).is_file():
        raise MergeError(f"The model {name} was trained on, {recorded}, is gone. Give its new place as the base.",
                         cli=BASE_OPTION)  # fmt: skip
    return name, path, Path(recorded), expected


def merge_into_base(
    db: Any,
    adapter: str,
    *,
    out: str | Path | None = None,
    out_type: str = "q8_0",
    base: str | Path | None = None,
    force: bool = False,
    progress: Progress | None = None,
) -> MergeInfo:
    """Merge a registered adapter (or an adapter GGUF) into its base with the data folder's ``lora_scale``,
    to ``out`` or :func:`default_path` (replaced when it is the default, or with ``force``). What
    ``mailvoice merge`` and the Train page's Merge run."""
    from assistant.store.db import get_setting

    name, adapter_path, base_path, expected = resolve(db, adapter, base)
    target = Path(out).expanduser() if out else default_path(adapter_path, out_type)
    return merge_adapter(
        base_path, adapter_path, target, out_type, lora_scale=float(get_setting(db, "lora_scale", 1.0)),
        expected_base=expected or {}, adapter_name=name, overwrite=force or out is None, progress=progress,
    )  # fmt: skip


def use_merged(db: Any, info: MergeInfo) -> None:
    """Draft with the merged model from now on, without its adapter (applying it again would double it)."""
    from assistant.drafting.models import choose_model
    from assistant.store.adapters import use_adapter

    choose_model(db, info.path)
    use_adapter(db, "none")


def default_path(adapter: Path, out_type: str) -> Path:
    """Where a merged model goes when no path is given: beside the adapter, named by its type."""
    return adapter.parent / f"merged-{out_type}.gguf"


# --- checks -----------------------------------------------------------------------------------------------


def _same_file(a: Path, b: Path) -> bool:
    if a.resolve() == b.resolve():
        return True
    return a.exists() and b.exists() and os.path.samefile(a, b)  # a hard link is the same file too


def _check_paths(base: Path, adapter: Path, out: Path, overwrite: bool) -> None:
    for what, path in (("base model", base), ("adapter", adapter)):
        if path.exists() and _same_file(out, path):
            raise MergeError(f"{out} is the {what} itself; the merged model needs a path of its own.",
                             cli="(-o NEW.gguf)")  # fmt: skip
    if out.exists() and not overwrite:
        raise MergeError(f"{out} already exists: give another path, or replace it.",
                         cli="(another path with -o, or --force to replace it)")  # fmt: skip


def _readers(base: Path, adapter: Path) -> tuple[Any, Any]:
    """Both files opened with gguf's reader, after drafting's own checks (a GGUF at all; model vs adapter)."""
    from assistant.drafting.models import check_adapter, check_model

    check_model(base)  # a GGUF chat model, or ModelError saying what to do
    check_adapter(adapter)
    readers = []
    for path in (base, adapter):
        try:
            readers.append(gguf.GGUFReader(path))
        except (ValueError, OSError) as exc:
            raise MergeError(f"{path} is a damaged or incomplete GGUF file ({exc}).") from exc
    base_reader, lora_reader = readers
    if _field(lora_reader, gguf.Keys.Adapter.TYPE) != "lora":
        raise MergeError(f"{adapter} is not a LoRA adapter (adapter.type); only LoRA adapters can be merged.")
    if (_field(base_reader, "split.count") or 1) > 1:
        raise MergeError(f"{base} is one part of a split model; join the parts into one file first (llama.cpp's "
                         "gguf-split tool does).", cli="(llama-gguf-split --merge)")  # fmt: skip
    return base_reader, lora_reader


def _field(reader: Any, key: str) -> Any:
    found = reader.get_field(key)
    return None if found is None else found.contents()


def recorded_base(adapter: Path) -> dict[str, Any] | None:
    """The base identity saved in ``adapter_config.json`` beside an adapter GGUF, if there is one."""
    try:
        return json.loads((adapter.parent / "adapter_config.json").read_text(encoding="utf-8")).get("base")
    except (OSError, ValueError, AttributeError):
        return None


def _check_same_base(base: Path, adapter: Path, base_reader: Any, lora_reader: Any, expected: Any) -> None:
    """Refuse an adapter trained on another model: by the identity recorded with it, and by architecture."""
    expected = recorded_base(adapter) if expected is None else expected
    if expected and expected.get("sha256") and expected.get("kind", "gguf") == "gguf":
        found = identify(base)
        if (found.sha256, found.size) != (expected["sha256"], expected.get("size", found.size)):
            trained_on = expected.get("name") or expected.get("path") or "another model"
            raise MergeError(
                f"The adapter {adapter.parent.name} was trained on {trained_on}, not on {base.name}. Merge it "
                "into the model it was trained on.",
                cli=f"(--base {expected.get('path') or 'PATH.gguf'})",
            )
    arch, lora_arch = _field(base_reader, "general.architecture"), _field(lora_reader, "general.architecture")
    if arch != lora_arch:
        raise MergeError(
            f"The adapter is for {lora_arch} models and {base.name} is a {arch} model: merge it into the "
            "model it was trained on.",
            cli=BASE_OPTION,
        )


def _check_disk(out: Path, base_reader: Any, plans: list[_Plan]) -> None:
    needed = base_reader.data_offset + sum(p.nbytes + base_reader.alignment for p in plans) + MARGIN
    folder = next(p for p in (out.parent, *out.parents) if p.exists())
    free = shutil.disk_usage(folder).free
    if free < needed:
        raise MergeError(
            f"The merged model needs {needed / 2**30:.1f} GB of disk in {folder} ({free / 2**30:.1f} GB free). "
            "Free some space, write it elsewhere, or choose a smaller type (q8_0 or same).",
            cli="(-o PATH, --type q8_0 or same)",
        )


# --- planning -----------------------------------------------------------------------------------------------


def _lora_pairs(lora_reader: Any) -> dict[str, dict[str, Any]]:
    pairs: dict[str, dict[str, Any]] = {}
    for tensor in lora_reader.tensors:
        target, _, part = tensor.name.rpartition(".lora_")
        if part not in ("a", "b") or not target:
            raise MergeError(f"The adapter holds {tensor.name}, which is not a LoRA tensor; it cannot be merged.")
        pairs.setdefault(target, {})[part] = tensor
    unpaired = sorted(t for t, parts in pairs.items() if set(parts) != {"a", "b"})
    if unpaired:
        raise MergeError(f"The adapter is incomplete: {unpaired[0]} lacks lora_a or lora_b. Export it again.")
    return pairs


def _as_float(tensor: Any) -> np.ndarray:
    """A tensor's values in float32, numpy order (``[rows, columns]``)."""
    data = tensor.data.view(np.ndarray)  # a plain view: numpy's memmap bookkeeping per slice costs more than the math
    return np.asarray(gguf.quants.dequantize(data, tensor.tensor_type), dtype=np.float32)


def _plan(base_reader: Any, lora_reader: Any, out_type: str) -> tuple[list[_Plan], int]:
    """What becomes of each base tensor, in file order; and the adapter's rank."""
    pairs = _lora_pairs(lora_reader)
    missing = sorted(set(pairs) - {t.name for t in base_reader.tensors})
    if missing:
        raise MergeError(
            f"The adapter changes {missing[0]}, which this base model does not have: it was trained on another "
            "model. Merge it into the model it was trained on.",
            cli=BASE_OPTION,
        )
    plans, ranks = [], set()
    for tensor in base_reader.tensors:
        pair = pairs.get(tensor.name)
        if pair is None:
            data = tensor.data
            plans.append(_Plan(tensor, tensor.tensor_type, tuple(data.shape), data.dtype, int(data.nbytes)))
            continue
        a, b = _as_float(pair["a"]), _as_float(pair["b"])
        rows, cols = (int(n) for n in reversed(tensor.shape.tolist())) if len(tensor.shape) == 2 else (0, 0)
        if a.ndim != 2 or b.ndim != 2 or b.shape[1] != a.shape[0] or (b.shape[0], a.shape[1]) != (rows, cols):
            raise MergeError(
                f"The adapter's update of {tensor.name} does not fit its shape in this base model: it was "
                "trained on another model. Merge it into the model it was trained on.",
                cli=BASE_OPTION,
            )
        ranks.add(a.shape[0])
        plans.append(_merged_plan(tensor, out_type, rows, cols, a, b))
    if not ranks:
        raise MergeError("The adapter changes no tensor of this model: there is nothing to merge.")
    if len(ranks) != 1:
        raise MergeError(f"The adapter mixes ranks {sorted(ranks)}; llama.cpp adapters have one rank.")
    return plans, ranks.pop()


def _merged_plan(tensor: Any, out_type: str, rows: int, cols: int, a: np.ndarray, b: np.ndarray) -> _Plan:
    qtype = {"f16": Q.F16, "q8_0": Q.Q8_0}.get(out_type) or tensor.tensor_type
    if qtype not in WRITABLE:
        qtype = Q.Q8_0  # no Python quantizer for this type (K-quants, i-quants)
    block, size = gguf.GGML_QUANT_SIZES[qtype]
    if cols % block:
        qtype, block, size = Q.F16, 1, 2  # rows that are not whole blocks cannot be quantized
    dtype = WRITABLE[qtype]
    shape = gguf.quant_shape_to_byte_shape((rows, cols), qtype) if dtype == np.uint8 else (rows, cols)
    return _Plan(tensor, qtype, tuple(shape), dtype, rows * cols // block * size, a, b)


# --- writing ------------------------------------------------------------------------------------------------


def _metadata(reader: Any, plans: list[_Plan], name: str) -> dict[str, Any]:
    """Changed values of the base's keys: the name, and the file type when most weights changed type."""
    changed = {}
    old_name = _field(reader, gguf.Keys.General.NAME)
    changed[gguf.Keys.General.NAME] = f"{old_name or 'model'} + {name}"
    weights = Counter()
    for p in plans:
        if len(p.tensor.shape) == 2:
            weights[p.qtype] += int(p.tensor.n_elements)
    dominant = weights.most_common(1)[0][0] if weights else None
    if dominant in FILE_TYPES and _field(reader, gguf.Keys.General.FILE_TYPE) is not None:
        before = Counter()
        for p in plans:
            if len(p.tensor.shape) == 2:
                before[p.tensor.tensor_type] += int(p.tensor.n_elements)
        if before.most_common(1)[0][0] != dominant:
            changed[gguf.Keys.General.FILE_TYPE] = int(FILE_TYPES[dominant])
    return changed


def _write(
    path: Path, reader: Any, plans: list[_Plan], name: str, extra: dict[str, Any], scale: float, progress: Any
) -> None:
    arch = _field(reader, "general.architecture")
    writer = gguf.GGUFWriter(path, arch, endianess=reader.endianess)
    writer.data_alignment = reader.alignment
    changed = _metadata(reader, plans, name)
    for item in reader.fields.values():
        if item.name == "general.architecture" or item.name.startswith("GGUF."):
            continue  # written by GGUFWriter itself
        kind = item.types[0]
        sub = item.types[-1] if kind == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(item.name, changed.get(item.name, item.contents()), kind, sub_type=sub)
    for key, value in extra.items():
        kind = gguf.GGUFValueType.FLOAT32 if isinstance(value, float) else gguf.GGUFValueType.STRING
        writer.add_key_value(key, value, kind)
    for p in plans:
        writer.add_tensor_info(p.tensor.name, p.shape, p.dtype, p.nbytes, p.qtype)
    try:
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_ti_data_to_file()
        total, done = sum(p.nbytes for p in plans), 0
        if progress:
            progress(Phase(phase="merge", message=f"Merging {name}", fraction=0.0).to_json())
        for p in plans:
            if p.a is None:
                writer.write_tensor_data(p.tensor.data, tensor_endianess=reader.endianess)  # the very same bytes
            else:
                writer.write_tensor_data(_merge_one(p, scale))  # native order; the writer swaps if it must
            done += p.nbytes
            if progress and p.a is not None:
                progress(Phase(phase="merge", fraction=done / total).to_json())
    finally:
        writer.close()


def _merge_one(plan: _Plan, scale: float) -> np.ndarray:
    """``W + scale * B @ A`` in float32, encoded as the plan's type."""
    merged = _as_float(plan.tensor)
    merged = merged + np.float32(scale) * (plan.b @ plan.a)
    encoded = gguf.quants.quantize(merged, plan.qtype)
    return np.ascontiguousarray(encoded)
