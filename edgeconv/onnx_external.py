"""ONNX files whose weights sit in other files: `model.onnx` + `model.onnx.data`, as
`torch.onnx.export` writes larger models (and its dynamo exporter every model).

edgeconv measures one self-contained file: the private copy of such a model gets its
external data inlined (`inline_external_data`), so every later step (the probe, the
export's reference copy, int8 quantisation, bench, the SSH path) reads one file whose bytes
were all hashed. A data file the model names must sit in the model's folder: a relative
location without `..`, inside that folder once symbolic links are followed, a regular file
of at most MAX_MODEL_BYTES, and the model with all of its data at most MAX_MODEL_BYTES (the
most one ONNX protobuf holds). Each data file is read once, hashed as it is copied into
the private folder, and only that copy is read into the model. Anything else is one
EdgeconvError line naming the user's file.

A model that names no external data costs one scan of its bytes: the `onnx` package is
imported only when the bytes hold an external-data `location` entry.
"""

from __future__ import annotations

import mmap
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgeconv.errors import EdgeconvError
from edgeconv.files import MAX_MODEL_BYTES, format_size, open_regular, reason, show_path

# Distinct data files one model may name (one per tensor is the most any writer makes).
MAX_DATA_FILES = 4096
# A StringStringEntryProto whose key is "location" (field 1, 8 bytes): what every external
# tensor holds. A file without these bytes names no external data and is not parsed.
_LOCATION_ENTRY = b"\n\x08location"
_EXTERNAL = 1  # onnx.TensorProto.EXTERNAL


@dataclass(frozen=True)
class DataFile:
    """One external-data file as it was read: the location the model names, its bytes' sha256."""

    file: str
    sha256: str
    size_bytes: int

    def record(self) -> dict[str, Any]:
        """The manifest's `model.source.external_data` entry."""
        return {"file": self.file, "sha256": self.sha256, "size_bytes": self.size_bytes}


def inline_external_data(copy: Path, folder: Path, shown: str, *, allowed: bool = True
                         ) -> tuple[DataFile, ...]:
    """Rewrite the private `copy` of an ONNX model with the external data it names (read
    from `folder`, the user's model's folder) inlined; the data files as read, () when it
    names none. `allowed=False` (an export's files, which are self-contained): a model
    that names external data is refused. The copy is replaced whole or left as it was."""
    if not _mentions_location(copy):
        return ()
    from edgeconv._lazy import require

    onnx = require("onnx", extra="onnx")
    from google.protobuf.message import DecodeError  # onnx's own dependency

    try:
        model = onnx.load_from_string(copy.read_bytes())
    except (DecodeError, ValueError) as exc:
        raise EdgeconvError(f"{shown} is not a complete ONNX protobuf"
                            f" ({' '.join(str(exc).split())[:200]})") from None
    tensors = [t for t in _all_tensors(model) if t.data_location == _EXTERNAL]
    if not tensors:
        return ()
    if not allowed:
        raise EdgeconvError(f"{shown} keeps tensors in external data files; an export's"
                            " files are self-contained: export again")
    wanted = [(tensor, _where(tensor, shown)) for tensor in tensors]
    locations = sorted({location for _, (location, _, _) in wanted})
    if len(locations) > MAX_DATA_FILES:
        raise EdgeconvError(f"{shown} names {len(locations)} external data files; edgeconv"
                            f" reads at most {MAX_DATA_FILES}")
    declared = copy.stat().st_size + sum(length or 0 for _, (_, _, length) in wanted)
    if declared > MAX_MODEL_BYTES:  # before a byte of data is read
        raise EdgeconvError(_too_large(shown, declared))
    copies = {location: copy.with_name(f"{copy.name}.data{k}")
              for k, location in enumerate(locations)}
    try:
        files = tuple(_copy_data(folder, location, copies[location], shown)
                      for location in locations)
        sizes = {f.file: f.size_bytes for f in files}
        total = copy.stat().st_size
        for tensor, (location, offset, length) in wanted:
            size = sizes[location]
            length = size - offset if length is None else length
            if offset > size or offset + length > size:
                raise EdgeconvError(
                    f"{shown}: tensor {show_path(tensor.name)!r} reads bytes {offset:,} to"
                    f" {offset + length:,} of its external data {show_path(location)!r},"
                    f" which holds {size:,}")
            total += length
        if total > MAX_MODEL_BYTES:
            raise EdgeconvError(_too_large(shown, total))
        for tensor, (location, offset, length) in wanted:
            tensor.raw_data = _read(copies[location], offset, length, sizes[location])
            del tensor.external_data[:]
            tensor.ClearField("data_location")  # as if it had been saved inline
        try:
            inlined = model.SerializeToString()
        except ValueError:  # protobuf's own 2 GiB limit
            raise EdgeconvError(_too_large(shown, model.ByteSize())) from None
        if len(inlined) > MAX_MODEL_BYTES:
            raise EdgeconvError(_too_large(shown, len(inlined)))
        _replace(copy, inlined)
    finally:
        for data in copies.values():
            data.unlink(missing_ok=True)
    return files


def _mentions_location(path: Path) -> bool:
    with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
        return data.find(_LOCATION_ENTRY) >= 0


def _all_tensors(model) -> list[Any]:
    """Every TensorProto of the model, subgraphs and functions included, walked with a list
    (protobuf's own recursion limit bounds the depth already)."""
    found: list[Any] = []
    graphs = [model.graph]
    nodes = [node for function in model.functions for node in function.node]
    while graphs or nodes:
        if graphs:
            graph = graphs.pop()
            found.extend(graph.initializer)
            for sparse in graph.sparse_initializer:
                found.extend((sparse.values, sparse.indices))
            nodes.extend(graph.node)
            continue
        for attribute in nodes.pop().attribute:
            if attribute.HasField("t"):
                found.append(attribute.t)
            found.extend(attribute.tensors)
            for sparse in ([attribute.sparse_tensor] if attribute.HasField("sparse_tensor")
                           else []) + list(attribute.sparse_tensors):
                found.extend((sparse.values, sparse.indices))
            if attribute.HasField("g"):
                graphs.append(attribute.g)
            graphs.extend(attribute.graphs)
    return found


def _where(tensor, shown: str) -> tuple[str, int, int | None]:
    """(location, offset, length or None: to the end of the file) of an external tensor,
    the location checked as a path inside the model's folder."""
    entries = {entry.key: entry.value for entry in tensor.external_data}
    name = show_path(tensor.name)
    location = entries.get("location", "")
    if not location:
        raise EdgeconvError(f"{shown}: tensor {name!r} is external data without a location")
    if "\0" in location:
        raise EdgeconvError(f"{shown}: tensor {name!r} names an external data location with"
                            " a NUL character")
    if os.path.isabs(location) or location.startswith(("/", "\\")):
        raise EdgeconvError(f"{shown}: tensor {name!r} names its external data by an absolute"
                            f" path ({show_path(location)}); data files must sit in the"
                            " model's folder, named relative to it")
    if ".." in location.replace("\\", "/").split("/"):
        raise EdgeconvError(f"{shown}: tensor {name!r} names its external data outside the"
                            f" model's folder ({show_path(location)}: '..'); data files must"
                            " sit in the model's folder")
    numbers = []
    for key in ("offset", "length"):
        given = entries.get(key)
        if given is None:
            numbers.append(0 if key == "offset" else None)
        elif given.isascii() and given.isdigit() and len(given) <= 12:
            numbers.append(int(given))
        else:
            raise EdgeconvError(f"{shown}: tensor {name!r} gives its external data {key} as"
                                f" {show_path(given[:40])!r}, not a byte count")
    return location, numbers[0], numbers[1]


def _copy_data(folder: Path, location: str, dest: Path, shown: str) -> DataFile:
    """The data file at `location` in `folder`, checked to lie inside it after symbolic
    links, copied to `dest` (0600) as it is hashed."""
    from edgeconv.bench.validate import copy_verified

    named = folder / location
    base = os.path.realpath(folder)
    real = os.path.realpath(named)
    if not real.startswith(base.rstrip(os.sep) + os.sep):
        raise EdgeconvError(f"{shown}: its external data {show_path(location)} leads outside"
                            f" the model's folder (to {show_path(real)}); data files must sit"
                            " in the model's folder")
    try:
        sha256, size = copy_verified(real, dest, limit=MAX_MODEL_BYTES, what="data file",
                                     allow_empty=True)
    except EdgeconvError as exc:
        raise EdgeconvError(f"{shown} keeps weights in external data: {exc}") from None
    return DataFile(location, sha256, size)


def _read(path: Path, offset: int, length: int, size: int) -> bytes:
    """`length` bytes at `offset` of our private copy of a data file (checked against its
    size already)."""
    with open_regular(path, size, what="data file") as (fh, _):
        try:
            fh.seek(offset)
            data = fh.read(length)
        except OSError as exc:
            raise EdgeconvError(f"{show_path(path)}: cannot read it ({reason(exc)})") from None
    if len(data) != length:
        raise EdgeconvError(f"{show_path(path)} ended before {offset + length:,} bytes")
    return data


def _replace(copy: Path, data: bytes) -> None:
    """The copy's bytes replaced at once (0600 like the copy): never half-written."""
    staged = copy.with_name(copy.name + ".inlined")
    fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0),
                 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(staged, copy)
    except BaseException:
        staged.unlink(missing_ok=True)
        raise


def _too_large(shown: str, total: int) -> str:
    return (f"{shown} with its external data is {format_size(total)} ({total:,} bytes);"
            " edgeconv inlines the data into one ONNX file, which holds at most"
            f" {format_size(MAX_MODEL_BYTES)}")


__all__ = ["MAX_DATA_FILES", "DataFile", "inline_external_data"]
