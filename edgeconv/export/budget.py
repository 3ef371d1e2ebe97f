"""`--max-drop`: an int8 file more than the budget below float is made again, integer first.

The layers the per-layer report blames most (edgeconv.quant.layers, worst SQNR first) get
int16 activations (int16x8), a group at a time, until the budget holds
(edgeconv.quant.budget): a microcontroller with CMSIS-NN and an Ethos-U NPU run such a file
on integer kernels throughout. Only with `--allow-float`, when every blamed layer at
int16x8 is still not enough, are layers kept float instead (the search as it was before
int16x8: a float island costs QUANTIZE / DEQUANTIZE pairs and slow kernels on a board).
The manifest records each layer's precision and every step's accuracy.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from edgeconv import _atomic
from edgeconv.errors import EdgeconvError
from edgeconv.export.convert import ConversionSession, Converted
from edgeconv.export.verify import Verifier
from edgeconv.formats import FLOAT, INT8, WIDE, get_format
from edgeconv.manifest import Artifact
from edgeconv.progress import Progress


def hold_budget(plain: Artifact, made: Converted, path: Path, fmt: str,
                session: ConversionSession, verifier: Verifier, max_drop: float,
                progress: Progress, *, allow_float: bool = False) -> tuple[Artifact, bool]:
    """The int8 file as measured, or the one that meets the budget (rewritten at `path`,
    measured again, with the search in its options); and whether the budget is met."""
    from edgeconv.quant.budget import widen_until_within
    from edgeconv.quant.layers import EXACT_SQNR_DB, layer_errors

    float_accuracy = verifier.float_accuracy
    if (float_accuracy - plain.accuracy) * 100 <= max_drop:
        return plain, True
    rows = layer_errors(fmt, session, made.content).layers  # worst SQNR first
    ranked = [row["name"] for row in rows if row["sqnr_db"] < EXACT_SQNR_DB]
    if not ranked:
        return plain, False
    steps = [_step((), (), plain.accuracy, plain.size_bytes)]
    notes: list[str] = []

    def search(precision: str, convert):
        def on_try(k: int, n: int) -> None:
            progress.message(f"{path.name}: {100 * (float_accuracy - plain.accuracy):.2f}"
                             f" points below float (budget {max_drop:g}); trying {k} of {n}"
                             f" layers at {precision}")

        return widen_until_within(
            ranked, float_accuracy=float_accuracy, max_drop_points=max_drop, convert=convert,
            accuracy_of=lambda candidate: verifier.accuracy_of(fmt, candidate.content),
            size_of=lambda candidate: len(candidate.content), on_try=on_try)

    found, wide, kept = None, (), ()
    if WIDE in get_format(fmt).precisions:
        try:
            found = search(WIDE, lambda layers: session.make(fmt, INT8, wide=layers))
        except EdgeconvError as exc:  # e.g. the mixed quantiser is not installed
            if not allow_float:
                raise
            notes.append(f"no int16x8 layers: {exc}")
        else:
            wide = found.best.layers
            steps += [_step(c.layers, (), c.accuracy, c.size_bytes) for c in found.tried]
    if allow_float and (found is None or not found.met):
        floats = search(FLOAT, lambda layers: session.make(fmt, INT8, keep_float=layers))
        steps += [_step((), c.layers, c.accuracy, c.size_bytes) for c in floats.tried]
        if found is None or floats.met or floats.best.accuracy > found.best.accuracy:
            found, wide, kept = floats, (), floats.best.layers
    if found is None:
        return plain, False
    if found.met or found.best.accuracy > plain.accuracy:
        _atomic.write_bytes(path, found.made.content)
        artifact = verifier.measure(path, fmt, INT8, found.made)
    else:  # nothing the search made beats plain int8: keep it, and say what was tried
        artifact, wide, kept = plain, (), ()
    precisions = {name: WIDE if name in wide else FLOAT if name in kept else INT8
                  for name in (row["name"] for row in rows)}
    budget: dict[str, Any] = {
        "max_drop_points": max_drop, "met": found.met, "allow_float": allow_float,
        "int16x8_layers": list(wide), "kept_float": list(kept),
        "layer_precisions": precisions,
        "plain_int8": {"accuracy": plain.accuracy, "size_bytes": plain.size_bytes},
        "size_cost_bytes": artifact.size_bytes - plain.size_bytes,
        # every file the search measured, in order: how many layers each widened or kept
        # float, and its accuracy on the export's test images
        "steps": steps, "notes": notes}
    return replace(artifact, options={**artifact.options, "accuracy_budget": budget}), \
        found.met


def _step(wide: tuple[str, ...], kept: tuple[str, ...], accuracy: float,
          size_bytes: int) -> dict[str, Any]:
    return {"int16x8_layers": len(wide), "float_layers": len(kept), "accuracy": accuracy,
            "size_bytes": size_bytes}
