"""Contracts over the capability tables: whatever a row of the format table or the runtime
registry promises, the code behind it keeps. A new row that breaks a promise fails here,
before any command meets it."""

import inspect
from pathlib import Path

import numpy as np
import pytest

from edgeconv.formats import CALIBRATED, EXPORT_FORMATS, FLOAT, FORMATS, PRECISIONS, resolve
from edgeconv.runtimes import Runtime, TensorInfo, get_runtime, open_runtime, runtime_names
from edgeconv.runtimes.registry import default_runtime

MODELS = Path(__file__).resolve().parents[2] / "shared" / "models"
# A real file per format for the runtime contract; keras is made by the test (needs TF).
SAMPLES = {
    "tflite": [MODELS / "mlcommons-tiny" / "pretrainedResnet_quant.tflite",
               MODELS / "mlcommons-tiny" / "pretrainedResnet.tflite"],
    "onnx": [MODELS / "onnx" / "mnist.onnx"],
}


def test_format_rows_are_consistent():
    suffixes = [f.suffix for f in FORMATS.values()]
    assert len(set(suffixes)) == len(suffixes), "two formats share a suffix"
    for fmt in FORMATS.values():
        assert fmt.suffix.startswith(".") and fmt.suffix == fmt.suffix.lower()
        assert FLOAT in fmt.precisions, f"{fmt.name}: no float file to compare the others with"
        assert set(fmt.precisions) <= set(PRECISIONS), fmt.name
        assert default_runtime(fmt.name) is not None, f"no runtime reads {fmt.name} files"
        for hook in (fmt.converter, fmt.layer_errors, fmt.validator):
            if hook is not None:
                assert callable(resolve(hook)), hook
    for name in EXPORT_FORMATS:
        fmt = FORMATS[name]
        assert fmt.converter and fmt.validator, f"{name} is exported: it needs a converter" \
                                                " and a validator"
        if any(p != FLOAT for p in fmt.precisions):
            assert fmt.layer_errors, f"{name} has quantised precisions but no per-layer report"


@pytest.mark.parametrize("name", runtime_names())
def test_registry_row_matches_its_class(name):
    entry = get_runtime(name)
    cls = entry.load_class()
    assert issubclass(cls, Runtime) and cls.name == name
    assert entry.formats and set(entry.formats) <= set(FORMATS)
    assert entry.extra and entry.modules and entry.libraries
    accepted = inspect.signature(cls.__init__).parameters
    for option in entry.options:
        assert option in accepted, f"{name} lists option {option} its class does not take"
    keywords = {p for p, v in accepted.items() if v.kind is inspect.Parameter.KEYWORD_ONLY}
    assert keywords <= set(entry.options), f"{name} takes options the registry does not list"


def _contract_cases():
    for name in runtime_names():
        for fmt in get_runtime(name).formats:
            for path in SAMPLES.get(fmt, []):
                yield pytest.param(name, path, id=f"{name}-{path.name}")


@pytest.mark.parametrize(("name", "path"), list(_contract_cases()))
def test_runtime_honours_the_base_contract(name, path):
    if not get_runtime(name).available():
        pytest.skip(f"{name} is not installed")
    with open_runtime(path, name) as runtime:
        _check_contract(runtime)


def test_keras_runtime_honours_the_base_contract(tmp_path):
    from edgeconv._lazy import keras

    k = keras()
    model = k.Sequential([k.Input((8, 8, 1)), k.layers.Conv2D(2, 3), k.layers.Flatten(),
                          k.layers.Dense(3)])
    path = tmp_path / "tiny.keras"
    model.save(path)
    with open_runtime(path) as runtime:
        _check_contract(runtime)


def _check_contract(runtime: Runtime) -> None:
    (source,), (target,) = runtime.inputs(), runtime.outputs()
    for info in (source, target):
        assert isinstance(info, TensorInfo) and info.name and np.dtype(info.dtype)
        assert (info.scale is None) == (info.zero_point is None)
    assert runtime.backend and runtime.version
    shape = [2 if d is None else d for d in source.shape]
    batch = shape[0]
    x = np.random.default_rng(0).random(shape, dtype=np.float32)
    y = runtime.run(x)
    assert y.dtype == np.float32 and y.shape[0] == batch
    raw = runtime.run_raw(_in_dtype(x, source))
    assert raw.dtype == np.dtype(target.dtype) and raw.shape == y.shape
    call = runtime.prepared(_in_dtype(x, source))
    call()  # what a benchmark times: no arguments, no checks
    with pytest.raises(Exception, match="takes|input"):
        runtime.run_raw(np.zeros([1, 1], dtype=source.dtype))  # wrong shape: one clear error


@pytest.fixture(scope="module")
def two_output_files(tmp_path_factory):
    """A two-output Keras model (boxes: 4 values, score: 1) saved as .keras and converted
    by the export's session to TFLite fp32, int8 and int16x8 and to ONNX fp32 and int16x8;
    its Keras outputs on the inputs the contract runs."""
    from edgeconv._lazy import keras
    from edgeconv.export.convert import ConversionSession
    from edgeconv.quant.calibration import CalibrationSet
    from edgeconv.quant.settings import Int8Settings

    k = keras()
    k.utils.set_random_seed(0)
    inputs = k.Input((8, 8, 1))
    x = k.layers.GlobalAveragePooling2D()(k.layers.Conv2D(4, 3, activation="relu")(inputs))
    model = k.Model(inputs, [k.layers.Dense(4, name="boxes")(x),
                             k.layers.Dense(1, name="score")(x)])
    root = tmp_path_factory.mktemp("two-outputs")
    model.save(root / "two.keras")
    images = np.random.default_rng(0).random((32, 8, 8, 1), dtype=np.float32)
    session = ConversionSession(model, CalibrationSet(images, np.zeros(32, np.int64), seed=0),
                                Int8Settings())
    files = {"keras": root / "two.keras"}
    for fmt, precision in (("tflite", "fp32"), ("tflite", "int8"), ("tflite", "int16x8"),
                           ("onnx", "fp32"), ("onnx", "int16x8")):
        files[f"{fmt}-{precision}"] = root / f"two_{precision}{FORMATS[fmt].suffix}"
        files[f"{fmt}-{precision}"].write_bytes(session.make(fmt, precision).content)
    x = np.random.default_rng(1).random((3, 8, 8, 1), dtype=np.float32)
    return files, x, [np.asarray(o) for o in model.predict(x, verbose=0)]


@pytest.mark.parametrize(("name", "file"), [
    ("litert", "tflite-fp32"), ("litert", "tflite-int8"), ("onnxruntime", "onnx-fp32"),
    ("keras", "keras"), ("tflite-micro", "tflite-int8"), ("litert", "tflite-int16x8"),
    ("tflite-micro", "tflite-int16x8"), ("onnxruntime", "onnx-int16x8")])
def test_every_runtime_runs_every_output_of_a_two_output_model(two_output_files, name, file):
    if not get_runtime(name).available():
        pytest.skip(f"{name} is not installed")
    from edgeconv.errors import EdgeconvError

    files, x, reference = two_output_files
    with open_runtime(files[file], name) as runtime:
        (source,), targets = runtime.inputs(), runtime.outputs()
        assert len(targets) == 2 and len(runtime.signature_names()) == 2
        got = runtime.run_all(x)
        raw = runtime.run_raw_all(_in_dtype(x, source))
        call = runtime.prepared(_in_dtype(x[:1], source))
        call()  # the whole graph, every output
        with pytest.raises(EdgeconvError, match=r"2 outputs; run\(\) handles"):
            runtime.run(x)  # a caller that needs one output is told
        with pytest.raises(EdgeconvError, match="2 outputs"):
            runtime.run_raw(_in_dtype(x, source))
    assert [g.dtype for g in got] == [np.float32] * 2
    assert [r.dtype for r in raw] == [np.dtype(t.dtype) for t in targets]
    assert [g.shape for g in got] == [r.shape for r in raw]
    # each output as the runtime lists it, matched to Keras's by its size (TFLite may
    # reorder them), holds the same values up to the precision's rounding
    assert sorted(g.shape[1] for g in got) == [1, 4]
    bound = 0.05 if file.endswith(("int8", "int16x8")) else 1e-4
    for g in got:
        expected = next(r for r in reference if r.shape == g.shape)
        assert np.abs(g - expected).max() <= bound * max(1.0, np.abs(expected).max())


def _in_dtype(x: np.ndarray, info: TensorInfo) -> np.ndarray:
    from edgeconv.runtimes.base import quantize

    return quantize(x, info)


def test_every_runtime_extra_is_declared_and_installs_its_library():
    import re

    import tomllib

    project = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml")
                            .read_text())["project"]
    extras = project["optional-dependencies"]
    for name in runtime_names():
        entry = get_runtime(name)
        assert entry.extra in extras, f"{name}: pip extra '{entry.extra}' is not declared"
        # the extra (or an extra it includes) names one of the runtime's distributions
        wanted = {d for dists in entry.libraries.values() for d in dists}
        pending, seen = [entry.extra], set()
        named = set()
        while pending:
            extra = pending.pop()
            seen.add(extra)
            for requirement in extras[extra]:
                base = re.split(r"[\s<>=!~;\[]", requirement, maxsplit=1)[0]
                if base == "edgeconv":
                    pending += [e for e in re.findall(r"\[(.*?)\]", requirement)[0].split(",")
                                if e not in seen]
                named.add(base)
        assert named & wanted, f"{name}: extra '{entry.extra}' installs none of {wanted}"


def _format_precisions():
    for name in EXPORT_FORMATS:
        for precision in FORMATS[name].precisions:
            yield pytest.param(name, precision, id=f"{name}-{precision}")


@pytest.mark.parametrize(("fmt", "precision"), list(_format_precisions()))
def test_every_format_and_precision_converts_loads_and_agrees_with_keras(
        conversion_session, fmt, precision, tmp_path):
    model, session = conversion_session
    made = session.make(fmt, precision)
    resolve(FORMATS[fmt].validator)(made.content)  # a whole file of its format
    path = tmp_path / f"model_{precision}{FORMATS[fmt].suffix}"
    path.write_bytes(made.content)
    x = np.random.default_rng(1).random((16, 16, 16, 1), dtype=np.float32)
    reference = np.asarray(model.predict(x, verbose=0), dtype=np.float32)
    with open_runtime(path) as runtime:  # the format's default runtime
        outputs = runtime.run(x).reshape(reference.shape)
    scale = float(np.abs(reference).max())
    error = float(np.abs(outputs - reference).max()) / scale
    cosine = float(np.sum(outputs * reference)
                   / (np.linalg.norm(outputs) * np.linalg.norm(reference)))
    # fp32 is the same arithmetic; fp16 weights round at 1e-3; int16 activations leave the
    # int8 weights' rounding (~1%); int8 keeps the direction
    bound = {"fp32": 1e-5, "fp16": 1e-2, "int16x8": 3e-2}.get(precision, 0.1)
    assert error <= bound, f"{fmt} {precision}: max |diff| {error:.2g} of the output scale"
    assert cosine >= 0.99, f"{fmt} {precision}: cosine similarity {cosine:.4f} with Keras"


def _integer_tflite():
    for precision in sorted(CALIBRATED & set(FORMATS["tflite"].precisions)):
        yield pytest.param(precision, id=f"tflite-{precision}")


@pytest.mark.parametrize("precision", list(_integer_tflite()))
def test_every_integer_tflite_precision_runs_in_tflite_micro_as_in_litert(
        conversion_session, precision, tmp_path):
    """What a microcontroller would run: TFLite Micro's host interpreter loads the file and
    its reference kernels compute what LiteRT's do, to a step of the output's scale."""
    if not get_runtime("tflite-micro").available():
        pytest.skip("tflite-micro is not installed")
    _, session = conversion_session
    path = tmp_path / f"model_{precision}.tflite"
    path.write_bytes(session.make("tflite", precision).content)
    x = np.random.default_rng(2).random((4, 16, 16, 1), dtype=np.float32)
    outputs = {}
    for name in ("litert", "tflite-micro"):
        with open_runtime(path, name) as runtime:
            (source,), (target,) = runtime.inputs(), runtime.outputs()
            width = {"int8": "int8", "int16x8": "int16"}[precision]
            assert source.dtype == target.dtype == width, f"{name}: io {source.dtype}"
            outputs[name] = runtime.run(x)
    assert np.abs(outputs["litert"] - outputs["tflite-micro"]).max() <= target.scale * 1.01


def test_a_mixed_tflite_file_with_every_layer_wide_computes_what_the_int16x8_file_does(
        conversion_session, tmp_path):
    """The --max-drop search's mixed file (ai-edge-quantizer, per-layer recipe) at its
    limit, every layer at int16x8, against TensorFlow's int16x8 file: the same calibration
    (min/max over every image), so the same outputs to within int8 weight rounding."""
    pytest.importorskip("ai_edge_quantizer", reason="the mixed TFLite quantiser")
    from edgeconv.mcu.ops import parse_ops

    model, session = conversion_session
    fp32 = parse_ops(session.make("tflite", FLOAT).content)
    every = [op.output_names[0] for op in fp32.ops if op.op != "RESHAPE"]
    x = np.random.default_rng(3).random((16, 16, 16, 1), dtype=np.float32)
    reference = np.asarray(model.predict(x, verbose=0), dtype=np.float32)
    errors = {}
    for kind, made in (("int16x8", session.make("tflite", "int16x8")),
                       ("mixed", session.make("tflite", "int8", wide=every))):
        path = tmp_path / f"{kind}.tflite"
        path.write_bytes(made.content)
        with open_runtime(path, "litert") as runtime:
            errors[kind] = float(np.sqrt(np.mean((runtime.run(x) - reference) ** 2)))
    assert errors["mixed"] <= 2 * errors["int16x8"] + 1e-6, errors


@pytest.mark.parametrize("fmt", EXPORT_FORMATS)
def test_every_integer_precision_has_a_per_layer_report_of_its_own(conversion_session, fmt):
    """quant-report's per-layer figures for int8 and int16x8 files: each layer's SQNR is a
    number (inf: exact), and int16 activations are measured as such (TensorFlow's debugger
    quantises at int8 whatever it is told: the int16x8 figures must not be the int8 ones)."""
    from edgeconv.quant.layers import layer_errors

    _, session = conversion_session
    scales = {}
    for precision in ("int8", "int16x8"):
        found = layer_errors(fmt, session, session.make(fmt, precision).content, precision)
        assert found.layers and found.method, precision
        assert not any(np.isnan(row["sqnr_db"]) for row in found.layers), precision
        scales[precision] = {row["name"]: row["scale"] for row in found.layers
                             if row["scale"]}
    shared = set(scales["int8"]) & set(scales["int16x8"])
    assert shared, scales
    # the same layer's step at int16 is ~256x finer than at int8 (ranges alike)
    assert all(scales["int16x8"][n] < scales["int8"][n] / 50 for n in shared), scales
