"""The report's microcontroller section: per MCU target, each file's estimated latency (with
its band, emulated), instructions, arena, RAM, flash and fits, and an op-type breakdown per
model and target (a table and a plot).

A row the firmware ran (records.BenchRow.mcu set, timed_on "emulated") has exact RAM and
flash and an estimated latency (edgeconv.mcu.calibration); a row the firmware did not run
(no toolchain or tree, an Xtensa board, an older results.json) has the host interpreter's
arena and, when timed, its x86 time labelled "x86 host, reference kernels": never a board
time. Standard library only, except the plots (matplotlib, through report.plots).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from edgeconv import render
from edgeconv.bench.firmware import by_op_type
from edgeconv.report.collect import BenchRecord, Collection
from edgeconv.report.document import Image, Section, Table

HOST_LABEL = "x86 host, reference kernels"
SHOWN_FORMAT = "tflite"
TOP_TYPES = 6  # op types named in the breakdown; the rest are "other"


def is_mcu_row(record: BenchRecord) -> bool:
    """A row of a microcontroller target: the firmware's, or TFLite Micro on the host."""
    return record.row.mcu is not None or record.row.timed_on == "host"


def mcu_section(data: Collection, draw: Callable[[Callable[..., Path]], Callable[..., Any]]
                ) -> Section:
    """`draw(fn)` gives the build's plot runner for `fn(*args, path)` (None: no plots)."""
    s = Section("Microcontrollers: estimated latency, RAM and flash vs each board's budget")
    records = [r for r in data.rows if is_mcu_row(r) and r.row.format == SHOWN_FORMAT]
    if not records:
        s.blocks.append("No MCU bench in the inputs: `edgeconv bench runs/NAME --target"
                        " stm32h7 --out runs/NAME/results-stm32h7.json` (also nrf52840,"
                        " nucleo-l4r5zi, nucleo-h7a3zi, esp32s3, the Cortex-M33 stm32u5 and"
                        " pico2, the Cortex-M55 + Ethos-U alif-e7, himax-we2 and"
                        " corstone-300) on an int8 export.")
        return s
    if any(r.row.estimate_ms for r in records):
        s.blocks.append(
            "**Latency** of a firmware row is an **estimate**: TFLite Micro with the board's"
            " kernels was built for the target's core and run on an emulated Cortex-M, which"
            " counts instructions exactly; cycles per instruction come from published MLPerf"
            " Tiny results on the same reference models (each board's line says which)."
            " Shown as `~centre [low–high]` ms. RAM = arena + stack peak + static data;"
            " flash = the linked firmware + the model: both exact.")
    if any(r.row.mcu is None and r.p50_ms is not None for r in records):
        s.blocks.append(f"Rows without firmware show TFLite Micro's interpreter timed on the"
                        f" bench machine, labelled `{HOST_LABEL}`: not a board time.")
    for board in sorted({r.row.target for r in records}):
        rows = [r for r in records if r.row.target == board]
        s.blocks.extend(_board_blocks(board, rows, draw))
    return s


def _board_blocks(board: str, rows: list[BenchRecord], draw) -> list[Any]:
    sram = next((r.sram_budget for r in rows if r.sram_budget), None)
    flash = next((r.flash_budget for r in rows if r.flash_budget), None)
    cores = sorted({f"{r.row.mcu['core']}, {r.row.mcu['kernels']} kernels" for r in rows
                    if r.row.mcu})
    bases = sorted({r.row.estimate_ms["basis"] for r in rows if r.row.estimate_ms})
    blocks: list[Any] = [f"**{board}**: SRAM {render.nbytes(sram)}, flash"
                         f" {render.nbytes(flash)}"
                         + (f"; emulated {'; '.join(cores)}" if cores else
                            "; no firmware run (host interpreter's arena, flash unknown)")
                         + "." + "".join(f" Latency {b}." for b in bases)]
    body = [[_label(r), r.row.status, latency_text(r), _instructions(r),
             render.nbytes(r.row.arena_bytes), render.nbytes(r.row.ram_bytes),
             render.nbytes(r.row.flash_bytes) + (" (old estimate)" if r.row.flash_bytes
                                                 and r.row.mcu is None else ""),
             "" if r.row.fits is None else ("yes" if r.row.fits else "**NO**"),
             _parity(r), r.row.error or ""] for r in rows]
    blocks.append(Table(["file", "status", "latency ms", "instructions", "arena", "RAM",
                         "flash", "fits", "outputs vs host TFLM / LiteRT", "error"], body))
    bars = [(_label(r), r.row.ram_bytes or r.row.arena_bytes, r.row.flash_bytes)
            for r in rows if r.row.arena_bytes or r.row.flash_bytes]
    if bars and sram and flash:
        png = draw(budget_figure)(f"mcu-{board}.png", bars, sram, flash, board)
        if png:
            blocks.append(Image(png.name, f"{board}: RAM and flash vs budget"))
    profiled = [r for r in rows if r.row.ops]
    if profiled:
        blocks.append(Table(["file", "kernels", *(f"top {n + 1}" for n in range(3))],
                            [[_label(r), r.row.mcu["kernels"] if r.row.mcu else "",
                              *_top_cells(r.row.ops)] for r in profiled]))
        png = draw(ops_figure)(f"mcu-ops-{board}.png",
                               [(_label(r), r.row.ops) for r in profiled], board)
        if png:
            blocks.append(Image(png.name, f"{board}: instructions per op type, per model"))
    return blocks


def latency_text(record: BenchRecord) -> str:
    """How long an inference takes, said with how it was obtained."""
    estimate = record.row.estimate_ms
    if estimate:
        from edgeconv.mcu.calibration import band_text

        return f"{band_text(estimate)} (emulated, estimate)"
    if record.row.mcu:  # a core with no published calibration (docs/mcu.md)
        return "uncalibrated (emulated instructions only)"
    if record.p50_ms is not None:
        return f"{record.p50_ms:.3f} ({HOST_LABEL})"
    return ""


def _top_cells(ops: list[dict[str, Any]]) -> list[str]:
    cells = [f"{name} {share:.0%}" + (f", {i / m:.1f} instr/MAC" if m else "")
             for name, i, share, m in by_op_type(ops)[:3]]
    return cells + [""] * (3 - len(cells))


def _label(record: BenchRecord) -> str:
    return ((record.export.label if record.export else record.file)
            + (f" {record.precision}" if record.precision else ""))


def _instructions(record: BenchRecord) -> str:
    mcu = record.row.mcu
    return f"{mcu['invoke_instructions'] / 1e6:.2f}M" if mcu else ""


def _parity(record: BenchRecord) -> str:
    cells = []
    for parity in (record.row.parity, record.row.reference_parity):
        if not parity or record.row.mcu is None:
            cells.append("")
        elif parity["equal"]:
            cells.append(f"bit-exact ({parity['inputs']})")
        else:
            cells.append(f"{parity['differing']}/{parity['values']} differ,"
                         f" max {parity['max_abs_diff']:g}")
    return " / ".join(cells) if any(cells) else ""


# --- plots (matplotlib through report.plots; drawn only when the build has plots) --------


def budget_figure(bars: list[tuple[str, int | None, int | None]], sram: int, flash: int,
                  target: str, path: Path) -> Path:
    """RAM (or the arena where RAM is unknown) and flash as a share of the budgets."""
    from edgeconv.report.plots import _plt, _save

    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 0.5 * len(bars) + 1.8))
    ys = range(len(bars))
    ax.barh([y - 0.2 for y in ys], [100 * (b[1] or 0) / sram for b in bars], height=0.4,
            label=f"RAM (arena + stack + static) / SRAM ({sram // 1024} KiB)")
    ax.barh([y + 0.2 for y in ys], [100 * (b[2] or 0) / flash for b in bars], height=0.4,
            label=f"flash (firmware + model) / flash ({flash // 1024} KiB)")
    ax.axvline(100, color="red", linestyle="--", label="budget")
    ax.set_yticks(list(ys), [b[0] for b in bars])
    ax.set_xlabel("% of the board's budget")
    ax.set_title(f"{target}: TFLite Micro RAM and flash vs budget")
    ax.legend(fontsize=7)
    return _save(fig, path)


def ops_figure(models: list[tuple[str, list[dict[str, Any]]]], target: str, path: Path) -> Path:
    """Per model, a bar of its instructions' shares by op type (emulated counts); the
    model's total in its label (models differ by orders of magnitude: shares compare)."""
    from edgeconv.report.plots import _plt, _save

    plt = _plt()
    totals: dict[str, int] = {}
    for _, ops in models:
        for name, instructions, _, _ in by_op_type(ops):
            totals[name] = totals.get(name, 0) + instructions
    named = sorted(totals, key=lambda n: -totals[n])[:TOP_TYPES]
    fig, ax = plt.subplots(figsize=(9, 0.55 * len(models) + 1.8))
    left = [0.0] * len(models)
    for name in [*named, "other"]:
        widths = []
        for _, ops in models:
            types = {n: i for n, i, _, _ in by_op_type(ops)}
            total = sum(types.values()) or 1
            value = (types.get(name, 0) if name != "other"
                     else sum(i for n, i in types.items() if n not in named))
            widths.append(100 * value / total)
        if any(widths):
            ax.barh(range(len(models)), widths, left=left, label=name)
            left = [a + b for a, b in zip(left, widths)]
    labels = [f"{label} ({sum(op['instructions'] for op in ops) / 1e6:.2f}M)"
              for label, ops in models]
    ax.set_yticks(range(len(models)), labels)
    ax.set_xlim(0, 100)
    ax.set_xlabel("% of the instructions per invoke (emulated; total in brackets)")
    ax.set_title(f"{target}: instructions per op type")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()  # the legend outside the axes stays in the picture
    return _save(fig, path)
