"""Refuse a file that is not a complete model before any runtime reads it.

A truncated or foreign file is the user's error (one line, exit 2), not a runtime's failure
(a row): runtimes read past the end of such files and may crash. The checks walk the file's
own structure with the standard library only: the TFLite flatbuffer's tables and vectors, or
the ONNX protobuf's top-level fields. Which check a file gets is its format's `validator`
in edgeconv.formats (`check_tflite`, `check_onnx` here).
"""

from __future__ import annotations

import struct
from pathlib import Path

from edgeconv.errors import EdgeconvError
from edgeconv.formats import format_of, resolve

# What each format's structural check walks, for the message when it fails.
_STRUCTURE = {"tflite": "TFLite flatbuffer", "onnx": "ONNX protobuf"}


def check_model_file(path: Path) -> None:
    """Raise EdgeconvError unless `path` is a whole model file of a format edgeconv reads
    (formats without a validator, such as .keras: that it exists)."""
    path = Path(path)
    if not path.is_file():
        raise EdgeconvError(f"{path} does not exist")
    fmt = format_of(path)
    if fmt.validator is None:
        return
    try:
        resolve(fmt.validator)(path.read_bytes())
    except (struct.error, IndexError, ValueError) as exc:
        what = _STRUCTURE.get(fmt.name, f"{fmt.name} file")
        raise EdgeconvError(f"{path} is not a complete {what} ({exc}): truncated or corrupt"
                            ) from None


class _Flatbuffer:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def _u32(self, pos: int) -> int:
        if pos < 0 or pos + 4 > len(self.data):
            raise ValueError(f"offset {pos} past the end ({len(self.data)} bytes)")
        return struct.unpack_from("<I", self.data, pos)[0]

    def table(self, pos: int) -> dict[int, int]:
        """Field index -> absolute position of its value, for the fields present."""
        self._u32(pos)  # bounds check of the table's own start
        vtable = pos - struct.unpack_from("<i", self.data, pos)[0]
        if not 0 <= vtable <= len(self.data) - 4:
            raise ValueError(f"table at {pos} out of bounds")
        vt_size, _ = struct.unpack_from("<HH", self.data, vtable)
        if vtable + vt_size > len(self.data):
            raise ValueError(f"table at {pos} out of bounds")
        offsets = struct.unpack_from(f"<{(vt_size - 4) // 2}H", self.data, vtable + 4)
        return {i: pos + o for i, o in enumerate(offsets) if o}

    def ref(self, pos: int) -> int:
        return pos + self._u32(pos)

    def vector(self, pos: int, element_size: int) -> tuple[int, int]:
        """(start, length) of the vector an offset field at `pos` points to, bounds-checked."""
        start = self.ref(pos)
        length = self._u32(start)
        if start + 4 + length * element_size > len(self.data):
            raise ValueError(f"vector at {start} ({length} elements) past the end")
        return start + 4, length

    def tables(self, pos: int) -> list[dict[int, int]]:
        start, length = self.vector(pos, 4)
        return [self.table(self.ref(start + 4 * i)) for i in range(length)]


def check_tflite(data: bytes) -> None:
    """Raise ValueError (struct.error, IndexError) unless `data` is a whole TFLite flatbuffer."""
    if len(data) < 8 or data[4:8] != b"TFL3":
        raise ValueError("no TFL3 identifier")
    fb = _Flatbuffer(data)
    model = fb.table(fb.ref(0))
    if 2 not in model or not fb.tables(model[2]):
        raise ValueError("no subgraph")
    for subgraph in fb.tables(model[2]):
        for field in (0, 3):  # tensors, operators
            if field in subgraph:
                fb.tables(subgraph[field])
    for buffer in fb.tables(model[4]) if 4 in model else []:
        if 0 in buffer:
            fb.vector(buffer[0], 1)
        if 1 in buffer and 2 in buffer:  # weights stored after the flatbuffer (> 2 GB models)
            offset, size = (struct.unpack_from("<Q", data, buffer[i])[0] for i in (1, 2))
            if offset > 1 and offset + size > len(data):
                raise ValueError(f"buffer data at {offset} past the end")


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[pos]
        value |= (byte & 0x7F) << shift
        pos, shift = pos + 1, shift + 7
        if not byte & 0x80:
            return value, pos
        if shift > 63:
            raise ValueError("varint too long")


def check_onnx(data: bytes) -> None:
    """Raise ValueError (IndexError) unless `data` is a whole ONNX protobuf (ModelProto)."""
    pos, fields = 0, set()
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            _, pos = _varint(data, pos)
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
