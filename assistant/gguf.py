"""Reading a GGUF file's header: key/value metadata and tensor shapes, checked against the file's size.

Read here directly, skipping the tensor data and the vocabulary's contents: ``gguf.GGUFReader`` parses every
vocabulary string into numpy objects and takes seconds on a 128k-token vocabulary, too slow for a settings page
that shows a model's details. Drafting (which model drafts), training (the base's shape) and merging all read
headers through this module.
"""

from __future__ import annotations

import functools
import mmap
import struct
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assistant.errors import MailvoiceError

EXAMPLE_MODEL = "Meta-Llama-3-8B-Instruct Q4_K_M"
GGUF_MAGIC = b"GGUF"

# GGUF value types: struct format of the scalar ones; 8 = string, 9 = array.
_SCALARS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
_STRING, _ARRAY = 8, 9
_U64 = struct.Struct("<Q")


class ModelError(MailvoiceError):
    """The model file is missing, is not a usable GGUF, or cannot be prompted as a chat model."""


@dataclass
class GGUFHeader:
    version: int
    metadata: dict[str, Any]  # arrays are replaced by their length: only scalars and strings are kept
    tensor_count: int
    parameter_count: int
    tensor_types: Counter = field(default_factory=Counter)


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
