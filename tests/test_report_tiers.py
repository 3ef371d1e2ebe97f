"""The report's accuracy-vs-cost curve per model (edgeconv.report.tiers).

End to end (marker `own`, ~40 s): the outlier digits model of tests/test_int8_budget.py
exported twice, as `--int8 --int16x8` and as `--int8 --max-drop 1`, benched on the cpu
(LiteRT) and on stm32h7 without firmware (TFLite Micro's host interpreter); with `-m mcu`
also on the emulated Cortex-M7 firmware. The quick tests read hand-written manifests and
results.json (no TensorFlow): how the tiers of one model are found across exports, and what
is left out.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from edgeconv.cli import app

runner = CliRunner()
EDGECONV = [sys.executable, "-m", "edgeconv"]
TREE = Path(__file__).resolve().parents[2] / "shared" / "third_party" / "tflm-tree-cmsis-nn.tgz"
TITLE = "## Accuracy against cost, per tier"


def _report(out: Path, *paths: Path, plots: bool = False) -> str:
    done = runner.invoke(app, ["report", *map(str, paths), "-o", str(out), "--no-arithmetic",
                               *([] if plots else ["--no-plots"])])
    assert done.exit_code == 0, done.output
    return (out / "report.md").read_text()


def _section(md: str) -> str:
    start = md.index(TITLE)
    end = md.find("\n## ", start + 1)
    return md[start:end if end > 0 else None]


def _table(section: str, model: str) -> list[dict[str, str]]:
    """The rows of `model`'s table, each as column -> cell."""
    start = section.index(f"**{model}**")
    end = section.find("\n**", start + 1)
    lines = [line.strip().strip("|").split(" | ")
             for line in section[start:end if end > 0 else None].splitlines()
             if line.startswith("| ") and not line.startswith("|---")]
    header, *rows = [[c.strip() for c in line] for line in lines]
    return [dict(zip(header, row)) for row in rows]


# --- real exports -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Path:
    """runs/tiers (fp32, int8, int16x8), runs/mixed (fp32, the --max-drop 1 file), and the
    cpu and host-interpreter stm32h7 results.json of both, under one folder."""
    pytest.importorskip("tensorflow")
    pytest.importorskip("ai_edge_quantizer")  # the mixed file's quantiser
    from edgeconv.export.config import ExportConfig
    from edgeconv.export.run import export
    from tests.test_int8_budget import outlier_model

    root = tmp_path_factory.mktemp("tiers")
    model = outlier_model(root / "outlier.keras")
    runs = root / "runs"
    export(ExportConfig(str(model), precisions=frozenset({"int8", "int16x8"}),
                        formats=("tflite",), out=runs / "tiers"))
    export(ExportConfig(str(model), precisions=frozenset({"int8"}), formats=("tflite",),
                        max_drop=1.0, out=runs / "mixed"))
    for target, extra in (("cpu", ["--runtime", "litert", "--runs", "6", "--warmup", "1",
                                   "--min-time", "0"]), ("stm32h7", [])):
        done = subprocess.run([*EDGECONV, "bench", str(runs / "tiers"), str(runs / "mixed"),
                               "--target", target, *extra, "--out",
                               str(runs / f"results-{target}.json")],
                              check=False, capture_output=True, text=True, timeout=300,
                              env=_no_tree_env())
        assert done.returncode == 0, done.stderr[-2000:]
    return runs


def _no_tree_env() -> dict[str, str]:
    """The host interpreter's rows: no firmware, whatever the shell's environment says."""
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith("EDGECONV_TFLM_TREE")}


def _manifest(run: Path) -> dict:
    return json.loads((run / "manifest.json").read_text())


def _file(run: Path, precision: str) -> dict:
    return next(a for a in _manifest(run)["artifacts"]
                if a["format"] == "tflite" and a["precision"] == precision)


def _rows(path: Path) -> dict[str, dict]:
    """sha256 -> its first row (the fp32 file, the same bytes in both exports, has two: the
    report shows the first of equal thread counts)."""
    rows: dict[str, dict] = {}
    for row in json.loads(path.read_text())["results"]:
        rows.setdefault(row["sha256"], row)
    return rows


@pytest.mark.own
def test_the_tiers_of_two_exports_are_one_curve(exported, tmp_path):
    md = _report(tmp_path / "report", exported, plots=True)
    section = _section(md)
    assert section.count("\n**outlier**") == 1  # one model, across both exports
    rows = _table(section, "outlier")
    mixed = _file(exported / "mixed", "int8")
    budget = mixed["options"]["accuracy_budget"]
    wide = sum(1 for p in budget["layer_precisions"].values() if p == "int16x8")
    assert [r["tier"] for r in rows] == [
        "fp32 TFLite", "int8 TFLite", "int16x8 TFLite",
        f"mixed TFLite ({wide} of {len(budget['layer_precisions'])} layers int16x8)"]
    # the fp32 file is the same bytes in both exports: shown once
    assert sum(r["file"].endswith("outlier_fp32.tflite`") for r in rows) == 1
    by_tier = {r["tier"].split(" (")[0]: r for r in rows}
    plain, sixteen = _file(exported / "tiers", "int8"), _file(exported / "tiers", "int16x8")
    for tier, entry in (("int8 TFLite", plain), ("int16x8 TFLite", sixteen),
                        ("mixed TFLite", mixed)):
        assert by_tier[tier]["accuracy [95%]"].startswith(f"{entry['accuracy']:.1%} [")
    # what the curve shows on this model: int8 loses points, the integer remedies hold
    assert plain["accuracy"] < mixed["accuracy"] - 0.02
    assert by_tier["int8 TFLite"]["drop from float, points [95%]"].startswith("+")
    assert "![outlier: accuracy against cost per tier](tiers-1.png)" in section
    assert (tmp_path / "report" / "tiers-1.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.own
def test_each_cost_says_how_it_was_obtained(exported, tmp_path):
    rows = _table(_section(_report(tmp_path / "report", exported)), "outlier")
    cpu, h7 = _rows(exported / "results-cpu.json"), _rows(exported / "results-stm32h7.json")
    for row in rows:
        name = row["file"].strip("`").split("/")
        entry = next(a for a in _manifest(exported / name[0])["artifacts"]
                     if a["path"] == name[1])
        timed = cpu[entry["sha256"]]["latency_ms"]
        assert row["cpu latency ms (measured)"] == (
            f"{timed['p50']:.3f} [{timed['p50_low']:.3f}, {timed['p50_high']:.3f}]")
        micro = h7[entry["sha256"]]
        assert row["stm32h7 instructions / invoke (emulated)"] == "no firmware run"
        assert row["stm32h7 latency ms"] == (f"{micro['latency_ms']['p50']:.3f}"
                                             " (x86 host, reference kernels)")
        assert row["stm32h7 arena"].endswith("(host interpreter)")


@pytest.mark.own
def test_an_export_without_a_wider_tier_has_no_curve(exported, tmp_path):
    # the int8-only half of the story: fp32 and int8 are the pair tables' business
    plain = tmp_path / "plain"
    shutil.copytree(exported / "tiers", plain)
    manifest = _manifest(plain)
    manifest["artifacts"] = [a for a in manifest["artifacts"] if a["precision"] != "int16x8"]
    (plain / "manifest.json").write_text(json.dumps(manifest))
    assert TITLE not in _report(tmp_path / "report", plain)


needs_firmware = pytest.mark.skipif(
    not TREE.is_file() or not (shutil.which("arm-none-eabi-g++")
                               and shutil.which("qemu-system-arm")),
    reason="the pinned TFLite Micro tree, the Arm GNU toolchain or qemu-system-arm is missing")


@pytest.mark.mcu
@needs_firmware
def test_the_firmware_counts_are_the_mcu_cost(exported, tmp_path):
    runs = tmp_path / "runs"
    shutil.copytree(exported, runs)
    done = subprocess.run([*EDGECONV, "bench", str(runs / "tiers"), str(runs / "mixed"),
                           "--target", "stm32h7", "--tflm-tree", str(TREE), "--out",
                           str(runs / "results-stm32h7.json")],
                          check=False, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    section = _section(_report(tmp_path / "report", runs))
    h7 = _rows(runs / "results-stm32h7.json")
    integer = [r for r in _table(section, "outlier") if not r["tier"].startswith("fp32")]
    assert len(integer) == 3
    for row in integer:
        name = row["file"].strip("`").split("/")
        entry = next(a for a in _manifest(runs / name[0])["artifacts"] if a["path"] == name[1])
        firmware = h7[entry["sha256"]]
        assert row["stm32h7 instructions / invoke (emulated)"] == \
            f"{firmware['mcu']['invoke_instructions']:,}"
        assert row["stm32h7 latency ms"].endswith("(emulated, estimate)")
        assert row["stm32h7 flash"] and "host interpreter" not in row["stm32h7 arena"]


# --- hand-written records (quick) -------------------------------------------------------


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _entry(stem: str, precision: str, accuracy: float, **options) -> dict:
    return {"path": f"{stem}_{precision}.tflite", "format": "tflite", "precision": precision,
            "size_bytes": 4096, "sha256": _sha(f"{stem}{precision}{options}"),
            "accuracy": accuracy, "eval_samples": 300, "accuracy_interval": [0.8, 0.9],
            "runtime": "litert", "options": options}


def _write(run: Path, name: str, artifacts: list[dict], source: dict | None) -> Path:
    run.mkdir(parents=True)
    model = {"name": name, "trained": True, **({"source": source} if source else {})}
    (run / "manifest.json").write_text(json.dumps({
        "schema_version": 1, "model": model, "artifacts": artifacts, "float_accuracy": 0.9,
        "dataset": {"name": "digits", "seed": 0}}))
    return run


def _row(artifact: dict, target: str, **extra) -> dict:
    return {"artifact": artifact["path"], "sha256": artifact["sha256"], "format": "tflite",
            "precision": artifact["precision"], "runtime": "litert", "target": target,
            "threads": 1, "status": "ok", "runs": 20,
            "latency_ms": {"p50": 1.0, "p90": 1.1, "p99": 1.2, "mean": 1.0, "std": 0.1,
                           "min": 0.9}, **extra}


@pytest.fixture
def written(tmp_path) -> Path:
    root = tmp_path / "runs"
    source = {"kind": "keras", "file": "net.keras", "sha256": _sha("net")}
    fp32 = _entry("net", "fp32", 0.9)
    budget = {"int16x8_layers": ["a"], "kept_float": [],
              "layer_precisions": {"a": "int16x8", "b": "int8", "c": "int8"}}
    mixed = _entry("net", "int8", 0.89, accuracy_budget=budget)
    plain = _entry("net", "int8", 0.7)
    _write(root / "tiers", "net", [fp32, plain, _entry("net", "int16x8", 0.9)], source)
    _write(root / "mixed", "net", [fp32, mixed], source)
    # another model with fp32 and int8 only, and the same name from another file
    _write(root / "other", "net", [_entry("other", "fp32", 0.5), _entry("other", "int8", 0.4)],
           {**source, "sha256": _sha("other")})
    (root / "results.json").write_text(json.dumps({"schema_version": 1, "results": [
        _row(plain, "cpu"),
        {**_row(mixed, "cpu"), "status": "failed", "latency_ms": None, "error": "boom"},
        _row(mixed, "rpi4", timed_on="emulated")]}))  # a qemu time: never a cost
    return root


def test_the_tiers_of_one_source_file_are_found_across_exports(written, tmp_path):
    section = _section(_report(tmp_path / "report", written))
    assert section.count("\n**net**") == 1  # the other file's model has no wider tier
    rows = _table(section, "net")
    assert [r["tier"] for r in rows] == ["fp32 TFLite", "int8 TFLite", "int16x8 TFLite",
                                         "mixed TFLite (1 of 3 layers int16x8)"]
    assert [r["file"] for r in rows] == ["`mixed/net_fp32.tflite`", "`tiers/net_int8.tflite`",
                                         "`tiers/net_int16x8.tflite`",
                                         "`mixed/net_int8.tflite`"]
    assert [r["cpu latency ms (measured)"] for r in rows] == ["", "1.000", "", "**failed**"]
    assert not any("rpi4" in column for column in rows[0])


def test_a_max_drop_file_that_changed_nothing_is_plain_int8(written, tmp_path):
    manifest = json.loads((written / "mixed" / "manifest.json").read_text())
    manifest["artifacts"][1]["options"]["accuracy_budget"]["int16x8_layers"] = []
    (written / "mixed" / "manifest.json").write_text(json.dumps(manifest))
    rows = _table(_section(_report(tmp_path / "report", written)), "net")
    assert [r["tier"] for r in rows] == ["fp32 TFLite", "int8 TFLite", "int8 TFLite",
                                         "int16x8 TFLite"]


def test_a_mixed_file_with_a_float_layer_says_so(written, tmp_path):
    manifest = json.loads((written / "mixed" / "manifest.json").read_text())
    budget = manifest["artifacts"][1]["options"]["accuracy_budget"]
    budget.update(kept_float=["c"], layer_precisions={"a": "int16x8", "b": "int16x8",
                                                      "c": "fp32", "d": "int8"})
    (written / "mixed" / "manifest.json").write_text(json.dumps(manifest))
    rows = _table(_section(_report(tmp_path / "report", written)), "net")
    assert rows[-1]["tier"] == "mixed TFLite (2 of 4 layers int16x8, 1 fp32)"
