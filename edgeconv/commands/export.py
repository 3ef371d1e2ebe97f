"""`edgeconv export`: TFLite and ONNX files at each precision, measured, with a manifest."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from edgeconv import render
from edgeconv.commands._options import (
    LAYERS_SHOWN,
    MAX_DROP,
    PIXEL_SCALE,
    PIXEL_SHIFT,
    PIXEL_STD,
    SAMPLES,
    SEEDS,
    Alpha,
    Blocks,
    Groups,
    InputShape,
    JsonFlag,
    Kernel,
    Version,
    bounded,
    bounded_list,
    known_calibration_method,
    model_options,
)
from edgeconv.formats import EXPORT_FORMATS, parse_formats


def export(
    target: Annotated[str, typer.Argument(
        metavar="NAME_RUN_DIR_OR_MODEL_FILE",
        help="A model name (trains runs/NAME first if it has no finished run), a run"
             " directory from `edgeconv train`, or a model file of yours: .keras, .h5, a"
             " SavedModel directory, .onnx, .tflite (docs/own-model.md).")],
    int8: Annotated[bool, typer.Option(
        "--int8", help="Full-integer int8 (TFLite, and ONNX QDQ), calibrated on train"
                       " images.")] = False,
    int16x8: Annotated[bool, typer.Option(
        "--int16x8", help="Full-integer int16 activations with int8 weights (TFLite 16x8,"
                          " and ONNX 16-bit QDQ), calibrated on train images.")] = False,
    fp16: Annotated[bool, typer.Option("--fp16", help="TFLite float16 weights.")] = False,
    dynamic: Annotated[bool, typer.Option(
        "--dynamic", help="TFLite dynamic-range (int8 weights, float activations).")] = False,
    formats: Annotated[str, typer.Option(
        help=f"Comma-separated formats: {', '.join(EXPORT_FORMATS)}."
    )] = ",".join(EXPORT_FORMATS),
    calibration_samples: Annotated[int, typer.Option(
        help="Train images used to calibrate int8.", callback=bounded(SAMPLES))] = 200,
    calibration_method: Annotated[str, typer.Option(
        help="int8 / int16x8 calibration. TFLite: minmax (TensorFlow's converter), mse or"
             " octav (ai-edge-quantizer's weight ranges); ONNX: minmax, entropy or"
             " percentile (activation ranges).",
        callback=known_calibration_method)] = "minmax",
    per_tensor: Annotated[bool, typer.Option(
        "--per-tensor", help="int8 weights with one scale per tensor (default: per channel)."
    )] = False,
    float_io: Annotated[bool, typer.Option(
        "--float-io", help="int8 TFLite keeps float32 input and output.")] = False,
    eval_samples: Annotated[int | None, typer.Option(
        help="Test images each file is measured on (stratified; bench uses the same). Default:"
             " the whole test split, or 32 with --untrained.", show_default=False,
        callback=bounded(SAMPLES))] = None,
    max_drop: Annotated[float | None, typer.Option(
        help="int8 accuracy budget in points below float: give the worst layers int16"
             " activations (int16x8) until it holds (exit 1 if it cannot).",
        show_default=False, callback=bounded(MAX_DROP))] = None,
    allow_float: Annotated[bool, typer.Option(
        "--allow-float", help="--max-drop may also keep layers float when int16x8 layers"
                              " are not enough (a float island: slow on a microcontroller,"
                              " refused by an NPU).")] = False,
    input_shape: InputShape = None,
    alpha: Alpha = None,
    version: Version = None,
    groups: Groups = None,
    blocks: Blocks = None,
    kernel: Kernel = None,
    untrained: Annotated[bool, typer.Option(
        "--untrained", help="Export freshly initialised weights (size and speed only;"
                            " default input size is the model's own).")] = False,
    data: Annotated[str | None, typer.Option(
        help="Dataset when export trains (or calibrates untrained weights); for a model"
             " file: its images (a dataset name, a folder with one sub-folder per class, a"
             " folder of unlabelled images, or an .npz with x, y or x_test, y_test).",
        show_default=False)] = None,
    calibration_data: Annotated[Path | None, typer.Option(
        help="Model file: a folder of unlabelled images used only to calibrate int8.",
        show_default=False)] = None,
    layout: Annotated[str | None, typer.Option(
        help="Model file: NHWC or NCHW (default: guessed from the input's 1 or 3 channel"
             " axis).", show_default=False)] = None,
    scale: Annotated[float | None, typer.Option(
        help="Model file: x = pixel * scale (+ --offset) (default 1/255).",
        show_default=False, callback=bounded(PIXEL_SCALE))] = None,
    offset: Annotated[float | None, typer.Option(
        help="Model file: added after --scale (default 0).", show_default=False,
        callback=bounded(PIXEL_SHIFT))] = None,
    mean: Annotated[str | None, typer.Option(
        help="Model file: per-channel mean subtracted after scaling, e.g."
             " 0.485,0.456,0.406.", show_default=False,
        callback=bounded_list(PIXEL_SHIFT))] = None,
    std: Annotated[str | None, typer.Option(
        help="Model file: per-channel std divided by after the mean, e.g."
             " 0.229,0.224,0.225.", show_default=False,
        callback=bounded_list(PIXEL_STD))] = None,
    color: Annotated[str | None, typer.Option(
        help="Model file: rgb, bgr or gray (default: from the channel count).",
        show_default=False)] = None,
    resize: Annotated[str | None, typer.Option(
        help="Model file: bilinear, nearest, bicubic, area or lanczos (default bilinear).",
        show_default=False)] = None,
    custom_objects: Annotated[Path | None, typer.Option(
        help="Model file: a Python file of yours registering custom layers (CUSTOM_OBJECTS"
             " dict or @keras.saving.register_keras_serializable).",
        show_default=False)] = None,
    measure_only: Annotated[bool, typer.Option(
        "--measure-only", help="Model file: measure it as it is, convert nothing (always"
                               " for .tflite).")] = False,
    data_dir: Annotated[Path | None, typer.Option(
        help="Folder holding the dataset's standard files.", show_default=False)] = None,
    seed: Annotated[int, typer.Option(help="Seed when export trains; calibration sample.",
                                      callback=bounded(SEEDS))] = 0,
    out: Annotated[Path | None, typer.Option(
        help="Run directory (default runs/NAME).", show_default=False)] = None,
    wide: Annotated[bool, typer.Option(
        "--wide", help="Every column: McNemar's p, the worst output's cosine and SNR, max"
                       " |diff| (the default table fits 120 columns).")] = False,
    json: JsonFlag = False,
) -> None:
    """Export TFLite / ONNX files, each measured in its own runtime, with manifest.json."""
    from edgeconv.commands._progress import RichProgress
    from edgeconv.data.user import PrepFlags
    from edgeconv.export import ExportConfig
    from edgeconv.export import export as run_export
    from edgeconv.formats import source_kind_of
    from edgeconv.zoo._registry import dataset_for

    user_file = source_kind_of(target).user_file
    # A model file takes --input-shape as a preprocessing flag (its shape is its own).
    options = model_options(None, None if user_file else input_shape, alpha, version, groups,
                            blocks, kernel)
    prep = PrepFlags(input_shape=_shape(input_shape) if user_file else None, layout=layout,
                     scale=scale, offset=offset, mean=_floats("--mean", mean),
                     std=_floats("--std", std), color=color, resize=resize)
    # The flags are named after the precisions they add (fp32 is always made).
    asked = {"int8": int8, "int16x8": int16x8, "fp16": fp16, "dynamic": dynamic}
    config = ExportConfig(
        target=target, model_options={k: v for k, v in options.items() if v is not None},
        precisions=frozenset(p for p, on in asked.items() if on),
        formats=parse_formats(formats),
        calibration_samples=calibration_samples,
        calibration_method=calibration_method.lower(), per_tensor=per_tensor,
        float_io=float_io, max_drop=max_drop, allow_float=allow_float, out=out,
        dataset=data or dataset_for(target),
        data_dir=None if data_dir is None else str(data_dir), seed=seed, untrained=untrained,
        eval_samples=eval_samples, prep=prep, data_given=data is not None,
        calibration_data=None if calibration_data is None else str(calibration_data),
        custom_objects=None if custom_objects is None else str(custom_objects),
        measure_only=measure_only)
    if not user_file and (measure_only or calibration_data or custom_objects
                          or any(v is not None for v in (layout, scale, offset, mean, std,
                                                         color, resize))):
        from edgeconv.errors import EdgeconvError

        raise EdgeconvError("--measure-only, --calibration-data, --custom-objects and the"
                            " preprocessing flags apply to a model file (.keras, .h5, a"
                            " SavedModel, .onnx, .tflite)")
    # One bar for the whole job: training first (when needed), then the export's steps.
    with RichProgress(render.stderr_console(own_fd=True)) as progress:
        result = run_export(config, progress)
    if json:
        render.print_json(result.to_dict())
    else:
        _print_export(result, wide)
    if result.budget_met is False:
        typer.echo(f"error: the int8 accuracy budget --max-drop {max_drop:g} was not met;"
                   " the most accurate int8 files found are kept (see the notes)", err=True)
        raise typer.Exit(1)


def _floats(flag: str, text: str | None) -> tuple[float, ...] | None:
    """'0.485,0.456,0.406' -> (0.485, 0.456, 0.406)."""
    if text is None:
        return None
    try:
        return tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        from edgeconv.errors import EdgeconvError

        raise EdgeconvError(f"{flag} takes numbers separated by commas; got '{text}'") from None


def _shape(text: str | None) -> tuple[int | None, ...] | None:
    from edgeconv.commands._options import parse_shape

    return parse_shape(text)


def _print_export(result, wide: bool = False) -> None:
    """The files made, in a table that fits 120 columns (render.file_table): size, accuracy,
    the change from float, agreement, TFLite Micro's arena; --wide adds McNemar's p, the
    worst output's parity (a classifier's) and max |diff|. A model with no accuracy shows
    the worst output's parity in its place."""
    change = _versus_float if wide else _change
    rows = []
    for a in result.artifacts:
        micro = a.micro or {}
        rows.append([a.path, render.nbytes(a.size_bytes),
                     render.percent_interval(a.accuracy, a.accuracy_interval),
                     "reference" if a.format == "keras" else change(a.versus_float),
                     _pct(a.agreement),
                     "" if a.max_abs_diff is None else f"{a.max_abs_diff:.1e}",
                     render.nbytes(micro.get("arena_bytes")) if micro.get("ok")
                     else ("fails" if micro else "")])
    counts = {a.eval_samples for a in result.artifacts if a.eval_samples}
    images = f" on {counts.pop():,} test images" if len(counts) == 1 else ""
    accuracy = ("" if result.float_accuracy is None
                else f" (float accuracy {_pct(result.float_accuracy)})")
    title = (f"{result.model} exported to {result.run_dir} in {result.seconds:.1f} s,"
             f" measured{images}{accuracy}")
    columns = ["file", "size", "accuracy % [95% CI]", "vs float" if wide else "vs float pt",
               "agrees", "max |diff|", "TFLM arena"]
    # the worst output's parity with the float reference: next to accuracy for a classifier,
    # in its place for a model with no labels or no single classifier output
    parity_columns = ["min cosine", "min SNR dB"]
    parity_cells = [_parity_cells(a) for a in result.artifacts]
    if all(a.accuracy is None for a in result.artifacts):
        columns[2:5] = ["outputs", *parity_columns]
        for row, a, cells in zip(rows, result.artifacts, parity_cells):
            row[2:5] = [str(len(a.outputs) or ""), *cells]
    elif wide and any(a.output_parity for a in result.artifacts):
        columns[5:5] = parity_columns
        for row, cells in zip(rows, parity_cells):
            row[5:5] = cells
    if not wide:
        rows = [row[:columns.index("max |diff|")] + row[columns.index("max |diff|") + 1:]
                for row in rows]
        columns.remove("max |diff|")
    stdout = render.stdout_console()
    render.print_table(stdout, render.file_table(
        title, columns, rows, right=set(columns[1:]),
        no_wrap={"accuracy % [95% CI]", "vs float pt"}), wide=wide)
    if any(a.versus_float for a in result.artifacts):
        # how the figures were obtained, once, rather than in every cell
        stdout.print("accuracy % [95% Wilson score interval]; vs float: this file's accuracy"
                     " minus the float reference's (the Keras model, or your fp32 file) on"
                     " the same images, in points [95% Newcombe paired interval]"
                     + (", exact McNemar p (images only float / only this file gets right)"
                        if wide else ""),
                     highlight=False, soft_wrap=True, markup=False)
    stdout.print(f"manifest: {result.manifest}")
    for note in [*(r.text() for r in result.refusals), *result.notes]:
        render.stderr_console().print(f"note: {note}", highlight=False, soft_wrap=True)


def _parity_cells(artifact) -> list[str]:
    """The min cosine and min SNR dB cells of a file: "(reference)" for the float reference
    itself (the one file without parity), the worst output's figure otherwise."""
    if artifact.output_parity is None:
        return ["(reference)"] * 2
    return [_worst(artifact.output_parity, "cosine", "{:.6f}"),
            _worst(artifact.output_parity, "snr_db", "{:.1f}")]


def _worst(parity: list[dict], key: str, form: str) -> str:
    """The lowest figure over the outputs: "inf" / "-inf" where the SNR is infinite (equal
    outputs; an all-zero reference), "NaN" where an output holds NaN or infinite values."""
    from edgeconv.quant.output_parity import worst

    if not parity:
        return ""
    _, value, _ = worst(parity, key)
    if value is None:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "inf" if value > 0 else "-inf"
    return form.format(value)


def _pct(value: float | None) -> str:
    return "" if value is None else f"{100 * value:.2f}%"


def percent_with_interval(value: float | None, interval: list[float] | None) -> str:
    """97.49% [96.9, 98.0]: a share and its interval, in percent."""
    if value is None or not interval:
        return _pct(value)
    low, high = (100 * v for v in interval)
    digits = 2 if high - low < 1 else 1  # enough to show the width of a narrow interval
    return f"{_pct(value)} [{low:.{digits}f}, {high:.{digits}f}]"


def _versus_float(versus: dict | None) -> str:
    """-0.28 [-0.9, +0.3] pt, p=0.63 (3/2): the change from the float model's accuracy (the
    drop's negative), its interval, McNemar's p and the discordant images."""
    if not versus:
        return ""
    return (f"{_change(versus)} pt, p={_p_value(versus['mcnemar_p'])}"
            f" ({versus['reference_only']}/{versus['candidate_only']})")


def _change(versus: dict | None) -> str:
    """-0.28 [-0.9, +0.3]: the change from the float model's accuracy in points (the drop's
    negative) and its interval: the table's cell without --wide."""
    if not versus:
        return ""
    change = -100 * versus["drop"] + 0.0  # + 0.0: no drop prints +0.00, not -0.00
    low, high = (-100 * v + 0.0 for v in reversed(versus["drop_interval"]))
    digits = 2 if high - low < 1 else 1
    return f"{change:+.2f} [{low:+.{digits}f}, {high:+.{digits}f}]"


def _p_value(p: float) -> str:
    return "<0.001" if p < 0.001 else f"{p:.2g}"


def quant_report(
    path: Annotated[Path, typer.Argument(
        metavar="ARTIFACT_OR_RUN",
        help="An export directory (every int8 file in it) or one int8 file of an export.")],
    top: Annotated[int, typer.Option(help="Layers shown per file, worst first (0: all).",
                                     callback=bounded(LAYERS_SHOWN))] = 10,
    data_dir: Annotated[Path | None, typer.Option(
        help="Folder holding the dataset's standard files.", show_default=False)] = None,
    json: JsonFlag = False,
) -> None:
    """Per-layer int8 error (RMSE, RMSE/scale, SQNR) against the float model, worst first."""
    from edgeconv.quant.report import quant_report as run_report

    with render.stderr_console(own_fd=True).status("running the float and int8 models"
                                                    " on the calibration images"):
        report = run_report(path, data_dir=None if data_dir is None else str(data_dir))
    if json:
        render.print_json(report.to_dict())
        return
    stdout, stderr = render.stdout_console(), render.stderr_console()
    for warning in report.warnings:
        stderr.print(f"calibration: {warning}", highlight=False, soft_wrap=True)
    for errors in report.artifacts:
        # ONNX's report also compares each layer with the float model's (all errors so far).
        accumulated = any("accumulated_sqnr_db" in row for row in errors.layers)
        columns = ["layer output", "op", "SQNR dB", "RMSE", "RMSE/scale"]
        columns += ["accumulated SQNR dB"] if accumulated else []
        rows = []
        for row in errors.layers[:top or None]:
            cells = [_short(row["name"]), row["op"], f"{row['sqnr_db']:.1f}",
                     f"{row['rmse']:.3g}",
                     "" if row["rmse_per_scale"] is None else f"{row['rmse_per_scale']:.2f}"]
            if accumulated:
                acc = row.get("accumulated_sqnr_db")
                cells.append("" if acc is None else f"{acc:.1f}")
            rows.append(cells)
        stdout.print(render.table(
            f"{errors.artifact}: {len(errors.layers)} quantised layers, worst first"
            f" ({report.calibration_samples} calibration images)", columns, rows,
            right=set(columns[2:])))
        stdout.print(f"[dim]{errors.method}[/]", highlight=False)
        for warning in errors.warnings:
            stderr.print(f"{errors.artifact}: {warning}", highlight=False, soft_wrap=True)


def _short(name: str, width: int = 60) -> str:
    """A TFLite tensor name lists every fused op ("a/Relu;a/BiasAdd;..."): keep the first."""
    first = name.split(";")[0]
    return first if len(first) <= width else "..." + first[-(width - 3):]
