"""The images an export measures each file on and calibrates int8 with, prepared exactly as
in training."""

from __future__ import annotations

from edgeconv.export.config import ExportConfig
from edgeconv.export.source import Source
from edgeconv.formats import CALIBRATED
from edgeconv.quant.calibration import CalibrationCheck, CalibrationSet

# Test images an untrained export is measured on unless --eval-samples says otherwise: enough
# to check each conversion against Keras, few enough for VGG16 at 224x224 (15 GMAC each).
UNTRAINED_EVAL_SAMPLES = 32


def load_data(source: Source, config: ExportConfig):
    """The test split and calibration images, prepared exactly as in training."""
    from edgeconv.data import load, load_recorded

    if source.trained:
        return load_recorded(source.dataset, source.preprocessing, data_dir=config.data_dir,
                             seed=source.seed, made=f"{source.run_dir} was trained")
    # Untrained: the model's own input size; a size-free model sees the data at MNIST's 28.
    from edgeconv.zoo import get_spec, resolve_options

    h, w, c = resolve_options(get_spec(source.spec_name), **source.model_options).input_shape
    return load(source.dataset, input_shape=(h or 28, w or 28, c), data_dir=config.data_dir,
                seed=source.seed)


def evaluation_data(data, config: ExportConfig, seed: int):
    """The data with the test split cut to the images each file is measured on."""
    from edgeconv.data import evaluation_subset

    samples = config.eval_samples or (UNTRAINED_EVAL_SAMPLES if config.untrained else None)
    return data if samples is None else evaluation_subset(data, samples, seed=seed)


def calibration_for(data, config: ExportConfig) -> tuple[CalibrationSet | None,
                                                          CalibrationCheck | None]:
    """The int8 calibration images, and how well they match the training images."""
    if not config.precisions & CALIBRATED:
        return None, None
    from edgeconv.quant.calibration import check_calibration, draw_calibration

    drawn = draw_calibration(data, config.calibration_samples, seed=config.seed)
    return drawn, check_calibration(drawn.images, drawn.labels, data.train.x,
                                    data.preprocessing.to_dict(), data.num_classes)
