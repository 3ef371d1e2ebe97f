"""Params and MACs of a zoo configuration, from the model's own arithmetic (edgeconv.zoo.analyze).

That needs Keras, so it is imported on first use only, and every figure is cached: a report
asks for the same configuration from several tables and claims. Without Keras (a device
install) or with arithmetic switched off, `of` returns None and `unavailable` says why.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from edgeconv.errors import EdgeconvError
from edgeconv.zoo.options import FAMILY_OPTIONS

_OPTION_KEYS = ("input_shape", "classes", *FAMILY_OPTIONS)
_LARGE_PARAMS = 20_000_000  # free Keras' memory after models this big (AlexNet, VGG16)


@dataclass(frozen=True)
class LayerFigure:
    type: str
    name: str
    output_shape: tuple[int | None, ...]
    params: int


@dataclass(frozen=True)
class Figures:
    params: int
    macs: int
    analysed_shape: tuple[int, ...]
    layers: tuple[LayerFigure, ...]


class Arithmetic:
    def __init__(self, enabled: bool = True) -> None:
        self.unavailable: str | None = None if enabled else "arithmetic skipped (--no-arithmetic)"
        self._cache: dict[str, Figures | None] = {}

    def of(self, model: str, options: dict[str, Any]) -> Figures | None:
        opts = {k: (tuple(v) if isinstance(v, list) else v)
                for k, v in options.items() if k in _OPTION_KEYS and v is not None}
        key = f"{model} {sorted(opts.items())}"
        if self.unavailable is not None:
            return None
        if key not in self._cache:
            self._cache[key] = self._compute(model, opts)
        return self._cache[key]

    def _compute(self, model: str, opts: dict[str, Any]) -> Figures | None:
        try:
            from edgeconv.zoo.analyze import inspect_by_name

            report = inspect_by_name(model, **opts)
        except ImportError as exc:
            self.unavailable = (f"Keras is not importable here ({exc}):"
                                " pip install 'edgeconv[train]'")
            return None
        except EdgeconvError as exc:
            if "pip install" in str(exc):  # the lazy import's missing-package message
                self.unavailable = str(exc)
            return None
        s = report.stats
        if s.params > _LARGE_PARAMS:
            from edgeconv._lazy import keras

            keras().backend.clear_session()
        return Figures(s.params, s.macs, tuple(s.analysed_shape),
                       tuple(LayerFigure(l.type, l.name, tuple(l.output_shape), l.params)
                             for l in s.layers))


def inspect_command(model: str, options: dict[str, Any]) -> str:
    """The `edgeconv inspect` line that prints the same figures."""
    parts = ["edgeconv inspect", model]
    for key in FAMILY_OPTIONS:
        if options.get(key) is not None:
            parts.append(f"--{key} {options[key]}")
    shape = options.get("input_shape")
    if shape is not None:
        parts.append("--input-shape " + ",".join("None" if d is None else str(d) for d in shape))
    return " ".join(parts)
