"""The verdict on a point before training: prune only what certainly cannot fit the target.

Each figure is compared by its most favourable reading, so a pruned point is out whatever its
accuracy; a kept point may still miss, which the finalist's firmware bench then shows:

- latency: the LOW end of the band estimated from MACs (edgeconv.fit.footprint) above the
  ceiling;
- RAM: the host planner's arena, less the most it exceeds the board's (HOST_ARENA_EXCESS),
  plus the least stack and static data a firmware takes (RAM_ALLOWANCE_BYTES), above the
  target's SRAM;
- flash: the model file (or its int8 weights, when it was not converted) plus the least flash
  TFLite Micro takes (footprint.RUNTIME_FLASH_LOW_BYTES), above the target's flash;
- an operator TFLite Micro has no kernel for at the precision (edgeconv.kernels), on a
  microcontroller. A file the host planner refused for another reason is kept: the untrained
  file's ranges are not the trained model's.

Targets without budgets (cpu) are judged on latency only, where a figure exists.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from edgeconv.fit.footprint import RUNTIME_FLASH_LOW_BYTES, Footprint, resolve_target

# How much larger the host interpreter's arena (64-bit pointers in TFLite Micro's per-tensor
# and per-node structures) has been than the firmware's on the same file: 0.8-8.8% on
# untrained int8 exports of mobilenet, mobilenetv2, squeezenet, separable-vgg-cifar,
# gap-mnist and fcn-mnist (`python -m edgeconv.fit.footprint_check`), 1.8-6.4% on three of
# the MLPerf Tiny models (docs/bench.md; ad01_int8's 2.6 KB arena: +54%, the same ~1.4 KB
# in bytes, at a size that never decides a fit), never smaller. About 96 B per operator: a
# correction by operator count would be closer, but a floor must not undercut the board.
# The arena is divided by 1 + this before it is compared with SRAM.
HOST_ARENA_EXCESS = 0.10
# The least RAM a firmware takes besides the arena: stack peak 684-1,012 B and static data
# 724-944 B on every model edgeconv has run (docs/mcu.md; footprint_check). A board's own
# firmware (drivers, I/O buffers) takes more; this is a floor.
RAM_ALLOWANCE_BYTES = 1024
KINDS = ("ram", "flash", "latency", "runs")  # what can rule a point out, in message order


@dataclass(frozen=True)
class Verdict:
    candidate: str  # Candidate.key
    precision: str
    footprint: Footprint
    reasons: tuple[str, ...]  # why it cannot fit, one short clause each; empty = kept
    label: str = ""  # Candidate.label, for people ("mobilenet alpha 0.25 at 32x32")
    kinds: tuple[str, ...] = field(default=(), compare=False)  # of KINDS, one per reason

    @property
    def kept(self) -> bool:
        return not self.reasons

    def to_dict(self) -> dict[str, Any]:
        return {"candidate": self.candidate, "label": self.label or self.candidate,
                "precision": self.precision, "kept": self.kept,
                "reasons": list(self.reasons), "kinds": list(self.kinds),
                "footprint": self.footprint.to_dict()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Verdict:
        """A verdict read back from study.json (validated there)."""
        return cls(data["candidate"], data["precision"], Footprint.from_dict(data["footprint"]),
                   tuple(data["reasons"]), data.get("label") or "",
                   tuple(data.get("kinds") or ()))


def judge(candidate, precision: str, fp: Footprint, target,
          max_latency_ms: float | None) -> Verdict:
    """The verdict on (candidate, precision) with footprint `fp` for `target` (a Target or
    its name) under `max_latency_ms` (None: no ceiling)."""
    key, label = _names(candidate)
    found = failures(fp, resolve_target(target), max_latency_ms)
    return Verdict(key, precision, fp, tuple(found.values()), label, tuple(found))


def failures(fp: Footprint, target, max_latency_ms: float | None) -> dict[str, str]:
    """kind -> the clause saying why `fp` certainly cannot fit `target`, for each kind that
    rules it out (in KINDS order)."""
    found: dict[str, str] = {}
    if target.sram_bytes and fp.arena_bytes is not None and board_ram_floor(
            fp.arena_bytes) > target.sram_bytes:
        found["ram"] = f"arena {kib(fp.arena_bytes)} > {kib(target.sram_bytes)} RAM"
    if target.flash_bytes and fp.flash_bytes is not None and fp.flash_bytes > target.flash_bytes:
        what = "model" if fp.model_bytes is not None else "int8 weights"
        found["flash"] = (f"{what} {kib(fp.flash_bytes - RUNTIME_FLASH_LOW_BYTES)} +"
                          f" {kib(RUNTIME_FLASH_LOW_BYTES)} runtime > {kib(target.flash_bytes)}"
                          " flash")
    if fp.latency is not None and max_latency_ms is not None and fp.latency["low"] > max_latency_ms:
        found["latency"] = f"{latency_text(fp.latency)} > {max_latency_ms:g} ms"
    # A planner that failed on the untrained file proves nothing (its ranges are not the
    # trained model's); an operator without a kernel does.
    if fp.unsupported and fp.error is not None and target.kind_info.fit:
        found["runs"] = fp.error[:200]
    return found


def board_ram_floor(arena_bytes: int) -> float:
    """The least RAM a board needs for a file whose host arena is `arena_bytes`."""
    return arena_bytes / (1 + HOST_ARENA_EXCESS) + RAM_ALLOWANCE_BYTES


def nothing_fits_message(verdicts: list[Verdict], target,
                         max_latency_ms: float | None = None) -> str:
    """One line for a space where every point was pruned: the binding constraint (the one
    every point fails, else the one most fail) and the point nearest to meeting it."""
    target = resolve_target(target)
    if not verdicts or any(v.kept for v in verdicts):
        raise ValueError("nothing_fits_message needs verdicts that all pruned their point")
    # the kinds the verdict recorded; a verdict without them is judged again
    kinds = {id(v): v.kinds or tuple(failures(v.footprint, target, max_latency_ms))
             for v in verdicts}
    failed = {kind: [v for v in verdicts if kind in kinds[id(v)]] for kind in KINDS}
    kind = max(KINDS, key=lambda k: (len(failed[k]), -KINDS.index(k)))
    several = len({v.precision for v in verdicts}) > 1

    def named(v: Verdict) -> str:
        return (v.label or v.candidate) + (f", {v.precision}" if several else "")

    name = target.name
    if kind == "ram":
        best = min(failed[kind], key=lambda v: v.footprint.arena_bytes)
        return (f"nothing in the space fits {name}'s {kib(target.sram_bytes)} RAM: the smallest"
                f" arena is {kib(best.footprint.arena_bytes)} ({named(best)})")
    if kind == "flash":
        best = min(failed[kind], key=lambda v: v.footprint.flash_bytes)
        return (f"nothing in the space fits {name}'s {kib(target.flash_bytes)} flash: the"
                f" smallest needs at least {kib(best.footprint.flash_bytes)} with the runtime"
                f" ({named(best)})")
    if kind == "latency":
        best = min(failed[kind], key=lambda v: v.footprint.latency["low"])
        within = f"within {max_latency_ms:g} ms" if max_latency_ms is not None else "fast enough"
        return (f"nothing in the space can run {within} on {name}: the fastest is estimated at"
                f" {latency_text(best.footprint.latency)} ({named(best)})")
    first = failed["runs"][0] if failed["runs"] else verdicts[0]
    return (f"nothing in the space runs on {name}: {first.reasons[0]} ({named(first)})")


def kib(size: float) -> str:
    """Bytes as KiB, as the reasons show them: "310 KiB", "7.5 KiB", "1,024 KiB"."""
    value = size / 1024
    return f"{value:.1f} KiB" if value < 10 else f"{value:,.0f} KiB"


def latency_text(latency: dict[str, Any]) -> str:
    """"~140 ms [110-170]": the estimate's centre and band."""
    from edgeconv.mcu.calibration import significant

    return (f"~{significant(latency['mid'])} ms [{significant(latency['low'])}-"
            f"{significant(latency['high'])}]")


def _names(candidate) -> tuple[str, str]:
    """(key, label) of a Candidate, or of a key given as text."""
    if isinstance(candidate, str):
        return candidate, candidate
    return candidate.key, candidate.label
