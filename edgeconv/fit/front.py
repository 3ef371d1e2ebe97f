"""The answer of a study: the Pareto front of its finalists, the recommended point, and the
one-line verdict.

A point (a finalist, as study.json records it) is judged on four figures: test accuracy
(higher is better), latency (its band's centre; lower), RAM and flash (lower). A figure that
is missing counts as the worst possible: a point is never preferred for what was not
measured. Standard library only.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from edgeconv.fit.record import EMULATED, ESTIMATED, MEASURED

Point = Mapping[str, Any]


def latency_mid(point: Point) -> float | None:
    latency = point.get("latency")
    return None if not latency else float(latency["mid"])


def _objectives(point: Point) -> tuple[float, float, float, float]:
    """All four as "lower is better", missing = infinitely bad."""
    def low(value: Any) -> float:
        return math.inf if value is None else float(value)

    accuracy = point.get("accuracy")
    return (math.inf if accuracy is None else -float(accuracy), low(latency_mid(point)),
            low(point.get("ram_bytes")), low(point.get("flash_bytes")))


def _dominates(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    return all(x <= y for x, y in zip(a, b)) and a != b


def _order(point: Point) -> tuple:
    """Most accurate first; then faster, smaller RAM, smaller flash; the id last (stable)."""
    return (*_objectives(point), str(point.get("id")))


def pareto_front(finalists: list[Point]) -> list[str]:
    """The ids of the points no other point beats on one figure without losing on another;
    points with equal figures are all on it. Ordered by accuracy, most accurate first."""
    scored = [(p, _objectives(p)) for p in finalists]
    front = [p for p, mine in scored
             if not any(_dominates(other, mine) for _, other in scored)]
    return [str(p["id"]) for p in sorted(front, key=_order)]


def _get(request: Any, name: str) -> Any:
    if request is None:
        return None
    return request.get(name) if isinstance(request, Mapping) else getattr(request, name, None)


def misses(point: Point, request: Any) -> list[str]:
    """Why `point` cannot be recommended for `request` (empty: it can), one clause each."""
    out: list[str] = []
    if point.get("fits") is False:  # the bench's verdict on RAM and flash
        out.append("does not fit the board's RAM or flash")
    ceiling = _get(request, "max_latency_ms")
    if ceiling is not None:
        mid = latency_mid(point)
        if mid is None:
            out.append("latency unknown")
        elif mid > ceiling:
            out.append(f"{latency_text(point)} > {_num(ceiling)} ms")
    floor = _get(request, "min_accuracy")
    accuracy = point.get("accuracy")
    if accuracy is None:
        out.append("accuracy unknown")
    elif floor is not None and accuracy < floor:
        out.append(f"{_pct(accuracy)} < {_pct(floor)}")
    return out


def choose(finalists: list[Point], request: Any) -> Point | None:
    """The recommended point: among those that fit the board (fits is not false), meet the
    latency ceiling (the band's centre) and the accuracy floor when given, the most accurate;
    ties go to the lower latency, then the lower RAM. A point whose accuracy (or, under a
    ceiling, latency) is unknown is never recommended. None when no point qualifies."""
    qualified = [p for p in finalists if not misses(p, request)]
    return min(qualified, key=_order) if qualified else None


def why_none(finalists: list[Point], request: Any) -> str:
    """Why `choose` found nothing, in one line naming the nearest miss."""
    if not finalists:
        return "no candidate reached the end of training and its bench (no finalist)"

    def shortfall(point: Point) -> tuple[int, float]:
        # fewer reasons first, then how far off: the latency and accuracy gaps, relative
        gap = 0.0
        ceiling, floor = _get(request, "max_latency_ms"), _get(request, "min_accuracy")
        mid, accuracy = latency_mid(point), point.get("accuracy")
        if ceiling and mid is not None and mid > ceiling:
            gap += mid / ceiling - 1
        if floor and accuracy is not None and accuracy < floor:
            gap += (floor - accuracy) / floor
        return len(misses(point, request)), gap

    nearest = min(finalists, key=lambda p: (*shortfall(p), _order(p)))
    return (f"no finalist meets the request; the nearest, {_name(nearest)}, "
            + ", ".join(misses(nearest, request)))


def study_answer(doc: Mapping[str, Any]) -> str:
    """A study's answer in one line: its recorded verdict; else the winner's verdict line,
    or why there is none (nothing fits, not finished yet, no finalist meets the request)."""
    if doc.get("verdict"):
        return " ".join(str(doc["verdict"]).split())
    finalists = doc.get("finalists") or []
    target = doc["request"]["target"]
    winner = next((p for p in finalists if p["id"] == doc.get("winner")), None)
    if winner is not None:
        return verdict_line(winner, target)
    status = doc.get("status")
    if status == "nothing-fits":
        return (f"nothing in the space fits {target}: every point was pruned before"
                " training")
    if status in ("running", "interrupted"):
        return (f"none yet: the study is {status} ({len(finalists)} finalist(s) so far;"
                " `edgeconv fit --resume` finishes it)")
    return why_none(finalists, doc["request"])


def verdict_line(point: Point, target_name: str) -> str:
    """`mobilenet alpha 0.35 at 64x64, int8: 88.1% [87.4, 88.7], ~62 ms [50-75] on
    nucleo-l4r5zi, 118 KiB RAM, 301 KiB flash`: every figure with how it was obtained, and
    what is missing said so."""
    return ", ".join([
        f"{_name(point)}: {accuracy_text(point)}",
        latency_text(point, target_name),
        _kib(point.get("ram_bytes"), "RAM"),
        _kib(point.get("flash_bytes"), "flash"),
    ])


def accuracy_text(point: Point) -> str:
    accuracy = point.get("accuracy")
    if accuracy is None:
        return "accuracy unknown"
    low, high = point.get("accuracy_low"), point.get("accuracy_high")
    interval = (f" [{low * 100:.1f}, {high * 100:.1f}]"
                if low is not None and high is not None else "")
    return f"{_pct(accuracy)}{interval}"


def latency_text(point: Point, target_name: str | None = None) -> str:
    """`~62 ms [50-75] on T` for an estimate (its band), `0.41 ms on T, measured on this
    host` for a measured median (on this host or on the device), `latency unknown on T`
    without one."""
    on = f" on {target_name}" if target_name else ""
    latency = point.get("latency")
    if not latency:
        return f"latency unknown{on}"
    kind = point.get("latency_kind")
    mid = _ms(latency["mid"])
    if kind in MEASURED:
        return f"{mid} ms{on}, {kind}"
    text = f"~{mid} ms [{_ms(latency['low'])}-{_ms(latency['high'])}]{on}"
    if kind not in (ESTIMATED, EMULATED):  # unrecorded: still an estimate, said so
        text += " (estimate)"
    return text


def _name(point: Point) -> str:
    return f"{point.get('label') or point.get('candidate')}, {point.get('precision')}"


def _pct(fraction: float) -> str:
    return f"{fraction * 100:.1f}%"


def _num(value: float) -> str:
    return f"{value:g}"


def _ms(value: float) -> str:
    """As the issue writes a verdict: whole milliseconds from 10 ms (62, 140), two
    significant digits below (4.7, 0.41): a band of +-20% carries no more."""
    if value >= 10:
        return f"{value:.0f}"
    digits = 1 - math.floor(math.log10(value)) if value > 0 else 2
    return f"{value:.{max(0, digits)}f}"


def _kib(n: int | None, what: str) -> str:
    if n is None:
        return f"{what} unknown"
    kib = n / 1024
    return f"{kib:.0f} KiB {what}" if kib >= 10 else f"{kib:.1f} KiB {what}"
