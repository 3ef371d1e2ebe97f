"""Target definitions: the shipped TOML files, overrides, and the `edgeconv targets` command."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from edgeconv.errors import EdgeconvError
from edgeconv.formats import resolve
from edgeconv.records import TIMED_ON
from edgeconv.runtimes import runtime_for
from edgeconv.targets import KINDS, builtin_dir, get_target, load_targets

EDGECONV = [sys.executable, "-m", "edgeconv"]
ROOT = Path(__file__).resolve().parents[1]


def test_shipped_targets_have_their_budgets():
    targets = load_targets()
    assert {"cpu", "gpu", "rpi", "rpi4", "rpi5", "stm32h7", "nrf52840", "esp32s3"} <= set(targets)
    assert targets["rpi"] is targets["rpi4"]
    stm = targets["stm32h7"]
    assert (stm.kind, stm.cpu, stm.sram_bytes, stm.flash_bytes, stm.clock_mhz) == (
        "mcu", "Cortex-M7", 1024 * 1024, 2 * 1024 * 1024, 480)
    assert (targets["nrf52840"].sram_bytes, targets["nrf52840"].flash_bytes) == (
        256 * 1024, 1024 * 1024)
    # the MLPerf Tiny boards the latency estimate is calibrated on
    l4, h7 = targets["nucleo-l4r5zi"], targets["nucleo-h7a3zi"]
    assert (l4.core, l4.clock_mhz, l4.sram_bytes, l4.flash_bytes) == (
        "cortex-m4", 120, 640 * 1024, 2 * 1024 * 1024)
    assert (h7.core, h7.clock_mhz, h7.flash_bytes) == ("cortex-m7", 280, 2 * 1024 * 1024)
    assert 1.3e6 < h7.sram_bytes < 1.5e6
    # an Arm core runs CMSIS-NN unless told; Xtensa has no core the emulator models
    assert (stm.core, stm.kernels) == ("cortex-m7", ("cmsis-nn",))
    assert (targets["nrf52840"].core, targets["nrf52840"].kernels) == ("cortex-m4", ("cmsis-nn",))
    assert (targets["esp32s3"].core, targets["esp32s3"].kernels) == (None, ())
    for target in targets.values():  # the 22 KB flash guess is gone
        assert "flash_overhead" not in json.dumps(target.to_dict())


def test_unknown_target_suggests_close_match():
    with pytest.raises(EdgeconvError, match="did you mean 'stm32h7'"):
        get_target("stm32h8")


def test_targets_dir_adds_and_overrides(tmp_path):
    (tmp_path / "cpu.toml").write_text('kind = "host"\nruntimes = ["litert"]\nthreads = [1, 2]\n')
    (tmp_path / "mybox.toml").write_text(
        'kind = "mcu"\nruntimes = ["tflite-micro"]\n[budgets]\nsram_bytes = 1\nflash_bytes = 2\n')
    targets = load_targets(tmp_path)
    assert targets["cpu"].threads == (1, 2) and targets["cpu"].runtimes == ("litert",)
    assert targets["mybox"].sram_bytes == 1


def test_bad_target_file_is_one_line(tmp_path):
    (tmp_path / "bad.toml").write_text('kind = "toaster"\nruntimes = []\n')
    with pytest.raises(EdgeconvError, match="bad.toml: kind must be one of host, gpu, board,"
                                            " mcu; got 'toaster'"):
        load_targets(tmp_path)


def test_targets_command_json():
    done = subprocess.run([*EDGECONV, "targets", "--json"], capture_output=True, text=True,
                          check=True)
    listed = json.loads(done.stdout)
    assert listed["esp32s3"]["sram_bytes"] == 512 * 1024
    table = subprocess.run([*EDGECONV, "targets"], capture_output=True, text=True, check=True)
    assert "nrf52840" in table.stdout


# --- contracts: the shipped targets, the kind table and the runtime registry agree ----------


def test_every_shipped_target_names_known_runtimes():
    from edgeconv.runtimes import get_runtime, runtime_names

    for target in load_targets().values():
        assert target.runtimes, target.name
        assert set(target.runtimes) <= set(runtime_names()), (target.name, target.runtimes)
        # every runtime it lists runs some file there: none is shadowed by an earlier one
        for name in target.runtimes:
            assert any(runtime_for(fmt, target.runtimes) == name
                       for fmt in get_runtime(name).formats), (target.name, name)


def test_kind_table_covers_every_kind():
    targets = load_targets()
    assert {t.kind for t in targets.values()} <= set(KINDS)
    for name, kind in KINDS.items():
        assert kind.name == name
        assert kind.timed_on in TIMED_ON and kind.device in ("cpu", "gpu")
        if kind.reachable:
            assert callable(resolve(kind.reachable)), name
    # every kind a user can write has a shipped example of it
    assert set(KINDS) == {t.kind for t in targets.values()}


def test_fit_check_targets_have_budgets():
    for target in load_targets().values():
        if target.kind_info.fit:
            assert target.sram_bytes and target.flash_bytes, target.name
        if target.core is not None:  # every core the targets name is one the emulator runs
            from edgeconv.mcu.cores import CORES, KERNEL_SETS

            assert target.core in CORES and set(target.kernels) <= set(KERNEL_SETS)
            assert target.clock_mhz, target.name  # the latency estimate needs the clock


def test_old_target_files_with_the_flash_guess_still_load(tmp_path):
    """Files written for older edgeconv set [runtime] flash_overhead_*: they load, the values
    are ignored (flash is the linked firmware's), and the target says so."""
    (tmp_path / "oldboard.toml").write_text(
        'kind = "mcu"\nruntimes = ["tflite-micro"]\ncore = "cortex-m4"\nclock_mhz = 64\n'
        '[budgets]\nsram_bytes = 1024\nflash_bytes = 2048\n'
        '[runtime]\nflash_overhead_bytes = 22528\nflash_overhead_source = "estimate"\n')
    target = load_targets(tmp_path)["oldboard"]
    assert (target.core, target.kernels) == ("cortex-m4", ("cmsis-nn",))
    assert len(target.notes) == 2 and all("ignored" in n for n in target.notes)
    assert not hasattr(target, "flash_overhead_bytes")


@pytest.mark.parametrize("text, message", [
    ('kind = "mcu"\nruntimes = ["tflite-micro"]\ncore = "cortex-m85"\n'
     '[budgets]\nsram_bytes = 1\nflash_bytes = 2\n', "core must be one of"),
    ('kind = "host"\nruntimes = ["litert"]\n[npu]\naccelerator = "ethos-u55-128"\n'
     'system_config = "Ethos_U55_High_End_Embedded"\nmemory_mode = "Shared_Sram"\n'
     'clock_mhz = 400\n', "\\[npu\\] is for an mcu target"),
    ('kind = "mcu"\nruntimes = ["tflite-micro"]\n[budgets]\nsram_bytes = 1\nflash_bytes = 2\n'
     '[npu]\naccelerator = "ethos-u55-128"\nsystem_config = "X"\nmemory_mode = "Y"\n',
     "clock_mhz"),
    ('kind = "host"\nruntimes = ["litert"]\ncore = "cortex-m4"\n', "for an mcu target"),
    ('kind = "mcu"\nruntimes = ["tflite-micro"]\nkernels = ["cmsis-nn"]\n'
     '[budgets]\nsram_bytes = 1\nflash_bytes = 2\n', "kernels need a core"),
    ('kind = "mcu"\nruntimes = ["tflite-micro"]\ncore = "cortex-m4"\nkernels = ["fast"]\n'
     '[budgets]\nsram_bytes = 1\nflash_bytes = 2\n', "kernels"),
])
def test_bad_core_or_kernels_is_one_line(tmp_path, text, message):
    (tmp_path / "box.toml").write_text(text)
    with pytest.raises(EdgeconvError, match=message) as error:
        load_targets(tmp_path)
    assert "\n" not in str(error.value)


def test_a_target_naming_an_unknown_runtime_is_one_line(tmp_path):
    (tmp_path / "box.toml").write_text('kind = "host"\nruntimes = ["litert", "onnxrt"]\n')
    with pytest.raises(EdgeconvError) as error:
        load_targets(tmp_path)
    message = str(error.value)
    assert str(tmp_path / "box.toml") in message and "'onnxrt'" in message
    assert "did you mean 'onnxruntime'" in message and "\n" not in message


def test_shipped_folder_is_read_once_from_the_checkout(monkeypatch):
    """In the project's checkout ./targets/ is the shipped folder itself: read once, and a
    wheel carries the same files (edgeconv/_targets is a link to it)."""
    shipped = builtin_dir()
    assert sorted(p.name for p in shipped.glob("*.toml")) == sorted(
        p.name for p in (ROOT / "targets").glob("*.toml"))
    monkeypatch.chdir(ROOT)
    assert load_targets()["cpu"].source.startswith(str(shipped))
