"""gate.toml: rules that select artifacts or bench rows by glob and give them budgets.

Everything wrong with a policy (bad TOML, an unknown key, a value of the wrong type) is one
`EdgeconvError` naming the file and the rule, before any input is read.
"""

from __future__ import annotations

import fnmatch
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgeconv.errors import EdgeconvError, did_you_mean
from edgeconv.formats import FORMATS, PRECISIONS

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

# Selectors: glob patterns (a string or a list of them) on what a manifest / results.json says.
ARTIFACT_SELECTORS = ("model", "artifact", "format", "precision")
ROW_SELECTORS = ("target", "runtime", "threads")  # only bench rows have these
# Selectors whose values edgeconv defines: a pattern that matches none of them is a typo.
KNOWN_VALUES = {"format": tuple(FORMATS), "precision": tuple(PRECISIONS)}


@dataclass(frozen=True)
class Budget:
    """One kind of limit: what it reads, how it compares, and how its value is written."""

    key: str
    figure: str  # the figure it reads: a results.json row's or a manifest's (gate.evaluate)
    op: str  # ">=", "<=", or "is" (a flag that must be true) / "on" (must_run_on)
    unit: str  # fraction | points | bytes | ms | flag | targets
    bench_only: bool  # only a bench row has this figure


BUDGETS = {b.key: b for b in (
    Budget("min_accuracy", "accuracy", ">=", "fraction", False),
    Budget("max_accuracy_drop", "accuracy_drop", "<=", "points", False),
    Budget("min_agreement", "agreement", ">=", "fraction", False),
    Budget("max_size_bytes", "size_bytes", "<=", "bytes", False),
    Budget("max_p50_ms", "p50_ms", "<=", "ms", True),
    Budget("max_p90_ms", "p90_ms", "<=", "ms", True),
    Budget("max_p99_ms", "p99_ms", "<=", "ms", True),
    Budget("max_arena_bytes", "arena_bytes", "<=", "bytes", True),
    Budget("max_flash_bytes", "flash_bytes", "<=", "bytes", True),
    Budget("must_fit", "fits", "is", "flag", True),
    Budget("must_run_on", "runs_on", "on", "targets", False),
)}
RULE_KEYS = ("name", *ARTIFACT_SELECTORS, *ROW_SELECTORS, *BUDGETS)

# Binary units as device budgets are stated (KiB), SI ones as written (kB); "KB" or "K" is
# ambiguous, so it is refused rather than guessed.
_UNITS = {"": 1, "B": 1, "KiB": 1024, "MiB": 1024**2, "GiB": 1024**3,
          "kB": 1000, "MB": 1000**2, "GB": 1000**3}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*$")


@dataclass(frozen=True)
class Rule:
    name: str
    selectors: dict[str, tuple[str, ...]]  # key -> glob patterns, any of which matches
    budgets: dict[str, Any]  # key -> limit (float, int bytes, True, or target patterns), in
    # the order the policy wrote them

    @property
    def on_rows(self) -> bool:
        """A rule about bench rows (names a target/runtime/threads or a bench-only budget);
        otherwise it checks the exported artifacts."""
        return (any(k in self.selectors for k in ROW_SELECTORS)
                or any(BUDGETS[k].bench_only for k in self.budgets))


@dataclass(frozen=True)
class Policy:
    path: Path
    rules: tuple[Rule, ...]


def load_policy(path: str | Path) -> Policy:
    path = Path(path)
    if not path.is_file():
        raise EdgeconvError(f"policy {path} not found; pass --policy FILE (see docs/gate.md)")
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise EdgeconvError(f"{path}: not valid TOML ({' '.join(str(exc).split())})") from None
    for key in data:
        if key != "rule":
            raise EdgeconvError(f"{path}: unknown top-level key '{key}'"
                                f"{did_you_mean(key, ['rule'])}; a policy is [[rule]] tables")
    rules = data.get("rule")
    if not isinstance(rules, list) or not rules or not all(isinstance(r, dict) for r in rules):
        raise EdgeconvError(f"{path}: no rules; write at least one [[rule]] table")
    parsed = tuple(_rule(raw, f"{path}: rule {i}", path) for i, raw in enumerate(rules, 1))
    names = [r.name for r in parsed]
    for name in names:
        if names.count(name) > 1:
            raise EdgeconvError(f"{path}: two rules are named '{name}'; names must be unique"
                                " (they name the checks in reports)")
    return Policy(path=path, rules=parsed)


def _rule(raw: dict[str, Any], where: str, path: Path) -> Rule:
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip():
        raise EdgeconvError(f"{where}: needs a name = \"...\"")
    where = f"{path}: rule '{name}'"
    selectors: dict[str, tuple[str, ...]] = {}
    budgets: dict[str, Any] = {}
    for key, value in raw.items():
        if key == "name":
            continue
        if key not in RULE_KEYS:
            raise EdgeconvError(f"{where}: unknown key '{key}'{did_you_mean(key, RULE_KEYS)}")
        if key in BUDGETS:
            budgets[key] = _limit(BUDGETS[key], value, f"{where}: {key}")
        else:
            selectors[key] = _patterns(value, f"{where}: {key}", numbers=key == "threads")
            _known(key, selectors[key], f"{where}: {key}")
    if not budgets:
        raise EdgeconvError(f"{where}: no budget; set one of {', '.join(BUDGETS)}")
    rule = Rule(name=name, selectors=selectors, budgets=budgets)
    if rule.on_rows and "must_run_on" in budgets:
        raise EdgeconvError(f"{where}: must_run_on checks exported artifacts; put it in a rule"
                            " without target/runtime/threads or latency/arena/flash budgets")
    return rule


def _patterns(value: Any, where: str, numbers: bool = False) -> tuple[str, ...]:
    """Glob patterns; `threads` may be numbers too (results.json has them as numbers)."""
    items = value if isinstance(value, list) else [value]
    kinds = (str, int) if numbers else (str,)
    if not items or not all(isinstance(v, kinds) and not isinstance(v, bool) for v in items):
        raise EdgeconvError(f"{where}: takes a glob pattern or a list of them, e.g. \"*int8*\";"
                            f" got {value!r}")
    return tuple(str(v) for v in items)


def _known(key: str, patterns: tuple[str, ...], where: str) -> None:
    """A format or precision pattern must match one edgeconv makes: "int9" would select
    nothing, so it is refused with the policy rather than found out after the inputs."""
    known = KNOWN_VALUES.get(key)
    if known is None:
        return
    for pattern in patterns:
        if not any(fnmatch.fnmatchcase(name, pattern) for name in known):
            raise EdgeconvError(f"{where}: '{pattern}' matches no {key} edgeconv knows"
                                f"{did_you_mean(pattern, known)} ({', '.join(known)})")


def _limit(budget: Budget, value: Any, where: str) -> Any:
    if budget.unit == "flag":
        if value is not True:
            raise EdgeconvError(f"{where}: takes true (leave it out to not check); got {value!r}")
        return True
    if budget.unit == "targets":
        return _patterns(value, where)
    if budget.unit == "bytes":
        return parse_size(value, where)
    if isinstance(value, str) and budget.unit == "fraction" and value.strip().endswith("%"):
        value = _number(value.strip()[:-1], where) / 100
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise EdgeconvError(f"{where}: takes a number >= 0; got {value!r}")
    if budget.unit == "fraction" and value > 1:
        raise EdgeconvError(f"{where}: is a fraction of 1 as in manifest.json (0.97, or"
                            f" \"97%\"); got {value!r}")
    return float(value)


def _number(text: str, where: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise EdgeconvError(f"{where}: '{text}%' is not a percentage") from None


def parse_size(value: Any, where: str = "size") -> int:
    """Bytes from an integer or a string like "80 KiB", "1.5 MiB", "64 kB"."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    match = _SIZE.match(value) if isinstance(value, str) else None
    if match is None or match.group(2) not in _UNITS:
        hint = 'write bytes (81920) or a size like "80 KiB", "2 MiB", "64 kB"'
        if match is not None:
            hint = f"unknown unit '{match.group(2)}': {hint} (KiB = 1024, kB = 1000)"
        raise EdgeconvError(f"{where}: {hint}; got {value!r}")
    return round(float(match.group(1)) * _UNITS[match.group(2)])
