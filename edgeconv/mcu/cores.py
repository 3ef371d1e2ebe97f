"""The Cortex-M cores edgeconv builds TFLite Micro for, and the QEMU machine emulating each.

Both machines are Arm's MPS2 FPGA images as QEMU models them: 4 MB of "flash" (ZBT SSRAM) at
0x0, 4 MB of RAM at 0x20000000, and the CMSDK APB timer0 at 0x40000000 (25 MHz in QEMU),
which the firmware reads to count instructions (see firmware.py).
"""

from __future__ import annotations

from dataclasses import dataclass

KERNEL_SETS = ("cmsis-nn", "reference")


@dataclass(frozen=True)
class Core:
    name: str           # "cortex-m7"
    machine: str        # qemu-system-arm -M
    cpu: str            # -mcpu
    fpu: str            # -mfpu
    float_abi: str      # -mfloat-abi
    description: str

    @property
    def cflags(self) -> tuple[str, ...]:
        return (f"-mcpu={self.cpu}", f"-mfpu={self.fpu}", f"-mfloat-abi={self.float_abi}",
                "-mthumb")


CORES: dict[str, Core] = {
    "cortex-m7": Core("cortex-m7", "mps2-an500", "cortex-m7", "fpv5-d16", "hard",
                      "Cortex-M7 with double-precision FPU (QEMU mps2-an500)"),
    "cortex-m4": Core("cortex-m4", "mps2-an386", "cortex-m4", "fpv4-sp-d16", "hard",
                      "Cortex-M4F with single-precision FPU (QEMU mps2-an386)"),
}

# The MPS2 memory map both machines share (bytes).
FLASH_ORIGIN, FLASH_SIZE = 0x00000000, 4 * 1024 * 1024
RAM_ORIGIN, RAM_SIZE = 0x20000000, 4 * 1024 * 1024
