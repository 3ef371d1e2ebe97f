"""output_parity: per-output figures of a candidate against the float reference, checked
against values worked out by hand and against the properties the definitions promise."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest

from edgeconv.errors import EdgeconvError
from edgeconv.quant.output_parity import (
    OUTPUT_PARITY, is_equal, output_parity, snr_is_infinite,
)
from edgeconv.schema import validate


def one(reference, candidate) -> dict:
    [entry] = output_parity([np.asarray(reference)], [np.asarray(candidate)])
    return entry


def test_hand_checked_figures():
    # r = (3, 4), c = (3, 5): d = (0, -1); |r|^2 = 25, |c|^2 = 34, r.c = 29, |d|^2 = 1
    e = one([3.0, 4.0], [3.0, 5.0])
    assert e["values"] == 2 and e["equal"] is False
    assert e["max_abs_diff"] == 1.0
    assert e["rmse"] == pytest.approx(math.sqrt(1 / 2))
    assert e["l2r"] == pytest.approx(1 / 5)  # ||d|| / ||r|| = 1 / 5
    assert e["cosine"] == pytest.approx(29 / (5 * math.sqrt(34)))
    assert e["snr_db"] == pytest.approx(10 * math.log10(25 / 1))  # 13.979 dB
    assert e["snr_db"] == pytest.approx(-20 * math.log10(e["l2r"]))
    assert e["nonfinite"] == 0 and e["reference_nonfinite"] == 0


def test_several_outputs_keep_their_order_and_names_and_are_flattened_over_inputs():
    ref = [np.arange(12, dtype=np.float32).reshape(3, 4), np.ones((3, 2, 2), np.float32)]
    cand = [ref[0] + np.float32(0.5), -ref[1]]
    boxes, scores = output_parity(ref, cand, names=["boxes", "scores"])
    assert (boxes["output"], scores["output"]) == ("boxes", "scores")
    assert boxes["values"] == 12 and scores["values"] == 12
    assert boxes["max_abs_diff"] == 0.5 and boxes["rmse"] == pytest.approx(0.5)
    assert scores["cosine"] == pytest.approx(-1.0)  # opposite vectors
    assert scores["rmse"] == pytest.approx(2.0)
    assert [e["output"] for e in output_parity(ref, cand)] == ["output_0", "output_1"]


def test_equal_outputs_have_an_infinite_snr_written_as_null():
    x = np.random.default_rng(0).normal(size=(5, 7)).astype(np.float32)
    e = one(x, x.copy())
    assert e["equal"] is True and e["snr_db"] is None and snr_is_infinite(e)
    assert (e["max_abs_diff"], e["rmse"], e["l2r"], e["cosine"]) == (0.0, 0.0, 0.0, 1.0)
    zeros = one(np.zeros(4), np.zeros(4))  # two all-zero vectors are equal, cosine 1
    assert zeros["equal"] and zeros["cosine"] == 1.0 and snr_is_infinite(zeros)
    # strict JSON: no Infinity / NaN in what the manifest stores
    json.dumps([e, zeros], allow_nan=False)


def test_all_zero_vectors_on_one_side():
    ref_zero = one([0.0, 0.0], [1.0, 0.0])  # SNR -infinity, L2r undefined
    assert ref_zero["snr_db"] is None and ref_zero["l2r"] is None
    assert not ref_zero["equal"] and not snr_is_infinite(ref_zero)
    assert ref_zero["cosine"] == 0.0 and ref_zero["max_abs_diff"] == 1.0
    cand_zero = one([1.0, 0.0], [0.0, 0.0])  # all noise: SNR 0 dB, L2r 1
    assert cand_zero["snr_db"] == 0.0 and cand_zero["l2r"] == 1.0
    assert cand_zero["cosine"] == 0.0


def test_nan_and_inf_in_a_candidate_are_counted_and_leave_no_figure():
    e = one([1.0, 2.0, 3.0], [np.nan, 2.0, np.inf])
    assert e["nonfinite"] == 2 and e["reference_nonfinite"] == 0
    assert all(e[k] is None for k in ("max_abs_diff", "rmse", "l2r", "cosine", "snr_db"))
    assert not is_equal(e) and not snr_is_infinite(e)
    r = one([np.inf, 1.0], [np.inf, 1.0])  # a reference that overflowed: counted too
    assert r["reference_nonfinite"] == 1 and r["nonfinite"] == 1 and not r["equal"]
    validate([e, r], OUTPUT_PARITY, "manifest")
    json.dumps([e, r], allow_nan=False)


def test_cosine_is_scale_invariant_and_rmse_scales():
    rng = np.random.default_rng(1)
    ref = rng.normal(size=1000)
    cand = ref + rng.normal(scale=0.1, size=1000)
    base = one(ref, cand)
    for k in (1e-3, 7.0, 1e6):
        scaled = one(ref * k, cand * k)
        assert scaled["cosine"] == pytest.approx(base["cosine"], rel=1e-12)
        assert scaled["snr_db"] == pytest.approx(base["snr_db"], rel=1e-9)
        assert scaled["l2r"] == pytest.approx(base["l2r"], rel=1e-9)
        assert scaled["rmse"] == pytest.approx(k * base["rmse"], rel=1e-9)
    # scaling only the candidate leaves the cosine alone but not the SNR
    other = one(ref, 3 * cand)
    assert other["cosine"] == pytest.approx(base["cosine"], rel=1e-12)
    assert other["snr_db"] < base["snr_db"]


def test_snr_of_a_known_noise_level():
    # a unit-power signal with independent noise of power 0.01 (std 0.1): 20 dB, give or
    # take the sample's own spread (200,000 values: well within 0.1 dB)
    rng = np.random.default_rng(2)
    signal = rng.choice([-1.0, 1.0], size=200_000)  # power exactly 1
    noise = rng.normal(scale=0.1, size=signal.size)
    e = one(signal, signal + noise)
    assert e["snr_db"] == pytest.approx(20.0, abs=0.1)
    assert e["rmse"] == pytest.approx(0.1, rel=0.01)
    # 1% noise power -> cosine = 1/sqrt(1 + 0.01)
    assert e["cosine"] == pytest.approx(1 / math.sqrt(1.01), abs=1e-4)
    louder = one(signal, signal + 10 * noise)  # noise power x100: 20 dB less
    assert louder["snr_db"] == pytest.approx(0.0, abs=0.1)


def test_int8_and_float16_outputs_are_compared_as_float64():
    e = one(np.array([1, 2, 3], np.int8), np.array([1, 2, 4], np.int8))
    assert e["max_abs_diff"] == 1.0 and e["rmse"] == pytest.approx(math.sqrt(1 / 3))
    h = one(np.array([0.5, 1.5], np.float16), np.array([0.5, 1.5], np.float32))
    assert h["equal"]


def test_extreme_float64_values_stay_finite_and_exact_in_ratio():
    tiny = one([1e-170, 0.0], [1.1e-170, 0.0])  # squares underflow unscaled
    assert tiny["snr_db"] == pytest.approx(20.0) and tiny["l2r"] == pytest.approx(0.1)
    huge = one([1e300, -1e300], [-1e300, 1e300])  # squares overflow unscaled
    assert huge["cosine"] == pytest.approx(-1.0) and huge["snr_db"] == pytest.approx(
        10 * math.log10(1 / 4))
    assert huge["max_abs_diff"] == pytest.approx(2e300)
    validate([tiny, huge], OUTPUT_PARITY, "manifest")


@pytest.mark.parametrize("reference, candidate, names, message", [
    ([np.zeros((2, 3))], [np.zeros((3, 2))], None, "shape (2, 3) is not the candidate's (3, 2)"),
    ([np.zeros(2)], [np.zeros(2), np.zeros(2)], None, "1 output(s), the candidate 2"),
    ([np.zeros(2)], [np.zeros(2)], ["a", "b"], "2 name(s) for 1 output(s)"),
    ([np.zeros(0)], [np.zeros(0)], None, "no values"),
    ([], [], None, "no outputs"),
    (np.zeros(3), np.zeros(3), None, "not a bare array"),
])
def test_mismatches_are_errors_not_figures(reference, candidate, names, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        output_parity(reference, candidate, names)


def test_the_schema_takes_what_the_function_writes_and_refuses_the_rest():
    entries = output_parity([np.array([1.0, 2.0])] * 2, [np.array([1.0, 2.5])] * 2, ["a", "b"])
    validate(entries, OUTPUT_PARITY, "manifest")
    for bad, field in [({"cosine": 1.5}, "cosine"), ({"rmse": -1}, "rmse"),
                       ({"values": -1}, "values"), ({"snr_db": "inf"}, "snr_db"),
                       ({"equal": 1}, "equal")]:
        with pytest.raises(EdgeconvError, match=f"\\[0\\].{field}"):
            validate([{**entries[0], **bad}], OUTPUT_PARITY, "manifest")
    with pytest.raises(EdgeconvError, match="snr_db is missing"):
        validate([{k: v for k, v in entries[0].items() if k != "snr_db"}], OUTPUT_PARITY, "m")
    with pytest.raises(EdgeconvError):
        validate([], OUTPUT_PARITY, "manifest")  # no outputs is not a record


def test_the_module_top_imports_no_numpy():
    code = ("import sys; import edgeconv.quant.output_parity as m; "
            "print('numpy' in sys.modules, m.OUTPUT_PARITY is not None)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, timeout=60)
    assert done.stdout.split() == ["False", "True"], done.stdout + done.stderr


def test_reading_entries_back_figure_and_worst():
    from edgeconv.quant.output_parity import figure, worst

    a = one([3.0, 4.0], [3.0, 5.0])  # 13.98 dB
    same = one([1.0, 2.0], [1.0, 2.0])
    zero_ref = one([0.0, 0.0], [1.0, 0.0])
    nan = one([1.0, 2.0], [np.nan, 2.0])
    assert figure(same, "snr_db") == (math.inf, "equal to the float reference's")
    assert figure(zero_ref, "snr_db")[0] == -math.inf and figure(zero_ref, "l2r")[0] == math.inf
    assert figure(nan, "cosine") == (None, "1 of 2 values of the file are NaN or infinite")
    assert figure({**a, "rmse": None}, "rmse") == (None, "no rmse recorded")
    assert worst([a, same], "snr_db")[0] is a and worst([a, same], "rmse")[0] is a
    assert worst([a, same, zero_ref], "snr_db")[0] is zero_ref  # minus infinity
    assert worst([a, nan, zero_ref], "cosine")[0] is nan  # no figure: worst of all
    assert worst([same, a], "cosine")[1] == pytest.approx(a["cosine"])
