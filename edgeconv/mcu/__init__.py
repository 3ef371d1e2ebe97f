"""TFLite Micro on an emulated Cortex-M4/M7/M33/M55: build, link, run, count instructions.

    run_firmware(model, core="cortex-m7", kernels="cmsis-nn", inputs=[...]) -> FirmwareRun

builds libtflm.a for the core and kernel set once (cached, library.py), links a firmware with
only the model's operators (firmware.py), runs it in qemu-system-arm with instruction
counting (emulator.py) and reads back instructions per invoke and per operator, arena, stack,
flash and the outputs. See docs/mcu.md. Nothing here imports TensorFlow.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgeconv.errors import EdgeconvError
from edgeconv.files import read_regular
from edgeconv.mcu import emulator
from edgeconv.mcu.cores import CORES, FLASH_SIZE, KERNEL_SETS, Core
from edgeconv.mcu.firmware import STACK_BYTES, build_firmware
from edgeconv.mcu.library import build_library
from edgeconv.mcu.ops import MAX_MCU_MODEL_BYTES, ModelOps, TensorSpec, parse_ops, read_ops
from edgeconv.mcu.sources import PINNED, SourceTree, find_tree
from edgeconv.mcu.toolchain import ToolMissing, check_tools, find_emulator, find_toolchain
from edgeconv.progress import Progress

__all__ = ["CORES", "KERNEL_SETS", "PINNED", "Core", "FirmwareRun", "OpCost", "SourceTree",
           "ToolMissing", "check_tools", "find_tree", "read_ops", "run_firmware"]


@dataclass
class OpCost:
    index: int
    op: str
    instructions: int
    macs: int | None


@dataclass
class FirmwareRun:
    core: str
    kernels: str
    machine: str
    tree: str
    setup_instructions: int
    invoke_instructions: int
    ops: list[OpCost]
    arena_bytes: int
    stack_bytes: int
    static_bytes: int
    runtime_flash_bytes: int
    model_bytes: int
    outputs: list[list[np.ndarray]]
    counter: str
    # Added beyond the brief's API:
    invoke_instructions_each: list[int] = field(default_factory=list)  # one per input
    macs: int = 0
    library_seconds: float = 0.0    # how long the library build took (now or when cached)
    firmware_seconds: float = 0.0   # how long the firmware build took (now or when cached)
    library_built_now: bool = False
    firmware_built_now: bool = False
    run_seconds: float = 0.0        # this emulator run, wall clock
    registrations: tuple[str, ...] = ()


def _check_choice(core: str, kernels: str) -> Core:
    if core not in CORES:
        raise EdgeconvError(f"unknown core '{core}'; choose one of {', '.join(CORES)}")
    if kernels not in KERNEL_SETS:
        raise EdgeconvError(f"unknown kernel set '{kernels}'; choose one of "
                            f"{', '.join(KERNEL_SETS)}")
    return CORES[core]


def _input_bytes(model: ModelOps, inputs: list | None, label: str) -> tuple[bytes, int]:
    """input.bin: each sample's input tensors, in order; zeros when no inputs are given."""
    if inputs is None:
        inputs = [[np.zeros(t.shape, dtype=t.dtype) for t in model.inputs]]
    if len(inputs) == 0:
        raise EdgeconvError(f"no inputs given for {label}: give one or more samples, or None")
    blob = bytearray()
    for n, sample in enumerate(inputs):
        arrays = list(sample) if isinstance(sample, (list, tuple)) else [sample]
        if len(arrays) != len(model.inputs):
            raise EdgeconvError(f"input {n}: {len(arrays)} arrays for the {len(model.inputs)} "
                                f"inputs of {label}")
        for array, spec in zip(arrays, model.inputs):
            blob += _as_tensor(np.asarray(array), spec, n, label)
    return bytes(blob), len(inputs)


def _as_tensor(array: np.ndarray, spec: TensorSpec, n: int, label: str) -> bytes:
    if array.dtype != np.dtype(spec.dtype):
        raise EdgeconvError(f"input {n}: dtype {array.dtype}, but {label} takes {spec.dtype}")
    if array.size != int(np.prod(spec.shape)):
        raise EdgeconvError(f"input {n}: shape {list(array.shape)}, but {label} takes "
                            f"{list(spec.shape)}")
    return np.ascontiguousarray(array).tobytes()


def run_firmware(model: Path, *, core: str, kernels: str = "cmsis-nn",
                 inputs: list[np.ndarray] | None = None, tree: str | Path | None = None,
                 progress: Progress | None = None, arena_bytes: int | None = None,
                 timeout: float | None = None, label: str | None = None,
                 subset: str | None = None) -> FirmwareRun:
    """Run `model` on the emulated `core` with TFLite Micro's `kernels`, on each of `inputs`
    (one zero sample when None), and report instructions, memory and the outputs. `label`
    names the model in messages (the user's name for a private copy the bench made).
    `subset` builds the library from a named subset of the tree's files
    (edgeconv.mcu.subset: the same firmware for the models it covers, a quicker first build)."""
    spec = _check_choice(core, kernels)
    only = None
    if subset is not None:
        from edgeconv.mcu.subset import SUBSETS

        if subset not in SUBSETS:
            raise EdgeconvError(f"unknown source subset '{subset}'; choose one of"
                                f" {', '.join(SUBSETS)}")
        only = SUBSETS[subset][kernels]
    find_toolchain()
    find_emulator()
    model = Path(model)
    shown = label or str(model)
    data = read_regular(model, MAX_MCU_MODEL_BYTES, what="model")
    ops = parse_ops(data, shown)
    ops.check_supported(shown)
    if len(data) > FLASH_SIZE:  # before minutes of library build, not after
        raise EdgeconvError(f"{shown} is {len(data):,} bytes: larger than the emulated flash "
                            f"({FLASH_SIZE:,} bytes), so it cannot be run")
    blob, count = _input_bytes(ops, inputs, shown)
    source = find_tree(kernels, tree)
    progress = progress or Progress()
    library = build_library(core, source, progress, only=only)
    progress.message(f"linking the {core} firmware for {label or model.name}")
    firmware = build_firmware(library, model, data, ops, arena_bytes=arena_bytes)
    with tempfile.TemporaryDirectory(prefix="edgeconv-mcu-") as tmp:
        work = Path(tmp)
        (work / "input.bin").write_bytes(blob)
        started = time.monotonic()
        report = emulator.run(firmware.elf, spec.machine, work,
                              timeout=timeout or 120.0 + 30.0 * count)
        seconds = time.monotonic() - started
        produced = (work / "output.bin").read_bytes()
    outputs = _outputs(ops, report, produced, count, shown)
    stack = max([report.setup_stack, *(s for _, s in report.invokes)])
    if stack >= STACK_BYTES - 256:  # the paint is gone: it may have run into the heap
        raise EdgeconvError(f"{shown} used all of the firmware's {STACK_BYTES:,}-byte stack "
                            f"on the emulated {core}: its figures cannot be trusted")
    per_tick = spec.board.instructions_per_tick
    each = [round(ticks * per_tick) for ticks, _ in report.invokes]
    return FirmwareRun(
        core=core, kernels=kernels, machine=spec.machine, tree=source.label,
        setup_instructions=round(report.setup_ticks * per_tick),
        invoke_instructions=each[0], ops=_op_costs(ops, report, per_tick),
        arena_bytes=report.arena_used_bytes,
        stack_bytes=stack,
        static_bytes=firmware.static_bytes, runtime_flash_bytes=firmware.runtime_flash_bytes,
        model_bytes=len(data), outputs=outputs, counter=emulator.counter(spec.board),
        invoke_instructions_each=each, macs=ops.macs, library_seconds=library.build_seconds,
        firmware_seconds=firmware.build_seconds, library_built_now=library.built_now,
        firmware_built_now=firmware.built_now, run_seconds=round(seconds, 3),
        registrations=firmware.registrations)


def _outputs(ops: ModelOps, report: emulator.Report, produced: bytes, count: int,
             label: str) -> list[list[np.ndarray]]:
    if len(report.invokes) != count:
        raise EdgeconvError(f"the firmware ran {len(report.invokes)} of {count} inputs of {label}")
    took = [report.input_bytes.get(i, -1) for i in range(len(ops.inputs))]
    gave = [int(np.prod(t.shape)) * np.dtype(t.dtype).itemsize for t in ops.inputs]
    if took != gave:  # TFLM's tensors are not what the file says: the inputs were misread
        raise EdgeconvError(f"the firmware's inputs of {label} take {took} bytes, the model's "
                            f"{gave}")
    sizes = [report.output_bytes.get(i, -1) for i in range(len(ops.outputs))]
    expected = [int(np.prod(t.shape)) * np.dtype(t.dtype).itemsize for t in ops.outputs]
    if sizes != expected or len(produced) != sum(sizes) * count:
        raise EdgeconvError(f"the firmware's outputs of {label} are {sizes} bytes, "
                            f"the model's {expected}")
    result, at = [], 0
    for _ in range(count):
        row = []
        for spec, size in zip(ops.outputs, sizes):
            row.append(np.frombuffer(produced[at:at + size], dtype=spec.dtype)
                       .reshape(spec.shape).copy())
            at += size
        result.append(row)
    return result


def _op_costs(ops: ModelOps, report: emulator.Report, per_tick: float) -> list[OpCost]:
    top = [(ticks, tag) for depth, ticks, tag in report.ops if depth == 0]
    if len(top) == len(ops.ops):
        return [OpCost(op.index, op.op, round(ticks * per_tick), op.macs)
                for op, (ticks, _) in zip(ops.ops, top)]
    return [OpCost(i, tag, round(ticks * per_tick), None) for i, (ticks, tag) in enumerate(top)]
