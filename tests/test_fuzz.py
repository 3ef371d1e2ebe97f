"""Property-based fuzzing of everything edgeconv reads (issue 12, "hostile inputs").

Documents (manifest.json, results.json, target TOML files, gate policies) start from real
ones and are mutated: keys dropped, values of other types, out-of-range and non-finite
numbers, hostile paths (`..`, absolute, /proc/self/mem, symbolic links out of the run, a
directory, a FIFO), duplicates, deep nesting, 400-digit numbers. CLI numbers and names are
drawn the same way. Whatever the input, every command must:

- exit 0, 1 or 2, never with a traceback (an uncaught exception in `result.exception`);
- for exit 2, print exactly one line on stderr, starting `error:`;
- leave every file outside the run as it was (`sentinel.unchanged()`).

Commands run in-process (Typer's CliRunner) except where a real process matters. Hypothesis
is derandomized with no example database, so CI sees the same examples every run; the
example counts keep the whole file within a few tens of seconds on two cores.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import os
import shutil
import traceback
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, example, given, note, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from edgeconv.cli import app

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT.parent / "shared/models/tflite-micro/hello_world_int8.tflite"
runner = CliRunner()

# Hypothesis: reproducible (derandomize, no database), no per-example deadline on a shared
# machine (a hang is caught by the commands' own --timeout and pytest-timeout), and fixtures
# shared by all examples of a test (each example copies what it changes).
BASE = dict(derandomize=True, database=None, deadline=None, print_blob=False,
            suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                   HealthCheck.data_too_large, HealthCheck.filter_too_much])
CHEAP = settings(max_examples=60, **BASE)  # in-process loaders: milliseconds each
SLOW = settings(max_examples=15, **BASE)  # a bench: a child process per row

# ---- checking one command --------------------------------------------------------------


def invoke(*args: Any):
    args = [str(a) for a in args]
    note(f"edgeconv {' '.join(map(repr, args))}")
    return runner.invoke(app, args)


def assert_clean(result, sentinel) -> None:
    """The contract: exit 0/1/2, one `error:` line for 2, no traceback, nothing outside the
    run touched."""
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        trace = "".join(traceback.format_exception(result.exception))
        raise AssertionError(f"uncaught exception (exit {result.exit_code}):\n{trace}")
    assert "Traceback" not in result.output, result.output
    assert result.exit_code in (0, 1, 2), (result.exit_code, result.output)
    if result.exit_code == 2:
        lines = result.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert sentinel.unchanged(), "a file outside the run changed"


# ---- mutating documents ----------------------------------------------------------------

# Placeholders written into a document and swapped for raw text when it is written out:
# things a JSON/TOML writer cannot produce from Python values.
DEEP = "@DEEP@"  # 50,000 nested lists
BIGINT = "@BIGINT@"  # a 400-digit integer
ABS = "@ABS@"  # the absolute path of the sentinel tree (outside the run)

HOSTILE_PATHS = [
    "../outside/victim.txt", "../outside/victim.tflite", "sub/../../outside/sub/victim.onnx",
    # Absolute victims are sentinel files only: a regression must never reach the system's
    # files (an early version of this suite deleted /etc/passwd through export).
    f"{ABS}/victim.tflite", f"{ABS}/sub/model.keras", "/proc/self/mem",
    "link.tflite", "linkdir/victim.tflite", "linkdir/sub/model.keras",
    "mem.tflite", "fifo.tflite", "folder", "", ".", "..", "./model.keras", "model.keras/",
    "a\nb.tflite", "x\x00.tflite", "C:\\x.tflite", "folder\\x.onnx", "a" * 5000 + ".tflite",
]
HOSTILE_TEXT = ["", " ", "\n", "x\ny", "\r", "\x1b[31m", "é", "\u2028", "%s%n", "${HOME}",
                "$(touch pwned)", "*", "?", "[", "int8", "tflite", "fcn-mnist", "cpu"]

numbers = st.one_of(
    st.integers(-3, 3), st.integers(-(2**63), 2**64), st.sampled_from([10**30, BIGINT]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.5, 1.0, 1e-300, 1e300, -0.0, 20000, 100000, 2**31]))
texts = st.one_of(st.text(max_size=12), st.sampled_from(HOSTILE_TEXT),
                  st.sampled_from(HOSTILE_PATHS))
values = st.one_of(
    st.none(), st.booleans(), numbers, texts,
    st.lists(st.one_of(st.none(), st.integers(-2, 30000)), max_size=5),  # shapes
    st.lists(texts, max_size=3),
    st.dictionaries(st.text(max_size=6), st.integers(-2, 2), max_size=3),
    st.just(DEEP), st.just([]), st.just({}))


def paths_of(doc: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path to a value in a JSON-like tree, the tree's own first."""
    found = [prefix]
    if isinstance(doc, dict):
        for key, value in doc.items():
            found += paths_of(value, (*prefix, key))
    elif isinstance(doc, list):
        for i, value in enumerate(doc):
            found += paths_of(value, (*prefix, i))
    return found


def _parent(doc: Any, path: tuple) -> Any:
    for key in path[:-1]:
        try:
            doc = doc[key]
        except (KeyError, IndexError, TypeError):
            return None
    return doc


def mutate(doc: Any, ops: list[tuple]) -> Any:
    """Apply mutations: (op, path index, value); a path that no longer exists is skipped."""
    doc = copy.deepcopy(doc)
    for op, where, value in ops:
        paths = [p for p in paths_of(doc) if p]
        if not paths:
            break
        path = paths[where % len(paths)] if not isinstance(where, tuple) else where
        parent = _parent(doc, path)
        key = path[-1]
        if parent is None or not isinstance(parent, (dict, list)):
            continue
        if isinstance(parent, list) and not (isinstance(key, int) and key < len(parent)):
            continue
        if isinstance(parent, dict) and (not isinstance(key, str)
                                         or (key not in parent and op != "set")):
            continue
        if op == "drop":
            del parent[key]
        elif op == "set":
            parent[key] = value
        elif op == "dup":  # the same entry twice (duplicate artifacts, rules, rows)
            if isinstance(parent, list):
                parent.append(copy.deepcopy(parent[key]))
            else:
                parent[key] = [copy.deepcopy(parent[key])] * 2
    return doc


def ops_for(focus: list[tuple]):
    """Mutations biased towards `focus` paths (the fields a reader uses)."""
    where = st.one_of(st.sampled_from(focus), st.integers(0, 10**6))
    op = st.tuples(st.sampled_from(["set", "set", "set", "drop", "dup"]), where, values)
    return st.lists(op, min_size=1, max_size=3)


def dump_json(doc: Any, sentinel_root: Path) -> str:
    text = json.dumps(doc, allow_nan=True)
    return (text.replace(json.dumps(DEEP), "[" * 50_000 + "]" * 50_000)
                .replace(json.dumps(BIGINT), "9" * 400)
                .replace(ABS, json.dumps(str(sentinel_root))[1:-1]))


def dump_toml(doc: dict[str, Any], sentinel_root: Path) -> str:
    """A TOML document (inline tables for nested ones); None values are left out (TOML has
    no null)."""
    text = "".join(f"{_key(k)} = {_value(v)}\n" for k, v in doc.items() if v is not None)
    return (text.replace(_value(DEEP), "[" * 5_000 + "]" * 5_000)
                .replace(_value(BIGINT), "9" * 400).replace(ABS, str(sentinel_root)))


def _key(key: str) -> str:
    return _value(str(key))


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf") \
            if math.isinf(value) else repr(value)
    if isinstance(value, str):  # JSON escapes are TOML escapes; DEL must be escaped too
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value if v is not None) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items()
                               if v is not None) + "}"
    raise TypeError(value)


# ---- the run a document lives in -------------------------------------------------------


def fresh_run(source: Path, tmp: Path, sentinel) -> Path:
    """A copy of `source` at tmp/run (beside the sentinel tree at tmp/outside), with the
    things hostile paths point at: links out of the run, a link to /proc/self/mem, a FIFO,
    a folder."""
    run = tmp / "run"
    if run.exists():
        shutil.rmtree(run)
    shutil.copytree(source, run)
    (run / "link.tflite").symlink_to(sentinel.root / "victim.tflite")
    (run / "linkdir").symlink_to(sentinel.root)
    (run / "mem.tflite").symlink_to("/proc/self/mem")
    (run / "folder").mkdir()
    os.mkfifo(run / "fifo.tflite")
    assert sentinel.root.parent == tmp, "hostile paths assume tmp/outside beside tmp/run"
    return run


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    if not TINY.is_file():
        pytest.skip(f"{TINY} is not there")
    copy_ = tmp_path_factory.mktemp("tiny") / "hello_world_int8.tflite"
    shutil.copyfile(TINY, copy_)
    return copy_


@pytest.fixture(scope="module")
def policy_file(tmp_path_factory) -> Path:
    """A policy with an artifact rule and a bench-row rule that the fuzzed run meets."""
    path = tmp_path_factory.mktemp("policy") / "gate.toml"
    path.write_text('[[rule]]\nname = "files"\nmin_accuracy = 0\nmax_size_bytes = "1 GiB"\n'
                    '[[rule]]\nname = "rows"\ntarget = "*"\nmax_p50_ms = 100000\n')
    return path


@pytest.fixture(autouse=True)
def _empty_cwd(tmp_path_factory, monkeypatch):
    """Commands run in an empty folder: no ./runs/ to bench, no ./targets/ to read, and a
    relative path a hostile input names lands nowhere that matters."""
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))


def _focus(doc: Any, depth: int) -> list[tuple]:
    return [p for p in paths_of(doc) if 0 < len(p) <= depth]


# ---- (a) manifest.json -----------------------------------------------------------------


@pytest.fixture(scope="module")
def manifest(benched_fcn) -> dict[str, Any]:
    return json.loads((benched_fcn / "manifest.json").read_text())


def _manifest_ops(draw_doc):
    return ops_for(_focus(draw_doc, 3) + [("artifacts",)] * 5)


@st.composite
def manifest_docs(draw, base):
    """A mutated manifest; half the time an artifact is also pointed at a hostile path with
    the sha256 and size of what is there (so only containment can refuse it)."""
    doc = mutate(base, draw(_manifest_ops(base)))
    retarget = draw(st.one_of(st.none(), st.tuples(st.integers(0, 3),
                                                   st.sampled_from(HOSTILE_PATHS))))
    if retarget and isinstance(doc.get("artifacts"), list) and doc["artifacts"]:
        entry = doc["artifacts"][retarget[0] % len(doc["artifacts"])]
        if isinstance(entry, dict):
            entry["path"] = retarget[1]
            entry["@match@"] = True  # sha256/size_bytes of the target, filled in on writing
    return doc


def retargeted(base: dict[str, Any], path: str) -> dict[str, Any]:
    """The real manifest with its int8 .tflite entry pointed at `path` (sha256 and size
    matching what is there)."""
    doc = copy.deepcopy(base)
    entry = next(a for a in doc["artifacts"] if a["path"].endswith("_int8.tflite"))
    entry.update({"path": path, "@match@": True})
    return doc


# Paths whose refusal must not depend on luck: links out of the run, a link to
# /proc/self/mem, a FIFO (reading it would block), a folder, `..` and absolute paths.
ESCAPES = ["link.tflite", "linkdir/victim.tflite", "mem.tflite", "fifo.tflite", "folder",
           "../outside/victim.tflite", f"{ABS}/victim.tflite", "/proc/self/mem"]


def with_escapes(base: dict[str, Any], paths: list[str] = ESCAPES):
    """Hypothesis @example decorators: one manifest per escaping path."""
    def decorate(test):
        for path in paths:
            test = example(doc=retargeted(base, path))(test)
        return test
    return decorate


def write_manifest(doc: Any, run: Path, sentinel) -> None:
    for entry in doc.get("artifacts", []) if isinstance(doc, dict) and isinstance(
            doc.get("artifacts"), list) else []:
        if isinstance(entry, dict) and entry.pop("@match@", False):
            target = Path(str(entry["path"]).replace(ABS, str(sentinel.root)))
            target = target if target.is_absolute() else run / target
            try:  # a regular file (through links too); never a FIFO or a device
                if target.is_file() and target.stat().st_size < 10**7:
                    data = target.read_bytes()
                    entry["sha256"] = hashlib.sha256(data).hexdigest()
                    entry["size_bytes"] = len(data)
            except (OSError, ValueError):  # /proc/self/mem, a name too long
                pass
    (run / "manifest.json").write_text(dump_json(doc, sentinel.root))


def test_manifest_fuzz_gate_and_report(benched_fcn, manifest, policy_file, sentinel,
                                       tmp_path):
    @CHEAP
    @given(doc=manifest_docs(manifest))
    @with_escapes(manifest)
    def check(doc):
        run = fresh_run(benched_fcn, tmp_path, sentinel)
        write_manifest(doc, run, sentinel)
        note((run / "manifest.json").read_text()[:3000])
        assert_clean(invoke("gate", run, "--policy", policy_file), sentinel)
        assert_clean(invoke("report", run, "--no-plots", "--no-arithmetic", "-o",
                            tmp_path / "report"), sentinel)

    check()


def test_manifest_fuzz_bench(benched_fcn, manifest, sentinel, tmp_path):
    @SLOW
    @given(doc=manifest_docs(manifest))
    @with_escapes(manifest)
    def check(doc):
        run = fresh_run(benched_fcn, tmp_path, sentinel)
        write_manifest(doc, run, sentinel)
        note((run / "manifest.json").read_text()[:3000])
        assert_clean(invoke("bench", run, "--target", "cpu", "--runtime", "litert", "--runs",
                            "1", "--warmup", "0", "--min-time", "0", "--timeout", "20",
                            "--json"), sentinel)

    check()


def test_manifest_fuzz_export_drops_only_its_own_files(benched_fcn, manifest, sentinel,
                                                       tmp_path):
    """What export does with the previous manifest (remove it and the files it vouched
    for), without the conversions: the code path that once deleted files outside the run."""
    from edgeconv.errors import EdgeconvError
    from edgeconv.export.manifest_data import drop_previous_export

    @CHEAP
    @given(doc=manifest_docs(manifest))
    @with_escapes(manifest, ESCAPES + HOSTILE_PATHS)
    def check(doc):
        run = fresh_run(benched_fcn, tmp_path, sentinel)
        write_manifest(doc, run, sentinel)
        note((run / "manifest.json").read_text()[:3000])
        try:
            drop_previous_export(run)
        except EdgeconvError as exc:
            assert "\n" not in str(exc)
        assert sentinel.unchanged(), "export removed a file outside the run"
        assert (run / "fifo.tflite").exists() and (run / "folder").is_dir()

    check()


# ---- (b) results.json ------------------------------------------------------------------


@pytest.fixture(scope="module")
def results(benched_fcn) -> dict[str, Any]:
    return json.loads((benched_fcn / "results.json").read_text())


def test_results_fuzz_gate_and_report(benched_fcn, results, policy_file, sentinel, tmp_path):
    focus = _focus(results, 4) + [("results",)] * 5

    @CHEAP
    @given(ops=ops_for(focus))
    def check(ops):
        run = fresh_run(benched_fcn, tmp_path, sentinel)
        (run / "results.json").write_text(dump_json(mutate(results, ops), sentinel.root))
        note((run / "results.json").read_text()[:3000])
        lone = tmp_path / "lone"
        lone.mkdir(exist_ok=True)
        shutil.copyfile(run / "results.json", lone / "results.json")
        assert_clean(invoke("gate", run, "--policy", policy_file), sentinel)
        assert_clean(invoke("gate", lone / "results.json", "--policy", policy_file), sentinel)
        assert_clean(invoke("report", lone, "--no-plots", "--no-arithmetic", "-o",
                            tmp_path / "report"), sentinel)

    check()


# ---- (c) target TOML files -------------------------------------------------------------


def _targets() -> dict[str, dict[str, Any]]:
    import tomllib

    return {name: tomllib.loads((ROOT / "targets" / f"{name}.toml").read_text())
            for name in ("cpu", "stm32h7", "rpi4")}


TARGETS = _targets()
TARGET_KEYS = ["host", "ssh_options", "remote_edgeconv", "aliases", "cores", "threads",
               "runtimes", "kind", "budgets", "runtime", "clock_mhz", "sram_bytes", "name"]


@st.composite
def target_docs(draw):
    base = TARGETS[draw(st.sampled_from(sorted(TARGETS)))]
    doc = mutate(base, draw(ops_for(_focus(base, 2))))
    extra = draw(st.lists(st.tuples(st.sampled_from(TARGET_KEYS), values), max_size=2))
    for key, value in extra:  # keys the shipped files do not set (host, ssh_options)
        doc[key] = value
    return doc


@st.composite
def target_files(draw):
    """(file name, TOML text): mostly a mutated target, sometimes broken TOML text."""
    name = draw(mostly(["fz", "cpu"], st.sampled_from(["a b", "é", "-x", ".hidden", "x" * 200])))
    doc = draw(target_docs())
    return name, doc, draw(mostly(["toml"], st.sampled_from(["cut", "junk", "big"])))


def write_target(folder: Path, name: str, doc: dict, how: str, sentinel) -> Path:
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir()
    text = dump_toml(doc, sentinel.root)
    if how == "cut":  # a file cut short
        text = text[: len(text) // 2]
    elif how == "junk":
        text = "[[[" + text
    elif how == "big":
        text += f'padding = "{"x" * 3_000_000}"\n'
    (folder / f"{name}.toml").write_text(text)
    return folder


def test_target_fuzz_listing(sentinel, tmp_path):
    @CHEAP
    @given(file=target_files())
    def check(file):
        name, doc, how = file
        folder = write_target(tmp_path / "targets", name, doc, how, sentinel)
        note((folder / f"{name}.toml").read_text()[:3000])
        assert_clean(invoke("targets", "--targets-dir", folder, "--json"), sentinel)

    check()


def test_target_fuzz_bench(tiny, sentinel, tmp_path):
    @SLOW
    @given(file=target_files())
    def check(file):
        name, doc, how = file
        folder = write_target(tmp_path / "targets", name, doc, how, sentinel)
        note((folder / f"{name}.toml").read_text()[:3000])
        # --local: a fuzzed `host` must not send the bench over SSH to a random name
        assert_clean(invoke("bench", tiny, "--targets-dir", folder, "--target", name,
                            "--local", "--runs", "1", "--warmup", "0", "--min-time", "0",
                            "--timeout", "20", "--json"), sentinel)
        assert not (tmp_path / "pwned").exists()

    check()


# ---- (d) gate policies -----------------------------------------------------------------

POLICY = {"rule": [
    {"name": "int8 keeps top-1", "precision": "int8", "min_agreement": 0.5,
     "max_size_bytes": "80 KiB"},
    {"name": "fp32", "format": ["tflite", "onnx"], "precision": "fp32",
     "min_agreement": "99.9%", "max_accuracy_drop": 0.01},
    {"name": "runs", "artifact": "*_int8.tflite", "must_run_on": "cpu"},
    {"name": "cpu latency", "format": ["tflite", "onnx"], "target": "cpu", "threads": 1,
     "max_p50_ms": 1000, "max_p90_ms": 1000, "max_arena_bytes": "1 MiB"},
]}


def dump_policy(doc: Any, sentinel_root: Path) -> str:
    """[[rule]] tables when the document still has that shape, else inline TOML."""
    if isinstance(doc, dict) and isinstance(doc.get("rule"), list) \
            and all(isinstance(r, dict) for r in doc["rule"]):
        rest = {k: v for k, v in doc.items() if k != "rule"}
        tables = "".join("[[rule]]\n" + dump_toml(r, sentinel_root) for r in doc["rule"])
        return dump_toml(rest, sentinel_root) + tables
    return dump_toml(doc if isinstance(doc, dict) else {"rule": doc}, sentinel_root)


def test_policy_fuzz_gate(benched_fcn, sentinel, tmp_path):
    @settings(CHEAP, max_examples=150)
    @given(ops=ops_for(_focus(POLICY, 3)))
    def check(ops):
        path = tmp_path / "gate.toml"
        path.write_text(dump_policy(mutate(POLICY, ops), sentinel.root))
        note(path.read_text()[:3000])
        assert_clean(invoke("gate", benched_fcn, "--policy", path, "--junit",
                            tmp_path / "junit.xml"), sentinel)

    check()


# ---- (e) CLI numbers and names ---------------------------------------------------------

number_text = st.one_of(
    st.integers(-3, 5).map(str), st.integers(-(2**70), 2**70).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["", " ", "x", "1.5", "1e3", "nan", "inf", "-inf", "0x10", "1_000",
                     "9" * 400, "1\n2", "١", "1,2", "--json"]))
shape_text = st.one_of(
    st.lists(st.one_of(st.integers(-1, 64), st.sampled_from([20000, 100000, 10**30])),
             min_size=1, max_size=4).map(lambda d: ",".join(map(str, d))),
    st.sampled_from(["None,None,1", "?,?,3", "28x28x1", "a,b", "", ",", "1,,1", "nan,1,1",
                     "28,28,1\n", "1e3,1,1"]))
names = st.one_of(st.text(max_size=15), st.sampled_from(HOSTILE_TEXT + HOSTILE_PATHS[:6]))


def mostly(plain: list[str], hostile: st.SearchStrategy) -> st.SearchStrategy:
    """Usually a plain value (so that the command goes on to do its work), sometimes a
    hostile one."""
    return st.integers(0, 9).flatmap(lambda i: hostile if i < 3 else st.sampled_from(plain))
MODELS = ["fcn-mnist", "gap-mnist", "lenet5", "mobilenet"]
HOSTS = ["-oProxyCommand=touch pwned", "a\nb", "x y", "pi@", "@", ":22", "pi@127.0.0.1:0",
         "pi@127.0.0.1:99999", "pi@[::1]:1", "pi@127.0.0.1:-1", "pi@127.0.0.1:x", ""]
SSH_OPTIONS = ["ConnectTimeout=nan", "ConnectTimeout=-100", "ConnectTimeout=inf",
               "StrictHostKeyChecking=no", "UserKnownHostsFile=/dev/null", "LocalCommand=id",
               "PermitLocalCommand=yes", "BatchMode=no", "=", "x", "Port=1\nProxyCommand=id",
               "-oProxyCommand=id", ""]


def _options(draw, pairs: dict[str, Any]) -> list[str]:
    """Each option given one time in three (so that some examples get past the checks)."""
    args: list[str] = []
    for option, strategy in pairs.items():
        if draw(st.integers(0, 2)) == 0:
            args += [option, draw(strategy)]
    return args


@st.composite
def inspect_args(draw):
    name = draw(st.one_of(st.sampled_from(MODELS), names))
    return ["inspect", name, *_options(draw, {"--classes": number_text,
                                             "--input-shape": shape_text,
                                             "--alpha": number_text}), "--json"]


def test_cli_fuzz_inspect(sentinel):
    @settings(CHEAP, max_examples=30)
    @given(args=inspect_args())
    def check(args):
        assert_clean(invoke(*args), sentinel)

    check()


@st.composite
def data_args(draw):
    name = draw(mostly(["digits"], names))
    # shapes the memory can hold, or far beyond any bound: never a 10 GB allocation
    shape = st.one_of(
        st.tuples(st.integers(1, 40), st.integers(1, 40), st.sampled_from([1, 3])).map(
            lambda d: ",".join(map(str, d))),
        st.sampled_from(["20000,20000,3", "100000,100000,1", "0,8,1", "8,8,2", "x"]))
    return ["data", name, *_options(draw, {
        "--input-shape": shape, "--calibration-samples": mostly(["1", "10", "100"], number_text),
        "--seed": mostly(["0", "1", "12345"], number_text)}), "--json"]


def test_cli_fuzz_data(sentinel):
    @settings(CHEAP, max_examples=15)
    @given(args=data_args())
    def check(args):
        assert_clean(invoke(*args), sentinel)

    check()


@st.composite
def bench_args(draw):
    args = _options(draw, {
        "--runs": mostly(["1", "2", "3"], number_text),
        "--warmup": mostly(["0", "1", "2"], number_text),
        "--threads": mostly(["1", "2", "1,2"], st.one_of(number_text, st.sampled_from(
            ["1,,2", "0", "-1", "100000", "1,1,1", "2,1"]))),
        "--timeout": mostly(["5", "20", "30.5"], number_text),
        "--min-time": mostly(["0", "0.01", "0.05"], number_text),
        "--target": mostly(["cpu", "stm32h7", "nrf52840"], names),
        "--runtime": mostly(["litert", "tflite-micro"], names)})
    args += [] if "--runs" in args else ["--runs", "1"]  # never a long measurement
    args += [] if "--min-time" in args else ["--min-time", "0"]
    args += [] if "--timeout" in args else ["--timeout", "20"]
    return args


def test_cli_fuzz_bench_numbers(tiny, sentinel, tmp_path):
    @settings(SLOW, max_examples=20)
    @given(args=bench_args())
    def check(args):
        assert_clean(invoke("bench", tiny, *args, "--warmup", "0", "--json"), sentinel)

    check()


@st.composite
def ssh_args(draw):
    # only addresses that refuse at once: no name lookup, no waiting
    args = ["--host", draw(mostly(["pi@127.0.0.1:1", "127.0.0.1:1"], st.sampled_from(HOSTS)))]
    for option in draw(st.lists(mostly(["ConnectTimeout=2", "IdentityFile=/nonexistent"],
                                       st.sampled_from(SSH_OPTIONS)), max_size=2)):
        args += ["--ssh-option", option]
    return args


def test_cli_fuzz_bench_ssh(tiny, sentinel, tmp_path):
    """--host and --ssh-option: refused as one line, or an SSH bench that fails to connect
    as one line; never a command run from an option."""
    @settings(SLOW, max_examples=10)
    @given(args=ssh_args())
    def check(args):
        assert_clean(invoke("bench", tiny, *args, "--runs", "1", "--min-time", "0"),
                     sentinel)
        assert not Path("pwned").exists()

    check()


def test_cli_fuzz_names(tiny, sentinel, tmp_path):
    """Odd model, dataset, target and command names: unknown, so one line and exit 2."""
    from edgeconv.zoo import list_models

    known = {m.name for m in list_models()}

    @settings(CHEAP, max_examples=40)
    @given(command=st.sampled_from(["inspect", "train", "export", "data", "targets",
                                    "quant-report", "bench", "gate", "report", "nosuch"]),
           name=names)
    def check(command, name):
        assume(name not in known and name.strip() not in ("digits", "mnist", "cifar10",
                                                          "fashion_mnist"))
        args = {"targets": ["targets", "--targets-dir", name],
                "bench": ["bench", tiny, "--target", name, "--runs", "1", "--min-time", "0"],
                "gate": ["gate", name, "--policy", name],
                "report": ["report", name, "-o", tmp_path / "report"],
                "nosuch": [name]}.get(command, [command, name])
        result = invoke(*args)
        assert_clean(result, sentinel)

    check()


# ---- (h) every child process, with modules planted in the working directory (issue 26) ----

# What a child imports after it starts: stdlib modules that are not frozen into the
# interpreter, numpy, edgeconv itself, the runtimes. A folder run from (a cloned repository)
# may hold any of them, as a module or a package; none may ever run in a child.
CHILD_IMPORTS = ("numpy", "json", "edgeconv", "ai_edge_litert", "tflite_micro",
                 "onnxruntime", "typing", "dataclasses", "argparse", "hashlib", "struct",
                 "resource", "signal", "enum", "functools", "importlib", "re", "pathlib")


@st.composite
def planted_modules(draw) -> list[tuple[str, bool]]:
    """(module name, as a package) pairs, a few at a time."""
    names = draw(st.lists(st.sampled_from(CHILD_IMPORTS), min_size=1, max_size=5, unique=True))
    return [(name, draw(st.booleans())) for name in names]


def test_every_child_ignores_modules_planted_in_the_working_directory(tiny, sentinel):
    """The bench child and the TFLite Micro probe, run from a folder holding modules that
    record their import: none is imported, and the child still does its work."""
    from edgeconv.runtimes.micro import probe

    here = Path.cwd()  # the empty folder every test runs in (_empty_cwd)
    markers = here.parent / f"{here.name}-markers"

    @settings(SLOW, max_examples=8)
    @given(planted=planted_modules(), child=st.sampled_from(["bench", "probe"]))
    def check(planted, child):
        for entry in here.iterdir():  # the previous example's modules
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
        shutil.rmtree(markers, ignore_errors=True)
        markers.mkdir()
        for name, package in planted:
            code = f"open({str(markers / name)!r}, 'w').close()\n"
            if package:
                (here / name).mkdir()
                (here / name / "__init__.py").write_text(code)
            else:
                (here / f"{name}.py").write_text(code)
        if child == "bench":
            result = invoke("bench", tiny, "--target", "cpu", "--runs", "1", "--warmup", "0",
                            "--min-time", "0", "--json")
            assert_clean(result, sentinel)
            assert result.exit_code == 0, result.output
            assert json.loads(result.stdout)["results"][0]["status"] == "ok", result.stdout
        else:
            found = probe(tiny, timeout=120)
            assert found.ok, found.error
        assert sorted(p.name for p in markers.iterdir()) == []

    check()
