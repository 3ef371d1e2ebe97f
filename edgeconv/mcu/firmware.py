"""Link one firmware per model: the model's operators only, on a cached libtflm.a.

The firmware (see templates.py) runs the model on every sample in input.bin and prints what
emulator.py reads back. It is cached by (library key, model sha256, arena size, recipe), so a
second run of the same model skips the link.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from edgeconv.errors import EdgeconvError
from edgeconv.mcu import cache, templates
from edgeconv.mcu.cores import CORES, FLASH_SIZE, RAM_SIZE, Machine
from edgeconv.mcu.library import CXX_ONLY, C_ONLY, Library, prefix_map
from edgeconv.mcu.ops import RESOLVER_CALLS, ModelOps
from edgeconv.mcu.toolchain import find_toolchain

RECIPE = 1
STACK_BYTES = 64 * 1024
HEAP_BYTES = 64 * 1024          # newlib's stdio buffers (semihosting files)
STATIC_SLACK = 256 * 1024       # TFLM's, CMSIS-NN's and newlib's own .data/.bss, and more
# The default arena: the RAM that stack, heap and static data leave.
DEFAULT_ARENA = RAM_SIZE - STACK_BYTES - HEAP_BYTES - STATIC_SLACK
ELF, STAMP = "fw.elf", "firmware.json"
# What the linker script puts in flash, the model aside (.comment, .debug_* are not loaded).
_FLASH_SECTIONS = (".isr_vector", ".text", ".ARM.extab", ".ARM.exidx", ".preinit_array",
                   ".init_array", ".fini_array")
_OVERFLOW = re.compile(r"region `(\w+)' overflowed by (\d+) bytes")


@dataclass(frozen=True)
class Firmware:
    elf: Path
    key: str
    arena_capacity: int           # the arena buffer linked in
    runtime_flash_bytes: int      # flash without the model: code, rodata, .data's load copy
    static_bytes: int             # .data + .bss (the arena buffer is in its own section)
    model_bytes: int
    build_seconds: float          # of the cached link (0.0 when nothing was built now)
    registrations: tuple[str, ...]
    built_now: bool = False       # False: taken from the cache


def registrations(model: ModelOps, kernels: str) -> list[str]:
    """One resolver call per distinct op: the int8-only CMSIS-NN kernel where every use of
    the op is int8 (smaller flash: the int16/int4 paths are not linked)."""
    calls = []
    for name in model.op_names:
        if kernels == "cmsis-nn" and model.int8_only(name):
            calls.append(f"{RESOLVER_CALLS[name]}(tflite::Register_{name}_INT8())")
        else:
            calls.append(f"{RESOLVER_CALLS[name]}()")
    return calls


def _sources(model: ModelOps, kernels: str, arena: int, machine: Machine) -> dict[str, str]:
    calls = registrations(model, kernels)
    lines = "\n".join(
        f'  if (resolver.{c} != kTfLiteOk) {{ printf("EDGECONV error cannot register '
        f'{c.split("(")[0]}\\n"); return 1; }}' for c in calls)
    runner = (templates.RUNNER_CC.replace("TIMER_BLOCK", _timer(machine))
              .replace("REGISTRATIONS", lines)
              .replace("NUM_OPS", str(max(1, len(calls))))
              .replace("ARENA_BYTES", f"{arena}u"))
    boot = machine.boot_vector is not None
    link = (templates.LINK_LD
            .replace("BOOT_MEMORY", templates.BOOT_MEMORY_LD if boot else "")
            .replace("BOOT_SECTION", templates.BOOT_SECTION_LD if boot else "")
            .replace("BOOT_ORIGIN", hex(machine.boot_vector or 0))
            .replace("FLASH_ORIGIN", hex(machine.flash_origin))
            .replace("FLASH_SIZE", hex(FLASH_SIZE)).replace("RAM_ORIGIN", hex(machine.ram_origin))
            .replace("RAM_SIZE", hex(RAM_SIZE)).replace("STACK_BYTES", hex(STACK_BYTES))
            .replace("HEAP_BYTES", hex(HEAP_BYTES)))
    startup = (templates.STARTUP_C.replace("SET_VTOR", templates.SET_VTOR_C if boot else "")
               .replace("BOOT_VECTOR", templates.BOOT_VECTOR_C if boot else ""))
    return {"startup.c": startup, "runner.cc": runner, "link.ld": link,
            "model.S": templates.MODEL_S}


def _timer(machine: Machine) -> str:
    """The runner's clock: the machine's timer (cores.Machine), read by Ticks()."""
    block = templates.TIMER_CMSDK if machine.timer == "cmsdk" else templates.TIMER_SSE_COUNTER
    per_tick = machine.instructions_per_tick
    return (block.replace("TIMER_ADDR0", f"0x{machine.timer_base:08x}")
            .replace("TIMER_ADDR4", f"0x{machine.timer_base + 4:08x}")
            .replace("TIMER_ADDR8", f"0x{machine.timer_base + 8:08x}")
            .replace("COUNTER_CONTROL", f"0x{machine.counter_control:08x}")
            .replace("TIMER_HZ", str(machine.timer_hz))
            .replace("TIMER_MHZ", f"{machine.timer_hz / 1e6:g}")
            .replace("TIMER_PER_TICK", f"{per_tick:g}"))


def build_firmware(library: Library, model_path: Path, model_data: bytes, model: ModelOps,
                   *, arena_bytes: int | None = None) -> Firmware:
    model.check_supported(model_path)
    if len(model_data) > FLASH_SIZE:
        raise EdgeconvError(f"{model_path} is {len(model_data):,} bytes: larger than the "
                            f"emulated flash ({FLASH_SIZE:,} bytes), so it cannot be run")
    arena = DEFAULT_ARENA if arena_bytes is None else int(arena_bytes)
    if not 1024 <= arena <= DEFAULT_ARENA:
        raise EdgeconvError(f"arena of {arena:,} bytes: give 1024 to {DEFAULT_ARENA:,} (the "
                            "emulated RAM less stack, heap and static data)")
    files = _sources(model, library.kernels, arena, CORES[library.core].board)
    digest = hashlib.sha256(json.dumps({"recipe": RECIPE, "library": library.key,
                                        "files": files}, sort_keys=True).encode())
    digest.update(hashlib.sha256(model_data).digest())
    key = f"{library.core}-{library.kernels}-{digest.hexdigest()[:20]}"
    built: list[bool] = []

    def build(tmp: Path) -> None:
        built.append(True)
        started = time.monotonic()
        for name, text in files.items():
            (tmp / name).write_text(text)
        (tmp / "model.tflite").write_bytes(model_data)
        _link(library, tmp, model_path, len(model_data))
        flash, static = _sizes(tmp / ELF)
        for leftover in ("startup.o", "runner.o", "model.o", "model.tflite"):  # in fw.elf now
            (tmp / leftover).unlink()
        stamp = {"key": key, "arena_capacity": arena, "runtime_flash_bytes": flash,
                 "static_bytes": static, "model_bytes": len(model_data),
                 "build_seconds": round(time.monotonic() - started, 2),
                 "registrations": registrations(model, library.kernels)}
        (tmp / STAMP).write_text(json.dumps(stamp, indent=2) + "\n")

    folder = cache.entry("fw", key, build, lambda d: (d / STAMP).is_file() and
                         (d / ELF).is_file())
    s = json.loads((folder / STAMP).read_text())
    return Firmware(folder / ELF, key, s["arena_capacity"], s["runtime_flash_bytes"],
                    s["static_bytes"], s["model_bytes"], float(s["build_seconds"]),
                    tuple(s["registrations"]), built_now=bool(built))


def _link(library: Library, tmp: Path, model_path: Path, model_bytes: int) -> None:
    tools = find_toolchain()
    core = CORES[library.core]
    common = [*core.cflags, "-O2", *library.defines, prefix_map(library.tree),
              *library.include_flags]
    steps = [
        [str(tools.gcc), *common, *C_ONLY, "-c", "startup.c", "-o", "startup.o"],
        [str(tools.gxx), *common, *CXX_ONLY, "-c", "runner.cc", "-o", "runner.o"],
        [str(tools.gcc), *core.cflags, "-c", "model.S", "-o", "model.o"],
        [str(tools.gxx), *core.cflags, "-nostartfiles", "-T", "link.ld", "-Wl,--gc-sections",
         "--specs=nano.specs", "--specs=rdimon.specs", "-Wl,-Map=fw.map", "-o", ELF,
         "startup.o", "runner.o", "model.o", str(library.path), "-lm"],
    ]
    for cmd in steps:
        try:  # one file each, or the link: seconds; past this the tool is stuck
            result = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True, timeout=300)
        except subprocess.TimeoutExpired:
            raise EdgeconvError(f"building the firmware for {model_path}: {Path(cmd[0]).name}"
                                " timed out after 300 s") from None
        if result.returncode == 0:
            continue
        text = result.stderr + result.stdout
        over = _OVERFLOW.search(text)
        if over and over.group(1) == "FLASH":
            raise EdgeconvError(
                f"{model_path} ({model_bytes:,} bytes) does not fit the emulated flash "
                f"({FLASH_SIZE:,} bytes) with the TFLite Micro runtime: over by "
                f"{int(over.group(2)):,} bytes")
        if over:
            raise EdgeconvError(f"{model_path}: the firmware's RAM ({RAM_SIZE:,} bytes) "
                                f"overflows by {int(over.group(2)):,} bytes; give a smaller arena")
        # the linker's reason ("undefined reference to `arm_transpose_s8'": a library built
        # from a subset that lacks a file), else the first error line
        first = next((ln for ln in text.splitlines() if "undefined reference" in ln),
                     None) or next((ln for ln in text.splitlines() if "error" in ln.lower()),
                                   text.strip()[:300])
        raise EdgeconvError(f"building the firmware for {model_path} failed: {first.strip()}")


def _sizes(elf: Path) -> tuple[int, int]:
    """(flash without the model, static RAM without arena/heap/stack) from section sizes."""
    tools = find_toolchain()
    try:
        out = subprocess.run([str(tools.size), "-A", str(elf)], capture_output=True,
                             text=True, check=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise EdgeconvError(f"reading the firmware's section sizes failed: {exc}") from None
    sections: dict[str, tuple[int, int]] = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit():
            sections[parts[0]] = (int(parts[1]), int(parts[2]))
    flash = sum(sections.get(name, (0, 0))[0] for name in _FLASH_SECTIONS)
    flash += sections.get(".data", (0, 0))[0]   # its initial values live in flash too
    static = sections.get(".data", (0, 0))[0] + sections.get(".bss", (0, 0))[0]
    return flash, static
