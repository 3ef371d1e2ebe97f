"""The Cortex-M cores edgeconv builds TFLite Micro for, and the QEMU machine emulating each.

Each core runs on one of Arm's FPGA images as QEMU 7.2 models it. The machines differ in
their memory maps, where the core fetches its first vector, and the timer the firmware
reads to count instructions (firmware.py, templates.py, emulator.py), so the map is the
machine's (`Machine`), not one shared constant:

- MPS2 (`mps2-an386` Cortex-M4, `mps2-an500` Cortex-M7): 4 MB of "flash" (ZBT SSRAM) at 0x0
  (the vector table is there), 4 MB of RAM at 0x20000000, the CMSDK APB timer0 at
  0x40000000 counting at 25 MHz.
- MPS3 AN524 (`mps3-an524`, SSE-200 with Cortex-M33) and AN547 (`mps3-an547`, SSE-300 with
  Cortex-M55 and MVE): the core starts in the Secure state, so the firmware lives in the
  Secure alias of the DDR (address bit 28 set): "flash" at 0x70000000, RAM at 0x70400000,
  4 MB each. The core fetches its first vector from the board's boot address (AN524's
  INITSVTOR 0x10000000, the BRAM; AN547's 0x00000000, the ITCM): a two-word boot vector
  is linked there, and the reset handler points VTOR at the full table. Timers: the AN524's
  SSE-200 CMSDK timer0 (Secure alias 0x50000000); the AN547's SSE-300 has no CMSDK timer, so
  its system counter (enabled through CNTCONTROL at 0x58100000, read at 0x58101000). Both
  count at MAINCLK, 32 MHz in QEMU (31.25 instructions per tick under -icount shift=0:
  checked with a loop of 2,000,000 instructions, 64,000 ticks on both). QEMU models the
  SSE-200's CPU0 without FPU and DSP (as on the AN524 FPGA): the machine turns both on
  (`-global sse-200.CPU0_FPU=on -global sse-200.CPU0_DSP=on`), as the M33 parts have them.

"Flash" and RAM are both 4 MB on every machine, so the arena and the overflow messages
are the same whatever the core (the target's own budgets judge the fit).
"""

from __future__ import annotations

from dataclasses import dataclass

KERNEL_SETS = ("cmsis-nn", "reference")

# The emulated memory every machine gives the firmware (bytes): see Machine.
FLASH_SIZE = 4 * 1024 * 1024
RAM_SIZE = 4 * 1024 * 1024


@dataclass(frozen=True)
class Machine:
    """A QEMU machine as the firmware sees it."""

    name: str            # qemu-system-arm -M
    flash_origin: int
    ram_origin: int
    timer: str           # "cmsdk": a CMSDK APB timer (32-bit down-counter); "sse-counter":
                         # the SSE-300 system counter (64-bit up-counter)
    timer_base: int      # the timer's registers (cmsdk) or the counter's read frame
    timer_hz: int        # how fast it counts in QEMU's virtual time
    counter_control: int = 0  # sse-counter: its control frame (CNTCR), enabled at start
    boot_vector: int | None = None  # where the core fetches its first vector, when that is
                                    # not the start of "flash"
    qemu_options: tuple[str, ...] = ()  # more qemu-system-arm options the machine needs

    @property
    def instructions_per_tick(self) -> float:
        """-icount shift=0: one instruction is 1 ns of virtual time."""
        return 1e9 / self.timer_hz


MACHINES: dict[str, Machine] = {m.name: m for m in (
    Machine("mps2-an500", 0x00000000, 0x20000000, "cmsdk", 0x40000000, 25_000_000),
    Machine("mps2-an386", 0x00000000, 0x20000000, "cmsdk", 0x40000000, 25_000_000),
    # QEMU models the SSE-200's CPU0 (the one that boots) as the AN524's is: without FPU and
    # DSP; the parts that matter (STM32U5, RP2350, nRF5340) have both, so they are turned on
    Machine("mps3-an524", 0x70000000, 0x70400000, "cmsdk", 0x50000000, 32_000_000,
            boot_vector=0x10000000,
            qemu_options=("-global", "sse-200.CPU0_FPU=on", "-global", "sse-200.CPU0_DSP=on")),
    Machine("mps3-an547", 0x70000000, 0x70400000, "sse-counter", 0x58101000, 32_000_000,
            counter_control=0x58100000, boot_vector=0x00000000),
)}


@dataclass(frozen=True)
class Core:
    name: str           # "cortex-m7"
    machine: str        # qemu-system-arm -M (a key of MACHINES)
    cpu: str            # -mcpu
    fpu: str            # -mfpu
    float_abi: str      # -mfloat-abi
    description: str
    # Which CMSIS-NN code paths -mcpu turns on (CMSIS-NN picks them from the compiler's
    # __ARM_FEATURE_DSP / __ARM_FEATURE_MVE): "DSP" (SIMD multiply-accumulate, M4/M7/M33),
    # "MVE" (Helium vectors, M55)
    nn_extension: str = "DSP"
    extra_flags: tuple[str, ...] = ()  # a toolchain workaround the core needs (see CORES)

    @property
    def cflags(self) -> tuple[str, ...]:
        return (f"-mcpu={self.cpu}", f"-mfpu={self.fpu}", f"-mfloat-abi={self.float_abi}",
                "-mthumb", *self.extra_flags)

    @property
    def board(self) -> Machine:
        return MACHINES[self.machine]


CORES: dict[str, Core] = {
    "cortex-m7": Core("cortex-m7", "mps2-an500", "cortex-m7", "fpv5-d16", "hard",
                      "Cortex-M7 with double-precision FPU (QEMU mps2-an500)"),
    "cortex-m4": Core("cortex-m4", "mps2-an386", "cortex-m4", "fpv4-sp-d16", "hard",
                      "Cortex-M4F with single-precision FPU (QEMU mps2-an386)"),
    # -mcpu=cortex-m33 has the DSP extension (GCC's default for the core): CMSIS-NN's DSP
    # kernels, as on the M4/M7.
    "cortex-m33": Core("cortex-m33", "mps3-an524", "cortex-m33", "fpv5-sp-d16", "hard",
                       "Cortex-M33 with DSP and single-precision FPU (QEMU mps3-an524)"),
    # -mcpu=cortex-m55 has MVE (integer and float, GCC's default): CMSIS-NN's Helium kernels.
    # No if-conversion: Debian's gcc 12.2 / binutils emit a conditional scalar VCVT in an IT
    # block (`vcvtne.f32.s32`) that the assembler, with MVE on, misreads as MVE's VCVTN and
    # refuses (TFLM's resize_nearest_neighbor.cc). Without if-conversion gcc branches instead.
    "cortex-m55": Core("cortex-m55", "mps3-an547", "cortex-m55", "auto", "hard",
                       "Cortex-M55 with Helium (MVE) and FPU (QEMU mps3-an547)",
                       nn_extension="MVE",
                       extra_flags=("-fno-if-conversion", "-fno-if-conversion2")),
}

# The MPS2 map, kept for callers of the M4/M7-only days (the machine's own is in MACHINES).
FLASH_ORIGIN = MACHINES["mps2-an500"].flash_origin
RAM_ORIGIN = MACHINES["mps2-an500"].ram_origin
