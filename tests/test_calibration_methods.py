"""ONNX calibration methods make the files they are named for: entropy is not min-max.

onnxruntime's quantize_static calibrates "entropy" with 128 histogram bins and 128
quantised bins, which leaves its KL search one candidate (the whole min..max range), so its
entropy files were byte-identical to minmax ones. edgeconv computes the entropy ranges with
2048 bins (edgeconv.convert.onnx.entropy_ranges) and hands them to quantize_static."""

import numpy as np

from edgeconv.convert.onnx import constants, parse_model
from edgeconv.export.convert import ConversionSession
from edgeconv.quant.settings import Int8Settings


def _activation_ranges(model: bytes) -> dict[str, tuple[float, float]]:
    """(low, high) each int8 activation's QuantizeLinear covers."""
    graph = parse_model(model).graph
    values = constants(graph)
    ranges = {}
    for node in graph.node:
        if node.op_type == "QuantizeLinear" and len(node.input) == 3:
            scale, zero = values.get(node.input[1]), values.get(node.input[2])
            if scale is not None and zero is not None and scale.size == 1:
                s, z = float(scale.reshape(())), int(zero.reshape(()))
                ranges[node.input[0]] = ((-128 - z) * s, (127 - z) * s)
    return ranges


def test_each_method_makes_its_own_file_entropy_narrows_ranges_and_is_recorded(
        conversion_session):
    _model, session = conversion_session
    fp32 = session.make("onnx", "fp32").content
    made, recorded = {}, {}
    for method in ("minmax", "entropy", "percentile"):
        # the export's session, from the same fp32 graph: what `--calibration-method` makes
        own = ConversionSession(None, session.calibration_set, Int8Settings(method=method),
                                float_files={"onnx": fp32}, origin="test")
        converted = own.make("onnx", "int8")
        made[method], recorded[method] = converted.content, converted.options["calibration"]
    assert len(set(made.values())) == 3, "two calibration methods made the same file"
    assert {m: r["method"] for m, r in recorded.items()} == {m: m for m in made}
    minmax, entropy = _activation_ranges(made["minmax"]), _activation_ranges(made["entropy"])
    assert set(minmax) == set(entropy)
    # KL picks a range inside min..max (a step of slack for rounding); on some tensor,
    # strictly inside: the search had candidates to choose from
    widths = {n: (minmax[n][1] - minmax[n][0], entropy[n][1] - entropy[n][0]) for n in minmax}
    assert all(e <= m * 1.01 for m, e in widths.values())
    assert any(e < 0.95 * m for m, e in widths.values())
    assert np.isfinite(list(entropy.values())).all()
