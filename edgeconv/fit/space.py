"""The search space of `edgeconv fit`: which candidates a study trains.

A candidate is one architecture point: a zoo model with its family options (alpha, version,
blocks, ...) and an input size, or a user's own Keras builder function with its knobs.
`--space` entries are text (`mobilenet:alpha=0.25,0.5:size=32,48`, `nets.py:tiny:width=8,16:
size=32`) or a TOML file of `[[space]]` tables; each expands to the product of its knob
lists. Everything is checked here, before a single model is built, with the zoo's own checks
(`resolve_options`, the spec's sizes and channels), so a bad space is one line at once.

Standard library and edgeconv.zoo only: no TensorFlow until `build_candidate` (a user's
builder file may import it when its entry is parsed; that is the user's choice).
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import itertools
import json
import math
import os
import re
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgeconv.errors import EdgeconvError, did_you_mean, one_line
from edgeconv.files import read_regular, show_path
from edgeconv.zoo import FAMILY_OPTIONS, build, get_spec, resolve_options
from edgeconv.zoo._registry import MAX_CHANNELS, MAX_SIDE

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

# A study trains every candidate that survives pruning: 200 is days of CPU already.
MAX_CANDIDATES = 200
MAX_SPACE_FILE_BYTES = 1024 * 1024
DEFAULT = "default"  # the entry that stands for default_space()

# fit sets these itself: the data decides classes and channels, `size` the input side.
_RESERVED = ("input_shape", "classes")
# Short key tags where the knob's name would only add length: "squeezenet-v1.1-48".
_KEY_TAGS = {"version": "v"}
_MAX_KEY = 120  # a trial folder's name; far below the 255 bytes a file name may take
_BUILDER_SOURCE = re.compile(r"(?P<file>.+?\.py):(?P<function>[^:]*)(?::(?P<rest>.*))?",
                             re.DOTALL)
Value = int | float | str | bool


@dataclass(frozen=True)
class Candidate:
    """One architecture point; trained once, whatever the precisions benched."""

    model: str  # zoo name, or "builder" for a user builder
    # Sorted (name, value): family options (defaults filled in), or a builder's knobs.
    options: tuple[tuple[str, Any], ...]
    size: int  # input height = width in pixels
    builder: str | None = None  # "/abs/path/file.py:function" for a user builder

    @property
    def key(self) -> str:
        """Stable, filesystem-safe ([a-z0-9._-]), unique in a space: a trial folder's name.
        When making it safe changed the text (or it grew too long), a short digest of the
        exact candidate is appended so two candidates never share a key."""
        exact = "-".join([*self._key_head(), *(f"{_KEY_TAGS.get(name, name)}{_text(value)}"
                                                for name, value in self.options),
                          str(self.size)])
        safe = re.sub(r"[^a-z0-9._-]", "_", exact.lower())
        if safe == exact and len(safe) <= _MAX_KEY:
            return safe
        identity = json.dumps([self.model, self._key_head(), _typed(self.options), self.size])
        digest = hashlib.sha256(identity.encode()).hexdigest()[:8]
        return f"{safe[:_MAX_KEY]}-{digest}"

    @property
    def label(self) -> str:
        """For people: "mobilenet alpha 0.25 at 32x32"."""
        name = self.model if self.builder is None else "builder " + _builder_label(self.builder)
        knobs = "".join(f" {n} {_text(v)}" for n, v in self.options)
        return f"{name}{knobs} at {self.size}x{self.size}"

    def options_dict(self) -> dict[str, Any]:
        return dict(self.options)

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "model": self.model, "options": self.options_dict(),
                "size": self.size, "builder": self.builder}

    @classmethod
    def from_dict(cls, data: Any) -> Candidate:
        """A candidate read back from study.json; one line when the record does not hold
        one, or when its key is not the one this edgeconv gives it (trial folders are
        named by key, so a resume must agree)."""
        if not isinstance(data, dict):
            raise EdgeconvError(f"a candidate record must be an object; got {_short(data)}")
        model, options = data.get("model"), data.get("options")
        size, builder = data.get("size"), data.get("builder")
        if not (isinstance(model, str) and isinstance(options, dict)
                and all(isinstance(n, str) and _scalar(v) for n, v in options.items())
                and isinstance(size, int) and not isinstance(size, bool)
                and (builder is None or isinstance(builder, str))):
            raise EdgeconvError(f"not a candidate record: {_short(data)}")
        if builder is None and not set(options) <= set(FAMILY_OPTIONS):
            unknown = ", ".join(sorted(set(options) - set(FAMILY_OPTIONS)))
            raise EdgeconvError(f"candidate record for {_short(model)}: unknown option(s)"
                                f" {_short(unknown)}")
        candidate = cls(model, tuple(sorted(options.items())), size, builder)
        if "key" in data and data["key"] != candidate.key:
            raise EdgeconvError(f"candidate record key '{_short(data['key'])}' does not match"
                                f" its contents (expected '{candidate.key}')")
        return candidate

    def _key_head(self) -> list[str]:
        if self.builder is None:
            return [self.model]
        file, function = _split_builder(self.builder)
        return ["builder", Path(file).stem, function]


@dataclass(frozen=True)
class Space:
    entries: tuple[str, ...]  # each entry as given (a TOML file: its path), or "default"
    candidates: tuple[Candidate, ...]  # deduplicated; entry order, then knob values' order

    def to_dict(self) -> dict[str, Any]:
        return {"entries": list(self.entries),
                "candidates": [c.to_dict() for c in self.candidates]}


# --- the default space ---------------------------------------------------------------------

# The compact families with the knobs their papers vary, at sizes an MCU can hold.
DEFAULT_ENTRIES = (
    "mobilenet:alpha=0.25,0.5,0.75,1.0:size=32,48,64,96",
    "mobilenetv2:alpha=0.35,0.5,0.75,1.0:size=32,48,64,96",
    "squeezenet:version=1.0,1.1:size=48,64",  # its min_size is 35
    "separable-vgg-cifar:blocks=2,3:size=32",
    "gap-mnist:size=28",
    "fcn-mnist:size=28",
)


def default_space(input_channels: int) -> Space:
    """The default candidates, less anything the zoo refuses for `input_channels`."""
    _check_channels(input_channels)
    found: list[Candidate] = []
    for entry in DEFAULT_ENTRIES:
        try:
            plan = _text_plan(entry, input_channels)
        except EdgeconvError:
            continue  # e.g. a model that takes 3 channels, asked for 1
        for combo in _product(plan.knobs):
            try:
                found.append(plan.make(dict(combo)))
            except EdgeconvError:
                continue  # e.g. a size below the model's minimum
    return Space((DEFAULT,), tuple(_dedup(found)))


# --- parsing -------------------------------------------------------------------------------


def parse_space(entries: list[str], input_channels: int) -> Space:
    """The space `--space` entries describe (see the module docstring); one EdgeconvError
    line naming the entry for anything the zoo or the builder would refuse."""
    _check_channels(input_channels)
    if not entries:
        raise EdgeconvError("--space needs at least one entry (a zoo model, FILE.py:FUNCTION,"
                            " a .toml file, or 'default')")
    # Each entry: the default space, or its checked plans (a TOML file: one per table).
    groups: list[Space | list[_Plan]] = []
    for entry in entries:
        if not isinstance(entry, str) or not entry.strip():
            raise EdgeconvError("--space: an entry is empty")
        text = entry.strip()
        if text == DEFAULT:
            groups.append(default_space(input_channels))
        elif text.endswith(".toml") and ":" not in text:
            groups.append(_toml_plans(Path(text).expanduser(), input_channels))
        else:
            groups.append([_text_plan(text, input_channels)])
    total = sum(len(g.candidates) if isinstance(g, Space)
                else sum(math.prod(len(vs) for _, vs in p.knobs) for p in g) for g in groups)
    if total > MAX_CANDIDATES:  # counted before any product is built
        raise EdgeconvError(_too_many(total))
    found: list[Candidate] = []
    for group in groups:
        if isinstance(group, Space):
            found.extend(group.candidates)
            continue
        for plan in group:
            found.extend(plan.make(dict(combo)) for combo in _product(plan.knobs))
    candidates = _dedup(found)
    _check_keys_unique(candidates)
    return Space(tuple(e.strip() for e in entries), tuple(candidates))


@dataclass
class _Plan:
    """One entry (or TOML table), checked: its knob lists and how to make a candidate."""

    where: str  # how messages name it: "--space 'mobilenet:alpha=9'"
    source: str  # zoo name or "FILE.py:FUNCTION"
    knobs: list[tuple[str, list[Any]]]  # in the order written; values typed
    make: Callable[[dict[str, Any]], Candidate]


def _text_plan(entry: str, channels: int) -> _Plan:
    where = f"--space '{_short(entry)}'"
    try:
        source, raw = _parse_text(entry)
        return _plan(where, source, raw, channels, base=Path.cwd(), from_text=True)
    except EdgeconvError as exc:
        raise EdgeconvError(_prefixed(where, exc)) from None


def _parse_text(entry: str) -> tuple[str, list[tuple[str, list[str]]]]:
    """SOURCE[:knob=v1,v2,...]... -> (SOURCE, [(knob, [text values])])."""
    text = entry.strip()
    match = _BUILDER_SOURCE.fullmatch(text)
    if match:
        if not match["function"]:
            raise EdgeconvError(f"{match['file']} needs a function: FILE.py:FUNCTION")
        source, rest = f"{match['file']}:{match['function']}", match["rest"]
        parts = [] if rest is None else rest.split(":")
    else:
        source, *parts = text.split(":")
    knobs: list[tuple[str, list[str]]] = []
    for part in parts:
        name, sep, values = part.partition("=")
        name = name.strip()
        if not sep or not name:
            raise EdgeconvError(f"'{_short(part)}' is not knob=value[,value...]")
        if name in dict(knobs):
            raise EdgeconvError(f"{_short(name)} is given twice")
        items = [v.strip() for v in values.split(",")]
        if not any(items):
            raise EdgeconvError(f"{_short(name)} has no values")
        if not all(items):
            raise EdgeconvError(f"{_short(name)} has an empty value in '{_short(values)}'")
        knobs.append((name, items))
    return source, knobs


def _from_text(text: str) -> Value:
    """A knob value typed from its text: int, else a finite float, else the string. (Zoo
    options are then cast to their FamilyOption's type: version "1.0" stays a string.)"""
    for cast in (int, float):
        try:
            value = cast(text)
        except ValueError:
            continue
        if cast is int or math.isfinite(value):
            return value
    return text


def _plan(where: str, source: str, knobs: list[tuple[str, list[Any]]], channels: int,
          base: Path, from_text: bool) -> _Plan:
    """An entry's plan. Values are text (from_text) or TOML values: a zoo option casts
    either to its own type; a builder's text values are typed by `_from_text`."""
    if source.endswith(".py") or _BUILDER_SOURCE.fullmatch(source):
        if from_text:
            knobs = [(name, [_from_text(v) for v in values]) for name, values in knobs]
        return _builder_plan(where, source, knobs, channels, base)
    return _zoo_plan(where, source, knobs, channels)


# --- zoo entries ---------------------------------------------------------------------------


def _zoo_plan(where: str, name: str, knobs: list[tuple[str, list[Any]]], channels: int
              ) -> _Plan:
    if "/" in name or name.endswith(".py"):
        raise EdgeconvError(f"'{_short(name)}' is neither a zoo model nor FILE.py:FUNCTION")
    spec = _searchable_spec(name, channels)
    allowed = [*spec.family_options, "size"]
    typed: list[tuple[str, list[Any]]] = []
    for knob, values in knobs:
        if knob in _RESERVED:
            raise EdgeconvError(f"{knob} comes from the data, not the space")
        if knob not in allowed:
            raise EdgeconvError(f"'{_short(knob)}' is not a knob of {name}"
                                f"{did_you_mean(knob, allowed)}"
                                f" (knobs: {', '.join(allowed)})")
        kind = int if knob == "size" else FAMILY_OPTIONS[knob].type
        typed.append((knob, [_cast(knob, v, kind) for v in values]))

    def make(combo: dict[str, Any]) -> Candidate:
        try:
            return _zoo_candidate(name, combo, channels)
        except EdgeconvError as exc:
            raise EdgeconvError(_prefixed(where, exc)) from None

    return _Plan(where, name, typed, make)


def _searchable_spec(name: str, channels: int):
    """The zoo spec, when fit can train it on images of `channels` channels."""
    spec = get_spec(name)  # "unknown model 'mobilenett'; did you mean 'mobilenet'?"
    if spec.default_classes is None:
        raise EdgeconvError(f"{name} has no classifier to train (a building block; see"
                            " `edgeconv models`)")
    if spec.dataset is not None:
        raise EdgeconvError(f"{name} reads {spec.dataset} data, not the images fit searches")
    if spec.channels is not None and channels not in spec.channels:
        allowed = " or ".join(map(str, spec.channels))
        raise EdgeconvError(f"{name} takes {allowed} input channel(s); the data has {channels}")
    return spec


def _zoo_candidate(name: str, combo: dict[str, Any], channels: int) -> Candidate:
    """One zoo point, checked by the zoo itself (resolve_options), defaults filled in so
    that `mobilenet:size=32` and `mobilenet:alpha=1.0:size=32` are one candidate."""
    spec = _searchable_spec(name, channels)
    family = {k: v for k, v in combo.items() if k != "size"}
    size = combo.get("size", _default_size(spec))
    if spec.fixed_size is not None and (size, size) != spec.fixed_size:
        fh, fw = spec.fixed_size
        raise EdgeconvError(f"size {size}: {name} takes only {fh}x{fw} inputs"
                            f" ({spec.fixed_size_why})")
    if size < spec.min_size:
        raise EdgeconvError(f"size {size}: {name} needs a size >= {spec.min_size}")
    _check_size(size)
    opts = resolve_options(spec, input_shape=(size, size, channels), **family)
    return Candidate(name, tuple(sorted((k, getattr(opts, k)) for k in spec.family_options)),
                     size)


def _default_size(spec) -> int:
    """The size a zoo entry without `size=` is searched at: the fixed size, else the side
    its recipe trains at."""
    if spec.fixed_size is not None:
        return spec.fixed_size[0]
    return spec.training_recipe.input_size


def _cast(knob: str, value: Any, kind: type) -> Any:
    """A value (text or TOML) as the zoo option's type; one line when it is not one."""
    if kind is str and isinstance(value, (str, int, float)) and not isinstance(value, bool):
        return value if isinstance(value, str) else str(value)  # TOML: version = [1.0, 1.1]
    if kind is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if kind is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and kind is not str:
        try:
            return kind(value)
        except ValueError:
            pass
    what = "an integer" if kind is int else "a number"
    raise EdgeconvError(f"{knob} takes {what}; got {_short(value)}")


# --- user builders -------------------------------------------------------------------------


def _builder_plan(where: str, source: str, knobs: list[tuple[str, list[Any]]],
                  channels: int, base: Path) -> _Plan:
    match = _BUILDER_SOURCE.fullmatch(source)
    if not match or match["rest"] is not None or not match["function"]:
        raise EdgeconvError("a builder entry is FILE.py:FUNCTION[:knob=v1,v2...]")
    file = (base / Path(match["file"]).expanduser()).resolve()
    function = match["function"]
    fn = _load_function(file, function, shown=show_path(match["file"]))
    names = [knob for knob, _ in knobs]
    for knob in names:
        if knob in _RESERVED:
            raise EdgeconvError(f"{knob} comes from the data, not the space")
    if "size" not in names:
        raise EdgeconvError("a builder needs size=... (the input side in pixels)")
    _check_signature(fn, f"{show_path(match['file'])}:{function}",
                     [n for n in names if n != "size"])
    typed = [(knob, [_cast("size", v, int) if knob == "size" else _builder_value(knob, v)
                     for v in values]) for knob, values in knobs]
    for size in dict(typed)["size"]:
        _check_size(size)
    builder = f"{file}:{function}"

    def make(combo: dict[str, Any]) -> Candidate:
        knob_values = tuple(sorted((k, v) for k, v in combo.items() if k != "size"))
        return Candidate("builder", knob_values, combo["size"], builder)

    return _Plan(where, source, typed, make)


def _builder_value(knob: str, value: Any) -> Value:
    if isinstance(value, float) and not math.isfinite(value):
        raise EdgeconvError(f"{_short(knob)} takes finite values; got {value}")
    if isinstance(value, (int, float, str, bool)):
        return value
    raise EdgeconvError(f"{_short(knob)} takes numbers, strings or booleans; got {_short(value)}")


def _check_signature(fn: Callable, shown: str, knobs: list[str]) -> None:
    """The function takes input_shape=, classes= and every knob, and nothing it needs is
    left without a value: checked without calling it."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return  # a builtin or C function: its call will tell
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    named = [n for n, p in params.items() if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                                         inspect.Parameter.KEYWORD_ONLY)]
    for needed in _RESERVED:
        if needed not in named:
            raise EdgeconvError(f"{shown} must take input_shape= and classes= keyword"
                                f" arguments (it takes: {', '.join(named) or 'none'})")
    offered = [n for n in named if n not in _RESERVED]
    for knob in knobs:
        if knob not in offered:
            raise EdgeconvError(f"'{_short(knob)}' is not a parameter of {shown}"
                                f"{did_you_mean(knob, offered)}"
                                f" (knobs: {', '.join([*offered, 'size'])})")
    missing = [n for n in offered if params[n].default is inspect.Parameter.empty
               and n not in knobs]
    if missing:
        raise EdgeconvError(f"{shown} needs a value for {', '.join(missing)}: give it as a"
                            " knob")


def _load_function(file: Path, function: str, shown: str) -> Callable:
    """FUNCTION from the user's file, imported (not called) under a module name of its own.
    `shown`: the file as messages name it (as the user wrote it)."""
    if file.suffix != ".py" or not file.is_file():
        raise EdgeconvError(f"{shown} does not exist" if not file.exists()
                            else f"{shown} is not a Python file (.py)")
    module = _import_file(file, shown)
    fn = getattr(module, function, None)
    if not callable(fn):
        # The file's own public functions, not the ones it imported.
        functions = [n for n, v in vars(module).items() if inspect.isfunction(v)
                     and v.__module__ == module.__name__ and not n.startswith("_")]
        listed = ", ".join(functions[:12]) + (", ..." if len(functions) > 12 else "")
        raise EdgeconvError(f"{shown} has no function '{_short(function)}'"
                            f"{did_you_mean(function, functions)}"
                            f" (functions: {listed or 'none'})")
    return fn


def _import_file(file: Path, shown: str):
    # One module per file path, so two files named net.py never shadow each other and a
    # file parsed and then built in one process is imported once.
    name = "edgeconv_fit_builder_" + hashlib.sha256(str(file).encode()).hexdigest()[:16]
    if name in sys.modules:
        return sys.modules[name]
    # The file likely imports Keras: make that the quiet TensorFlow backend, as _lazy does.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    spec = importlib.util.spec_from_file_location(name, file)
    if spec is None or spec.loader is None:
        raise EdgeconvError(f"{shown}: cannot be imported as a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - the user's code: any error is theirs
        del sys.modules[name]
        raise EdgeconvError(f"{shown} failed to import: {one_line(exc)[:300]}"
                            ) from None
    return module


# --- building ------------------------------------------------------------------------------


def build_candidate(candidate: Candidate, classes: int, channels: int):
    """The candidate's Keras model for `classes` outputs on (size, size, channels) inputs."""
    size = candidate.size
    if candidate.builder is None:
        spec = get_spec(candidate.model)
        opts = resolve_options(spec, input_shape=(size, size, channels), classes=classes,
                               **candidate.options_dict())
        return build(spec, opts)
    from edgeconv._lazy import keras

    k = keras()
    file, function = _split_builder(candidate.builder)
    shown = f"builder {show_path(file)}:{function}"
    fn = _load_function(Path(file), function, shown=show_path(file))
    try:
        model = fn(input_shape=(size, size, channels), classes=classes,
                   **candidate.options_dict())
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - the user's code
        knobs = ", ".join(f"{n}={_text(v)}" for n, v in candidate.options)
        raise EdgeconvError(f"{shown} failed at {size}x{size}{' with ' + knobs if knobs else ''}"
                            f": {one_line(exc)[:300]}") from None
    _check_built(model, k, shown, (size, size, channels), classes)
    return model


def _check_built(model: Any, k, shown: str, shape: tuple[int, int, int], classes: int) -> None:
    if not isinstance(model, k.Model):
        raise EdgeconvError(f"{shown} returned {type(model).__name__}, not a Keras model")
    inputs, outputs = model.inputs or [], model.outputs or []
    got_in = [tuple(t.shape[1:]) for t in inputs]
    if got_in != [shape]:
        raise EdgeconvError(f"{shown} built a model with input(s) {_shapes(got_in)}; fit asked"
                            f" for one input of {_shapes([shape])}")
    got_out = [tuple(t.shape[1:]) for t in outputs]
    if got_out != [(classes,)]:
        raise EdgeconvError(f"{shown} built a model with output(s) {_shapes(got_out)}; fit"
                            f" needs one output of {classes} classes")


# --- shared checks and helpers -------------------------------------------------------------


def _toml_plans(path: Path, channels: int) -> list[_Plan]:
    shown = show_path(path)
    raw = read_regular(path, MAX_SPACE_FILE_BYTES, what="space file")
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise EdgeconvError(f"{shown}: not a readable TOML space (not UTF-8 text)") from None
    except RecursionError:
        raise EdgeconvError(f"{shown}: not a readable TOML space (nested too deeply)") from None
    except tomllib.TOMLDecodeError as exc:
        raise EdgeconvError(f"{shown}: not a readable TOML space ({exc})") from None
    tables = data.get("space")
    extra = sorted(set(data) - {"space"})
    if extra or not isinstance(tables, list) or not tables \
            or not all(isinstance(t, dict) for t in tables):
        raise EdgeconvError(f"{shown}: a space file holds [[space]] tables only"
                            + (f" (found: {', '.join(extra)})" if extra else ""))
    plans = []
    for number, table in enumerate(tables, start=1):
        model = table.get("model")
        where = f"{shown} [[space]] #{number}" + (f" ({_short(model)})"
                                                   if isinstance(model, str) else "")
        try:
            if not isinstance(model, str) or not model:
                raise EdgeconvError("needs model = \"NAME\" or \"FILE.py:FUNCTION\"")
            knobs = [(name, _toml_values(name, value)) for name, value in table.items()
                     if name != "model"]
            # A builder file named in a space file is relative to that file.
            plans.append(_plan(where, model, knobs, channels, base=path.resolve().parent,
                               from_text=False))
        except EdgeconvError as exc:
            raise EdgeconvError(_prefixed(where, exc)) from None
    return plans


def _toml_values(name: str, value: Any) -> list[Any]:
    values = value if isinstance(value, list) else [value]
    if not values:
        raise EdgeconvError(f"{name} has no values")
    for item in values:
        if isinstance(item, (dict, list)):
            raise EdgeconvError(f"{name} takes a value or a list of values, not tables")
    return values


def _product(knobs: list[tuple[str, list[Any]]]) -> Iterable[tuple[tuple[str, Any], ...]]:
    """Every combination, the first knob written varying slowest."""
    names = [name for name, _ in knobs]
    for values in itertools.product(*(vs for _, vs in knobs)):
        yield tuple(zip(names, values))


def _dedup(candidates: Iterable[Candidate]) -> list[Candidate]:
    """First occurrence wins; 8 and 8.0 (or 1 and true) stay apart, as a builder sees them."""
    seen: dict[Any, Candidate] = {}
    for c in candidates:
        seen.setdefault(json.dumps([c.model, _typed(c.options), c.size, c.builder]), c)
    return list(seen.values())


def _check_keys_unique(candidates: list[Candidate]) -> None:
    """Keys name trial folders: two candidates on one key (two files named net.py in
    different folders, say) would share one."""
    by_key: dict[str, Candidate] = {}
    for c in candidates:
        other = by_key.setdefault(c.key, c)
        if other is not c:
            raise EdgeconvError(f"--space: '{other.label}' and '{c.label}' would share the"
                                f" trial folder '{c.key}'; rename a builder file or change"
                                " a knob value")


def _check_channels(channels: int) -> None:
    if isinstance(channels, bool) or not isinstance(channels, int) \
            or not 1 <= channels <= MAX_CHANNELS:
        raise EdgeconvError(f"input channels must be 1 to {MAX_CHANNELS}; got {channels}")


def _check_size(size: int) -> None:
    if not 1 <= size <= MAX_SIDE:
        raise EdgeconvError(f"size must be 1 to {MAX_SIDE} pixels; got {size}")


def _too_many(total: int) -> str:
    return (f"--space gives {total} candidates; a study takes at most {MAX_CANDIDATES}"
            " (give fewer knob values)")


def _prefixed(where: str, exc: EdgeconvError) -> str:
    message = str(exc)
    return message if message.startswith(where) else f"{where}: {message}"


def _split_builder(builder: str) -> tuple[str, str]:
    file, _, function = builder.rpartition(":")
    return file, function


def _builder_label(builder: str) -> str:
    file, function = _split_builder(builder)
    return f"{Path(file).name}:{function}"


def _text(value: Any) -> str:
    """A knob value as keys and labels show it: 0.25, 1.0, 8, true, relu."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, float) else str(value)


def _typed(options: tuple[tuple[str, Any], ...]) -> list[list[Any]]:
    """Options with each value's type, so 8, 8.0, "8" and true are told apart."""
    return [[name, type(value).__name__, value] for name, value in options]


def _scalar(value: Any) -> bool:
    return isinstance(value, (str, int, bool)) or (isinstance(value, float)
                                                   and math.isfinite(value))


def _shapes(shapes: list[tuple]) -> str:
    return ", ".join("x".join("?" if d is None else str(d) for d in s) for s in shapes) \
        or "none"


def _short(value: Any, limit: int = 80) -> str:
    """A user's value for a one-line message: printable, bounded."""
    text = " ".join(show_path(str(value)).split())
    return text if len(text) <= limit else text[:limit - 3] + "..."
