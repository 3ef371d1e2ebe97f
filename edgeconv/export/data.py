"""The images an export measures each file on and calibrates int8 with: the source's data
(edgeconv.data.measured's protocol), cut to the evaluation subset, and the calibration draw
with its checks."""

from __future__ import annotations

from edgeconv.export.config import ExportConfig
from edgeconv.quant.calibration import CalibrationCheck, CalibrationSet

# Test images an untrained export is measured on unless --eval-samples says otherwise: enough
# to check each conversion against Keras, few enough for VGG16 at 224x224 (15 GMAC each).
UNTRAINED_EVAL_SAMPLES = 32


def evaluation_data(data, config: ExportConfig, seed: int):
    """The data with the test split cut to the images each file is measured on."""
    samples = config.eval_samples or (UNTRAINED_EVAL_SAMPLES if config.untrained else None)
    return data if samples is None or samples >= len(data.test.x) else data.subset(samples,
                                                                                 seed)


def calibration_for(data, config: ExportConfig
                    ) -> tuple[CalibrationSet, CalibrationCheck, list[str]]:
    """The int8 calibration images, how well they match the images the model was made for,
    and the notes about both."""
    from edgeconv.quant.calibration import check_calibration

    drawn = data.draw_calibration(config.calibration_samples, config.seed)
    labels = drawn.labels if len(drawn.labels) else None  # a user's images may have none
    check = check_calibration(drawn.images, labels, data.train.x,
                              data.preprocessing.to_dict(), max(data.num_classes, 1))
    notes = [f"calibration: {w}" for w in check.warnings]
    if data.calibration_from_test:
        notes.append("calibration images were drawn from the measured images (their pixels,"
                     " never their labels); give --calibration-data DIR to keep them apart")
    return drawn, check, notes
