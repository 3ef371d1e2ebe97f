"""Which models `--calibration-method` changes anything on: TFLite's minmax, mse and octav,
and ONNX's minmax, entropy and percentile, measured (docs/int8-accuracy.md).

Three parts, printed as Markdown tables:

1. Keras sources on digits (the outlier model of tests/test_int8_budget.py, and the zoo
   runs given with --runs, e.g. `edgeconv train lenet5 --data digits --out DIR`):
   `edgeconv export SRC --data digits --int8 --formats tflite --calibration-method M` per
   TFLite method: the int8 file's accuracy on the export's test images, its sha256 (the
   same bytes, or not) and the method its manifest records. minmax is TensorFlow's
   converter; mse and octav are ai-edge-quantizer with those weight ranges (and min/max
   activations), so a difference there is the quantiser's as well as the method's: part 3
   holds the quantiser fixed.
2. The ONNX MNIST classifier (--onnx FILE): `edgeconv export FILE --data digits --int8
   --calibration-method M` per ONNX method.
3. MLPerf Tiny float .tflite files (--tiny DIR): quantised by ai-edge-quantizer at int8 with
   each method (edgeconv.convert.tflite_mixed, the export's own call), calibrated on random
   inputs in [0, 1) (no dataset here): each file's outputs against the float file's on
   other random inputs (cosine, and the share of top-1 that agree), and whether the bytes
   differ from minmax's.

Usage: .venv/bin/python benchmarks/calibration_methods.py [--runs DIR ...] [--onnx FILE]
       [--tiny DIR] [--work /tmp/calibration-methods]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
EDGECONV = [sys.executable, "-m", "edgeconv"]
TINY = ("pretrainedResnet", "vww_96_float", "ad01_fp32")


def keras_sources(sources: list[Path], work: Path) -> list[str]:
    from edgeconv.formats import FORMATS

    return _exports(sources, FORMATS["tflite"].calibration_methods, ["--formats", "tflite"],
                    "tflite", work)


def onnx_source(source: Path, work: Path) -> list[str]:
    from edgeconv.formats import FORMATS

    return _exports([source], FORMATS["onnx"].calibration_methods, [], "onnx", work)


def _exports(sources: list[Path], methods, extra: list[str], fmt: str, work: Path) -> list[str]:
    rows = [("| source | method | int8 accuracy % [95% CI] | vs float, points | sha256 |"
            " recorded method |"), "|---|---|---|---:|---|---|"]
    for source in sources:
        first = None
        for method in methods:
            out = work / f"{source.stem}-{method}"
            done = subprocess.run([*EDGECONV, "export", str(source), "--data", "digits",
                                   "--int8", *extra, "--calibration-method", method,
                                   "--out", str(out)], check=False, capture_output=True, text=True)
            refused = [line for line in done.stderr.splitlines()
                       if f"_int8.{fmt} not made" in line]
            if refused or "manifest:" not in done.stdout:
                why = (refused or done.stderr.strip().splitlines() or ["?"])[-1]
                rows.append(f"| {source.name} | {method} | not made:"
                            f" {' '.join(why.split())[:300]} | | | |")
                print(rows[-1], file=sys.stderr, flush=True)
                continue
            # a training run is exported into its own folder, whatever --out says
            written = [line.split(":", 1)[1].strip() for line in done.stdout.splitlines()
                       if line.startswith("manifest:")]
            manifest = json.loads(Path(written[-1] if written else out / "manifest.json")
                                  .read_text())
            entry = next(a for a in manifest["artifacts"]
                         if a["format"] == fmt and a["precision"] == "int8")
            assert entry["options"]["calibration"]["method"] == method, entry["options"]
            low, high = entry["accuracy_interval"]
            first = first or entry["sha256"]
            same = " (= minmax)" if method != methods[0] and entry["sha256"] == first else ""
            drop = 100 * (entry["accuracy"] - manifest["float_accuracy"])
            rows.append(f"| {source.name} | {method} | {100 * entry['accuracy']:.2f}"
                        f" [{100 * low:.1f}, {100 * high:.1f}] | {drop:+.2f} |"
                        f" {entry['sha256'][:12]}{same} |"
                        f" {entry['options']['calibration']['method']} |")
            print(rows[-1], file=sys.stderr, flush=True)
    return rows


def tiny(directory: Path, work: Path) -> list[str]:
    from edgeconv.convert.tflite_mixed import ALGORITHMS, to_tflite_mixed
    from edgeconv.mcu import read_ops
    from edgeconv.runtimes import open_runtime

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from int16x8_tiers import with_signature

    rows = [("| model | method | cosine with float | max abs diff | top-1 agreement |"
            " bytes differ from minmax |"), "|---|---|---:|---:|---:|---|"]
    rng = np.random.default_rng(0)
    for name in TINY:
        source = directory / f"{name}.tflite"
        if not source.is_file():
            continue
        fp32 = with_signature(source.read_bytes())
        shape = read_ops(source).inputs[0].shape
        calibration = rng.random((32, *shape[1:]), dtype=np.float32)
        probe = rng.random((64, *shape[1:]), dtype=np.float32)
        with open_runtime(source, "litert") as runtime:
            reference = np.asarray(runtime.run(probe))
        minmax = None
        for method in ALGORITHMS:
            try:
                made = to_tflite_mixed(fp32, calibration, (), method=method)
            except Exception as exc:  # noqa: BLE001 - the quantiser's refusal, said
                rows.append(f"| {name} | {method} | not made:"
                            f" {' '.join(str(exc).split())[:200]} | | | |")
                continue
            minmax = minmax or made
            path = work / f"{name}-{method}.tflite"
            path.write_bytes(made)
            by = ""
            try:
                with open_runtime(path, "litert") as runtime:
                    got = np.asarray(runtime.run(probe))
            except Exception as litert:  # noqa: BLE001 - AD01's bias-less int8 layers
                try:
                    with open_runtime(path, "tflite-micro") as runtime:
                        got = np.concatenate([runtime.run(sample[np.newaxis])
                                              for sample in probe])
                    by = " (TFLite Micro)"
                except Exception as micro:  # noqa: BLE001 - refused there too: said
                    rows.append(f"| {name} | {method} | not loaded: {_tail(litert)};"
                                f" {_tail(micro)} | | | |")
                    print(rows[-1], file=sys.stderr, flush=True)
                    continue
            flat_got, flat_ref = got.reshape(len(probe), -1), reference.reshape(len(probe), -1)
            cosine = float(np.sum(flat_got * flat_ref)
                           / (np.linalg.norm(flat_got) * np.linalg.norm(flat_ref)))
            agree = float(np.mean(flat_got.argmax(1) == flat_ref.argmax(1)))
            rows.append(f"| {name} | {method} | {cosine:.5f}{by} |"
                        f" {np.abs(flat_got - flat_ref).max():.4g} | {100 * agree:.1f}% |"
                        f" {'-' if method == 'minmax' else ('yes' if made != minmax else 'no')}"
                        " |")
            print(rows[-1], file=sys.stderr, flush=True)
    return rows


def _tail(exc: Exception) -> str:
    """The runtime's own reason, on one line."""
    text = " ".join(str(exc).split())
    return text.split(": ", 1)[-1][-150:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path, nargs="*", default=[])
    parser.add_argument("--onnx", type=Path)
    parser.add_argument("--tiny", type=Path)
    parser.add_argument("--work", type=Path, default=Path("/tmp/calibration-methods"))
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    sys.path.insert(0, str(ROOT))
    from tests.test_int8_budget import outlier_model

    outlier = args.work / "outlier.keras"
    if not outlier.is_file():
        outlier_model(outlier)
    print("\n".join(keras_sources([outlier, *args.runs], args.work)))
    if args.onnx:
        print("\n".join(onnx_source(args.onnx, args.work)))
    if args.tiny:
        print("\n".join(tiny(args.tiny, args.work)))


if __name__ == "__main__":
    main()
