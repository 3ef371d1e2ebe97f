"""Instructions -> estimated board latency: the calibration as data, with its sources.

QEMU counts the instructions a Cortex-M executes exactly, but models no pipeline, flash wait
state or cache, so an instruction count is not a time. Published MLPerf Tiny results on the
four reference models (which we run too) say how many cycles the real boards spent per
instruction we count (CPI = published latency x clock / our instructions). An estimate is
then `instructions x CPI / clock`, shown as a range (low, mid, high) from the calibration's
spread: never a measurement, never in a row's `latency_ms`.

Which published engine stands for TFLM + current CMSIS-NN (MLPerf Tiny has no such result on
an M4 / M7 / M33):
- Cortex-M4, CMSIS-NN: microTVM + CMSIS-NN on the NUCLEO-L4R5ZI (tiny_results v1.0, OctoML):
  the same CMSIS-NN kernels, CPI 1.50-1.78 over the four models. TFLM 2.3.1 + 2020 CMSIS-NN
  (v0.5 reference submission) ran older code with more instructions (CPI 2.1-3.0 of our
  count) and X-CUBE-AI (ST's own engine, 0.9-1.6) fewer: both kept as context, not used.
- Cortex-M7, CMSIS-NN: no engine ran on both an M4 and an M7 board with CMSIS-NN, but
  X-CUBE-AI 7.3 ran the four models on both the NUCLEO-L4R5ZI and the NUCLEO-H7A3ZI: its
  per-model M7/M4 cycle ratio (0.51-0.57) applied to microTVM's M4 cycles gives the M7
  cycles, divided by our M7 instruction count.
- Cortex-M33, CMSIS-NN: microTVM + CMSIS-NN ran the four models on the nRF5340 DK (Cortex-M33
  at 128 MHz; tiny_results v1.0, OctoML): the M4's engine, so the M33's CPI is fitted the M4's
  way, on our M33 instruction counts (QEMU mps3-an524).
- Cortex-M55: no published MLPerf Tiny result of a CPU-only Cortex-M55 was found: no
  calibration, the rows say "uncalibrated" and show instructions only.
- Reference kernels: no published point at all. They are plain C loops (more instructions,
  fewer of them multi-cycle DSP/SIMD ones); we apply the same core's CMSIS-NN CPI with a
  wider band (REFERENCE_BAND) and say so in `basis`.

The band is the spread of the per-model CPIs of the chosen engine, widened to at least
MIN_BAND around its centre (the median): the engine is a stand-in, so a narrow fit on four
models would promise more than the method gives (see docs/bench.md, "MCU targets").

Standard library only: the bench, the report and the docs table import it.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass
from typing import Any

# --- the published results --------------------------------------------------------------

MODELS = ("vww_96_int8", "kws_ref_model", "pretrainedResnet_quant", "ad01_int8")
TASKS = {"vww_96_int8": "vww", "kws_ref_model": "kws", "pretrainedResnet_quant": "ic",
         "ad01_int8": "ad"}


@dataclass(frozen=True)
class Board:
    name: str
    core: str  # a key of edgeconv.mcu.CORES
    clock_mhz: float
    source: str


BOARDS = {b.name: b for b in (
    Board("NUCLEO-L4R5ZI", "cortex-m4", 120.0,
          "STM32L4R5ZI, Cortex-M4F at 120 MHz as run by MLPerf Tiny (system descriptions of"
          " the submissions)"),
    Board("NUCLEO-H7A3ZI", "cortex-m7", 280.0,
          "STM32H7A3ZI-Q, Cortex-M7 at 280 MHz as run by MLPerf Tiny (ST's v1.0 system"
          " description)"),
    Board("NRF5340-DK", "cortex-m33", 128.0,
          "nRF5340 application core, Cortex-M33 (DSP + FPU) at 128 MHz (OctoML's v1.0 system"
          " description, closed/OctoML/systems/system_description_NRF5340DK_microtvm_cmsis_nn"
          ".json)"),
)}


@dataclass(frozen=True)
class Published:
    """One submission's median throughput (inferences/s) per model, as its
    performance/results.txt prints it ("Median throughput is N inf./sec.")."""

    engine: str
    board: str
    kernels: str  # what its kernels are, in words
    throughput: dict[str, float]  # model -> inferences per second
    source: str

    def latency_ms(self, model: str) -> float:
        return 1000.0 / self.throughput[model]


_V10 = "github.com/mlcommons/tiny_results_v1.0"
_V05 = "github.com/mlcommons/tiny_results_v0.5"
PUBLISHED = {p.engine + "@" + p.board: p for p in (
    Published("microtvm-cmsis-nn", "NUCLEO-L4R5ZI", "microTVM + CMSIS-NN",
              {"vww_96_int8": 3.320, "kws_ref_model": 10.019,
               "pretrainedResnet_quant": 2.567, "ad01_int8": 116.212},
              f"{_V10} closed/OctoML/results/microtvm_cmsis_nn/NUCLEO_L4R5ZI/<task>/"
              "performance/results.txt"),
    Published("microtvm-cmsis-nn", "NRF5340-DK", "microTVM + CMSIS-NN",
              {"vww_96_int8": 4.310, "kws_ref_model": 13.143,
               "pretrainedResnet_quant": 3.163, "ad01_int8": 159.579},
              f"{_V10} closed/OctoML/results/microtvm_cmsis_nn/NRF5340-DK/<task>/"
              "performance/results.txt"),
    Published("tflm-2.3.1", "NUCLEO-L4R5ZI", "TFLM 2.3.1 + 2020 CMSIS-NN",
              {"vww_96_int8": 1.665, "kws_ref_model": 5.497,
               "pretrainedResnet_quant": 1.420, "ad01_int8": 99.487},
              f"{_V05} closed/reference/results/Nucleo-L4R5ZI/<task>/performance/results.txt"),
    Published("x-cube-ai-7.3", "NUCLEO-L4R5ZI", "ST X-CUBE-AI 7.3",
              {"vww_96_int8": 4.339, "kws_ref_model": 13.323,
               "pretrainedResnet_quant": 4.407, "ad01_int8": 131.950},
              f"{_V10} closed/STMicroelectronics/results/NUCLEO_L4R5ZI/<task>/performance/"
              "results.txt"),
    Published("x-cube-ai-7.3", "NUCLEO-H7A3ZI", "ST X-CUBE-AI 7.3",
              {"vww_96_int8": 19.722, "kws_ref_model": 59.667,
               "pretrainedResnet_quant": 18.401, "ad01_int8": 547.705},
              f"{_V10} closed/STMicroelectronics/results/NUCLEO-H7A3ZI-Q/<task>/performance/"
              "results.txt"),
)}

# --- our instruction counts ---------------------------------------------------------------

# Instructions per invoke, counted in QEMU (-icount shift=0, CMSDK timer) with TFLM 90b983c2
# + CMSIS-NN 4ab83cc3 built by edgeconv.mcu (docs/mcu.md). The prototype's figures; the mcu
# tests re-measure them within 5% (tests/test_mcu.py), so a kernel change shows up there.
INSTRUCTIONS: dict[tuple[str, str], dict[str, float]] = {
    ("cortex-m4", "cmsis-nn"): {"vww_96_int8": 24.10e6, "kws_ref_model": 7.70e6,
                                "pretrainedResnet_quant": 29.86e6, "ad01_int8": 0.58e6},
    ("cortex-m7", "cmsis-nn"): {"vww_96_int8": 24.03e6, "kws_ref_model": 7.65e6,
                                "pretrainedResnet_quant": 30.03e6, "ad01_int8": 0.58e6},
    ("cortex-m7", "reference"): {"vww_96_int8": 101.2e6, "kws_ref_model": 43.6e6,
                                 "pretrainedResnet_quant": 108.7e6, "ad01_int8": 1.95e6},
    # measured by edgeconv.mcu on QEMU mps3-an524 (first invoke of three random inputs,
    # outputs bit-exact with the host interpreter; docs/mcu.md): python -m edgeconv.mcu
    # MODEL --core cortex-m33 --subset mlperf-tiny --tree tflm-tree-cmsis-nn.tgz
    ("cortex-m33", "cmsis-nn"): {"vww_96_int8": 24.05e6, "kws_ref_model": 7.68e6,
                                 "pretrainedResnet_quant": 29.96e6, "ad01_int8": 0.584e6},
}
INSTRUCTIONS_SOURCE = ("instructions per invoke counted by edgeconv.mcu in QEMU (mps2-an386 /"
                       " mps2-an500 / mps3-an524, -icount shift=0), TFLM 90b983c2 + CMSIS-NN"
                       " 4ab83cc3")

MIN_BAND = 0.20  # the band is at least +-20% of the centre (stand-in engine, four models)
REFERENCE_BAND = 0.40  # reference kernels: no published point, +-40% of the CMSIS-NN centre
ESTIMATE_KINDS = ("cmsis-nn", "reference")


def published_cycles(key: str, model: str) -> float:
    """Cycles one inference took on the published board: latency x clock."""
    published = PUBLISHED[key]
    return published.latency_ms(model) * 1e-3 * BOARDS[published.board].clock_mhz * 1e6


def cpi(key: str, model: str, core: str, kernels: str = "cmsis-nn") -> float:
    """Published cycles per instruction we count for the same model, core and kernels."""
    return published_cycles(key, model) / INSTRUCTIONS[(core, kernels)][model]


def m7_over_m4(model: str) -> float:
    """Cycles on the M7 board / cycles on the M4 board for one engine on both (X-CUBE-AI)."""
    return (published_cycles("x-cube-ai-7.3@NUCLEO-H7A3ZI", model)
            / published_cycles("x-cube-ai-7.3@NUCLEO-L4R5ZI", model))


def calibration_points(core: str) -> dict[str, float]:
    """Per model, the CPI of TFLM + CMSIS-NN on `core` that the calibration infers."""
    m4 = "microtvm-cmsis-nn@NUCLEO-L4R5ZI"
    if core == "cortex-m4":
        return {m: cpi(m4, m, "cortex-m4") for m in MODELS}
    if core == "cortex-m7":
        return {m: published_cycles(m4, m) * m7_over_m4(m)
                / INSTRUCTIONS[("cortex-m7", "cmsis-nn")][m] for m in MODELS}
    if core == "cortex-m33":  # the same engine on an M33 board: fitted directly
        return {m: cpi("microtvm-cmsis-nn@NRF5340-DK", m, "cortex-m33") for m in MODELS}
    raise KeyError(core)


# The cores with a published calibration and our instruction counts of the four models; the
# Cortex-M55 has none (no MLPerf Tiny result of a CPU-only M55 was found): its rows say
# "uncalibrated" and show instructions only.
CALIBRATED_CORES = tuple(c for c in ("cortex-m4", "cortex-m7", "cortex-m33")
                         if (c, "cmsis-nn") in INSTRUCTIONS)
WHERE = {
    "cortex-m4": "microTVM + CMSIS-NN on NUCLEO-L4R5ZI (MLPerf Tiny v1.0)",
    "cortex-m7": "microTVM + CMSIS-NN on NUCLEO-L4R5ZI x X-CUBE-AI's H7A3ZI/L4R5ZI cycle"
                 " ratio (MLPerf Tiny v1.0)",
    "cortex-m33": "microTVM + CMSIS-NN on nRF5340 DK, Cortex-M33 at 128 MHz (MLPerf Tiny v1.0)",
}


@dataclass(frozen=True)
class Band:
    low: float
    mid: float
    high: float


def cpi_band(core: str, kernels: str) -> Band:
    """The CPI range for a core and kernel set (see the module's docstring)."""
    points = list(calibration_points(core).values())
    mid = statistics.median(points)
    widen = MIN_BAND if kernels == "cmsis-nn" else REFERENCE_BAND
    return Band(low=min(min(points), mid * (1 - widen)), mid=mid,
                high=max(max(points), mid * (1 + widen)))


@dataclass(frozen=True)
class Estimate:
    """An estimated board latency: never a measurement (records keep it apart)."""

    low: float  # ms
    mid: float
    high: float
    cpi_low: float
    cpi_mid: float
    cpi_high: float
    basis: str  # one line: how it was obtained

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def basis(core: str, kernels: str, clock_mhz: float) -> str:
    """One line saying where the CPI band comes from."""
    band = cpi_band(core, kernels)
    where = WHERE[core]
    text = (f"estimate: emulated instructions x {band.low:.2f}-{band.high:.2f} cycles per"
            f" instruction (centre {band.mid:.2f}; {where}) at {clock_mhz:g} MHz")
    if kernels == "reference":
        text += "; reference kernels have no published point: CMSIS-NN CPI, +-40% band"
    return text


def estimate_ms(instructions: int | float, core: str | None, kernels: str,
                clock_mhz: float | None) -> Estimate | None:
    """The estimated latency range of `instructions` per invoke on `core` with `kernels` at
    `clock_mhz`; None where there is no calibration (no Arm core: esp32s3's Xtensa, no clock).
    """
    if core not in CALIBRATED_CORES or kernels not in ESTIMATE_KINDS or not clock_mhz:
        return None
    band = cpi_band(core, kernels)
    per_cycle_ms = 1e3 / (clock_mhz * 1e6)
    return Estimate(low=instructions * band.low * per_cycle_ms,
                    mid=instructions * band.mid * per_cycle_ms,
                    high=instructions * band.high * per_cycle_ms,
                    cpi_low=band.low, cpi_mid=band.mid, cpi_high=band.high,
                    basis=basis(core, kernels, clock_mhz))


# --- from MACs, before anything is built (edgeconv fit's pruning) ---------------------------

# MACs per invoke of the four reference models (CONV_2D, DEPTHWISE_CONV_2D and
# FULLY_CONNECTED, as edgeconv.mcu.ops counts them from the flatbuffer), produced by:
#   python -c "from edgeconv.mcu.ops import read_ops; [print(m, read_ops(
#     f'models/mlcommons-tiny/{m}.tflite').macs) for m in ('vww_96_int8', 'kws_ref_model',
#     'pretrainedResnet_quant', 'ad01_int8')]"
# (tests/test_fit_prune.py recounts them where the models are at hand).
MACS = {"vww_96_int8": 7_489_664, "kws_ref_model": 2_656_768,
        "pretrainedResnet_quant": 12_501_632, "ad01_int8": 264_192}


def instructions_per_mac_points(core: str, kernels: str) -> dict[str, float] | None:
    """Per reference model, the instructions we count per MAC on `core` with `kernels`;
    None where we have no counts for that pair."""
    counts = INSTRUCTIONS.get((core, kernels))
    if counts is None:
        return None
    return {m: counts[m] / MACS[m] for m in MODELS}


# Small models of the kind `edgeconv fit` searches, counted the same way on the Cortex-M4 with
# CMSIS-NN (the M7 and M33 count the same code within 0.5%, docs/mcu.md): (MACs,
# instructions per invoke) of their untrained int8 exports (10 classes, 1 channel), from
# `python -m edgeconv.fit.footprint_check --tree tflm-tree-cmsis-nn.tgz`. A small model's fixed
# per-operator cost and its depthwise layers take more instructions per MAC than the four
# reference models (up to 5.5 against 3.2): they set the band's high end.
SMALL_MODELS = {
    "mobilenet alpha 0.25 at 32x32": (797_824, 3_181_120),
    "mobilenet alpha 0.25 at 48x48": (1_664_704, 6_134_360),
    "mobilenetv2 alpha 0.35 at 32x32": (1_122_864, 6_168_600),
    "squeezenet version 1.1 at 48x48": (7_930_432, 18_825_160),
    "separable-vgg-cifar blocks 2 kernel 3 at 32x32": (11_674_624, 32_656_560),
    "gap-mnist at 28x28": (3_725_888, 12_173_200),
    "fcn-mnist at 28x28": (1_066_560, 3_454_720),
}
SMALL_MODELS_KERNELS = ("cmsis-nn",)


def instructions_per_mac_band(core: str, kernels: str) -> Band | None:
    """The instructions-per-MAC range: the low end from the four reference models (the CPI's
    own models) widened like `cpi_band` (a lower bound pruning can rely on), the centre and
    the high end over them and the small models (SMALL_MODELS, CMSIS-NN only): a searched
    model looks more like those."""
    points = instructions_per_mac_points(core, kernels)
    if points is None:
        return None
    reference = list(points.values())
    widen = MIN_BAND if kernels == "cmsis-nn" else REFERENCE_BAND
    centre = statistics.median(reference)
    everything = reference + ([instructions / macs for macs, instructions in
                               SMALL_MODELS.values()] if kernels in SMALL_MODELS_KERNELS else [])
    mid = statistics.median(everything)
    return Band(low=min(min(reference), centre * (1 - widen)), mid=mid,
                high=max(max(everything), mid * (1 + widen)))


@dataclass(frozen=True)
class MacEstimate:
    """A latency estimated from a MAC count alone, before any file exists: MACs x
    instructions per MAC x cycles per instruction / clock. Wider than `Estimate` (two bands
    multiply) and never a measurement."""

    low: float  # ms
    mid: float
    high: float
    basis: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def estimate_from_macs(macs: float, core: str | None, kernels: str,
                       clock_mhz: float | None) -> MacEstimate | None:
    """The estimated latency range of a model of `macs` MACs on `core` with `kernels` at
    `clock_mhz`; None where there is no calibration (no counts, no core, no clock)."""
    if core not in CALIBRATED_CORES or kernels not in ESTIMATE_KINDS or not clock_mhz:
        return None
    per_mac = instructions_per_mac_band(core, kernels)
    if per_mac is None:
        return None
    cycles = cpi_band(core, kernels)
    per_cycle_ms = 1e3 / (clock_mhz * 1e6)
    text = (f"estimated from MACs: {per_mac.low:.2f}-{per_mac.high:.2f} instructions per MAC"
            f" (emulated {core}, {kernels}) x {cycles.low:.2f}-"
            f"{cycles.high:.2f} cycles per instruction ({WHERE[core]}) at {clock_mhz:g} MHz")
    return MacEstimate(low=macs * per_mac.low * cycles.low * per_cycle_ms,
                       mid=macs * per_mac.mid * cycles.mid * per_cycle_ms,
                       high=macs * per_mac.high * cycles.high * per_cycle_ms, basis=text)


def significant(ms: float) -> str:
    """Three significant digits, never in exponent form (0.0123, 0.707, 82.1, 6410)."""
    digits = 2 - math.floor(math.log10(ms)) if ms > 0 else 3
    return f"{ms:.{max(0, digits)}f}"


def band_text(estimate: dict[str, Any], dash: str = "–") -> str:
    """An estimate as `~centre [low–high]` in ms: how bench, report and the summary show it."""
    low, mid, high = (significant(estimate[key]) for key in ("low", "mid", "high"))
    return f"~{mid} [{low}{dash}{high}]"


def calibration_table() -> list[dict[str, Any]]:
    """Our estimate vs the published figure per reference model and board (docs/bench.md):
    on the L4R5ZI the engine the CPI was fitted on (so the ratio shows the fit's spread), on
    the H7A3ZI X-CUBE-AI (a faster engine than TFLM: the ratio is not an error)."""
    rows = []
    for key, board_engine in COMPARED.items():
        board = BOARDS[key]
        if board.core not in CALIBRATED_CORES:
            continue
        for model in MODELS:
            est = estimate_ms(INSTRUCTIONS[(board.core, "cmsis-nn")][model], board.core,
                              "cmsis-nn", board.clock_mhz)
            published = PUBLISHED[board_engine]
            assert est is not None
            rows.append({"board": key, "model": model, "engine": published.kernels,
                         "estimate_ms": [est.low, est.mid, est.high],
                         "published_ms": published.latency_ms(model),
                         "ratio": est.mid / published.latency_ms(model)})
    return rows


# The published figure each calibration board's estimate is shown against (docs/bench.md).
COMPARED = {"NUCLEO-L4R5ZI": "microtvm-cmsis-nn@NUCLEO-L4R5ZI",
            "NUCLEO-H7A3ZI": "x-cube-ai-7.3@NUCLEO-H7A3ZI",
            "NRF5340-DK": "microtvm-cmsis-nn@NRF5340-DK"}


def measured_table(rows: list[Any]) -> list[dict[str, Any]]:
    """Bench rows (records.BenchRow) of the four reference models on a calibration board's
    core and clock: our estimate from the instructions the bench counted vs the published
    figure. Rows of other models or boards are left out."""
    found = []
    for row in rows:
        model = row.artifact.replace("\\", "/").rsplit("/", 1)[-1].removesuffix(".tflite")
        if not (row.mcu and row.estimate_ms and model in MODELS):
            continue
        for name, board in BOARDS.items():
            if board.core == row.mcu["core"] and board.clock_mhz == row.mcu.get("clock_mhz"):
                published = PUBLISHED[COMPARED[name]]
                found.append({"board": name, "target": row.target, "model": model,
                              "kernels": row.mcu["kernels"],
                              "instructions": row.mcu["invoke_instructions"],
                              "estimate_ms": [row.estimate_ms[k] for k in ("low", "mid", "high")],
                              "engine": published.kernels,
                              "published_ms": published.latency_ms(model),
                              "ratio": row.estimate_ms["mid"] / published.latency_ms(model)})
    return found


def _print_table(rows: list[dict[str, Any]], measured: bool) -> None:
    print("| board | model |" + (" instructions (emulated) |" if measured else "")
          + " published ms (engine) | our estimate ms [band] | estimate / published |")
    print("|---|---|" + ("---:|" if measured else "") + "---:|---:|---:|")
    for row in rows:
        low, mid, high = row["estimate_ms"]
        counted = f" {row['instructions'] / 1e6:.2f}M |" if measured else ""
        print(f"| {row['board']} | {row['model']} |{counted} {row['published_ms']:.2f}"
              f" ({row['engine']}) | {mid:.2f} [{low:.2f}-{high:.2f}] | {row['ratio']:.2f} |")


def _main() -> None:
    """python -m edgeconv.mcu.calibration [RESULTS.json ...]: the CPI band per core, and
    our estimate vs the published figure: from the bench's own instruction counts in the
    results files given (bench the four models on nucleo-l4r5zi / nucleo-h7a3zi), else from
    the INSTRUCTIONS table."""
    import sys

    for core in CALIBRATED_CORES:
        band = cpi_band(core, "cmsis-nn")
        points = ", ".join(f"{m} {v:.2f}" for m, v in calibration_points(core).items())
        print(f"{core} cmsis-nn CPI: {points} -> band {band.low:.2f}-{band.high:.2f},"
              f" centre {band.mid:.2f}")
    print()
    if len(sys.argv) > 1:
        from edgeconv.records import load_results

        rows = [r for path in sys.argv[1:] for r in load_results(path).results]
        _print_table(measured_table(rows), measured=True)
    else:
        _print_table(calibration_table(), measured=False)


if __name__ == "__main__":
    _main()
