"""The plan run on a board over SSH: copy the files the plan measures, run `edgeconv bench
--local --json` there, map the board's rows onto the plan's rows and bring its environment
back.

The system OpenSSH client (`ssh`, `scp`) does the talking, so the user's ~/.ssh/config,
agent, known_hosts and ProxyJump apply and nothing new is installed (docs/bench.md). Every
command is an argument list; the one line ssh hands to the remote shell is built from
shlex-quoted words only. Host-key checking is never turned off and BatchMode keeps a
password or host-key prompt from hanging a CI job.

What the rows prove beyond the board's own figures: this side sends each export's test split
(prepared here, so the board needs no dataset package), and the board saves each row's raw
outputs on its evaluation inputs; they come back and are compared with the same file run
here, in the same runtime with the same options, on the same inputs (`row.parity`).
"""

from __future__ import annotations

import json
import platform
import re
import shlex
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeconv._child import BadReply, Captured, last_line, parse_reply, run_captured
from edgeconv.bench.plan import (
    BENCH_DATA, MAX_DATA_BYTES, Artifact, BenchConfig, Plan, dataset_spec, outputs_name,
)
from edgeconv.bench.ssh_rules import (
    COMMAND_LINE,
    NAMED_FILE,
    check_host,
    check_host_keys,
    check_options,
    split_option,
)
from edgeconv.bench.parity import add_parity
from edgeconv.errors import EdgeconvError
from edgeconv.files import show_path
from edgeconv.formats import FORMATS
from edgeconv.manifest import MANIFEST
from edgeconv.progress import Progress, Steps
from edgeconv.records import MAX_RECORD_BYTES, BenchReport, BenchRow, results_from_dict
from edgeconv.targets import Target

CONNECT_TIMEOUT_S = 10
_STEP_SLACK_S = 30  # beyond the connect timeout, for a command that makes or removes a folder
_BENCH_SLACK_S = 120  # the board's start-up, dataset and environment, on top of its rows' timeouts
_ENFORCED = {"batchmode", "stricthostkeychecking"}
_SAFE_REMOTE_DIR = re.compile(r"/[A-Za-z0-9._+/-]+")
_MKTEMP = 'mktemp -d "${TMPDIR:-/tmp}/edgeconv-remote.XXXXXXXX"'
OUTPUTS = "outputs"  # the job's folder on the board where each row's raw outputs are saved
STAGED_DATA = "test-data.npz"  # an export's test split, beside its staged manifest
_FETCH_S_PER_ROW = 10  # on top of the connect timeout and the step's slack


@dataclass(frozen=True)
class SshHost:
    """Where the board is and how to reach it: the ssh/scp arguments, never a shell string."""

    display: str  # as the user wrote it, for messages and results.json
    destination: str  # [user@]host, for ssh
    scp_prefix: str  # [user@]host: (IPv6 in brackets), for scp
    options: tuple[str, ...]  # -o values; ours that must hold come first (first value wins)
    connect_timeout: float

    def ssh(self, command: str) -> list[str]:
        return ["ssh", *self._o(), "-T", "--", self.destination, command]

    def scp(self, local: Path, remote_dir: str) -> list[str]:
        return ["scp", *self._o(), "-q", "-r", "--", str(local), f"{self.scp_prefix}{remote_dir}/"]

    def fetch(self, remote_path: str, local: Path) -> list[str]:
        """scp of a folder on the board (a path of ours) to `local`, which must not exist."""
        return ["scp", *self._o(), "-q", "-r", "--", f"{self.scp_prefix}{remote_path}",
                str(local)]

    def _o(self) -> list[str]:
        return [arg for option in self.options for arg in ("-o", option)]


def parse_host(text: str, ssh_options: tuple[str, ...] = (),
               file_options: tuple[str, ...] = ()) -> SshHost:
    """`[user@]host[:port]` (IPv6 as `[addr]:port`) plus ssh_config options (`Key=Value`):
    `ssh_options` typed by the user (--ssh-option), `file_options` from the target file
    (already checked for where it came from when it was read). The rules are
    edgeconv.bench.ssh_rules: host-key checking and BatchMode stay on whatever the source."""
    where = check_host(text)
    passed = [*check_options(ssh_options, COMMAND_LINE, "ssh option"),
              *check_options(file_options, NAMED_FILE, "ssh option")]
    check_host_keys(passed)
    mine: dict[str, str] = {}
    for option in passed:
        key, value = split_option(option)
        mine.setdefault(key.lower(), value)  # as ssh does: the first value holds
    login = f"{where.user}@" if where.user else ""
    # ssh keeps the first value of an option: these go before the user's and the config's.
    enforced = ["BatchMode=yes",
                f"StrictHostKeyChecking={mine.get('stricthostkeychecking', 'yes')}"]
    defaults = [f"ConnectTimeout={CONNECT_TIMEOUT_S}", "ServerAliveInterval=15",
                "ServerAliveCountMax=3"] + ([f"Port={where.port}"] if where.port else [])
    return SshHost(
        display=text, destination=f"{login}{where.host}",
        scp_prefix=f"{login}[{where.host}]:" if ":" in where.host else f"{login}{where.host}:",
        options=(*enforced, *(p for p in passed if p.split("=")[0].lower() not in _ENFORCED),
                 *defaults),
        connect_timeout=float(mine.get("connecttimeout", CONNECT_TIMEOUT_S)))


def remote_command(words: list[str]) -> str:
    """The line the remote shell runs: every word quoted; a leading ~/ is the board's $HOME."""
    def word(text: str) -> str:
        if text == "~" or text.startswith("~/"):
            return '"$HOME"' + (f"/{shlex.quote(text[2:])}" if text[2:] else "")
        return shlex.quote(text)

    return " ".join(word(w) for w in words)


@dataclass(frozen=True)
class SshBench:
    """How to bench over SSH, checked before any file is read: the host and its options, the
    board's edgeconv command."""

    host: SshHost
    program: list[str]


def check_ssh(host_text: str, target: Target, config: BenchConfig) -> SshBench:
    """The SSH settings of this bench (--host or the target's, --ssh-option and the target's
    ssh_options, remote_edgeconv), or one line saying what is wrong with them."""
    host = parse_host(host_text, config.ssh_options,
                      tuple(target.extra.get("ssh_options", ())))
    return SshBench(host, _remote_edgeconv(target, config))


def bench_over_ssh(ssh: SshBench, plan: Plan, config: BenchConfig,
                   progress: Progress | None = None
                   ) -> tuple[dict[str, Any], list[BenchRow], list[str]]:
    """Run `plan` on the board: (its environment, the plan's rows, notes)."""
    target, host, program = plan.target, ssh.host, ssh.program
    sent = plan.artifacts_measured()
    if not sent:
        raise EdgeconvError(f"none of these files runs on {target.name}"
                            f" (it runs {', '.join(target.runtimes)})")
    notes: list[str] = []
    steps = Steps(progress or Progress(), 4, f"connecting to {host.display}")
    with tempfile.TemporaryDirectory(prefix="edgeconv-ssh-") as scratch:
        staged = _stage(sent, target, Path(scratch), config)
        steps.step(f"connecting to {host.display}")
        remote_dir = _make_remote_dir(host)
        job = f"{remote_dir}/{staged.folder.name}"
        try:
            steps.step(f"copying {len(sent)} file(s) to {host.display}")
            size = sum(a.size_bytes for a in sent) + sum(
                f.stat().st_size for f in staged.data.values())
            _run(host, host.scp(staged.folder, remote_dir),
                 host.connect_timeout + _STEP_SLACK_S + size / 1e6, "copy to")  # >= 1 MB/s
            steps.step(f"benching on {host.display}")
            report = _remote_bench(host, program, job, staged, target, config,
                                   len(plan.measured()))
            outputs = _fetch_outputs(host, job, Path(scratch), len(plan.measured()), notes)
        finally:
            if not _remove_remote_dir(host, remote_dir):
                notes.append(f"could not remove {remote_dir} on {host.display}")
        rows = _map_rows(plan, report, job, staged, host)
        steps.step("running the same files here to compare outputs")
        if outputs is not None:
            add_parity(_compared(plan, outputs, staged, job), rows, config,
                       report.environment, Path(scratch))
        steps.progress.update(4, "done")
    environment = {**report.environment, "target": target.to_dict(),
                   "ssh": {"host": host.display, "from": platform.node()}}
    return (environment, rows,
            [_local_text(n, job, staged.names) for n in report.notes] + notes)


def _remote_edgeconv(target: Target, config: BenchConfig) -> list[str]:
    value = config.remote_edgeconv or target.extra.get("remote_edgeconv", "edgeconv")
    try:  # a command line ("python3 -m edgeconv") or its words (a TOML list)
        words = shlex.split(value) if isinstance(value, str) else value
    except ValueError as exc:
        raise EdgeconvError(f"remote_edgeconv {value!r}: {exc}") from None
    if not isinstance(words, list) or not words or not all(isinstance(w, str) and w
                                                             for w in words):
        raise EdgeconvError(f"remote_edgeconv must name the board's edgeconv command, e.g."
                            f" \"~/.venv/bin/edgeconv\"; got {value!r}")
    return words


@dataclass
class Staged:
    """The folder scp sends, every name in it ours: `N/model.SUFFIX` for a bare file,
    `N/fK.SUFFIX` and `N/manifest.json` for an export's files."""

    folder: Path
    names: dict[str, str]  # name in the folder -> the user's path it stands for (messages)
    labels: dict[tuple[Path, Path | None], str]  # artifact key -> how the board labels it
    runs: list[str]  # what the board's bench is given: each bare file and export folder
    # export folder -> its test split as sent (STAGED_DATA), for this side's parity runs
    data: dict[Path, Path] = field(default_factory=dict)


def _key(artifact: Artifact) -> tuple[Path, Path | None]:
    return artifact.path, artifact.manifest.directory if artifact.manifest else None


def _stage(sent: list[Artifact], target: Target, scratch: Path,
           config: BenchConfig | None = None) -> Staged:
    """The folder scp sends: each export's runnable files (the private copies that were
    hashed and checked) under names of ours with a manifest listing only them, each bare
    file, and the target's definition as it was read. No path of the user's reaches a
    command line or the remote shell, whatever the manifest says (an absolute path, `..`).
    With the export's test split prepared here (STAGED_DATA, named by the manifest's
    BENCH_DATA) when this machine has its dataset."""
    folder = scratch / "job"
    (folder / "targets").mkdir(parents=True)
    (folder / "targets" / f"{target.name}.toml").write_text(target.toml_text)
    staged = Staged(folder, {}, {}, [])
    exports: dict[Path, list[Artifact]] = {}
    for artifact in sent:
        if artifact.manifest is not None:
            exports.setdefault(artifact.manifest.directory, []).append(artifact)
        elif _key(artifact) not in staged.labels:
            name = f"{len(staged.names)}/model{FORMATS[artifact.format].suffix}"
            (folder / name).parent.mkdir()
            shutil.copyfile(artifact.loaded, folder / name)
            staged.names[name] = show_path(artifact.path)
            staged.labels[_key(artifact)] = name  # the board names it {job}/N/model...
            staged.runs.append(name)
    for directory, files in exports.items():
        number = str(len(staged.names))
        (folder / number).mkdir()
        staged.names[number] = show_path(directory)
        staged.runs.append(number)
        entries = []
        for k, artifact in enumerate(files):
            name = f"f{k}{FORMATS[artifact.format].suffix}"
            shutil.copyfile(artifact.loaded, folder / number / name)
            staged.names[f"{number}/{name}"] = show_path(artifact.path)
            staged.labels[_key(artifact)] = f"{number}/{name}"  # the board: folder/file
            entries.append({**_entry(artifact), "path": name})
        manifest = {**files[0].manifest.data, "artifacts": entries}
        manifest.pop(BENCH_DATA, None)  # only ever ours
        split = _stage_data(files[0], config, folder / number) if config else None
        if split is not None:
            manifest[BENCH_DATA] = split
            staged.data[directory] = folder / number / STAGED_DATA
        (folder / number / MANIFEST).write_text(json.dumps(manifest, indent=2))
    return staged


def _entry(artifact: Artifact) -> dict[str, Any]:
    """The manifest's entry for this artifact, as the manifest has it."""
    for entry in artifact.manifest.data.get("artifacts", []):
        if isinstance(entry, dict) and entry.get("path") == artifact.entry_path \
                and entry.get("sha256") == artifact.sha256:
            return entry
    raise EdgeconvError(f"{artifact.label}: not found in its manifest any more")


def _make_remote_dir(host: SshHost) -> str:
    done = _run(host, host.ssh(_MKTEMP), host.connect_timeout + _STEP_SLACK_S, "reach")
    remote_dir = last_line(done.stdout)
    if not _SAFE_REMOTE_DIR.fullmatch(remote_dir):
        raise EdgeconvError(f"{host.display}: mktemp gave {remote_dir!r}, not a plain"
                            " absolute path; set TMPDIR there to a simple folder")
    return remote_dir


def _remove_remote_dir(host: SshHost, remote_dir: str) -> bool:
    try:
        done = run_captured(host.ssh(remote_command(["rm", "-rf", "--", remote_dir])),
                            timeout=host.connect_timeout + _STEP_SLACK_S, keep=1 << 10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def _remote_bench(host: SshHost, program: list[str], job: str, staged: Staged,
                  target: Target, config: BenchConfig, rows: int) -> BenchReport:
    words = [*program, "bench", *(f"{job}/{name}" for name in staged.runs), "--target",
             target.name,
             "--targets-dir", f"{job}/targets", "--local", "--json",
             "--warmup", str(config.warmup), "--runs", str(config.runs),
             "--min-time", repr(config.min_time), "--timeout", repr(config.timeout)]
    if config.runtime:
        words += ["--runtime", config.runtime]
    if config.threads:
        words += ["--threads", ",".join(map(str, config.threads))]
    if config.data:
        words += ["--data", config.data]
    if config.eval_samples:
        words += ["--eval-samples", str(config.eval_samples)]
    words += ["--outputs-dir", f"{job}/{OUTPUTS}"]  # each row's raw outputs, for parity
    budget = host.connect_timeout + _BENCH_SLACK_S + rows * config.timeout
    done = _run(host, host.ssh(remote_command(words)), budget, "bench on",
                hint=f" (is edgeconv installed there? pip install 'edgeconv[litert]'; name it"
                     f" with --remote-edgeconv or remote_edgeconv in {target.name}'s file)")
    # The board's answer is untrusted input: bounded in size (run_captured, MAX_RECORD_BYTES
    # as a results.json) and in depth (parse_reply) before anything reads it.
    if done.cut:
        raise EdgeconvError(f"{host.display}: `{shlex.join(program)} bench` printed more than"
                            f" {MAX_RECORD_BYTES >> 20} MiB; not an edgeconv report")
    try:
        report = parse_reply(done.stdout, start=max(done.stdout.find("{"), 0),
                             max_bytes=MAX_RECORD_BYTES)
    except BadReply as exc:
        said = str(exc) if exc.shape else last_line(done.stdout or done.stderr)[:300]
        raise EdgeconvError(f"{host.display}: `{shlex.join(program)} bench` printed no"
                            f" usable JSON report: {said}") from None
    try:
        return results_from_dict(report, f"{host.display}'s answer")
    except EdgeconvError as exc:
        raise EdgeconvError(f"{exc} (install the same edgeconv there)") from None


def _run(host: SshHost, argv: list[str], timeout: float, what: str,
         hint: str = "") -> Captured:
    """One ssh/scp call, bounded in time and in what it prints (the end of its stdout, up to
    a results.json's bound); its failure as one line naming the host."""
    try:
        done = run_captured(argv, timeout=timeout, keep=MAX_RECORD_BYTES)
    except FileNotFoundError:
        raise EdgeconvError(f"the OpenSSH client `{argv[0]}` is not installed here"
                            " (apt install openssh-client)") from None
    except subprocess.TimeoutExpired:
        raise EdgeconvError(f"cannot {what} {host.display} over SSH: no answer within"
                            f" {timeout:.0f} s") from None
    if done.returncode == 255 or (argv[0] == "scp" and done.returncode != 0):
        raise EdgeconvError(f"cannot {what} {host.display} over SSH:"
                            f" {last_line(done.stderr) or f'{argv[0]} exited {done.returncode}'}")
    if done.returncode != 0:
        reason = last_line(done.stderr).removeprefix("error: ") or f"exit {done.returncode}"
        raise EdgeconvError(f"{host.display}: {reason}"
                            + (hint if done.returncode in (126, 127) else ""))
    return done


def _map_rows(plan: Plan, report: BenchReport, job: str, staged: Staged,
              host: SshHost) -> list[BenchRow]:
    """The plan's rows: each measured one as the board measured it (under the user's names,
    its sha256 checked against this side's), each `unsupported` one as planned."""
    measured = {(row.artifact, row.runtime, row.threads): row for row in report.results}
    rows: list[BenchRow] = []
    for planned in plan.rows:
        artifact = planned.artifact
        if not planned.measured:
            rows.append(planned.row(plan.target))
            continue
        label = staged.labels[_key(artifact)]
        if artifact.manifest is None:
            label = f"{job}/{label}"  # the board labels a bare file by its path there
        row = measured.get((label, planned.runtime, planned.threads))
        if row is None:
            if planned.optional:  # a reference the board could not run: its notes say why
                continue
            row = planned.row(plan.target)
            row.error = f"{host.display} measured no {planned.runtime} row for this file"
            rows.append(row)
            continue
        if row.sha256 != artifact.sha256:
            raise EdgeconvError(f"{artifact.label} arrived with sha256 {row.sha256[:12]}..."
                                f" instead of {artifact.sha256[:12]}...: copy again")
        row.artifact = artifact.label
        row.error = row.error and _local_text(row.error, job, staged.names)
        row.notes = [_local_text(n, job, staged.names) for n in row.notes]
        rows.append(row)
    return rows


def _local_text(text: str, job: str, names: dict[str, str]) -> str:
    """Paths on the board ({job}/0/...) in a note or an error back to the user's."""
    for name in sorted(names, key=len, reverse=True):  # 10/ before 1/
        text = text.replace(f"{job}/{name}", names[name])
    return text


# --- the test split sent, the outputs brought back, parity ---------------------------------


def _stage_data(artifact: Artifact, config: BenchConfig, folder: Path) -> dict[str, Any] | None:
    """The export's test split, prepared here as a local bench prepares it (its dataset or
    --data, --data-dir, the manifest's subset), saved as folder/STAGED_DATA; its BENCH_DATA
    entry. None when this machine cannot load the dataset: the board then tries itself."""
    import hashlib

    import numpy as np

    from edgeconv.bench.local import load_split

    try:
        prepared = load_split(dataset_spec(artifact.manifest, config.data, config.data_dir,
                                           config.eval_samples))
    except EdgeconvError:
        return None
    if prepared.test.x.nbytes + prepared.test.y.nbytes > MAX_DATA_BYTES:
        return None  # the board loads it itself
    file = folder / STAGED_DATA
    np.savez(file, x=prepared.test.x, y=prepared.test.y)
    data = file.read_bytes()
    return {"path": STAGED_DATA, "sha256": hashlib.sha256(data).hexdigest(),
            "size_bytes": len(data), "images": len(prepared.test.y)}


def _fetch_outputs(host: SshHost, job: str, scratch: Path, rows: int,
                   notes: list[str]) -> Path | None:
    """The board's saved outputs (its OUTPUTS folder) copied here, bounded in time; None,
    with a note, when they cannot be fetched (the rows stand, without parity)."""
    local = scratch / "fetched"
    try:
        _run(host, host.fetch(f"{job}/{OUTPUTS}", local),
             host.connect_timeout + _STEP_SLACK_S + rows * _FETCH_S_PER_ROW, "copy from")
    except EdgeconvError as exc:
        notes.append(f"no output parity: {exc}")
        return None
    return local


def _compared(plan: Plan, outputs: Path, staged: Staged, job: str
              ) -> list[tuple[Any, Path, Path | None]]:
    """For each measured row: the board's saved outputs and the test images it ran on."""
    compared = []
    for planned in plan.measured():
        artifact = planned.artifact
        label = staged.labels[_key(artifact)]
        if artifact.manifest is None:
            label = f"{job}/{label}"  # the board labels a bare file by its path there
        export = artifact.manifest.directory if artifact.manifest else None
        compared.append((planned, outputs / outputs_name(label, planned.runtime,
                                                         planned.threads),
                         staged.data.get(export)))
    return compared
