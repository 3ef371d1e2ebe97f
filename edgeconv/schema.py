"""One small validator for every document edgeconv reads back: manifest.json, results.json,
train.json and train state, target TOML files, gate policies.

A schema is built from a few specs (`Str`, `Int`, `Num`, `Bool`, `Opt`, `ListOf`, `DictOf`,
`Obj`, `RelPath`, `AnyValue`); `validate(document, spec, source)` checks a parsed document
and raises one EdgeconvError line naming the file, the field and what was expected:

    runs/x/manifest.json: artifacts[2].path must be a relative path inside the folder; got '../a'

Standard library only (a device install reads manifests too). Numbers are finite unless a
spec says otherwise, bool is never accepted as a number, strings never hold a line break
(they end up in one-line messages and tables; free text a program wrote, like a runtime's
error, may, and its reader folds it onto one line), and containers have size limits, so a
crafted document cannot make a reader loop or allocate without bound.

The documents themselves are read through edgeconv.files (`read_regular`): a regular file of
bounded size, never a FIFO, a device or a /proc file.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from edgeconv.errors import EdgeconvError, did_you_mean

MAX_ITEMS = 100_000  # any list or object in a document
MAX_STR = 100_000  # characters in any string


class SchemaError(ValueError):
    """Where in the document (a path like `artifacts[2].path`) and what was expected."""

    def __init__(self, where: str, expected: str, got: Any = None, *,
                 message: str | None = None) -> None:
        text = message or f"must be {expected}; got {_show(got)}"
        super().__init__(f"{where or 'the document'} {text}")
        self.where, self.expected = where, expected


class Spec:
    expected = "a value"

    def check(self, value: Any, where: str) -> Any:
        return value

    def __call__(self, value: Any, where: str = "") -> Any:
        return self.check(value, where)


@dataclass
class AnyValue(Spec):
    expected: str = "any value"


@dataclass
class Str(Spec):
    choices: tuple[str, ...] | None = None
    pattern: str | None = None  # a regular expression the whole string must match
    max_len: int = MAX_STR
    allow_empty: bool = True
    expected: str = "a string"
    # False: free text a program wrote (an error, a note) may span lines; its reader folds it
    one_line: bool = True

    def check(self, value: Any, where: str) -> Any:
        if not isinstance(value, str):
            raise SchemaError(where, self._what(), value)
        if self.choices is not None and value not in self.choices:
            hint = did_you_mean(value, self.choices)
            raise SchemaError(where, f"one of {', '.join(self.choices)}{hint}", value)
        if len(value) > self.max_len or (self.one_line and ("\n" in value or "\r" in value)) \
                or (not value and not self.allow_empty) \
                or (self.pattern is not None and not re.fullmatch(self.pattern, value)):
            raise SchemaError(where, self._what(), value)
        return value

    def _what(self) -> str:
        if self.choices is not None:
            return f"one of {', '.join(self.choices)}"
        extra = " (one line)" if self.expected == "a string" and self.one_line else ""
        return self.expected + extra


@dataclass
class Int(Spec):
    min: int | None = None
    max: int | None = None
    expected: str = "an integer"

    def check(self, value: Any, where: str) -> Any:
        if isinstance(value, bool) or not isinstance(value, int):
            raise SchemaError(where, self._what(), value)
        if (self.min is not None and value < self.min) or (self.max is not None
                                                            and value > self.max):
            raise SchemaError(where, self._what(), value)
        return value

    def _what(self) -> str:
        return self.expected + _range(self.min, self.max)


@dataclass
class Num(Spec):
    min: float | None = None
    max: float | None = None
    finite: bool = True
    expected: str = "a number"
    nan: bool = False  # True: NaN too (a loss a diverged training run logged)

    def check(self, value: Any, where: str) -> Any:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise SchemaError(where, self._what(), value)
        try:
            as_float = float(value)
        except OverflowError:  # a 400-digit integer
            raise SchemaError(where, self._what(), value) from None
        if self.nan and math.isnan(as_float):
            return value
        if (self.finite and not math.isfinite(as_float)) or math.isnan(as_float) \
                or (self.min is not None and as_float < self.min) \
                or (self.max is not None and as_float > self.max):
            raise SchemaError(where, self._what(), value)
        return value

    def _what(self) -> str:
        return ("a finite number" if self.finite else self.expected) + _range(self.min,
                                                                              self.max)


@dataclass
class Bool(Spec):
    expected: str = "true or false"

    def check(self, value: Any, where: str) -> Any:
        if not isinstance(value, bool):
            raise SchemaError(where, self.expected, value)
        return value


@dataclass
class Opt(Spec):
    """`inner`, or null / absent."""

    inner: Spec = field(default_factory=AnyValue)

    def check(self, value: Any, where: str) -> Any:
        return None if value is None else self.inner.check(value, where)


@dataclass
class ListOf(Spec):
    item: Spec = field(default_factory=AnyValue)
    min_len: int = 0
    max_len: int = MAX_ITEMS
    unique: bool = False  # items must differ (compared as their repr)

    def check(self, value: Any, where: str) -> Any:
        if not isinstance(value, list):
            raise SchemaError(where, f"a list{self._len()}", value)
        if not self.min_len <= len(value) <= self.max_len:
            raise SchemaError(where, f"a list{self._len()}", value)
        seen: set[str] = set()
        for i, item in enumerate(value):
            self.item.check(item, f"{where}[{i}]")
            if self.unique:
                key = repr(item)
                if key in seen:
                    raise SchemaError(f"{where}[{i}]", "unlike the items before it", item)
                seen.add(key)
        return value

    def _len(self) -> str:
        if self.min_len and self.max_len < MAX_ITEMS:
            return f" of {self.min_len} to {self.max_len} items"
        if self.min_len:
            return f" of at least {self.min_len} item(s)"
        return "" if self.max_len >= MAX_ITEMS else f" of at most {self.max_len} items"


@dataclass
class DictOf(Spec):
    """An object whose keys are any one-line strings and whose values are all `value`."""

    value: Spec = field(default_factory=AnyValue)
    max_len: int = MAX_ITEMS

    def check(self, value: Any, where: str) -> Any:
        if not isinstance(value, dict) or len(value) > self.max_len:
            raise SchemaError(where, "an object", value)
        for key, item in value.items():
            Str(max_len=1000).check(key, f"{where} key")
            self.value.check(item, _join(where, key))
        return value


@dataclass
class Obj(Spec):
    """An object with these fields. `required` must be there (and may still be null when the
    spec is Opt); unknown keys are refused when `closed` (files people write: a typo must
    not pass silently) and kept otherwise (records a newer edgeconv wrote)."""

    fields: dict[str, Spec] = field(default_factory=dict)
    required: tuple[str, ...] = ()
    closed: bool = False

    def check(self, value: Any, where: str) -> Any:
        if not isinstance(value, dict):
            raise SchemaError(where, "an object", value)
        for name in self.required:
            if name not in value:
                raise SchemaError(_join(where, name), "present", message="is missing")
        for key, item in value.items():
            if not isinstance(key, str):
                raise SchemaError(where, "an object with string keys", key)
            spec = self.fields.get(key)
            if spec is None:
                if self.closed:
                    hint = did_you_mean(key, self.fields).removeprefix("; ")
                    raise SchemaError(_join(where, key), "a known key", message=(
                        f"is not a known key ({hint + ' ' if hint else ''}known:"
                        f" {', '.join(self.fields)})"))
                continue
            spec.check(item, _join(where, key))
        return value


@dataclass
class RelPath(Spec):
    """A plain relative path inside a folder: not absolute, no `..`, no empty or `.` part,
    no backslash or NUL, POSIX separators (what the exporter writes)."""

    expected: str = "a relative path inside the folder"

    def check(self, value: Any, where: str) -> Any:
        Str(max_len=4096, allow_empty=False, expected=self.expected).check(value, where)
        parts = value.split("/")
        if value.startswith("/") or "\\" in value or "\0" in value \
                or any(p in ("", ".", "..") for p in parts) or re.match(r"^[A-Za-z]:", value):
            raise SchemaError(where, self.expected, value)
        return value


@dataclass
class Each(Spec):
    """Several specs in turn (e.g. a type, then a rule across fields)."""

    specs: tuple[Spec, ...] = ()

    def check(self, value: Any, where: str) -> Any:
        for spec in self.specs:
            spec.check(value, where)
        return value


@dataclass
class Rule(Spec):
    """A check no spec expresses: `test(value)` true, else `expected`."""

    test: Callable[[Any], bool] = lambda value: True
    expected: str = "valid"

    def check(self, value: Any, where: str) -> Any:
        if not self.test(value):
            raise SchemaError(where, self.expected, value)
        return value


def validate(document: Any, spec: Spec, source: str) -> Any:
    """`document` if it fits `spec`; else one EdgeconvError line naming `source`."""
    try:
        return spec.check(document, "")
    except SchemaError as exc:
        raise EdgeconvError(f"{source}: {exc}") from None


def contained(folder: str | os.PathLike[str], relative: str) -> bool:
    """Is `relative` (already a RelPath) inside `folder` once symbolic links are followed?
    A symlink loop or an unreadable folder on the way proves nothing: False."""
    try:
        base = Path(folder).resolve()
        target = (base / PurePosixPath(relative)).resolve()
    except (OSError, RuntimeError):  # RuntimeError: a symlink loop (Python < 3.13)
        return False
    return target == base or base in target.parents


def _join(where: str, key: str) -> str:
    name = key if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key) else repr(key)
    return f"{where}.{name}" if where else name


def _range(low: float | None, high: float | None) -> str:
    def shown(x: float) -> str:  # 100,000 and 9,007,199,254,740,992, not 1e+05 and 9e+15
        if isinstance(x, int):
            return f"{x:,}" if abs(x) >= 10_000 else str(x)
        return f"{x:g}"

    if low is not None and high is not None:
        return f" from {shown(low)} to {shown(high)}"
    if low is not None:
        return f" >= {shown(low)}"
    if high is not None:
        return f" <= {shown(high)}"
    return ""


def _show(value: Any) -> str:
    try:
        text = repr(value)
    except ValueError:  # an integer too long to print (Python's 4300-digit limit)
        return "a number too long to show"
    if isinstance(value, list):
        text = f"a list of {len(value)}"
    elif isinstance(value, dict):
        text = f"an object of {len(value)} key(s)"
    return text if len(text) <= 60 else text[:57] + "..."
