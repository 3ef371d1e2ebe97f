"""Which files an export makes, in order, read off the format table; and the checks on the
request that fail before anything is touched."""

from __future__ import annotations

from edgeconv.errors import EdgeconvError
from edgeconv.export.config import ExportConfig
from edgeconv.formats import (
    CALIBRATED,
    CALIBRATION_METHODS,
    EXPORT_FORMATS,
    FLOAT,
    FORMATS,
    INT8,
    PRECISIONS,
    parse_formats,
    precisions_of,
    source_kind_of,
)

# How messages name a format (the table has no display name yet).


def plan(config: ExportConfig) -> list[tuple[str, str]]:
    """(format, precision) pairs in the order they are made; checks the combination.

    For each chosen format in EXPORT_FORMATS order, its precisions in PRECISIONS order that
    are fp32 (always made) or asked for.
    """
    formats = parse_formats(",".join(config.formats))  # the --formats check and message
    if not config.calibration_samples > 0:
        raise EdgeconvError(f"--calibration-samples must be > 0; got"
                            f" {config.calibration_samples}")
    if config.eval_samples is not None and not config.eval_samples > 0:
        raise EdgeconvError(f"--eval-samples must be > 0; got {config.eval_samples}")
    _check_calibration(config, formats)
    _check_precisions(config.precisions, formats)
    if (config.float_io or config.per_tensor) and not config.precisions & CALIBRATED:
        raise EdgeconvError("--float-io and --per-tensor apply to int8 and int16x8; add --int8"
                            " or --int16x8")
    if config.max_drop is not None and INT8 not in config.precisions:
        raise EdgeconvError("--max-drop applies to int8 files; add --int8")
    if config.allow_float and config.max_drop is None:
        raise EdgeconvError("--allow-float lets --max-drop keep layers float; add --max-drop")
    if config.max_drop is not None and not config.max_drop >= 0:
        raise EdgeconvError(f"--max-drop is in accuracy points and must be >= 0; got"
                            f" {config.max_drop}")
    return [(fmt, precision) for fmt in EXPORT_FORMATS if fmt in formats
            for precision in PRECISIONS if precision in FORMATS[fmt].precisions
            and (precision == FLOAT or precision in config.precisions)]


def _check_calibration(config: ExportConfig, formats: tuple[str, ...]) -> None:
    """The method is one that every chosen format making calibrated files has: a method a
    format lacks is refused, not quietly replaced by its default."""
    method = config.calibration_method
    if method not in CALIBRATION_METHODS:
        raise EdgeconvError(f"unknown calibration method '{method}'; use one of"
                            f" {', '.join(CALIBRATION_METHODS)}")
    # the formats this source is converted to (a user's ONNX file: ONNX only)
    made = source_kind_of(config.target, untrained=config.untrained).becomes
    lacking = [FORMATS[f] for f in formats
               if set(made.get(f, ())) & CALIBRATED
               and method not in FORMATS[f].calibration_methods]
    if lacking and config.precisions & CALIBRATED:
        having = [f.name for f in FORMATS.values() if method in f.calibration_methods]
        raise EdgeconvError(
            f"--calibration-method {method}: "
            + "; ".join(f"{f.title} calibrates with {', '.join(f.calibration_methods)}"
                        for f in lacking)
            + f"; give --formats {','.join(having)} for {method}")
    tflite_default = FORMATS["tflite"].calibration_methods[0]  # TensorFlow's converter
    if config.float_io and "tflite" in formats and "tflite" in made \
            and method != tflite_default:
        raise EdgeconvError(f"--calibration-method {method} makes TFLite files with int8"
                            " input and output (ai-edge-quantizer); drop --float-io")


def _check_precisions(asked: frozenset[str], formats: tuple[str, ...]) -> None:
    """Every precision asked for is one of PRECISIONS that a chosen format carries."""
    unknown = sorted(asked - set(PRECISIONS))
    if unknown:
        raise EdgeconvError(f"unknown precision '{unknown[0]}'; choose from"
                            f" {', '.join(PRECISIONS)}")
    made = precisions_of(formats)
    homeless = [p for p in PRECISIONS if p in asked and p not in made]
    if not homeless:
        return
    # Name every precision only those formats carry, so the fix (add them) is plain:
    # "--fp16 and --dynamic are TFLite precisions; add tflite to --formats".
    carriers = [f for f in EXPORT_FORMATS if homeless[0] in FORMATS[f].precisions]
    theirs = [p for p in precisions_of(carriers) if p not in made]
    flags = _and([f"--{p}" for p in theirs])
    kind = _or([FORMATS[f].title for f in carriers])
    what = f"are {kind} precisions" if len(theirs) > 1 else f"is a {kind} precision"
    raise EdgeconvError(f"{flags} {what}; add {_or(carriers)} to --formats")


def _and(words: list[str]) -> str:
    return " and ".join(words) if len(words) < 3 else f"{', '.join(words[:-1])} and {words[-1]}"


def _or(words: list[str]) -> str:
    return " or ".join(words) if len(words) < 3 else f"{', '.join(words[:-1])} or {words[-1]}"
