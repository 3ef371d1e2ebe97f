"""Output parity: a file's raw outputs on a board against the same file run on this machine,
in the same runtime with the same options, on the same inputs (the row's `parity`).

The board's child saves its outputs (child.save_outputs) into the job folder; the SSH
executor fetches them back (remote._fetch_outputs) and hands them here. What a row on an
emulated or remote board proves is this comparison: bit-exact, or how many values differ
and by how much.
"""

from __future__ import annotations

import json
import platform
from dataclasses import asdict
from pathlib import Path
from typing import Any

from edgeconv._child import run_child
from edgeconv.errors import EdgeconvError
from edgeconv.files import open_regular, read_upto
from edgeconv.runtimes.registry import get_runtime, installed_version

MAX_OUTPUTS_BYTES = 256 << 20  # one row's saved outputs, fetched back
MAX_OUTPUTS = 256  # model outputs read from one saved outputs file


def add_parity(compared: list[tuple[Any, Path, Path | None]], rows: list[Any],
               config: Any, environment: dict[str, Any], scratch: Path) -> None:
    """row.parity for each row the board measured, from (planned row, the board's saved
    outputs, the test images both ran on): its outputs against the same file run here (a
    child process, the same runtime and options, the same inputs)."""
    by_key = {(r.artifact, r.runtime, r.threads): r for r in rows}
    here = scratch / "here"
    here.mkdir()
    for n, (planned, board_file, data) in enumerate(compared):
        row = by_key.get(planned.key)
        if row is None or not row.ok:
            continue
        try:
            row.parity = _parity(planned, board_file, here / f"{n}.npz", data, config,
                                 environment)
        except EdgeconvError as exc:
            row.notes.append(f"no output parity: {exc}")


def _parity(planned, board_file: Path, here_file: Path, data: Path | None,
            config: Any, environment: dict[str, Any]) -> dict[str, Any]:
    from edgeconv.bench.child import Job

    entry = get_runtime(planned.runtime)
    if not entry.available():
        raise EdgeconvError(f"{entry.name} is not installed on this machine"
                            f" (pip install 'edgeconv[{entry.extra}]')")
    if not board_file.exists():
        raise EdgeconvError("the board saved no outputs for this row")
    board = _load_outputs(board_file, "the board's")
    artifact = planned.artifact
    options = {"threads": planned.threads} if entry.threaded else {}
    job = Job(path=str(artifact.loaded), format=artifact.format, entry=Job.entry_of(entry),
              options=options, warmup=0, runs=1, min_time=0.0, hwc=artifact.hwc,
              data=str(data) if data else None, outputs=str(here_file))
    outcome = run_child("edgeconv.bench", what=entry.name, timeout=config.timeout,
                        stdin=json.dumps(asdict(job)))
    answer = outcome.payload or {}
    if not outcome.ok or answer.get("status") != "ok" or not here_file.exists():
        raise EdgeconvError(f"the same file did not run here:"
                            f" {outcome.error or answer.get('error') or 'no outputs'}")
    mine = _load_outputs(here_file, "this machine's")
    if board["x_sha256"] != mine["x_sha256"]:
        raise EdgeconvError(f"the board ran on other inputs ({board['source']}) than this"
                            f" machine ({mine['source']})")
    parity = board_parity(board["outs"], mine["outs"])  # every output of the model
    return {**parity, "reference": _reference(entry), "cpu": environment.get("cpu"),
            "on": mine["source"]}


def _load_outputs(path: Path, whose: str) -> dict[str, Any]:
    """A saved outputs file (child.save_outputs): a regular file of bounded size, an .npz
    read without pickles, holding `out` (and `out1`, `out2`, ... for a model with several
    outputs: numbers), `x_sha256` and `source` (text). Read back as `out` (output 0),
    `outs` (every output, in order), `x_sha256` and `source`."""
    import io

    import numpy as np

    from edgeconv.bench.child import output_keys

    with open_regular(path, MAX_OUTPUTS_BYTES, what="outputs file", allow_empty=False) \
            as (fh, _):
        data = read_upto(fh, MAX_OUTPUTS_BYTES)
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            keys = [k for k in output_keys(MAX_OUTPUTS) if k in npz.files]
            outs = [npz[k] for k in output_keys(len(keys))]  # KeyError without `out`
            found = {"out": outs[0], "outs": outs, "x_sha256": str(npz["x_sha256"]),
                     "source": str(npz["source"])[:100]}
    except (KeyError, ValueError, OSError, EOFError) as exc:
        raise EdgeconvError(f"{whose} outputs are not readable"
                            f" ({' '.join(str(exc).split())[:200]})") from None
    for out in found["outs"]:
        if out.dtype.kind not in "biuf" or out.ndim < 1:
            raise EdgeconvError(f"{whose} outputs are {out.dtype} {out.shape}, not numbers"
                                " per input")
    return found


def board_parity(board: Any, here: Any) -> dict[str, Any]:
    """Two runs' raw outputs on the same inputs (first axis: the inputs), compared value by
    value: inputs, values, how many differ, the largest difference in the outputs' own
    units (LSB for integer outputs), equal; and per input: those whose every value is equal
    (inputs_equal) and those whose top-1 class is the same (top1_equal). NaN equals NaN; a
    difference that is not finite counts, but not in max_abs_diff.

    `board` and `here` may be lists, one array per model output: then every output is
    compared, `values` and `differing` count them all, `max_abs_diff` is the largest over
    them (each in its own units), an input is equal when all its outputs are, `outputs` says
    how many, and there is no top1_equal (top-1 is a single-output classifier's)."""
    import numpy as np

    boards = list(board) if isinstance(board, (list, tuple)) else [board]
    heres = list(here) if isinstance(here, (list, tuple)) else [here]
    if len(boards) != len(heres) or not boards:
        raise EdgeconvError(f"the outputs differ in kind: {len(boards)} outputs on the board,"
                            f" {len(heres)} here")
    compared = [_compare(np.asarray(b), np.asarray(h)) for b, h in zip(boards, heres)]
    inputs = compared[0]["inputs"]
    if any(c["inputs"] != inputs for c in compared):
        raise EdgeconvError("the outputs differ in kind: outputs for different numbers of"
                            " inputs")
    per_input = np.zeros(inputs, bool)
    for c in compared:
        if c["per_input"].size:
            per_input |= c["per_input"]
    found = {"inputs": int(inputs), "values": sum(c["values"] for c in compared),
             "differing": sum(c["differing"] for c in compared),
             "max_abs_diff": max(c["max_abs_diff"] for c in compared),
             "equal": all(c["equal"] for c in compared),
             "inputs_equal": int(inputs - per_input.sum())}
    if len(compared) == 1:
        found["top1_equal"] = compared[0]["top1_equal"]
    else:
        found["outputs"] = len(compared)
    return found


def _compare(board, here) -> dict[str, Any]:
    """One output's comparison (board_parity), with the inputs that differ."""
    import numpy as np

    if board.shape != here.shape or board.dtype != here.dtype:
        raise EdgeconvError(f"the outputs differ in kind: {board.dtype} {board.shape} on the"
                            f" board, {here.dtype} {here.shape} here")
    inputs = board.shape[0] if board.ndim else 1
    if board.dtype.kind in "biu":
        diff = np.abs(board.astype(np.int64) - here.astype(np.int64)).astype(np.float64)
        differs = diff != 0
    else:
        a, b = board.astype(np.float64), here.astype(np.float64)
        same = (a == b) | (np.isnan(a) & np.isnan(b))
        differs = ~same
        with np.errstate(invalid="ignore"):
            diff = np.where(same, 0.0, np.abs(a - b))
    finite = diff[np.isfinite(diff)]
    largest = float(finite.max()) if finite.size else 0.0
    per_input = differs.reshape(inputs, -1).any(axis=1) if board.size else np.zeros(0, bool)
    top1 = (board.reshape(inputs, -1).argmax(axis=1) == here.reshape(inputs, -1).argmax(axis=1)
            if board.size else np.zeros(0, bool))
    return {"inputs": int(inputs), "values": int(board.size),
            "differing": int(differs.sum()),
            "max_abs_diff": int(largest) if board.dtype.kind in "biu" else largest,
            "equal": not bool(differs.any()), "per_input": per_input,
            "top1_equal": int(top1.sum())}


def _reference(entry) -> str:
    """What ran on this side: "x86_64 litert 2.3.0 XNNPACK"."""
    versions = [v for distributions in entry.libraries.values()
                if (v := installed_version(*distributions))]
    path = " XNNPACK" if entry.name == "litert" else ""  # LiteRT's default CPU path
    return f"{platform.machine()} {entry.name} {versions[0] if versions else '?'}{path}"
