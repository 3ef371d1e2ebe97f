"""The cost of each integer tier on a microcontroller: int8, int16x8 and mixed, measured.

Two parts, printed as Markdown tables (docs/benchmarks.md):

1. Zoo models through the pipeline: `edgeconv export NAME --int8 --int16x8 --max-drop D
   --formats tflite` (trains the model on digits first when it has no run), then
   `edgeconv bench DIR --target stm32h7 --tflm-tree TREE --out FILE`: test accuracy of each
   file, and the emulated Cortex-M7 + CMSIS-NN firmware's instructions per invoke, arena
   and flash. The int8 file is the mixed one when --max-drop had to widen layers.
2. MLPerf Tiny float models (../shared/models/mlcommons-tiny/*fp32|float*.tflite, plus the
   ResNet): quantised by ai-edge-quantizer from the float file at int8 and at int16x8
   (static_wi8_ai8 / static_wi8_ai16 recipes, calibrated on random inputs in [0, 1): no
   dataset here, so the figure is parity with the float file on other random inputs, not
   accuracy), each run on the same emulated firmware. The mixed tier: the int8 file's
   layers ranked by their error against the float file's on the calibration inputs
   (edgeconv.quant.tflite_debug.file_layer_errors, as `--max-drop` ranks them), and the
   first group `--max-drop` would widen (edgeconv.quant.budget: an eighth of the ranked
   layers, at least one) made int16x8 by the export's own quantiser call
   (edgeconv.convert.tflite_mixed). Parity is LiteRT's; where LiteRT refuses the file
   (AD01's bias-less fully connected layers), TFLite Micro's host interpreter's.

Usage: .venv/bin/python benchmarks/int16x8_tiers.py [--zoo lenet5,fcn-mnist]
       [--max-drop 0] [--tree ../shared/third_party] [--work /tmp/int16x8-tiers]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
TINY = SHARED / "models" / "mlcommons-tiny"
# ad01_fp32: ai-edge-quantizer 0.10.0 makes its bias-less FULLY_CONNECTED layers into files
# LiteRT refuses ("is_optional_bias_int != true"); TFLite Micro runs them.
FLOAT_TINY = ("pretrainedResnet", "vww_96_float", "ad01_fp32")
EDGECONV = [sys.executable, "-m", "edgeconv"]


def zoo(names: list[str], max_drop: float, tree: Path, work: Path) -> list[str]:
    rows = [("| model | file | accuracy % | int16x8 layers | M7 instructions / invoke |"
            " arena, bytes | flash, bytes |"), "|---|---|---:|---:|---:|---:|---:|"]
    for name in names:
        out = work / name
        subprocess.run([*EDGECONV, "export", name, "--int8", "--int16x8", "--max-drop",
                        str(max_drop), "--formats", "tflite", "--out", str(out)],
                       check=False, capture_output=True, text=True)
        manifest = json.loads((out / "manifest.json").read_text())
        record = work / f"{name}-stm32h7.json"
        subprocess.run([*EDGECONV, "bench", str(out), "--target", "stm32h7", "--tflm-tree",
                        str(tree), "--out", str(record)],
                       check=False, capture_output=True, text=True)
        results = {Path(r["artifact"]).name: r
                   for r in json.loads(record.read_text())["results"]}
        for artifact in manifest["artifacts"]:
            if artifact["precision"] not in ("fp32", "int8", "int16x8") \
                    or artifact["format"] != "tflite":
                continue
            budget = artifact["options"].get("accuracy_budget") or {}
            result = results.get(artifact["path"], {})
            mcu = result.get("mcu") or {}
            rows.append(f"| {name} | {artifact['path']} | {100 * artifact['accuracy']:.2f} |"
                        f" {len(budget.get('int16x8_layers', [])) or ''} |"
                        f" {_n(mcu.get('invoke_instructions'))} |"
                        f" {_n(result.get('arena_bytes') or mcu.get('arena_bytes'))} |"
                        f" {_n(result.get('flash_bytes'))} |")
    return rows


def tiny(tree: Path, work: Path) -> list[str]:
    from ai_edge_quantizer import recipe

    from edgeconv.convert.tflite_mixed import _signature_input
    from edgeconv.mcu import read_ops
    from edgeconv.runtimes import open_runtime

    rows = [("| model | file | M7 instructions / invoke | arena, bytes | model, bytes |"
            " parity with float (cosine, random inputs) |"), "|---|---|---:|---:|---:|---:|"]
    rng = np.random.default_rng(0)
    for name in FLOAT_TINY:
        source = TINY / f"{name}.tflite"
        if not source.is_file():
            continue
        fp32 = with_signature(source.read_bytes())
        signature, input_name = _signature_input(fp32)
        shape = read_ops(source).inputs[0].shape
        calibration = [{input_name: rng.random(shape, dtype=np.float32)} for _ in range(32)]
        probe = rng.random((8, *shape[1:]), dtype=np.float32)
        with open_runtime(source, "litert") as runtime:
            reference = runtime.run(probe)
        for tier, made in (("int8", recipe.static_wi8_ai8()), ("int16x8", _wi8_ai16()),
                           ("mixed", None)):
            try:
                if made is None:  # the mixed file: the worst-ranked layers at int16x8
                    made = _mixed(fp32, work / f"{name}_int8.tflite", calibration,
                                  input_name)
                    tier = f"mixed ({len(made[1])} of {made[2]} layers int16x8)"
                rows.append(_tiny_row(name, tier, fp32, made, signature, calibration, probe,
                                      reference, tree, work, rng))
            except Exception as exc:  # noqa: BLE001 - a quantiser's or runtime's refusal
                rows.append(f"| {name} | {tier} | not run: {' '.join(str(exc).split())[:160]}"
                            " | | | |")
            print(rows[-1], file=sys.stderr, flush=True)
    return rows


def _mixed(fp32: bytes, int8: Path, calibration, input_name: str):
    """(the mixed file's bytes, the layers widened, the layers ranked): the int8 file's
    layers ranked against the float file on the calibration inputs, the first group the
    --max-drop search tries made int16x8."""
    import math
    from types import SimpleNamespace

    from edgeconv.convert.tflite_mixed import to_tflite_mixed
    from edgeconv.quant.budget import MAX_STEPS
    from edgeconv.quant.layers import EXACT_SQNR_DB
    from edgeconv.quant.settings import Int8Settings
    from edgeconv.quant.tflite_debug import file_layer_errors

    images = np.concatenate([sample[input_name] for sample in calibration])
    source = SimpleNamespace(origin=int8.name, calibration=images, settings=Int8Settings(),
                             float_file=lambda fmt: fp32)
    rows = file_layer_errors(source, int8.read_bytes()).layers  # worst SQNR first
    ranked = [row["name"] for row in rows if row["sqnr_db"] < EXACT_SQNR_DB]
    wide = ranked[:max(1, math.ceil(len(ranked) / MAX_STEPS))]
    return to_tflite_mixed(fp32, images, wide), wide, len(ranked)


def _wi8_ai16():
    """ai-edge-quantizer's static_wi8_ai16 recipe with one weight scale per fully connected
    layer: CMSIS-NN's int16 FULLY_CONNECTED refuses per-channel weights (edgeconv does the
    same, edgeconv/convert/tflite.py)."""
    from ai_edge_quantizer import qtyping, recipe_manager

    manager = recipe_manager.RecipeManager()
    manager.add_static_config(".*", qtyping.TFLOperationName.ALL_SUPPORTED, 16, 8)
    manager.add_static_config(".*", qtyping.TFLOperationName.FULLY_CONNECTED, 16, 8,
                              qtyping.QuantGranularity.TENSORWISE)
    return manager.get_quantization_recipe()


def _tiny_row(name, tier, fp32, made, signature, calibration, probe, reference, tree, work,
              rng) -> str:
    from ai_edge_quantizer import quantizer

    from edgeconv.convert.tflite_mixed import _min_max
    from edgeconv.mcu import read_ops, run_firmware
    from edgeconv.runtimes import open_runtime

    if isinstance(made, tuple):  # made by _mixed
        content = made[0]
    else:
        engine = quantizer.Quantizer(bytearray(fp32), made)
        # min/max over every sample, as edgeconv's mixed files are calibrated
        content = bytes(engine.quantize(_min_max(fp32, engine, {signature: calibration}),
                                        enable_progress_report=False).quantized_model)
    path = work / f"{name}_{tier.split()[0]}.tflite"
    path.write_bytes(content)
    try:
        with open_runtime(path, "litert") as runtime:
            got = runtime.run(probe)
        by = ""
    except Exception:  # noqa: BLE001 - LiteRT refuses AD01's bias-less int8 layers
        with open_runtime(path, "tflite-micro") as runtime:
            got = np.concatenate([runtime.run(sample[np.newaxis]) for sample in probe])
        by = " (TFLite Micro)"
    cosine = float(np.sum(got * reference) / (np.linalg.norm(got) * np.linalg.norm(reference)))
    spec = read_ops(path).inputs[0]
    limits = np.iinfo(spec.dtype)
    inputs = [rng.integers(limits.min, limits.max + 1, size=spec.shape, dtype=spec.dtype)]
    run = run_firmware(path, core="cortex-m7", kernels="cmsis-nn", inputs=inputs,
                       tree=tree / "tflm-tree-cmsis-nn.tgz")
    return (f"| {name} | {tier} | {_n(run.invoke_instructions)} | {_n(run.arena_bytes)} |"
            f" {_n(run.model_bytes)} | {cosine:.4f}{by} |")


def with_signature(content: bytes) -> bytes:
    """`content` with a "serving_default" signature over its subgraph's input and output
    (ai-edge-quantizer calibrates by signature; the MLPerf Tiny files were converted
    before TFLite wrote them)."""
    from ai_edge_litert import schema_py_generated as schema
    from ai_edge_litert.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(content))
    if model.signatureDefs:
        return content
    graph = model.subgraphs[0]

    def tensor_map(prefix, indices):
        maps = []
        for i, index in enumerate(indices):
            item = schema.TensorMapT()
            item.name, item.tensorIndex = f"{prefix}_{i}".encode(), int(index)
            maps.append(item)
        return maps

    signature = schema.SignatureDefT()
    signature.signatureKey, signature.subgraphIndex = b"serving_default", 0
    signature.inputs = tensor_map("input", graph.inputs)
    signature.outputs = tensor_map("output", graph.outputs)
    model.signatureDefs = [signature]
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def _n(value) -> str:
    return "" if value is None else f"{int(value):,}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--zoo", default="lenet5,fcn-mnist")
    parser.add_argument("--max-drop", type=float, default=0.0)
    parser.add_argument("--tree", type=Path, default=SHARED / "third_party")
    parser.add_argument("--work", type=Path, default=Path("/tmp/int16x8-tiers"))
    parser.add_argument("--skip-zoo", action="store_true")
    parser.add_argument("--skip-tiny", action="store_true")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    if not args.skip_tiny:
        print("\n".join(tiny(args.tree, args.work)), flush=True)
    if not args.skip_zoo:
        print("\n".join(zoo([n for n in args.zoo.split(",") if n], args.max_drop, args.tree,
                            args.work)), flush=True)


if __name__ == "__main__":
    main()
