"""The build-once protocol of edgeconv._cache (MCU libraries and firmwares, boards), with real
processes on a real flock: a build killed mid-way leaves nothing that looks complete and its
lock is taken over at once; a waiter says whose build it waits for, since when and how far
it is; two builders build once; off a terminal, long work still prints plain lines.

No Arm toolchain, no root: the builds here write files, the boards are folders.
"""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from edgeconv import _cache
from edgeconv.board import cache as board_cache
from edgeconv.errors import EdgeconvError
from edgeconv.mcu import cache as mcu_cache
from edgeconv.progress import Progress

# A process building MCU cache entry `key` (argv[1]) that reports "compiling N of 1000"
# (through the progress the library build uses) until the file argv[2]/go appears; it says
# it is building by writing argv[2]/building.
BUILDER = r"""
import os, sys, time
from pathlib import Path
from edgeconv import _cache
from edgeconv.mcu import cache
key, signals = sys.argv[1], Path(sys.argv[2])
shown = _cache.TellWaiters(None)

def build(tmp):
    with open(signals / "built-by", "a") as log:
        log.write(f"{os.getpid()}\n")
    (tmp / "half.o").write_text("x")
    (signals / "building").write_text(str(os.getpid()))
    n = 0
    while not (signals / "go").exists():
        n += 1
        shown.update(n, f"compiling {n} of 1000")
        time.sleep(0.1)
    (tmp / "done").write_text("ok")

print(cache.entry("lib", key, build, lambda d: (d / "done").is_file(), progress=shown))
"""

# A process holding board argv[1]'s lock for a create, at step "board ...: mmdebstrap",
# until argv[2]/go appears.
BOARD_CREATE = r"""
import sys, time
from pathlib import Path
from edgeconv import _cache
from edgeconv.board import cache
name, signals = sys.argv[1], Path(sys.argv[2])
with cache.locked(name, shared=False, what=f"the board {name} create", wait=True):
    _cache.note(f"board {name}: mmdebstrap arm64 Debian")
    (signals / "building").write_text("yes")
    while not (signals / "go").exists():
        time.sleep(0.05)
"""


class Shown(Progress):
    """What a user would see: every description and message, in order."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def start(self, total: int, description: str, completed: int = 0) -> None:
        self.lines.append(description)

    def update(self, completed: int, description: str | None = None) -> None:
        if description:
            self.lines.append(description)

    def message(self, text: str) -> None:
        self.lines.append(text)


def _done(folder: Path) -> bool:
    return (folder / "done").is_file()


@pytest.fixture
def mcu_root(tmp_path, monkeypatch) -> Path:
    root = tmp_path / "mcu"
    monkeypatch.setenv(mcu_cache.CACHE_ENV, str(root))
    return root


def _spawn(code: str, *args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", code, *args], env={**os.environ, **env},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for(path: Path, proc: subprocess.Popen[str], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        if proc.poll() is not None:
            raise AssertionError(f"the builder exited early: {proc.communicate()}")
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"no {path.name} from the builder in {seconds} s")
        time.sleep(0.05)


def test_a_build_killed_mid_way_leaves_nothing_complete_and_its_lock_is_taken_at_once(
        mcu_root, tmp_path):
    signals = tmp_path / "signals"
    signals.mkdir()
    proc = _spawn(BUILDER, "k1", str(signals), env={mcu_cache.CACHE_ENV: str(mcu_root)})
    _wait_for(signals / "building", proc)
    time.sleep(1.5)  # its record now holds a progress line
    lock = mcu_root / "lib" / ".k1.lock"
    assert _cache.read_holder(lock) is not None  # alive: the record is believed
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    final = mcu_root / "lib" / "k1"
    assert not final.exists()
    assert [p.name for p in mcu_cache.partials("lib", "k1")] == [f".k1.partial-{proc.pid}"]
    assert (mcu_root / "lib" / ".k1.holder").exists()  # left behind, and not believed:
    assert _cache.read_holder(lock) is None

    shown, began = Shown(), time.monotonic()
    built = mcu_cache.entry("lib", "k1", lambda d: (d / "done").write_text("ok"), _done,
                            progress=shown)
    assert time.monotonic() - began < 1.0 and shown.lines == []  # taken over, no wait
    assert built == final and _done(final) and not (final / "half.o").exists()
    assert mcu_cache.partials("lib", "k1") == []  # the killed build's folder is gone
    assert sorted(p.name for p in (mcu_root / "lib").iterdir()) == [".k1.lock", "k1"]


def test_a_waiter_says_whose_build_since_when_and_how_far(mcu_root, tmp_path):
    signals = tmp_path / "signals"
    signals.mkdir()
    proc = _spawn(BUILDER, "k2", str(signals), env={mcu_cache.CACHE_ENV: str(mcu_root)})
    try:
        _wait_for(signals / "building", proc)
        time.sleep(1.5)  # its record now holds a progress line
        shown, ours, result = Shown(), [], []

        def build(folder: Path) -> None:
            ours.append(folder)

        waiter = threading.Thread(target=lambda: result.append(
            mcu_cache.entry("lib", "k2", build, _done, progress=shown)))
        waiter.start()
        deadline = time.monotonic() + 20
        while len({line for line in shown.lines if "compiling" in line}) < 3:
            assert time.monotonic() < deadline, shown.lines
            time.sleep(0.1)
        record = json.loads((mcu_root / "lib" / ".k2.holder").read_text())
        at = time.strftime("%H:%M", time.localtime(record["started"]))
        pattern = (rf"waiting for the TFLite Micro library build started by process "
                   rf"{proc.pid} at {at} \(compiling (\d+) of 1000\)")
        counts = [int(m.group(1)) for line in shown.lines if (m := re.fullmatch(pattern, line))]
        assert len(counts) == len(shown.lines) and counts == sorted(counts), shown.lines
        assert len(set(counts)) >= 3  # refreshed while it waits
        assert waiter.is_alive()
        (signals / "go").write_text("")
        waiter.join(30)
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert not ours and result == [mcu_root / "lib" / "k2"] and _done(result[0])
    assert re.fullmatch(rf"waited \d+ s for process {proc.pid}'s TFLite Micro library build",
                        shown.lines[-1]), shown.lines[-1]
    assert not (mcu_root / "lib" / ".k2.holder").exists()  # its holder removed it


def test_two_concurrent_builders_build_once(mcu_root, tmp_path):
    signals = tmp_path / "signals"
    signals.mkdir()
    (signals / "go").write_text("")  # neither waits for a signal: each builds at once
    env = {mcu_cache.CACHE_ENV: str(mcu_root)}
    procs = [_spawn(BUILDER, "k3", str(signals), env=env) for _ in range(2)]
    outs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert {out.strip() for out, _ in outs} == {str(mcu_root / "lib" / "k3")}
    assert len((signals / "built-by").read_text().split()) == 1  # one build, one reuse


def test_a_board_create_waits_for_another_and_the_others_are_told_whose(tmp_path,
                                                                       monkeypatch):
    boards = tmp_path / "boards"
    monkeypatch.setenv(board_cache.BOARDS_ENV, str(boards))
    signals = tmp_path / "signals"
    signals.mkdir()
    proc = _spawn(BOARD_CREATE, "rpi4", str(signals),
                  env={board_cache.BOARDS_ENV: str(boards)})
    try:
        _wait_for(signals / "building", proc)
        time.sleep(1.2)  # past the record's refresh interval: the step line is written
        whose = rf"the board rpi4 create started by process {proc.pid} at \d\d:\d\d"
        step = r" \(board rpi4: mmdebstrap arm64 Debian\)"
        with pytest.raises(EdgeconvError, match=f"board rpi4 is in use by {whose}{step}"):
            with board_cache.locked("rpi4", shared=True):  # start: refused, told whose
                pass
        with pytest.raises(EdgeconvError, match=f"board rpi4 is in use by {whose}"):
            board_cache.remove("rpi4")
        shown, entered = Shown(), threading.Event()

        def create() -> None:
            with board_cache.locked("rpi4", shared=False, what="the board rpi4 create",
                                    wait=True, progress=shown):
                entered.set()

        waiter = threading.Thread(target=create)
        waiter.start()
        time.sleep(1.0)
        assert not entered.is_set()
        assert shown.lines and re.fullmatch(f"waiting for {whose}{step}", shown.lines[0])
        (signals / "go").write_text("")
        waiter.join(30)
        assert entered.is_set()
        proc.wait(30)
    finally:
        proc.kill()


def test_a_create_does_not_wait_for_a_running_board(tmp_path, monkeypatch):
    """A running board holds its lock shared, with no record: a create is refused at once
    (a board may run for days), not left waiting."""
    monkeypatch.setenv(board_cache.BOARDS_ENV, str(tmp_path / "boards"))
    began = time.monotonic()
    with board_cache.locked("rpi4", shared=True):
        with pytest.raises(EdgeconvError, match=r"board rpi4 is in use \(running"):
            with board_cache.locked("rpi4", shared=False, wait=True, progress=Shown()):
                pass
    assert time.monotonic() - began < 5


def test_off_a_terminal_long_work_prints_plain_lines():
    from rich.console import Console

    from edgeconv.commands._progress import RichProgress

    out = io.StringIO()
    console = Console(file=out, force_terminal=False, width=200)
    with RichProgress(console, plain_first=0.2, plain_every=0.2, plain_quiet=0.6) as progress:
        progress.start(3, "quick")  # gone before the first tick: nothing
        progress.start(10, "compiling 0 of 10")
        for n in range(1, 4):
            progress.update(n, f"compiling {n} of 10")
            time.sleep(0.3)
        time.sleep(1.0)  # no change: a line again after `plain_quiet`
        progress.message("linking")
    time.sleep(0.5)  # stopped: no more lines
    lines = out.getvalue().splitlines()
    assert lines[-1] == "linking" and not any("quick" in line for line in lines), lines
    steps = [re.fullmatch(r"compiling (\d) of 10 \((\d)/10, 0:0\d\)", line) for line in
             lines[:-1]]
    assert all(steps), lines
    assert {int(m.group(1)) for m in steps} >= {2, 3}  # every step of 0.3 s, about
    assert [m.group(1) for m in steps].count("3") >= 2  # repeated while unchanged
