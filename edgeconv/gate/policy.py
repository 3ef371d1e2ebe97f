"""gate.toml: rules that select artifacts or bench rows by glob and give them budgets.

Everything wrong with a policy (bad TOML, an unknown key, a value of the wrong type or out
of range) is one `EdgeconvError` naming the file, the rule and the field, before any input is
read. Each rule is checked against a closed schema (`edgeconv.schema`) whose specs also
parse the values (sizes, percentages), so what is checked is exactly what is used.
"""

from __future__ import annotations

import fnmatch
import math
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgeconv.errors import EdgeconvError, did_you_mean
from edgeconv.formats import FORMATS, PRECISIONS
from edgeconv.files import read_regular
from edgeconv.schema import Int, Obj, SchemaError, Spec, Str, validate

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

# Selectors: glob patterns (a string or a list of them) on what a manifest / results.json says.
ARTIFACT_SELECTORS = ("model", "artifact", "format", "precision")
ROW_SELECTORS = ("target", "runtime", "threads")  # only bench rows have these
SELECTORS = (*ARTIFACT_SELECTORS, *ROW_SELECTORS)
# Selectors whose values edgeconv defines: a pattern that matches none of them is a typo.
KNOWN_VALUES = {"format": tuple(FORMATS), "precision": tuple(PRECISIONS)}


@dataclass(frozen=True)
class Budget:
    """One kind of limit: what it reads, how it compares, and how its value is written."""

    key: str
    figure: str  # the figure it reads: a results.json row's or a manifest's (gate.evaluate)
    op: str  # ">=", "<=", or "is" (a flag that must be true) / "on" (must_run_on)
    unit: str  # fraction | points | bytes | ms | flag | targets | count | operators
    bench_only: bool  # only a bench row has this figure
    # Under `at_confidence`: the end of the figure's interval the budget is checked on (the
    # pessimistic one: "lower" for a minimum, "upper" for a maximum); None: judged on the
    # point, because the figure is exact (`exact`) or no interval of it is recorded.
    bound: str | None = None
    exact: bool = False
    # The confidences its interval can be had at: None, any (recomputed from the counts);
    # else only these, as recorded (a latency interval needs the timed runs to recompute).
    confidences: tuple[float, ...] | None = None


# What export and bench record: 95% intervals (edgeconv.stats.CONFIDENCE).
RECORDED_CONFIDENCE = 0.95

BUDGETS = {b.key: b for b in (
    Budget("min_accuracy", "accuracy", ">=", "fraction", False, bound="lower"),
    Budget("max_accuracy_drop", "accuracy_drop", "<=", "points", False, bound="upper"),
    Budget("min_agreement", "agreement", ">=", "fraction", False, bound="lower"),
    Budget("min_eval_samples", "eval_samples", ">=", "count", False, exact=True),
    Budget("max_size_bytes", "size_bytes", "<=", "bytes", False, exact=True),
    Budget("max_p50_ms", "p50_ms", "<=", "ms", True, bound="upper",
           confidences=(RECORDED_CONFIDENCE,)),
    Budget("max_p90_ms", "p90_ms", "<=", "ms", True),
    Budget("max_p99_ms", "p99_ms", "<=", "ms", True),
    Budget("max_arena_bytes", "arena_bytes", "<=", "bytes", True, exact=True),
    Budget("max_flash_bytes", "flash_bytes", "<=", "bytes", True, exact=True),
    Budget("must_fit", "fits", "is", "flag", True, exact=True),
    Budget("must_run_on", "runs_on", "on", "targets", False, exact=True),
    # An Ethos-U NPU row (edgeconv.bench.npu): Vela's latency estimate at the NPU clock (an
    # estimate with no interval: judged as recorded), and how many operators Vela left to
    # the CPU (0: the whole graph on the NPU).
    Budget("max_npu_estimate_ms", "npu_estimate_ms", "<=", "ms", True, exact=True),
    Budget("max_cpu_fallback_ops", "cpu_fallback_ops", "<=", "operators", True, exact=True),
    # Output parity with the float reference (manifest artifacts[].output_parity, per output;
    # edgeconv.quant.output_parity defines each): judged on the worst output of the file.
    Budget("min_cosine", "cosine", ">=", "cosine", False),
    Budget("min_snr_db", "snr_db", ">=", "db", False),
    Budget("max_rmse", "rmse", "<=", "output", False),
    Budget("max_abs_diff", "max_abs_diff", "<=", "output", False),
)}
# Budgets on labels: a model exported without labels (no accuracy anywhere in its manifest,
# output parity instead) has no such figure, and they skip it (evaluate.py).
ON_LABELS = ("min_accuracy", "max_accuracy_drop", "min_agreement")
# Budgets on output parity: only a manifest records them (against the float model), so a
# bench-row rule cannot have them.
PARITY = ("min_cosine", "min_snr_db", "max_rmse", "max_abs_diff")
# Budgets on a figure measured on images, so `min_eval_samples` guards them.
ON_IMAGES = (*ON_LABELS, *PARITY)
# Budgets on a latency: an emulated board's time is never judged by them.
LATENCY = tuple(k for k, b in BUDGETS.items() if b.unit == "ms")

# Binary units as device budgets are stated (KiB), SI ones as written (kB); "KB" or "K" is
# ambiguous, so it is refused rather than guessed.
_UNITS = {"": 1, "B": 1, "KiB": 1024, "MiB": 1024**2, "GiB": 1024**3,
          "kB": 1000, "MB": 1000**2, "GB": 1000**3}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*$")

# Bounds: a policy is written by people, so anything beyond these is a mistake (or a file
# crafted to make the gate loop, allocate or overflow).
MAX_POLICY_BYTES = 1024**2
MAX_RULES = 1000
MAX_PATTERNS = 100  # per selector
MAX_TEXT = 200  # characters in a rule name or a pattern
MAX_ROW_THREADS = 65_536  # as results.json bounds a row's threads
# The largest budget per unit (the smallest is 0): a fraction of 1, drop points out of 100,
# a day of latency, a TiB.
LIMITS = {"fraction": 1.0, "points": 100.0, "ms": 86_400_000.0, "bytes": 1024**4,
          "count": 2**53, "operators": 2**53,
          # parity: a cosine of 1 at most (a budget below 0 would pass opposite outputs), an
          # SNR of 1000 dB (float64 resolves about 300), an output difference of 1e30 (the
          # outputs' own unit: logits, pixels, metres)
          "cosine": 1.0, "db": 1000.0, "output": 1e30}
# at_confidence: from a coin toss to 99.9%; 1 would be an infinite interval.
CONFIDENCE_RANGE = (0.5, 0.999)


@dataclass(frozen=True)
class Rule:
    name: str
    selectors: dict[str, tuple[str, ...]]  # key -> glob patterns, any of which matches
    budgets: dict[str, Any]  # key -> limit (float, int bytes, True, or target patterns), in
    # the order the policy wrote them
    # at_confidence: budgets with a `bound` are checked on that end of the figure's interval
    # at this confidence, not on the point; None: on the point
    confidence: float | None = None

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
    data = _read(path)
    for key in data:
        if key != "rule":
            raise EdgeconvError(f"{path}: unknown top-level key {_key(key)}"
                                f"{did_you_mean(key, ['rule'])}; a policy is [[rule]] tables")
    rules = data.get("rule")
    if not isinstance(rules, list) or not rules or not all(isinstance(r, dict) for r in rules):
        raise EdgeconvError(f"{path}: no rules; write at least one [[rule]] table")
    if len(rules) > MAX_RULES:
        raise EdgeconvError(f"{path}: {len(rules)} rules; a policy has at most {MAX_RULES}")
    parsed = tuple(_rule(raw, path, i) for i, raw in enumerate(rules, 1))
    names = [r.name for r in parsed]
    for name in names:
        if names.count(name) > 1:
            raise EdgeconvError(f"{path}: two rules are named '{name}'; names must be unique"
                                " (they name the checks in reports)")
    return Policy(path=path, rules=parsed)


def _read(path: Path) -> dict[str, Any]:
    """The parsed TOML of a regular file of at most MAX_POLICY_BYTES (never a FIFO, which
    would block, a device or /proc)."""
    if not path.exists():
        raise EdgeconvError(f"policy {path} not found; pass --policy FILE (see docs/gate.md)")
    raw = read_regular(path, MAX_POLICY_BYTES)
    try:
        return tomllib.loads(raw.decode())
    except RecursionError:
        raise EdgeconvError(f"{path}: not valid TOML (nested too deeply)") from None
    # ValueError: TOMLDecodeError, and integers beyond Python's 4300-digit limit
    except (UnicodeDecodeError, ValueError) as exc:
        raise EdgeconvError(f"{path}: not valid TOML ({' '.join(str(exc).split())})") from None


def _rule(raw: dict[str, Any], path: Path, number: int) -> Rule:
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip():
        raise EdgeconvError(f"{path}: rule {number}: needs a name = \"...\"")
    validate({"name": name}, Obj({"name": _NAME}), f"{path}: rule {number}")
    where = f"{path}: rule '{name}'"
    validate(raw, RULE, where)  # closed: an unknown key is refused with the closest one
    selectors = {k: RULE.fields[k].check(v, k) for k, v in raw.items() if k in SELECTORS}
    budgets = {k: RULE.fields[k].check(v, k) for k, v in raw.items() if k in BUDGETS}
    confidence = (RULE.fields["at_confidence"].check(raw["at_confidence"], "at_confidence")
                  if "at_confidence" in raw else None)
    for key, patterns in selectors.items():
        _known(key, patterns, f"{where}: {key}")
    if not budgets:
        raise EdgeconvError(f"{where}: no budget; set one of {', '.join(BUDGETS)}")
    if confidence is not None:
        _confidence_applies(budgets, confidence, where)
    rule = Rule(name=name, selectors=selectors, budgets=budgets, confidence=confidence)
    if rule.on_rows and "must_run_on" in budgets:
        raise EdgeconvError(f"{where}: must_run_on checks exported artifacts; put it in a rule"
                            " without target/runtime/threads or latency/arena/flash budgets")
    parity = [k for k in budgets if k in PARITY]
    if rule.on_rows and parity:
        raise EdgeconvError(f"{where}: {', '.join(parity)} judge{'s' if len(parity) == 1 else ''}"
                            " the output parity with the float model that manifest.json"
                            " records (output_parity); bench rows have none: put"
                            f" {'it' if len(parity) == 1 else 'them'} in a rule without"
                            " target/runtime/threads or latency/arena/flash budgets")
    if rule.on_rows and confidence is not None and "max_accuracy_drop" in budgets:
        # it could never decide: only manifest.json holds the paired comparison
        raise EdgeconvError(f"{where}: max_accuracy_drop at_confidence is judged on the paired"
                            " comparison with the float model that manifest.json records"
                            " (versus_float); bench rows have none: put it in a rule without"
                            " target/runtime/threads or latency/arena/flash budgets")
    return rule


def _confidence_applies(budgets: dict[str, Any], confidence: float, where: str) -> None:
    """at_confidence must have a budget to act on, and each such budget an interval that can
    be had at that confidence: a latency interval is recorded at 95% only."""
    bounded = [k for k in budgets if BUDGETS[k].bound]
    if not bounded:
        judged = [k for k, b in BUDGETS.items() if b.bound]
        raise EdgeconvError(f"{where}: at_confidence has no budget to act on ("
                            f"{', '.join(budgets)} {'is' if len(budgets) == 1 else 'are'}"
                            f" judged on the point); it applies to {', '.join(judged)}")
    for key in bounded:
        allowed = BUDGETS[key].confidences
        if allowed is not None and not any(math.isclose(confidence, c) for c in allowed):
            raise EdgeconvError(
                f"{where}: at_confidence {confidence:g} cannot judge {key}: its interval is"
                f" recorded at {' or '.join(f'{c:g}' for c in allowed)} only and needs the"
                " timed runs to be recomputed; use at_confidence = 0.95 or move the latency"
                " budget to a rule of its own")


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


# --- the rule schema: each spec checks a value and returns it parsed ------------------------


def _refuse(where: str, text: str, value: Any) -> SchemaError:
    return SchemaError(where, text, message=f"{text}; got {_got(value)}")


def _got(value: Any) -> str:
    try:
        text = repr(value)
    except ValueError:  # an integer past Python's 4300-digit limit
        return "a number too long to show"
    return text if len(text) <= 60 else text[:57] + "..."


_NAME = Str(max_len=MAX_TEXT, pattern=r"[^\x00-\x1f\x7f]*",
            expected=f"one line of at most {MAX_TEXT} characters")
_PATTERN = Str(max_len=MAX_TEXT, allow_empty=False, pattern=r"[^\x00-\x1f\x7f]*")


@dataclass
class Patterns(Spec):
    """A glob pattern or a list of them -> a tuple of patterns. `threads` may be numbers
    too (results.json has them as numbers)."""

    numbers: bool = False

    def check(self, value: Any, where: str) -> tuple[str, ...]:
        items = value if isinstance(value, list) else [value]
        item = Int(min=1, max=MAX_ROW_THREADS) if self.numbers else None
        ok = 1 <= len(items) <= MAX_PATTERNS and all(
            _fits(_PATTERN, v) or (item is not None and _fits(item, v)) for v in items)
        if not ok:
            raise _refuse(where, f"takes a glob pattern or a list of them (at most"
                                 f" {MAX_PATTERNS}, one line each), e.g. \"*int8*\"", value)
        return tuple(str(v) for v in items)


@dataclass
class Limit(Spec):
    """A budget's value -> what evaluate compares with: a float (fraction, points, ms),
    bytes as an int, True (must_fit), or target patterns (must_run_on)."""

    budget: Budget | None = None

    def check(self, value: Any, where: str) -> Any:
        unit = self.budget.unit
        if unit == "flag":
            if value is not True:
                raise _refuse(where, "takes true (leave it out to not check)", value)
            return True
        if unit == "targets":
            return Patterns().check(value, where)
        if unit == "bytes":
            try:
                return _size(value)
            except ValueError as exc:
                raise _refuse(where, str(exc), value) from None
        if unit == "count":  # min_eval_samples: a whole number of images
            if isinstance(value, bool) or not isinstance(value, int) \
                    or not 1 <= value <= LIMITS["count"]:
                raise _refuse(where, f"takes a whole number of images from 1 to"
                                     f" {LIMITS['count']:,}", value)
            return value
        if unit == "operators":  # max_cpu_fallback_ops: 0 (all on the NPU) or more
            if isinstance(value, bool) or not isinstance(value, int) \
                    or not 0 <= value <= LIMITS["operators"]:
                raise _refuse(where, "takes a whole number of operators (0: every operator on"
                                     " the NPU)", value)
            return value
        number = value
        if isinstance(value, str) and unit == "fraction" and value.strip().endswith("%"):
            try:
                number = float(value.strip()[:-1]) / 100
            except ValueError:
                raise _refuse(where, "is not a percentage (\"97%\") or a fraction (0.97)",
                              value) from None
        high = LIMITS[unit]
        if isinstance(number, bool) or not isinstance(number, (int, float)) \
                or not _in_range(number, high):
            if unit == "fraction" and _in_range(number, 100.0) and number > 1:
                raise _refuse(where, "is a fraction of 1 as in manifest.json (0.97, or"
                                     " \"97%\")", value)
            top = f"{high:,.0f}" if high < 1e12 else f"{high:g}"
            raise _refuse(where, f"takes a number >= 0 and <= {top}"
                                 f" ({_UNIT_WORDS.get(unit, unit)})", value)
        return float(number)


_UNIT_WORDS = {"cosine": "a cosine similarity", "db": "decibels",
               "output": "in the model output's own unit"}


@dataclass
class Confidence(Spec):
    """at_confidence: a fraction (0.95) or a percentage ("95%") in CONFIDENCE_RANGE."""

    def check(self, value: Any, where: str) -> float:
        number = value
        if isinstance(value, str) and value.strip().endswith("%"):
            try:
                number = float(value.strip()[:-1]) / 100
            except ValueError:
                number = None
        low, high = CONFIDENCE_RANGE
        if not _in_range(number, 1.0) or not low <= float(number) <= high:
            raise _refuse(where, f"takes a confidence from {low:g} to {high:g} (0.95, or"
                                 " \"95%\"); export and bench record 0.95", value)
        return float(number)


def _in_range(number: Any, high: float) -> bool:
    """A finite number from 0 to `high` (NaN and a 400-digit integer are not)."""
    if isinstance(number, bool) or not isinstance(number, (int, float)):
        return False
    try:
        as_float = float(number)
    except OverflowError:
        return False
    return math.isfinite(as_float) and 0 <= as_float <= high


def _fits(spec: Spec, value: Any) -> bool:
    try:
        spec.check(value, "")
    except SchemaError:
        return False
    return True


RULE = Obj(fields={"name": _NAME,
                   **{k: Patterns(numbers=k == "threads") for k in SELECTORS},
                   **{k: Limit(b) for k, b in BUDGETS.items()},
                   "at_confidence": Confidence()},
           required=("name",), closed=True)


def _size(value: Any) -> int:
    """Bytes from an integer or a string like "80 KiB"; ValueError saying what is wrong."""
    hint = 'takes bytes (81920) or a size like "80 KiB", "2 MiB", "64 kB"'
    if isinstance(value, int) and not isinstance(value, bool):
        size = value
    else:
        match = _SIZE.match(value) if isinstance(value, str) and len(value) <= 100 else None
        if match is None:
            raise ValueError(hint)
        if match.group(2) not in _UNITS:
            raise ValueError(f"has an unknown unit '{match.group(2)}' (B; KiB, MiB, GiB"
                             " = 1024-based; kB, MB, GB = 1000-based)")
        size = float(match.group(1)) * _UNITS[match.group(2)]
    if not _in_range(size, LIMITS["bytes"]):
        raise ValueError(f"{hint}, from 0 to 1 TiB")
    return round(size)


def parse_size(value: Any, where: str = "size") -> int:
    """Bytes from an integer or a string like "80 KiB", "1.5 MiB", "64 kB"."""
    try:
        return _size(value)
    except ValueError as exc:
        raise EdgeconvError(f"{where} {exc}; got {_got(value)}") from None


def _key(key: str) -> str:
    return repr(key) if isinstance(key, str) else str(key)
