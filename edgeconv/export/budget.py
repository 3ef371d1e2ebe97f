"""`--max-drop`: an int8 file more than the budget below float is made again with its worst
layers kept in float (edgeconv.quant.budget), ranked by the per-layer report."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from edgeconv import _atomic
from edgeconv.export.convert import ConversionSession, Converted
from edgeconv.export.verify import Verifier
from edgeconv.manifest import Artifact
from edgeconv.progress import Progress


def hold_budget(plain: Artifact, made: Converted, path: Path, fmt: str,
                session: ConversionSession, verifier: Verifier, max_drop: float,
                progress: Progress) -> tuple[Artifact, bool]:
    """The int8 file as measured, or the one that meets the budget (rewritten at `path`,
    measured again, with the search in its options); and whether the budget is met."""
    from edgeconv.quant.budget import keep_float_until_within
    from edgeconv.quant.layers import lossy_layers

    float_accuracy = verifier.float_accuracy
    if (float_accuracy - plain.accuracy) * 100 <= max_drop:
        return plain, True
    ranked = lossy_layers(fmt, session, made.content)
    if not ranked:
        return plain, False
    search = keep_float_until_within(
        ranked, float_accuracy=float_accuracy, max_drop_points=max_drop,
        convert=lambda kept: session.make(fmt, plain.precision, kept),
        accuracy_of=lambda candidate: verifier.accuracy_of(fmt, candidate.content),
        size_of=lambda candidate: len(candidate.content),
        on_try=lambda k, n: progress.message(
            f"{path.name}: {100 * (float_accuracy - plain.accuracy):.2f} points below float"
            f" (budget {max_drop:g}); trying {k} of {n} layers in float"))
    _atomic.write_bytes(path, search.made.content)
    artifact = verifier.measure(path, fmt, plain.precision, search.made)
    budget = {"max_drop_points": max_drop, "met": search.met,
              "kept_float": list(search.best.kept_float),
              "plain_int8": {"accuracy": plain.accuracy, "size_bytes": plain.size_bytes},
              "size_cost_bytes": artifact.size_bytes - plain.size_bytes,
              "tried": [{"kept_float": len(c.kept_float), "accuracy": c.accuracy,
                         "size_bytes": c.size_bytes} for c in search.tried]}
    return replace(artifact, options={**artifact.options, "accuracy_budget": budget}), \
        search.met
