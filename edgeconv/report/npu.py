"""The report's NPU section: per target with an Ethos-U, each file's Vela performance
estimate (cycles at the NPU clock: never a measurement), SRAM and flash against the target's
budgets, the NPU / CPU operator split with Vela's reasons, and a plot of per-layer NPU
cycles per model.

An NPU row is edgeconv.bench.npu's (records.BenchRow.npu set, timed_on "estimated").
Standard library only, except the plot (matplotlib, through report.plots).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from edgeconv import render
from edgeconv.report.collect import BenchRecord, Collection
from edgeconv.report.document import Image, Section, Table

TOP_LAYERS = 12  # layers per model in the plot: the costliest


def is_npu_row(record: BenchRecord) -> bool:
    return getattr(record.row, "npu", None) is not None or record.row.runtime == "ethos-u"


def npu_section(data: Collection, draw: Callable[[Callable[..., Path]], Callable[..., Any]]
                ) -> Section | None:
    """None when no input has an NPU row (the report then says nothing of NPUs)."""
    records = [r for r in data.rows if is_npu_row(r)]
    if not records:
        return None
    s = Section("Ethos-U NPU: Vela performance estimate, SRAM and flash, operator placement")
    s.blocks.append(
        "Each `.tflite` was compiled with Arm's Vela for the target's accelerator, system"
        " configuration, memory mode and NPU clock. **Latency is Vela's performance estimate**"
        " (its cycle count divided by the NPU clock), not a measurement; SRAM is Vela's SRAM"
        " used, flash the compiled model (the runtime and the Ethos-U driver are not"
        " counted). Operators Vela leaves to the CPU run in TFLite Micro on the target's core;"
        " where that core's firmware ran the same file, their instructions come from its"
        " per-operator counts.")
    for target in sorted({r.row.target for r in records}):
        rows = [r for r in records if r.row.target == target]
        s.blocks.extend(_target_blocks(target, rows, draw))
    return s


def _target_blocks(target: str, rows: list[BenchRecord], draw) -> list[Any]:
    npu = next((r.row.npu for r in rows if r.row.npu), None)
    sram = next((r.sram_budget for r in rows if r.sram_budget), None)
    flash = next((r.flash_budget for r in rows if r.flash_budget), None)
    head = f"**{target}**: SRAM {render.nbytes(sram)}, flash {render.nbytes(flash)}"
    if npu:
        head += (f"; {npu['accelerator']} at {npu['clock_mhz']:g} MHz,"
                 f" {npu['system_config']}, {npu['memory_mode']} (Vela {npu.get('vela', '?')})")
    blocks: list[Any] = [head + "."]
    body = []
    for r in rows:
        n = r.row.npu or {}
        body.append([_label(r), r.row.status, _latency(n),
                     f"{n['cycles_total']:,}" if n else "",
                     f"{n.get('npu_ops', 0)} / {n.get('cpu_ops', 0)}" if n else "",
                     _cpu_cost(n), render.nbytes(n.get("sram_bytes")),
                     render.nbytes(r.row.flash_bytes),
                     "" if r.row.fits is None else ("yes" if r.row.fits else "**NO**"),
                     r.row.error or ""])
    blocks.append(Table(["file", "status", "latency ms (Vela estimate)", "NPU cycles",
                         "ops NPU / CPU", "CPU fallback", "SRAM", "flash", "fits", "error"],
                        body))
    cpu = [[_label(r), str(p["index"]), p["op"], p.get("reason") or ""]
           for r in rows if r.row.npu for p in r.row.npu.get("placement") or []
           if p["on"] == "CPU"]
    if cpu:
        blocks.append("Operators on the CPU, with Vela's reason:")
        blocks.append(Table(["file", "operator", "type", "Vela's reason"], cpu))
    layered = [(_label(r), npu_layers(r.row.npu)) for r in rows
               if r.row.npu and npu_layers(r.row.npu)]
    if layered:
        png = draw(layers_figure)(f"npu-layers-{target}.png", layered, target)
        if png:
            blocks.append(Image(png.name, f"{target}: NPU cycles per layer (Vela estimate)"))
    return blocks


def npu_layers(npu: dict[str, Any]) -> list[dict[str, Any]]:
    """Vela's per-layer rows of the operations the NPU runs (not the CPU's)."""
    return [layer for layer in npu.get("layers") or [] if layer.get("on", "NPU") == "NPU"]


def _latency(npu: dict[str, Any]) -> str:
    if not npu:
        return ""
    from edgeconv.mcu.calibration import band_text, significant

    text = significant(npu["latency_ms"])
    cpu = (npu.get("cpu_fallback") or {}).get("estimate_ms")
    return f"{text} + CPU {band_text(cpu)}" if cpu else text


def _cpu_cost(npu: dict[str, Any]) -> str:
    fallback = (npu or {}).get("cpu_fallback") or {}
    if not fallback.get("ops"):
        return "none" if npu else ""
    count = fallback.get("instructions")
    if count is None:
        return "not costed"
    return f"{count / 1e6:.3f}M instructions ({fallback.get('core', '?')}, emulated)"


def _label(record: BenchRecord) -> str:
    return ((record.export.label if record.export else record.file)
            + (f" {record.precision}" if record.precision else ""))


def layers_figure(models: list[tuple[str, list[dict[str, Any]]]], target: str,
                  path: Path) -> Path:
    """Per model, its costliest NPU layers' cycles (Vela's per-layer estimate), one panel
    per model: layers in execution order, so a reader sees where the time goes."""
    from edgeconv.report.plots import _plt, _save

    plt = _plt()
    fig, axes = plt.subplots(len(models), 1, figsize=(9, 2.4 * len(models) + 0.6),
                             squeeze=False)
    for ax, (label, layers) in zip(axes[:, 0], models):
        costly = sorted(range(len(layers)), key=lambda i: -layers[i]["cycles"])[:TOP_LAYERS]
        shown = sorted(costly)
        ax.bar(range(len(shown)), [layers[i]["cycles"] for i in shown])
        ax.set_xticks(range(len(shown)),
                      [f"{i}:{layers[i]['original_op']}" for i in shown], rotation=45,
                      ha="right", fontsize=7)
        total = sum(layer["cycles"] for layer in layers)
        ax.set_ylabel("NPU cycles")
        ax.set_title(f"{label}: {total:,} cycles in {len(layers)} NPU operations"
                     f" (top {len(shown)} shown)", fontsize=9)
    fig.suptitle(f"{target}: NPU cycles per layer (Vela performance estimate)", fontsize=10)
    fig.tight_layout()
    return _save(fig, path)
