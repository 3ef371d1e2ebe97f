"""Refuse a file that is not a complete model before any runtime reads it, and hand the
bench a private copy of exactly the bytes that were checked.

A truncated or foreign file is the user's error (one line, exit 2), not a runtime's failure
(a row): runtimes read past the end of such files and may crash. The checks walk the file's
own structure with the standard library only: every table, vector and string of the TFLite
flatbuffer schema that a runtime reads (each table visited once, the work bounded by the
file's size), or the ONNX protobuf's top-level fields. Which check a file gets is its
format's `validator` in edgeconv.formats (`check_tflite`, `check_onnx` here).

Before any of that a model file must be a regular file (not a FIFO, a device, /proc/self/mem)
of 1 byte to `MAX_MODEL_BYTES`. `copy_verified` reads the user's file once, hashing the bytes
it copies into a private (0600) file in the bench's scratch folder; the validator and the
runtimes then read only that copy, so the file checked is the file measured even if the
original changes during the bench.
"""

from __future__ import annotations

import hashlib
import mmap
import os
import struct
from pathlib import Path
from typing import Any

from edgeconv.errors import EdgeconvError
from edgeconv.files import MAX_MODEL_BYTES, format_size, open_regular, reason, show_path
from edgeconv.formats import format_of, resolve

# Tables and table offsets one TFLite file may hold, counted as a runtime would meet them
# (a table reached twice counts twice): never more than size / 4 in a real file (each is at
# least 4 bytes of its own), and at most this many in any file, so the walk stays linear and
# short and no crafted file can make a runtime build more objects than its size holds.
MAX_FLATBUFFER_OBJECTS = 2_000_000
MAX_ONNX_FIELDS = 100_000  # top-level fields of an ONNX ModelProto (a real one has < 20)

# What each format's structural check walks, for the message when it fails.
_STRUCTURE = {"tflite": "TFLite flatbuffer", "onnx": "ONNX protobuf"}
_BLOCK = 1 << 20


def copy_verified(path: str | os.PathLike[str], dest: Path, sha256: str | None = None,
                  limit: int = MAX_MODEL_BYTES, *, what: str = "model file",
                  allow_empty: bool = False) -> tuple[str, int]:
    """Copy `path` to `dest` (created here, mode 0600), hashing the bytes copied; returns
    (sha256, size). With `sha256` given, a copy whose bytes hash otherwise is removed and
    refused (the file changed after its manifest was written, or while it was read).
    `what` names the file in messages (an ONNX model's external data file: "data file")."""
    shown = show_path(path)
    digest, size = hashlib.sha256(), 0
    with open_regular(path, limit, what=what, allow_empty=allow_empty) as (src, _):
        try:
            out = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL
                          | getattr(os, "O_CLOEXEC", 0), 0o600)
            with os.fdopen(out, "wb") as dst:
                while block := src.read(_BLOCK):
                    size += len(block)
                    if size > limit:
                        raise EdgeconvError(f"{shown} grew past {format_size(limit)} while"
                                            " being read")
                    digest.update(block)
                    dst.write(block)
        except OSError as exc:
            dest.unlink(missing_ok=True)
            raise EdgeconvError(f"{shown}: cannot read it ({reason(exc)})") from None
        except BaseException:
            dest.unlink(missing_ok=True)
            raise
    found = digest.hexdigest()
    if sha256 is not None and found != sha256:
        dest.unlink(missing_ok=True)
        raise EdgeconvError(f"{shown}: sha256 {found[:12]}... does not match the manifest's"
                            f" {sha256[:12]}...: the file changed after export (or while it"
                            " was read); re-run `edgeconv export`")
    return found, size


def check_model_file(path: Path, shown: str | None = None) -> None:
    """Raise EdgeconvError unless `path` is a whole model file of a format edgeconv reads
    (formats without a validator, such as .keras: that it is a regular file of a size
    edgeconv reads). `shown` names the file in the message (the user's path for a copy)."""
    path = Path(path)
    shown = shown or show_path(path)
    fmt = format_of(path)
    with open_regular(path, MAX_MODEL_BYTES, what="model file", allow_empty=False) as (fh, _):
        if fmt.validator is None:
            return
        try:
            with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
                resolve(fmt.validator)(data)
        except (struct.error, IndexError, ValueError) as exc:
            what = _STRUCTURE.get(fmt.name, f"{fmt.name} file")
            raise EdgeconvError(f"{shown} is not a complete {what} ({exc}): truncated or"
                                " corrupt") from None
        except OSError as exc:
            raise EdgeconvError(f"{shown}: cannot read it ({reason(exc)})") from None


# --- TFLite -----------------------------------------------------------------------------

# The TFLite schema (tensorflow/compiler/mlir/lite/schema/schema.fbs) as far as a runtime
# reads it: per table type, field index -> what the field holds. "string"; ("vector", bytes
# per element); ("table", type); ("tables", type): a vector of tables; ("union", index of
# the type field, {type value: table type}). A table type not listed (an options table of
# an operator) gets the checks every table gets: its header and its size within the file.
_STRING: Any = "string"
_V1, _V2, _V4, _V8 = (("vector", n) for n in (1, 2, 4, 8))
_INDEX_VECTORS = {1: "Int32Vector", 2: "Uint16Vector", 3: "Uint8Vector"}
_BUILTIN_OPTIONS = {3: "ConcatEmbeddingsOptions", 8: "FullyConnectedOptions",
                    17: "ReshapeOptions", 30: "SqueezeOptions", 111: "VarHandleOptions",
                    115: "BucketizeOptions"}  # the options tables that hold vectors or strings
_TFLITE: dict[str, dict[int, Any]] = {
    "Model": {1: ("tables", "OperatorCode"), 2: ("tables", "SubGraph"), 3: _STRING,
              4: ("tables", "Buffer"), 5: _V4, 6: ("tables", "Metadata"),
              7: ("tables", "SignatureDef")},
    "OperatorCode": {1: _STRING},
    "SubGraph": {0: ("tables", "Tensor"), 1: _V4, 2: _V4, 3: ("tables", "Operator"),
                 4: _STRING},
    "Tensor": {0: _V4, 3: _STRING, 4: ("table", "QuantizationParameters"),
               6: ("table", "SparsityParameters"), 7: _V4, 9: ("tables", "VariantSubType")},
    "QuantizationParameters": {0: _V4, 1: _V4, 2: _V4, 3: _V8,
                               5: ("union", 4, {1: "CustomQuantization"})},
    "CustomQuantization": {0: _V1},
    "SparsityParameters": {0: _V4, 1: _V4, 2: ("tables", "DimensionMetadata")},
    "DimensionMetadata": {3: ("union", 2, _INDEX_VECTORS), 5: ("union", 4, _INDEX_VECTORS)},
    "Int32Vector": {0: _V4}, "Uint16Vector": {0: _V2}, "Uint8Vector": {0: _V1},
    "VariantSubType": {0: _V4},
    "Operator": {1: _V4, 2: _V4, 4: ("union", 3, _BUILTIN_OPTIONS), 5: _V1, 7: _V1, 8: _V4,
                 12: ("union", 11, {})},
    "Buffer": {0: _V1},
    "Metadata": {0: _STRING},
    "SignatureDef": {0: ("tables", "TensorMap"), 1: ("tables", "TensorMap"), 2: _STRING},
    "TensorMap": {0: _STRING},
    "ConcatEmbeddingsOptions": {1: _V4, 2: _V4}, "FullyConnectedOptions": {5: _V1},
    "ReshapeOptions": {0: _V4}, "SqueezeOptions": {0: _V4}, "BucketizeOptions": {0: _V4},
    "VarHandleOptions": {0: _STRING, 1: _STRING},
}


class _Flatbuffer:
    """Bounds-checked reads of a flatbuffer, each table and vector visited once.

    `weight(pos, type)` is how many tables and table offsets a reader meets under that
    table, counting a shared table once per reference (what a runtime builds), computed
    with each (table, type) and each vector walked only once: linear in the file's size.
    """

    def __init__(self, data: Any) -> None:
        self.data, self.size = data, len(data)
        self.limit = min(MAX_FLATBUFFER_OBJECTS, self.size // 4 + 64)
        self.walked = 0  # distinct tables and vector elements visited: the work done
        self._vtables: dict[int, tuple[int, tuple[int, ...]]] = {}
        self._weights: dict[tuple[int, str], int] = {}
        self._vectors: dict[tuple[int, str], int] = {}

    def _need(self, pos: int, length: int, what: str) -> None:
        if pos < 0 or pos + length > self.size:
            raise ValueError(f"{what} at byte {pos} ({length} bytes) runs past the end"
                             f" ({self.size} bytes)")

    def u32(self, pos: int) -> int:
        self._need(pos, 4, "an offset")
        return struct.unpack_from("<I", self.data, pos)[0]

    def ref(self, pos: int) -> int:
        return pos + self.u32(pos)

    def _work(self, n: int) -> None:
        self.walked += n
        if self.walked > self.limit:
            raise ValueError(f"more tables and offsets than {self.size} bytes can hold")

    def table(self, pos: int) -> dict[int, int]:
        """Field index -> absolute position of its value, for the fields present."""
        self._need(pos, 4, "a table")
        vtable = pos - struct.unpack_from("<i", self.data, pos)[0]
        layout = self._vtables.get(vtable)
        if layout is None:
            self._need(vtable, 4, "a table's vtable")
            vt_size, object_size = struct.unpack_from("<HH", self.data, vtable)
            if vt_size < 4 or vt_size % 2:
                raise ValueError(f"the vtable at byte {vtable} has size {vt_size}")
            self._need(vtable, vt_size, "a table's vtable")
            offsets = struct.unpack_from(f"<{(vt_size - 4) // 2}H", self.data, vtable + 4)
            if object_size < 4 or any(o >= object_size for o in offsets):
                raise ValueError(f"the vtable at byte {vtable} puts a field outside its table")
            layout = self._vtables[vtable] = (object_size, offsets)
        object_size, offsets = layout
        self._need(pos, object_size, "a table")
        return {i: pos + o for i, o in enumerate(offsets) if o}

    def vector(self, pos: int, element_size: int, *, string: bool = False) -> tuple[int, int]:
        """(first element, length) of the vector the offset field at `pos` points to, its
        elements (and a string's terminating NUL) within the file."""
        start = self.ref(pos)
        length = self.u32(start)
        self._need(start + 4, length * element_size + string,
                   "a string" if string else "a vector")
        if string and self.data[start + 4 + length] != 0:
            raise ValueError(f"the string at byte {start} is not terminated")
        return start + 4, length

    def weight(self, pos: int, kind: str) -> int:
        key = (pos, kind)
        known = self._weights.get(key)
        if known is not None:
            return known
        self._weights[key] = 1 << 62  # a table reached from inside itself: refused below
        self._work(1)
        fields = self.table(pos)
        total = 1
        for index, spec in _TFLITE.get(kind, {}).items():
            at = fields.get(index)
            if at is None:
                continue
            if spec is _STRING:
                self.vector(at, 1, string=True)
            elif spec[0] == "vector":
                self.vector(at, spec[1])
            elif spec[0] == "table":
                total += self.weight(self.ref(at), spec[1])
            elif spec[0] == "tables":
                total += self.tables_weight(at, spec[1])
            else:  # a union: its type field says which table the value is
                type_at = fields.get(spec[1])
                if type_at is not None:
                    self._need(type_at, 1, "a union's type")
                union = self.data[type_at] if type_at is not None else 0
                total += self.weight(self.ref(at), spec[2].get(union, ""))
        if kind == "Buffer" and 1 in fields and 2 in fields:  # data after the flatbuffer
            for i in (1, 2):
                self._need(fields[i], 8, "a buffer's offset")
            offset, size = (struct.unpack_from("<Q", self.data, fields[i])[0] for i in (1, 2))
            if offset > 1 and offset + size > self.size:
                raise ValueError(f"buffer data at {offset} ({size} bytes) past the end")
        self._weights[key] = total
        return total

    def tables_weight(self, pos: int, kind: str) -> int:
        start, length = self.vector(pos, 4)
        key = (start, kind)
        known = self._vectors.get(key)
        if known is None:
            self._work(length)
            known = self._vectors[key] = sum(1 + self.weight(self.ref(start + 4 * i), kind)
                                             for i in range(length))
        return known

    def count(self, pos: int) -> int:
        """Number of entries of the vector the offset field at `pos` points to."""
        return self.vector(pos, 4)[1]


def check_tflite(data: Any) -> None:
    """Raise ValueError (struct.error, IndexError) unless `data` (bytes, or a read-only
    mmap) is a whole TFLite flatbuffer: every table, vector and string of the schema a
    runtime reads lies within it, and it holds no more tables than its size can."""
    if len(data) < 8 or data[4:8] != b"TFL3":
        raise ValueError("no TFL3 identifier")
    fb = _Flatbuffer(data)
    root = fb.ref(0)
    model = fb.table(root)
    if 2 not in model or not fb.count(model[2]):
        raise ValueError("no subgraph")
    if fb.weight(root, "Model") > fb.limit:
        raise ValueError(f"its tables are reached more often than {len(data)} bytes can hold"
                         " (tables shared many times over)")


# --- ONNX -------------------------------------------------------------------------------


def _varint(data: Any, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[pos]
        value |= (byte & 0x7F) << shift
        pos, shift = pos + 1, shift + 7
        if not byte & 0x80:
            return value, pos
        if shift > 63:
            raise ValueError("varint too long")


def check_onnx(data: Any) -> None:
    """Raise ValueError (IndexError) unless `data` is a whole ONNX protobuf (ModelProto):
    its top-level fields end exactly at the end of the file, with a graph, and an
    opset_import from IR version 3 on."""
    pos, fields, ir_version, count = 0, set(), 0, 0
    while pos < len(data):
        count += 1
        if count > MAX_ONNX_FIELDS:
            raise ValueError(f"more than {MAX_ONNX_FIELDS} top-level fields")
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise ValueError(f"field number 0 at byte {pos}")
        if wire == 0:
            value, pos = _varint(data, pos)
            if number == 1:
                ir_version = value
        elif wire == 1:
            pos += 8
        elif wire == 2:
            length, pos = _varint(data, pos)
            pos += length
        elif wire == 5:
            pos += 4
        else:
            raise ValueError(f"wire type {wire} at byte {pos}")
        fields.add(number)
    if pos != len(data):
        raise ValueError("last field runs past the end")
    if 7 not in fields:  # ModelProto.graph
        raise ValueError("no graph")
    if ir_version >= 3 and 8 not in fields:  # ModelProto.opset_import
        raise ValueError("no opset_import")
