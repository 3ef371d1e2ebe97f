"""Target definitions: the shipped TOML files, overrides, and the `edgeconv targets` command."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from edgeconv.errors import EdgeconvError
from edgeconv.targets import get_target, load_targets

EDGECONV = [sys.executable, "-m", "edgeconv"]


def test_shipped_targets_have_their_budgets():
    targets = load_targets()
    assert {"cpu", "gpu", "rpi", "rpi4", "rpi5", "stm32h7", "nrf52840", "esp32s3"} <= set(targets)
    assert targets["rpi"] is targets["rpi4"]
    stm = targets["stm32h7"]
    assert (stm.kind, stm.cpu, stm.sram_bytes, stm.flash_bytes, stm.clock_mhz) == (
        "mcu", "Cortex-M7", 1024 * 1024, 2 * 1024 * 1024, 480)
    assert (targets["nrf52840"].sram_bytes, targets["nrf52840"].flash_bytes) == (
        256 * 1024, 1024 * 1024)
    for target in targets.values():
        if target.kind == "mcu":
            assert target.flash_overhead_bytes and "estimate" in target.flash_overhead_source


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
    with pytest.raises(EdgeconvError, match="kind 'toaster'"):
        load_targets(tmp_path)


def test_targets_command_json():
    done = subprocess.run([*EDGECONV, "targets", "--json"], capture_output=True, text=True,
                          check=True)
    listed = json.loads(done.stdout)
    assert listed["esp32s3"]["sram_bytes"] == 512 * 1024
    table = subprocess.run([*EDGECONV, "targets"], capture_output=True, text=True, check=True)
    assert "nrf52840" in table.stdout
