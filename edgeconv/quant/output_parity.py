"""Per-output numeric parity of a converted file with the float reference model.

For a model that is not a classifier (a detector, a regressor, several outputs, no labels)
top-1 accuracy and agreement say nothing; what says how far a converted or quantised file
strays from the float model is the distance between their raw outputs on the same inputs.
`output_parity` gives, for each output, the figures ST's `stedgeai validate` reports (RMSE,
L2r, COS) plus the largest absolute difference and the SNR in dB. Every export records them
per file (manifest `artifacts[].output_parity`); `edgeconv gate` budgets them (`min_cosine`,
`min_snr_db`, `max_rmse`, `max_abs_diff`), the report shows them.

Definitions, for one output, with r the reference (float model) and c the candidate values,
both flattened over every evaluation input into vectors of n values, in float64 (int8 outputs
are dequantised by the caller first):

    max_abs_diff = max_i |r_i - c_i|
    rmse         = sqrt( sum_i (r_i - c_i)^2 / n )
    l2r          = ||r - c||_2 / ||r||_2                    (ST's "L2r", relative L2 error)
    cosine       = (r . c) / (||r||_2 ||c||_2)              (ST's "COS"), clipped to [-1, 1]
    snr_db       = 10 log10( sum_i r_i^2 / sum_i (r_i - c_i)^2 )  (= -20 log10(l2r))
    equal        = every c_i == r_i (bit-identical after the float64 cast)

Edge cases, decided here once:

- identical outputs: the noise is 0, so the SNR is +infinity and L2r 0. JSON has no
  infinity, so `snr_db` is null and `equal` true: a null SNR with `equal` true means
  "infinite" (the gate passes any `min_snr_db` on it). max_abs_diff and rmse are 0 and the
  cosine 1 (also when both are all zero: equal vectors are as similar as can be).
- an all-zero reference with a candidate that is not: SNR minus infinity, L2r undefined:
  both null with `equal` false (the gate fails `min_snr_db` on it, saying why). The cosine is
  0 when exactly one vector is all zero (nothing in common), so `min_cosine` fails too.
- NaN or infinity in the candidate (a broken quantisation) is a measured result, not an
  error: it is counted in `nonfinite` and every figure that would be NaN is null, so the
  manifest stays strict JSON and the gate fails each budget on it, naming the count. The
  same in the reference (a float model that overflows) counts in `reference_nonfinite`.
- different shapes, a different number of outputs or of names, an output with no values:
  ValueError (the caller compares what both models returned on the same inputs; a mismatch
  is its bug or a broken file, never a figure).
- float64 range: the sums are exact float64 sums for what models emit (float32, float16,
  integers); float64 outputs near its limits are scaled by their largest magnitude first
  (the ratios do not change), and a figure still past the range is null.

The module top is standard library only, so that manifest.py, the gate and the report (all
standard library only: a CI job or a board reads manifests) can import OUTPUT_PARITY and
the helpers below; numpy is imported inside `output_parity`.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from typing import Any

from edgeconv.schema import Bool, Int, ListOf, Num, Obj, Opt, Str

MAX_VALUES = 1 << 53  # a count exact as a JSON double
MAX_OUTPUTS = 1000

# One entry per model output, in the model's output order. Not closed: a newer edgeconv may
# add figures and an older one still reads the manifest.
OUTPUT_PARITY_ENTRY = Obj({
    "output": Str(max_len=1000),  # the output's name (or output_<i> when it has none)
    "values": Int(0, MAX_VALUES),  # n: values compared, over every evaluation input
    "equal": Opt(Bool()),  # bit-identical; absent in a hand-written entry: max_abs_diff == 0
    "max_abs_diff": Opt(Num(min=0)),  # null only when a value is NaN or infinite
    "rmse": Opt(Num(min=0)),
    "l2r": Opt(Num(min=0)),  # null when the reference is all zero (or non-finite values)
    "cosine": Opt(Num(-1, 1)),
    "snr_db": Opt(Num()),  # null: +inf when equal, else undefined (see the module doc)
    "nonfinite": Opt(Int(0, MAX_VALUES)),  # candidate values that are NaN or +-inf
    "reference_nonfinite": Opt(Int(0, MAX_VALUES)),
}, required=("output", "values", "max_abs_diff", "rmse", "cosine", "snr_db"))
OUTPUT_PARITY = ListOf(OUTPUT_PARITY_ENTRY, min_len=1, max_len=MAX_OUTPUTS)


def output_parity(reference: Sequence[Any], candidate: Sequence[Any],
                  names: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """One dict per output (OUTPUT_PARITY_ENTRY) of `candidate` against `reference`.

    `reference` and `candidate` hold one array per model output, in the same order, each
    with every evaluation input stacked (e.g. (images, 10) logits, (images, 4, 4, 6) boxes);
    int8 outputs dequantised to float first. `names` name the outputs (default output_<i>).
    """
    import numpy as np

    if isinstance(reference, np.ndarray) or isinstance(candidate, np.ndarray):
        raise ValueError("output_parity takes a sequence of arrays per side (one per model"
                         " output), not a bare array; wrap a single output in a list")
    if len(reference) != len(candidate):
        raise ValueError(f"the reference has {len(reference)} output(s), the candidate"
                         f" {len(candidate)}")
    if not reference:
        raise ValueError("no outputs to compare")
    if names is None:
        names = [f"output_{i}" for i in range(len(reference))]
    elif len(names) != len(reference):
        raise ValueError(f"{len(names)} name(s) for {len(reference)} output(s)")
    return [_one(str(name), np.asarray(ref), np.asarray(cand))
            for name, ref, cand in zip(names, reference, candidate)]


def _one(name: str, ref: Any, cand: Any) -> dict[str, Any]:
    import numpy as np

    if ref.shape != cand.shape:
        raise ValueError(f"output '{name}': the reference's shape {tuple(ref.shape)} is not"
                         f" the candidate's {tuple(cand.shape)}")
    r = ref.astype(np.float64, copy=False).ravel()
    c = cand.astype(np.float64, copy=False).ravel()
    n = int(r.size)
    if n == 0:
        raise ValueError(f"output '{name}' has no values to compare")
    ref_bad = int(n - np.count_nonzero(np.isfinite(r)))
    cand_bad = int(n - np.count_nonzero(np.isfinite(c)))
    entry: dict[str, Any] = {"output": name, "values": n}
    if ref_bad or cand_bad:
        # NaN - NaN is NaN and inf - inf too: no figure means anything; counted, not hidden
        return {**entry, "equal": False, "max_abs_diff": None, "rmse": None, "l2r": None,
                "cosine": None, "snr_db": None, "nonfinite": cand_bad,
                "reference_nonfinite": ref_bad}
    if np.array_equal(r, c):
        # +infinite SNR, written as null with equal = true; two all-zero vectors are equal
        return {**entry, "equal": True, "max_abs_diff": 0.0, "rmse": 0.0, "l2r": 0.0,
                "cosine": 1.0, "snr_db": None, "nonfinite": 0, "reference_nonfinite": 0}
    scale, sums = _sums(r, c)
    largest, noise, signal, power_c, cross = sums
    ref_zero, cand_zero = not np.any(r), not np.any(c)
    if ref_zero or cand_zero:
        cosine = 0.0  # exactly one vector is all zero: nothing in common
    else:
        cosine = min(1.0, max(-1.0, cross / (math.sqrt(signal) * math.sqrt(power_c))))
    if ref_zero:
        snr_db, l2r = None, None  # -infinity and undefined: the reference is all zero
    else:
        snr_db = 10.0 * math.log10(signal / noise)
        l2r = math.sqrt(noise / signal)
    figures = {"max_abs_diff": scale * largest, "rmse": scale * math.sqrt(noise / n),
               "l2r": l2r, "cosine": cosine, "snr_db": snr_db}
    # a figure past float64's range (only float64 outputs near 1e308 get there) is null
    figures = {k: v if v is None or math.isfinite(v) else None for k, v in figures.items()}
    return {**entry, "equal": False, **figures, "nonfinite": 0, "reference_nonfinite": 0}


def _sums(r: Any, c: Any) -> tuple[float, tuple[float, float, float, float, float]]:
    """(scale, (max |d|, sum d^2, sum r^2, sum c^2, sum r c)) with d = r - c, the sums of
    r / scale and c / scale. scale is 1 (exact figures) unless a sum leaves float64's range
    (float64 outputs beyond ~1e150, or differences below ~1e-160): then the largest
    magnitude, which leaves every ratio (cosine, L2r, SNR) unchanged. Floored at the
    smallest normal double, so a ratio stays finite."""
    import numpy as np

    def sums(a: Any, b: Any) -> tuple[float, ...]:
        with np.errstate(over="ignore", under="ignore", invalid="ignore"):
            d = a - b
            return (float(np.max(np.abs(d))), float(np.dot(d, d)), float(np.dot(a, a)),
                    float(np.dot(b, b)), float(np.dot(a, b)))

    found = sums(r, c)
    if all(math.isfinite(x) for x in found) and found[1] > 0 \
            and (found[2] > 0 or not np.any(r)) and (found[3] > 0 or not np.any(c)):
        return 1.0, found
    scale = max(float(np.max(np.abs(r))), float(np.max(np.abs(c))))
    largest, *rest = sums(r / scale, c / scale)
    tiny = sys.float_info.min
    noise, signal, power_c, cross = rest
    return scale, (largest, max(noise, tiny), max(signal, tiny), max(power_c, tiny), cross)


# --- reading entries back (gate, report): standard library only ---------------------------

# Which way each figure is better: a higher cosine and SNR, a lower RMSE, L2r and difference.
HIGHER_IS_BETTER = {"cosine": True, "snr_db": True, "rmse": False, "l2r": False,
                    "max_abs_diff": False}


def is_equal(entry: dict[str, Any]) -> bool:
    """Bit-identical to the reference. A hand-written entry without `equal`: nothing
    differs (max_abs_diff 0, no non-finite value)."""
    equal = entry.get("equal")
    if equal is None:
        return entry.get("max_abs_diff") == 0 and not entry.get("nonfinite")
    return bool(equal)


def snr_is_infinite(entry: dict[str, Any]) -> bool:
    """A null `snr_db` that means +infinity: the candidate equals the reference."""
    return entry.get("snr_db") is None and is_equal(entry)


def figure(entry: dict[str, Any], key: str) -> tuple[float | None, str | None]:
    """One output's figure as a float, with what a reader should know about it: the nulls
    that mean an infinity (SNR and L2r of equal outputs or an all-zero reference) as
    +-inf; None, with the reason, where there is no figure (NaN or infinite values)."""
    bad, bad_ref = entry.get("nonfinite") or 0, entry.get("reference_nonfinite") or 0
    if bad or bad_ref:
        values = entry.get("values")
        of = f" of {values:,}" if isinstance(values, int) else ""
        whose = [w for n, w in ((bad, f"{bad:,}{of} values of the file"),
                                (bad_ref, f"{bad_ref:,}{of} values of the float reference"))
                 if n]
        return None, " and ".join(whose) + " are NaN or infinite"
    value = entry.get(key)
    if value is None and key in ("snr_db", "l2r"):
        if is_equal(entry):
            return (math.inf if key == "snr_db" else 0.0), "equal to the float reference's"
        return ((-math.inf if key == "snr_db" else math.inf),
                "the float reference's output is all zero")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None, f"no {key} recorded"
    return float(value), None


def worst(entries: Sequence[dict[str, Any]], key: str
          ) -> tuple[dict[str, Any], float | None, str | None]:
    """The output whose `key` is worst, with its figure and note (see `figure`): one with
    no figure first, then the lowest cosine or SNR, the highest RMSE, L2r or difference."""
    higher = HIGHER_IS_BETTER[key]

    def badness(entry: dict[str, Any]) -> tuple[int, float]:
        value, _ = figure(entry, key)
        if value is None:
            return 0, 0.0
        return 1, value if higher else -value

    chosen = min(entries, key=badness)
    return (chosen, *figure(chosen, key))
