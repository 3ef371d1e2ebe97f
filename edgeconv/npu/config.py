"""An Ethos-U configuration as a target names it, checked against what Vela knows.

A target with an NPU says (targets/*.toml, `[npu]`):

    accelerator = "ethos-u55-128"                 # Vela's --accelerator-config
    system_config = "Ethos_U55_High_End_Embedded" # a section of Vela's vela.ini
    memory_mode = "Shared_Sram"                   # a section of Vela's vela.ini
    clock_mhz = 400                               # the NPU's clock on this part

Vela's system configurations carry their own `core_clock` (500 MHz for the U55 High-End
one); a part runs its NPU at its own clock, so the compile uses a configuration file of ours
holding the named sections' settings under the same names, with `core_clock` set to the
target's clock. Its latency and bandwidth figures are then the part's, and Vela's summary
file states the same latency the bench prints. (The same names matter: Vela 5.2 gives a
slightly different cycle count for identical settings under another section name.)

Standard library only: the target loader imports it, Vela need not be installed for that.
"""

from __future__ import annotations

import configparser
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from edgeconv.errors import EdgeconvError, did_you_mean

# Vela 5.2's --accelerator-config choices (`vela --help`).
ACCELERATORS = ("ethos-u55-32", "ethos-u55-64", "ethos-u55-128", "ethos-u55-256",
                "ethos-u65-256", "ethos-u65-512", "ethos-u85-128", "ethos-u85-256",
                "ethos-u85-512", "ethos-u85-1024", "ethos-u85-2048")


@dataclass(frozen=True)
class NpuConfig:
    accelerator: str
    system_config: str
    memory_mode: str
    clock_mhz: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NpuConfig:
        return cls(str(data["accelerator"]), str(data["system_config"]),
                   str(data["memory_mode"]), float(data["clock_mhz"]))

    @property
    def label(self) -> str:
        """ethos-u55-128, Ethos_U55_High_End_Embedded, Shared_Sram, 400 MHz"""
        return (f"{self.accelerator}, {self.system_config}, {self.memory_mode},"
                f" {self.clock_mhz:g} MHz")


def sections(ini: Path) -> tuple[list[str], list[str]]:
    """(system configurations, memory modes) a Vela configuration file defines."""
    parser = configparser.ConfigParser()
    try:
        parser.read_string(ini.read_text())
    except (OSError, configparser.Error) as exc:
        raise EdgeconvError(f"cannot read Vela's configuration file {ini}: {exc}") from None
    systems = [s.split(".", 1)[1] for s in parser.sections() if s.startswith("System_Config.")]
    modes = [s.split(".", 1)[1] for s in parser.sections() if s.startswith("Memory_Mode.")]
    return systems, modes


def check(config: NpuConfig, ini: Path, where: str) -> None:
    """One line naming the bad field and the names Vela knows, before any compile."""
    if config.accelerator not in ACCELERATORS:
        raise EdgeconvError(f"{where}: accelerator '{config.accelerator}' is not one Vela"
                            f" knows{did_you_mean(config.accelerator, ACCELERATORS)};"
                            f" choose from {', '.join(ACCELERATORS)}")
    systems, modes = sections(ini)
    for field, name, known in (("system_config", config.system_config, systems),
                               ("memory_mode", config.memory_mode, modes)):
        if name not in known:
            raise EdgeconvError(f"{where}: {field} '{name}' is not in Vela's configuration"
                                f" file{did_you_mean(name, known)}; choose from"
                                f" {', '.join(known)}")
    if not config.clock_mhz > 0:
        raise EdgeconvError(f"{where}: clock_mhz must be a number of MHz above 0")


def our_ini(config: NpuConfig, ini: Path) -> str:
    """The configuration file the compile uses, standing alone: the named system
    configuration's settings (its `inherit` chain resolved here) at the target's NPU clock,
    and the named memory mode's, each under its own name."""
    parser = configparser.ConfigParser()
    parser.optionxform = str  # Vela's keys are case-sensitive (Sram_clock_scale)
    parser.read_string(ini.read_text())
    out = [f"; written by edgeconv: {config.system_config} at {config.clock_mhz:g} MHz"]
    for kind, name in (("System_Config", config.system_config),
                       ("Memory_Mode", config.memory_mode)):
        values = _resolved(parser, f"{kind}.{name}")
        if kind == "System_Config":
            values["core_clock"] = f"{config.clock_mhz * 1e6:.0f}"
        out.append(f"[{kind}.{name}]")
        out.extend(f"{key}={value}" for key, value in values.items())
    return "\n".join(out) + "\n"


def _resolved(parser: configparser.ConfigParser, section: str) -> dict[str, str]:
    """A section's settings with what it inherits (a parent first, the section's own last)."""
    chain, seen = [], set()
    while section and section not in seen and parser.has_section(section):
        seen.add(section)
        chain.append(section)
        section = parser.get(section, "inherit", fallback="")
    values: dict[str, str] = {}
    for name in reversed(chain):
        values.update({k: v for k, v in parser.items(name) if k != "inherit"})
    return values
