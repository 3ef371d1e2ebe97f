"""The emulated boards as data: what differs between an emulated Pi 4 and Pi 5 is the CPU
model qemu emulates and the /proc/cpuinfo their programs read; the Debian root is the same.

Figures: ARM's Main ID register values for the cores (implementer 0x41 = Arm; part 0xd08 =
Cortex-A72, 0xd0b = Cortex-A76) and the feature flags a Pi's kernel prints (docs/board.md).
"""

from __future__ import annotations

from dataclasses import dataclass

from edgeconv.errors import EdgeconvError, did_you_mean

# What every board's root is made of. Bump RECIPE when the root changes: a board built by
# another recipe is stale (`board list` says so, `start` refuses it, `create` rebuilds it).
RECIPE = 1
SUITE = "bookworm"  # Raspberry Pi OS 12 is bookworm too: the same Python (3.11) and glibc
ARCH = "arm64"
PACKAGES = ("python3", "python3-venv", "ca-certificates", "openssh-server",
            "openssh-sftp-server")
VENV = "/opt/edgeconv"  # where a user would put it on a Pi; the runtime-only extra inside
EXTRA = "litert"  # pip install 'edgeconv[litert]': numpy, typer, rich, ai-edge-litert


@dataclass(frozen=True)
class BoardSpec:
    name: str
    target: str  # the edgeconv target it stands in for (targets/NAME.toml)
    cpu: str  # as the target file names it
    qemu_cpu: str  # QEMU_CPU: never qemu's default `max` (SME: XNNPACK's int8 is garbage)
    features: str  # cpuinfo `Features`
    variant: str  # cpuinfo `CPU variant`
    part: str  # cpuinfo `CPU part`
    revision: int  # cpuinfo `CPU revision`

    def cpuinfo(self, cpus: int) -> str:
        """The /proc/cpuinfo an aarch64 kernel prints, one block per CPU: the cpuinfo library
        in XNNPACK reads it (the host's x86 text makes LiteRT crash or skip XNNPACK)."""
        block = ("processor\t: {n}\nBogoMIPS\t: 108.00\nFeatures\t: {features}\n"
                 "CPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: {variant}\n"
                 "CPU part\t: {part}\nCPU revision\t: {revision}\n\n")
        return "".join(block.format(n=n, features=self.features, variant=self.variant,
                                    part=self.part, revision=self.revision)
                       for n in range(max(1, cpus)))


BOARDS: dict[str, BoardSpec] = {spec.name: spec for spec in (
    BoardSpec("rpi4", target="rpi4", cpu="Cortex-A72", qemu_cpu="cortex-a72",
              features="fp asimd evtstrm crc32 cpuid", variant="0x0", part="0xd08",
              revision=3),
    BoardSpec("rpi5", target="rpi5", cpu="Cortex-A76", qemu_cpu="cortex-a76",
              features="fp asimd evtstrm crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc"
                       " dcpop asimddp", variant="0x4", part="0xd0b", revision=1),
)}


def get_spec(name: str) -> BoardSpec:
    """The board called `name`, or one line naming the boards there are."""
    try:
        return BOARDS[name]
    except KeyError:
        raise EdgeconvError(f"unknown board '{name}'{did_you_mean(name, BOARDS)}"
                            f" (boards: {', '.join(BOARDS)})") from None
