"""Time to export a user's Keras MobileNetV2 (alpha 0.35, 96x96x3) to every format and
precision, as `edgeconv export my_model.keras --data FOLDER --int8 --fp16 --dynamic` does it.

Run:  .venv/bin/python benchmarks/own_model_export.py [--images 300] [--alpha 0.35] [--side 96]

The "user's" model is keras.applications.MobileNetV2 (random weights, 10 classes) saved as a
.keras file; its "data" is a folder of PNGs written here: scikit-learn's digits scaled to
side x side RGB, one sub-folder per class (--images of them). Neither is part of the time.
The export then runs in a temporary directory through the CLI's library call, each step
timed on its own (model load, the float reference, each conversion and each file's run over
the images in its own runtime, the int8 TFLite Micro check). Prints a markdown table for
docs/benchmarks.md, with the machine.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np


def write_images(root: Path, count: int, side: int) -> None:
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    for i, (image, label) in enumerate(zip(digits.images[:count], digits.target[:count])):
        gray = Image.fromarray(np.uint8(np.rint(image * 255 / 16))).convert("RGB")
        folder = root / str(label)
        folder.mkdir(parents=True, exist_ok=True)
        gray.resize((side, side), Image.Resampling.BILINEAR).save(folder / f"{i:04d}.png")


def run(args) -> None:
    from export_time import StepTimer, print_tables

    from edgeconv._lazy import keras
    from edgeconv.export import ExportConfig, export

    k = keras()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        k.utils.set_random_seed(0)
        model = k.applications.MobileNetV2(input_shape=(args.side, args.side, 3),
                                           alpha=args.alpha, weights=None, classes=10)
        model.save(tmp / "my_model.keras")
        write_images(tmp / "images", args.images, args.side)
        timer = StepTimer()
        started = time.perf_counter()
        result = export(ExportConfig(target=str(tmp / "my_model.keras"),
                                     dataset=str(tmp / "images"),
                                     precisions=frozenset({"int8", "fp16", "dynamic"}),
                                     out=tmp / "run"), timer)
        total = time.perf_counter() - started
        timer._close()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, load"
          f" {os.getloadavg()[0]:.1f}, Python {platform.python_version()}; Keras MobileNetV2"
          f" alpha {args.alpha} {args.side}x{args.side}x3 (random weights, 10 classes),"
          f" {args.images} images, {min(200, args.images)} calibration images\n")
    print_tables(timer, total, "loading the .keras and the images included", result)
    for note in result.notes:
        print(f"\nnote: {note}")


def main() -> None:
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent))  # export_time's StepTimer
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alpha", type=float, default=0.35)
    parser.add_argument("--side", type=int, default=96)
    parser.add_argument("--images", type=int, default=300)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    run(parser.parse_args())


if __name__ == "__main__":
    main()
