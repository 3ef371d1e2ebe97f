"""The calibration consistency checks catch the usual silent int8 collapses."""

import numpy as np
import pytest

from edgeconv.quant.calibration import (
    check_calibration,
    check_input_quantization,
    draw_calibration,
)
from edgeconv.data import calibration_indices, load

UNIT = {"scale": 1 / 255, "offset": 0.0}


@pytest.fixture(scope="module")
def digits():
    return load("digits", input_shape=(8, 8, 1), seed=0)


def check(data, images, picked):
    return check_calibration(images, data.train.y[picked], data.train.x,
                             data.preprocessing.to_dict(), data.num_classes)


def test_the_pipelines_own_calibration_passes(digits):
    picked = calibration_indices(digits, 200)
    result = check(digits, digits.train.x[picked], picked)
    assert result.warnings == []
    assert result.expected_range == (0.0, 1.0)


def test_normalisation_applied_twice_or_not_at_all_is_named(digits):
    picked = calibration_indices(digits, 200)
    twice = check(digits, digits.train.x[picked] / 255, picked).warnings
    assert any("applied twice" in w for w in twice)
    never = check(digits, digits.train.x[picked] * 255, picked).warnings
    assert any("not applied" in w for w in never)


def test_small_or_lopsided_calibration_sets_are_named(digits):
    few = calibration_indices(digits, 20)
    assert any("only 20 calibration images" in w
               for w in check(digits, digits.train.x[few], few).warnings)
    zeros = np.flatnonzero(digits.train.y == 0)[:60]
    others = np.flatnonzero(digits.train.y != 0)[:60]
    lopsided = np.concatenate([zeros, others])
    warnings = check(digits, digits.train.x[lopsided], lopsided).warnings
    assert any("class 0 is 50%" in w for w in warnings)


def test_int8_input_quantisation_must_cover_the_preprocessed_range():
    good = {"input": {"scale": 1 / 255, "zero_point": -128, "dtype": "int8"}}
    assert check_input_quantization(good, UNIT) == []
    # Calibrated on images normalised twice: the input covers 0..1/255 only.
    bad = {"input": {"scale": 1 / 255 / 255, "zero_point": -128, "dtype": "int8"}}
    assert "does not match training" in check_input_quantization(bad, UNIT)[0]
    assert check_input_quantization({"input": None}, UNIT) == []


def test_export_and_quant_report_draw_the_same_images(digits):
    first, again = draw_calibration(digits, 50, seed=3), draw_calibration(digits, 50, seed=3)
    assert np.array_equal(first.images, again.images)
    assert np.array_equal(first.labels, digits.train.y[calibration_indices(digits, 50, seed=3)])
    assert first.record("minmax") == {"samples": 50, "split": "train", "seed": 3,
                                      "method": "minmax"}
