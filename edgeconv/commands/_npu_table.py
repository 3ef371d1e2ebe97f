"""The NPU rows of a bench on a target with an Ethos-U (edgeconv.bench.npu): their own table,
printed after the microcontroller's, since their figures are of another kind (Vela's
performance estimate at the NPU clock, never a measurement, nor emulated instructions).

    artifact  accelerator  latency ms (Vela)  NPU cycles  CPU ops  CPU instr.  SRAM  flash  fits

then, under it: the estimate's basis once, each file's top layers by NPU cycles, and each
operator left to the CPU with Vela's reason.
"""

from __future__ import annotations

from typing import Any

from edgeconv import render

TOP_LAYERS = 4


def is_npu_row(row) -> bool:
    return getattr(row, "npu", None) is not None or row.runtime == "ethos-u"


def npu_output(stdout, rows: list, wide: bool) -> None:
    from edgeconv.mcu.calibration import band_text, significant

    def latency(r) -> str:
        npu = r.npu or {}
        if "latency_ms" not in npu:
            return ""
        text = significant(npu["latency_ms"])
        cpu = (npu.get("cpu_fallback") or {}).get("estimate_ms")
        return f"{text} + CPU {band_text(cpu)}" if cpu else text

    def cpu_instructions(r) -> str:
        fallback = (r.npu or {}).get("cpu_fallback") or {}
        if not fallback.get("ops"):
            return "" if r.npu is None else "-"
        count = fallback.get("instructions")
        return "not costed" if count is None else f"{count / 1e6:.3f}M"

    columns: dict[str, tuple[bool, Any]] = {
        "artifact": (True, lambda r: r.artifact),
        "status": (wide or not all(r.ok for r in rows), lambda r: r.status),
        "NPU": (True, lambda r: (r.npu or {}).get("accelerator", "")),
        "latency ms (Vela)": (True, latency),
        "NPU cycles": (True, lambda r: f"{r.npu['cycles_total']:,}" if r.npu else ""),
        "ops NPU/CPU": (True, lambda r: f"{r.npu.get('npu_ops', 0)}/{r.npu.get('cpu_ops', 0)}"
                        if r.npu else ""),
        "CPU instr.": (True, cpu_instructions),
        "SRAM": (True, lambda r: render.nbytes(r.npu["sram_bytes"]) if r.npu else ""),
        "flash": (True, lambda r: render.nbytes(r.flash_bytes)),
        "fits": (True, lambda r: "" if r.fits is None else ("yes" if r.fits else "NO")),
    }
    names = [name for name, (shown, _) in columns.items() if shown]
    table = [[columns[name][1](r) for name in names] for r in rows]
    target = rows[0].target
    render.print_table(stdout, render.file_table(
        f"{target}: Ethos-U NPU (Vela performance estimate)", names, table,
        right=set(names) - {"artifact", "status", "NPU"},
        no_wrap={"latency ms (Vela)", "status"}), wide=wide)
    def say(text: str) -> None:
        stdout.print(text, highlight=False, soft_wrap=True, markup=False)

    compiled = [r for r in rows if r.npu]
    if compiled:
        npu = compiled[0].npu
        say(f"latency ms (Vela): Vela performance estimate = cycles / NPU clock"
            f" ({npu['clock_mhz']:g} MHz, {npu['system_config']}, {npu['memory_mode']}; Vela"
            f" {npu.get('vela', '?')}); not a measurement. CPU instr.: the operators Vela"
            " leaves to the CPU, counted on the emulated core's firmware")
        say("SRAM: Vela's SRAM used; flash: the Vela-compiled model (runtime and Ethos-U"
            " driver not counted)")
    for r in compiled:
        layers = top_layers(r.npu)
        if layers:
            say(f"top NPU layers: {r.artifact}: " + ", ".join(
                f"{op} {share:.0%} ({cycles:,} cycles)" for op, cycles, share in layers))
        for place in r.npu.get("placement") or []:
            if place["on"] == "CPU":
                say(f"on the CPU: {r.artifact}: {place['op']} (operator {place['index']}):"
                    f" {place.get('reason') or 'no reason printed'}")
        fallback = r.npu.get("cpu_fallback") or {}
        if fallback.get("ops") and fallback.get("why"):
            say(f"CPU fallback: {r.artifact}: {fallback['why']}")


def top_layers(npu: dict[str, Any], count: int = TOP_LAYERS) -> list[tuple[str, int, float]]:
    """(TFLite operator, NPU cycles, share of the NPU cycles) summed per operator type from
    Vela's per-layer figures, the costliest first."""
    layers = [layer for layer in npu.get("layers") or [] if layer.get("on", "NPU") == "NPU"]
    total = sum(layer["cycles"] for layer in layers) or 1
    types: dict[str, int] = {}
    for layer in layers:
        types[layer["original_op"]] = types.get(layer["original_op"], 0) + layer["cycles"]
    ranked = sorted(types.items(), key=lambda item: -item[1])[:count]
    return [(op, cycles, cycles / total) for op, cycles in ranked]
