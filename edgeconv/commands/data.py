"""`edgeconv data`: load a dataset, split and preprocess it as training will, and summarise it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from edgeconv import render
from edgeconv.commands._options import (
    HELD_OUT, SAMPLES, SEEDS, InputShape, JsonFlag, bounded, parse_shape,
)


def data(
    name: Annotated[str, typer.Argument(
        help="digits (embedded), mnist, fashion_mnist, cifar10, or an image folder path "
             "(one sub-folder per class).")] = "digits",
    data_dir: Annotated[Path | None, typer.Option(
        help="Folder holding the dataset's standard files (default: the Keras cache, "
             "~/.keras/datasets).", show_default=False)] = None,
    download: Annotated[bool, typer.Option(
        help="Let Keras download missing files into its cache (needs network).")] = False,
    input_shape: InputShape = None,
    normalisation: Annotated[str, typer.Option(
        help="unit: [0, 1]; symmetric: [-1, 1].")] = "unit",
    seed: Annotated[int, typer.Option(help="Seed of the train/val/test split.",
                                      callback=bounded(SEEDS))] = 0,
    val_fraction: Annotated[float, typer.Option(help="Share of train held out for val.",
                                                callback=bounded(HELD_OUT))] = 0.1,
    test_fraction: Annotated[float, typer.Option(
        help="Share held out for test (datasets without an official test split).",
        callback=bounded(HELD_OUT))] = 0.2,
    calibration_samples: Annotated[int, typer.Option(
        help="Size of the int8 calibration sample drawn from train.",
        callback=bounded(SAMPLES))] = 100,
    json: JsonFlag = False,
) -> None:
    """Load, split and preprocess a dataset exactly as training will; print the summary."""
    from edgeconv.data import calibration_sample, load

    shape = parse_shape(input_shape) or (None, None, None)
    with render.stderr_console().status(f"loading {name}..."):
        prepared = load(name, input_shape=shape, data_dir=data_dir, download=download,
                        normalisation=normalisation, seed=seed, val_fraction=val_fraction,
                        test_fraction=test_fraction)
        calibration = calibration_sample(prepared, n=calibration_samples, seed=seed)
    summary = prepared.summary()
    summary["calibration_samples"] = int(len(calibration))
    if json:
        render.print_json(summary)
        return
    console = render.stdout_console()
    splits = summary["splits"]
    rows = [[cls] + [splits[s]["per_class"][cls] for s in ("train", "val", "test")]
            for cls in summary["classes"]]
    rows.append(["total"] + [splits[s]["count"] for s in ("train", "val", "test")])
    console.print(render.table(f"{summary['name']} — {summary['source']} (seed {seed})",
                               ["class", "train", "val", "test"], rows,
                               right={"train", "val", "test"}))
    p = summary["preprocessing"]
    console.print(render.table("preprocessing (recorded in the export manifest)", ["", "value"], [
        ["source shape", render.shape(p["source_shape"])],
        ["model input", render.shape(p["input_shape"]) + f" {p['input_dtype']}"],
        ["resize", p["resize"]],
        ["channels", p["channels"]],
        ["normalisation", f"x * {p['scale']:.6g} + {p['offset']:g}"],
        ["calibration sample", f"{len(calibration)} images from train"],
    ]))
