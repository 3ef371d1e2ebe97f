"""Run a plan of edgeconv commands in one process (two on two cores), stage by stage, and say
where the time went.

`scripts/reproduce` (and so `scripts/demo`) writes its commands to a plan file instead of
starting `edgeconv` once per command: each start imports TensorFlow and Keras again (~5 s of
CPU, sixteen times over). Here they run through the same Typer app, so what each prints, its
exit code and its errors are those of the command line.

The plan is text: `== TITLE` starts a stage, `edgeconv ARG...` (shell-quoted, as bash's
`printf %q` writes it) is a command of the current stage, `#` lines and blank lines are
skipped. An argument with a wildcard (`runs/demo/*/x_int8.tflite`) is expanded when its command
runs, since the files it names are made by the commands before it.

`==& TITLE` starts a stage that may run alongside the `==&` stages next to it: a run of them
is a group, run by `--workers` processes (default: two where there are two cores), each
stage's output going to its own log. The TFLite and ONNX converters run on one core, so two
exports (or an export and a training run) at once use a 2-core machine's second core. A plan
puts in groups only what no timing figure is read from: benches, and the trainings whose
epoch times a claim compares, are plain stages and run alone.

    python -m edgeconv.steps PLAN [--log FILE] [--summary FILE] [--workers N] [--logs DIR]

The first failing command stops the plan with its exit code (a group lets its running
stages finish). At the end a table gives each stage's wall and CPU time (the process that ran
it and its children: the bench and probe children count), so a slow stage is named, not
guessed.
"""

from __future__ import annotations

import argparse
import gc
import glob
import os
import resource
import shlex
import sys
import time
import traceback
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path

from edgeconv.errors import EdgeconvError

WILDCARDS = frozenset("*?[")
LOG_TAIL_LINES = 25  # of a failed stage's log, shown where the failure is reported


@dataclass
class Stage:
    number: int
    title: str
    alongside: bool = False  # may run at the same time as the `==&` stages next to it
    commands: list[list[str]] = field(default_factory=list)
    wall_s: float | None = None  # None: never run
    cpu_s: float | None = None


def read_plan(text: str) -> list[Stage]:
    """The stages of a plan file; a command before any `==` line gets an untitled stage."""
    stages: list[Stage] = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("=="):
            alongside = line.startswith("==&")
            stages.append(Stage(len(stages) + 1, line[3 if alongside else 2:].strip(),
                                alongside))
            continue
        try:
            words = shlex.split(line)
        except ValueError as exc:
            raise EdgeconvError(f"plan line {number}: {exc}") from None
        if not words or words[0] != "edgeconv":
            raise EdgeconvError(f"plan line {number}: not an edgeconv command: {line[:80]}")
        if not stages:
            stages.append(Stage(1, "(untitled)"))
        stages[-1].commands.append(words[1:])
    return stages


def groups(stages: list[Stage]) -> list[list[Stage]]:
    """The stages in the order they run: each plain stage alone, each run of `==&` stages
    together."""
    out: list[list[Stage]] = []
    for stage in stages:
        if stage.alongside and out and out[-1][-1].alongside:
            out[-1].append(stage)
        else:
            out.append([stage])
    return out


def expand(args: list[str]) -> list[str]:
    """Each wildcard argument replaced by the files it matches now, sorted; one that
    matches nothing is an error (the command before it did not make what it should)."""
    out: list[str] = []
    for arg in args:
        if WILDCARDS.isdisjoint(arg):
            out.append(arg)
            continue
        found = sorted(glob.glob(arg))
        if not found:
            raise EdgeconvError(f"no file matches {arg}")
        out.extend(found)
    return out


def cpu_seconds() -> float:
    """User + system CPU of this process and its waited-for children so far."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def run_command(args: list[str]) -> int:
    """One command through the CLI's own app, as `edgeconv ARGS` would run it: the exit
    code, 0 on success."""
    from edgeconv.cli import app

    try:
        app(args, prog_name="edgeconv")
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    except Exception:  # noqa: BLE001 - a bug in the command: its traceback, as the CLI shows it
        traceback.print_exc()
        return 1
    return 0


def release_models() -> None:
    """Drop what the last command's Keras models hold (the 224x224 VGG16 is 0.5 GB of
    weights) before the next command builds its own."""
    if "keras" in sys.modules:
        sys.modules["keras"].backend.clear_session()
    gc.collect()


@dataclass(frozen=True)
class Outcome:
    code: int
    wall_s: float
    cpu_s: float
    failed: str | None = None  # the command that failed, as a command line


def run_stage(stage: Stage, log: Path | None) -> Outcome:
    """Run a stage's commands in this process, stopping at the first that fails."""
    wall, cpu = time.monotonic(), cpu_seconds()
    code, failed = 0, None
    for args in stage.commands:
        try:
            args = expand(args)
        except EdgeconvError as exc:  # a wildcard that matched nothing
            print(f"error: {exc}", file=sys.stderr)
            code, failed = 2, shlex.join(["edgeconv", *args])
            break
        line = shlex.join(["edgeconv", *args])
        if log is not None:
            with log.open("a", encoding="utf-8") as out:  # one append: whole lines
                out.write(line + "\n")
        code = run_command(args)
        release_models()
        if code:
            failed = line
            break
    sys.stdout.flush()
    sys.stderr.flush()
    return Outcome(code, time.monotonic() - wall, cpu_seconds() - cpu, failed)


def _stage_in_worker(stage: Stage, log: Path | None, output: Path) -> Outcome:
    """A worker process's side of a group: the stage's output (and its children's) goes to
    `output`, so two stages' progress never interleave on the terminal."""
    sys.stdout.flush()
    sys.stderr.flush()
    fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    return run_stage(stage, log)


def _clock(seconds: float) -> str:
    return f"{int(seconds // 60)}m{int(seconds % 60):02d}s"


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _tail(path: Path) -> str:
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join("    " + line for line in lines[-LOG_TAIL_LINES:])


def _log_name(stage: Stage) -> str:
    words = "".join(c if c.isalnum() else "-" for c in stage.title.lower()).split("-")
    return f"{stage.number:02d}-{'-'.join(w for w in words if w)[:60]}.log"


class Runner:
    def __init__(self, log: Path | None, workers: int, logs: Path):
        self.log, self.workers, self.logs = log, workers, logs
        self.started = time.monotonic()

    def elapsed(self) -> str:
        return _clock(time.monotonic() - self.started)

    def run(self, stages: list[Stage]) -> int:
        """Every stage in order; the first failing command's exit code, else 0."""
        for group in groups(stages):
            if len(group) == 1 or self.workers <= 1:
                code = next((c for s in group if (c := self.alone(s))), 0)
            else:
                code = self.together(group)
            if code:
                return code
        return 0

    def alone(self, stage: Stage) -> int:
        _say(f"\n== [{stage.number}] {stage.title}  ({self.elapsed()} elapsed)")
        outcome = run_stage(stage, self.log)
        stage.wall_s, stage.cpu_s = outcome.wall_s, outcome.cpu_s
        if outcome.code:
            _say(f"steps: stage {stage.number} failed (exit {outcome.code}): {outcome.failed}")
        return outcome.code

    def together(self, group: list[Stage]) -> int:
        self.logs.mkdir(parents=True, exist_ok=True)
        numbers = f"{group[0].number}-{group[-1].number}"
        _say(f"\n== [{numbers}] {len(group)} stages, {self.workers} at a time; each stage's"
             f" output in {self.logs}/  ({self.elapsed()} elapsed)")
        for stage in group:
            _say(f"   [{stage.number}] {stage.title}")
        code = 0
        # spawn, not fork: the parent may already hold TensorFlow's threads
        with ProcessPoolExecutor(self.workers, mp_context=get_context("spawn")) as pool:
            running: dict[Future, tuple[Stage, Path]] = {}
            for stage in group:
                output = self.logs / _log_name(stage)
                running[pool.submit(_stage_in_worker, stage, self.log, output)] = (stage,
                                                                                  output)
            try:
                while running:
                    done, _ = wait(running, return_when=FIRST_COMPLETED)
                    for future in done:
                        stage, output = running.pop(future)
                        code = self._finished(stage, output, future) or code
                    if code:  # let the running stages end; start no other
                        for future in running:
                            future.cancel()
            except KeyboardInterrupt:
                pool.shutdown(wait=True, cancel_futures=True)
                raise
        return code

    def _finished(self, stage: Stage, output: Path, future: Future) -> int:
        if future.cancelled():
            return 0
        try:
            outcome = future.result()
        except Exception as exc:  # noqa: BLE001 - the worker died (killed, out of memory)
            _say(f"steps: stage {stage.number} ({stage.title}) stopped: {exc}; its output:"
                 f" {output}\n{_tail(output)}")
            return 1
        stage.wall_s, stage.cpu_s = outcome.wall_s, outcome.cpu_s
        if outcome.code:
            _say(f"steps: stage {stage.number} failed (exit {outcome.code}): {outcome.failed};"
                 f" the end of its output ({output}):\n{_tail(output)}")
        else:
            _say(f"   [{stage.number}] done in {_clock(outcome.wall_s)}: {stage.title}"
                 f"  ({self.elapsed()} elapsed)")
        return outcome.code


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def summary_table(stages: list[Stage], wall_s: float, cpu_s: float) -> str:
    """The per-stage times as a Markdown table (pasteable into docs/benchmarks.md)."""
    lines = ["| # | stage | wall s | CPU s |", "|---:|---|---:|---:|"]
    for stage in stages:
        title = stage.title.replace("|", "\\|") + (" (alongside others)" if stage.alongside
                                                  else "")
        lines.append(f"| {stage.number} | {title} | {_seconds(stage.wall_s)} |"
                     f" {_seconds(stage.cpu_s)} |")
    lines.append(f"| | **total** | **{wall_s:.1f}** | **{cpu_s:.1f}** |")
    return "\n".join(lines)


def default_workers() -> int:
    """Two where there are two cores or more: the memory of two 224x224 exports at once
    (~10 GB for VGG16's) is what a 2-core machine of 16 GB or more has."""
    return 2 if (os.cpu_count() or 1) >= 2 else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m edgeconv.steps",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("plan", type=Path)
    parser.add_argument("--log", type=Path, help="append each command as it starts")
    parser.add_argument("--summary", type=Path,
                        help="write the per-stage time table (Markdown) here")
    parser.add_argument("--workers", type=int, default=default_workers(),
                        help="processes for a group of `==&` stages (1: one at a time)")
    parser.add_argument("--logs", type=Path,
                        help="where a group's stages write their output (default: beside"
                             " the plan, logs/)")
    options = parser.parse_args(argv)
    if options.workers < 1:
        parser.error("--workers must be 1 or more")
    try:
        stages = read_plan(options.plan.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        print(f"error: cannot read the plan {options.plan}: {exc}", file=sys.stderr)
        return 2
    except EdgeconvError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    runner = Runner(options.log, options.workers, options.logs or options.plan.parent / "logs")
    cpu_started = cpu_seconds()
    try:
        code = runner.run(stages)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        code = 130
    table = summary_table(stages, time.monotonic() - runner.started,
                          cpu_seconds() - cpu_started)
    print("\nwhere the time went (wall and CPU seconds per stage; CPU counts the process that"
          " ran it and its children):\n" + table, file=sys.stderr)
    if options.summary is not None:
        options.summary.write_text(table + "\n", encoding="utf-8")
    return code


if __name__ == "__main__":
    # through the imported module, not __main__: what a spawned worker unpickles
    # (_stage_in_worker, Stage) must be found under its module's own name
    from edgeconv.steps import main as _main

    sys.exit(_main())
