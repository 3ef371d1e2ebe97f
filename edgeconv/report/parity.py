"""The report's parity lines: what a bench on an emulated board proves.

An emulated board's latencies are qemu's, not the board's (never shown as board times);
what its rows do prove is that each file runs on aarch64 and gives the outputs x86 gives.
For every file benched over SSH whose rows carry `parity` (records.PARITY: the board's raw
outputs against the same file run on the machine that sent the job, on the same inputs),
one line:

    `fcn-mnist_int8.tflite` (rpi4): aarch64 (Cortex-A72, emulated) agrees with x86 on
    359/359 images; max |diff| 1 LSB (1 of 3590 values; bit-exact on 358/359) ...

"agrees" is the top-1 class; the rest says how close the raw outputs are. A file benched at
several thread counts is one line (the worst of its rows). Standard library only.
"""

from __future__ import annotations

from typing import Any

from edgeconv.report.collect import BenchRecord, Collection


def parity_blocks(data: Collection) -> list[str]:
    """A heading paragraph and one paragraph per file with parity figures; [] when none."""
    files: dict[tuple[str, str, str], list[BenchRecord]] = {}
    for record in data.rows:
        if record.row.ok and record.row.parity and record.row.mcu is None:  # MCU: report.mcu
            key = (str(record.source), record.row.target, record.row.artifact)
            files.setdefault(key, []).append(record)
    if not files:
        return []
    blocks = ["**Boards against x86** (`edgeconv bench --host` / `--emulated`): each file's raw"
              " outputs on the board against the same file run on the machine that sent the"
              " job, in the same runtime, on the same inputs. An emulated board's latencies"
              " are qemu's, not the board's; this is what its rows prove."]
    for (_, target, _), records in sorted(files.items(), key=lambda kv: kv[0][1:]):
        blocks.append(parity_line(records, data.environments.get(target) or {}))
    return blocks


def parity_line(records: list[BenchRecord], environment: dict[str, Any]) -> str:
    """One file's rows (its thread counts) as one line: the worst figures of them."""
    first = records[0]
    parities = [r.row.parity for r in records]
    inputs = min(p["inputs"] for p in parities)
    agreed = min(_agreed(p) for p in parities)
    exact = min(p.get("inputs_equal", p["inputs"] if p["equal"] else 0) for p in parities)
    largest = max(p["max_abs_diff"] for p in parities)
    differing = max(p["differing"] for p in parities)
    values = parities[0]["values"]
    integer = all(isinstance(p["max_abs_diff"], int) for p in parities)  # LSB of int outputs
    emulated = first.row.timed_on == "emulated"
    marker = environment.get("emulated") or {}
    cpu = marker.get("cpu") or str(parities[0].get("cpu") or environment.get("cpu") or "?")
    board = f"{environment.get('machine') or 'the board'} ({cpu}{', emulated' if emulated else ''})"
    reference = str(parities[0].get("reference") or "this machine")
    against = reference.split()[0].replace("x86_64", "x86")
    on = parities[0].get("on") or "inputs"
    name = f"`{first.file}`" + (f" ({first.export.label} {first.precision})"
                                 if first.export else "")
    threads = sorted({r.row.threads for r in records if r.row.threads})
    if all(p["equal"] for p in parities):
        closeness = f"bit-exact ({values} values)"
    else:
        closeness = (f"max |diff| {largest:g}{' LSB' if integer else ''} ({differing} of"
                     f" {values} values differ; bit-exact on {exact}/{inputs})")
    return (f"{name} on {first.row.target}: {board} agrees with {against} on"
            f" {agreed}/{inputs} {_images(on)}; {closeness}; reference {reference}"
            + (f"; threads {', '.join(map(str, threads))}" if threads else "") + ".")


def _agreed(parity: dict[str, Any]) -> int:
    """Inputs whose top-1 class is the same on both sides (every input when bit-exact)."""
    if "top1_equal" in parity:
        return parity["top1_equal"]
    return parity["inputs"] if parity["equal"] else parity.get("inputs_equal", 0)


def _images(on: str) -> str:
    return "images" if on == "test images" else str(on)
