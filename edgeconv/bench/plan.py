"""What to measure: the artifacts behind the user's paths and the one plan of rows for a target.

The plan is made once, here: the ordered (artifact, runtime, threads) rows, a Keras float
reference before the files of its export, the `--runtime` filter applied, and an
`unsupported` row for each file no runtime of the target reads. A file's runtime is the
first of the target's runtimes that reads its format (`runtimes.runtime_for`); a runtime
whose registry entry takes `threads` gets a row per thread count, any other one row. Its
executors: `local.bench_here` measures it on this machine, `remote.bench_over_ssh` on a board
over SSH, and `firmware.bench_firmware` runs the rows an MCU target's core takes in emulated
firmware (edgeconv.bench.harness composes them). Everything here reads files and metadata
only (manifest.json, the registry): no runtime is imported, so planning never pays for
TensorFlow and never touches an untrusted model.

`collect` copies each file it finds into the bench's private scratch folder, hashing the
bytes it copies (edgeconv.bench.validate.copy_verified), and checks that copy's structure;
a bare ONNX file's external data files are checked, hashed and inlined into its copy
(edgeconv.onnx_external). The executors run and send only the copies. The rows keep the
user's names.

Also here, as data both sides of an SSH bench read: whether this machine is an emulated
board (`emulation`, its rows are then timed_on "emulated"), the test split an SSH bench
stages beside an export's manifest (`staged_split`, checked before use), and where a row's
raw outputs are saved for the parity check (`outputs_file`).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from edgeconv.bench.validate import check_model_file, copy_verified
from edgeconv.files import open_regular, read_regular, read_upto, show_path, walk_files
from edgeconv.errors import EdgeconvError
from edgeconv.formats import FORMATS, format_of
from edgeconv.manifest import MANIFEST, Manifest, load_manifest
from edgeconv.onnx_external import DataFile, inline_external_data
from edgeconv.records import BenchRow
from edgeconv.runtimes.registry import default_runtime, get_runtime, runtime_for
from edgeconv.schema import Int, ListOf, Num, Obj, RelPath, SchemaError, Spec, Str
from edgeconv.targets import MAX_THREADS, Target

# What a bench accepts (docs/bench.md); every caller of the library gets the same one line.
LIMITS: dict[str, Spec] = {
    "warmup": Int(0, 100_000),
    "runs": Int(1, 100_000),
    "min_time": Num(0, 3600),  # seconds
    "timeout": Num(1, 86_400),  # seconds per child process
    "threads": ListOf(Int(1, MAX_THREADS), min_len=1, max_len=64, unique=True),
    "eval_samples": Int(1, 1_000_000),  # test images, as export's --eval-samples
}
_NAME = Str(max_len=1000, allow_empty=False, pattern=r"[^\x00-\x1f\x7f]+",
            expected="a non-empty name on one line")


@dataclass(frozen=True)
class BenchConfig:
    paths: tuple[Path, ...] = ()
    target: str = "cpu"
    runtime: str | None = None
    threads: tuple[int, ...] | None = None  # None: the target's
    warmup: int = 10
    runs: int = 50
    min_time: float = 1.0  # seconds of timed runs, at least
    data: str | None = None
    data_dir: str | None = None
    timeout: float = 600.0  # per child process
    targets_dir: str | None = None
    host: str | None = None  # user@board[:port]: bench there over SSH (default: the target's)
    local: bool = False  # bench here even if the target names a host (what runs on the board)
    ssh_options: tuple[str, ...] = ()  # ssh_config options, Key=Value
    remote_edgeconv: str | None = None  # the board's edgeconv command (default: the target's)
    out: Path | None = None
    # Bench on the emulated board standing in for the target (edgeconv.board), over SSH.
    emulated: bool = False
    # Internal (the board's side of an SSH bench): each measured row's raw outputs on its
    # evaluation inputs are saved in this folder (outputs_file), for the parity check.
    outputs_dir: str | None = None
    # The TFLite Micro source tree (folder or .tgz) MCU firmware is built from (default:
    # EDGECONV_TFLM_TREE, then edgeconv.mcu's own defaults).
    tflm_tree: str | None = None
    # Build MCU firmware libraries from a named subset of the tree (edgeconv.mcu.subset):
    # the same firmware for the models the subset covers, a quicker first build (tests, CI)
    tflm_subset: str | None = None
    # --custom-objects: a Python file of the user's registering custom Keras layers, run in
    # the Keras reference row's child (edgeconv.bench.child.Job.custom_objects)
    custom_objects: str | None = None
    # --eval-samples: measure accuracy on this many test images (stratified, seeded: the
    # images export --eval-samples picks), for a long pass (TFLite Micro's reference kernels)
    eval_samples: int | None = None

    def __post_init__(self) -> None:
        """Numbers finite and within LIMITS, names on one line: one EdgeconvError line."""
        try:
            for name, spec in LIMITS.items():
                value = getattr(self, name)
                if value is not None:
                    spec.check(list(value) if name == "threads" else value, f"--{_dash(name)}")
            for name in ("target", "runtime", "data", "host", "remote_edgeconv"):
                value = getattr(self, name)
                if value is not None:
                    _NAME.check(value, f"--{_dash(name)}")
            for option in self.ssh_options:
                _NAME.check(option, "--ssh-option")
        except SchemaError as exc:
            raise EdgeconvError(str(exc)) from None
        for path in (*self.paths, *(p for p in (self.out, self.data_dir, self.targets_dir,
                                               self.outputs_dir, self.tflm_tree,
                                               self.custom_objects)
                                     if p is not None)):
            if "\0" in os.fspath(path):
                raise EdgeconvError(f"{show_path(path)}: a path with a NUL character")

    def record(self) -> dict[str, Any]:
        """What results.json's `config` keeps: how the rows were measured."""
        return {"runtime": self.runtime, "threads": self.threads, "warmup": self.warmup,
                "runs": self.runs, "min_time": self.min_time, "data": self.data,
                "timeout": self.timeout, "eval_samples": self.eval_samples}


def _dash(name: str) -> str:
    return name.replace("_", "-")


@dataclass(frozen=True)
class Artifact:
    """One model file to measure, with what its manifest (if any) says about it.

    `path` is the user's file, which names the row; `copy` the private copy of the bytes
    that were hashed and checked, which is what a runtime reads (None: nothing copied, a
    row that is only planned)."""

    path: Path
    format: str  # a key of edgeconv.formats.FORMATS
    precision: str | None  # None for a bare file: the file does not say
    sha256: str
    size_bytes: int
    manifest: Manifest | None = None
    copy: Path | None = None
    entry_path: str | None = None  # the manifest's `path` of this file
    # A bare ONNX file's external data files, inlined into `copy` (edgeconv.onnx_external):
    # sha256 stays the user's model file's, size_bytes is the copy's (what is measured, sent)
    external_data: tuple[DataFile, ...] = ()

    @property
    def label(self) -> str:
        if self.manifest is None:
            return show_path(self.path)
        return show_path(f"{self.manifest.directory.name}/{self.path.name}")

    @property
    def loaded(self) -> Path:
        """What a runtime opens: the private copy."""
        if self.copy is None:
            raise EdgeconvError(f"{self.label} was not copied for measuring")
        return self.copy

    @property
    def hwc(self) -> list[int] | None:
        """The input size the model was exported for (fills free dimensions)."""
        return None if self.manifest is None else self.manifest.input.hwc

    @property
    def is_reference(self) -> bool:
        """The float model an export starts from (.keras), which its files are compared with."""
        return not FORMATS[self.format].exported


def collect(paths: list[Path], scratch: Path, runs_dir: Path = Path("runs")
            ) -> list[Artifact]:
    """Artifacts of run directories and bare files, in the given order, each copied into
    `scratch` (a private folder) as the bytes that were hashed (against the manifest's
    sha256 for an export) and checked whole before any runtime reads them. A folder without
    manifest.json stands for the .tflite / .onnx files in it, sorted by name, each a bare
    file.

    No path: every export under `runs_dir`.
    """
    if not paths:
        paths = sorted(p.parent for p in (walk_files(runs_dir) if runs_dir.is_dir() else ())
                       if p.name == MANIFEST)  # walk_files: no recursion, one line if deep
        if not paths:
            raise EdgeconvError(f"no exports under {runs_dir}/; run `edgeconv export NAME`"
                                " first, or give a run directory or a model file")
    scratch.mkdir(mode=0o700, parents=True, exist_ok=True)
    found: list[Artifact] = []
    paths = [file for path in paths for file in (
        _bare_files(path) if path.is_dir() and not (path / MANIFEST).exists() else [path])]
    for path in paths:
        if path.is_dir() or path.name == MANIFEST:
            manifest = load_manifest(path)
            for entry in manifest.artifacts:
                # The copy is hashed as it is made: the sha256 is checked once, on the
                # bytes the runtimes will read.
                file = manifest.located_path(entry)
                copy = scratch / f"{len(found)}{FORMATS[entry.format].suffix}"
                _, size = copy_verified(file, copy, entry.sha256)
                check_model_file(copy, show_path(file))
                if entry.format == "onnx":  # an export's files are self-contained
                    inline_external_data(copy, file.parent, show_path(file), allowed=False)
                found.append(Artifact(file, entry.format, entry.precision, entry.sha256,
                                      size, manifest, copy, entry.path))
        else:
            fmt = _format_of(path)
            copy = scratch / f"{len(found)}{fmt.suffix}"
            sha256, size = copy_verified(path, copy)
            check_model_file(copy, show_path(path))
            data = ()
            if fmt.name == "onnx":  # weights in files beside it: inlined into the copy
                data = inline_external_data(copy, path.parent, show_path(path))
                if data:
                    check_model_file(copy, show_path(path))
                    size = copy.stat().st_size
            found.append(Artifact(path, fmt.name, None, sha256, size, copy=copy,
                                  external_data=data))
    return found


def _bare_files(folder: Path) -> list[Path]:
    """The model files (.tflite, .onnx) directly in a folder that is no export, by name: one
    line when it holds none."""
    suffixes = {f.suffix for f in FORMATS.values() if f.exported}
    try:
        files = sorted(p for p in folder.iterdir() if p.suffix in suffixes and p.is_file())
    except OSError as exc:
        raise EdgeconvError(f"cannot list folder {show_path(folder)} ({exc.strerror})"
                            ) from None
    if not files:
        raise EdgeconvError(f"{show_path(folder)} has no {MANIFEST} and no"
                            f" {' or '.join(sorted(suffixes))} file: give a run directory"
                            " from `edgeconv export`, a folder of model files, or the files")
    return files


def _format_of(path: Path):
    try:
        return format_of(path)
    except EdgeconvError:  # its message holds the path as given, which may break the line
        raise EdgeconvError(f"{show_path(path)} is not a model file (expected"
                            f" {', '.join(f.suffix for f in FORMATS.values())} or a run"
                            " directory with manifest.json)") from None


@dataclass(frozen=True)
class PlannedRow:
    """One row of the plan: an artifact in a runtime at a thread count, or why it cannot run."""

    artifact: Artifact
    runtime: str
    threads: int | None  # None: the runtime takes no thread count
    unsupported: str | None = None  # set: no runtime of the target reads this file
    # A Keras reference the user did not ask for: where its runtime is not installed, the
    # executor leaves it out with a note instead of failing the bench.
    optional: bool = False

    @property
    def measured(self) -> bool:
        return self.unsupported is None

    @property
    def key(self) -> tuple[str, str, int | None]:
        return self.artifact.label, self.runtime, self.threads

    def describe(self) -> str:
        return f"{self.artifact.label} {self.runtime}" + (f" x{self.threads}"
                                                           if self.threads else "")

    def row(self, target: Target) -> BenchRow:
        """The row before measuring: final for an `unsupported` one."""
        a = self.artifact
        return BenchRow(artifact=a.label, sha256=a.sha256, format=a.format,
                        precision=a.precision, runtime=self.runtime, target=target.name,
                        threads=self.threads, status="unsupported" if self.unsupported
                        else "failed", error=self.unsupported, size_bytes=a.size_bytes,
                        timed_on=timed_on(target))


@dataclass
class Plan:
    target: Target
    rows: list[PlannedRow]
    notes: list[str] = field(default_factory=list)

    def measured(self) -> list[PlannedRow]:
        return [r for r in self.rows if r.measured]

    def artifacts_measured(self) -> list[Artifact]:
        """The files some row runs, each once, in plan order: what an executor needs."""
        seen: dict[tuple[Path, Path | None], Artifact] = {}
        for planned in self.measured():
            artifact = planned.artifact  # a file named bare and in its export: both
            export = artifact.manifest.directory if artifact.manifest else None
            seen.setdefault((artifact.path, export), artifact)
        return list(seen.values())

    def drop(self, planned: PlannedRow, note: str) -> None:
        self.rows.remove(planned)
        self.notes.append(note)


def name_the_users_file(row: BenchRow, artifact: Artifact) -> None:
    """A row measured on the private copy: its error and notes name the user's file again."""
    if artifact.copy is None:
        return
    copy, shown = str(artifact.copy), show_path(artifact.path)
    if row.error:
        row.error = row.error.replace(copy, shown)
    row.notes = [note.replace(copy, shown) for note in row.notes]
    row.caveats = [replace(note, text=note.text.replace(copy, shown)) for note in row.caveats]


def make_plan(artifacts: list[Artifact], target: Target, config: BenchConfig) -> Plan:
    """The rows in measuring order: a Keras reference before the files of its export, so
    that they can be compared with it; `--runtime` keeps only that runtime's rows."""
    threads = config.threads or target.threads
    rows: list[PlannedRow] = []
    for artifact in sorted(artifacts, key=lambda a: not a.is_reference):
        runtime = runtime_for(artifact.format, target.runtimes)
        if runtime is None:  # the row names the runtime the file would open in elsewhere
            shown = default_runtime(artifact.format) or artifact.format
            if config.runtime in (None, shown):
                rows.append(PlannedRow(
                    artifact, shown, None, unsupported=f"{artifact.format} files do not run on"
                    f" {target.name} (it runs {', '.join(target.runtimes)})"))
            continue
        if config.runtime not in (None, runtime):
            continue
        optional = artifact.is_reference and artifact.manifest is not None \
            and config.runtime is None
        counts = threads if get_runtime(runtime).threaded else (None,)
        rows.extend(PlannedRow(artifact, runtime, count, optional=optional) for count in counts)
    return Plan(target, rows, notes=_kernel_notes(rows, target))


def _kernel_notes(rows: list[PlannedRow], target: Target) -> list[str]:
    """One line per operator a file would fail to load or run on a slow kernel in its row's
    runtime (edgeconv.kernels), once per file and runtime."""
    from edgeconv.kernels import runtime_notes

    cmsis_nn = "cmsis-nn" in (target.kernels or ("cmsis-nn",))
    notes: list[str] = []
    for label, copy, fmt, runtime in dict.fromkeys(
            (r.artifact.label, r.artifact.copy, r.artifact.format, r.runtime) for r in rows
            if r.measured and r.artifact.copy is not None):
        notes += [f"{label}: {runtime}: {note}"
                  for note in runtime_notes(copy, fmt, runtime, cmsis_nn=cmsis_nn)]
    return notes


def dataset_spec(manifest: Manifest, data: str | None, data_dir: str | None,
                 eval_samples: int | None = None) -> dict[str, Any]:
    """How to load the labelled test split for this export (its dataset unless --data), cut
    to `eval_samples` images (bench --eval-samples) when fewer."""
    # The images the export measured on (a subset for untrained weights or --eval-samples),
    # unless another dataset is asked for.
    return {"name": data or manifest.dataset.name, "data_dir": data_dir,
            "seed": manifest.dataset.seed, "preprocessing": manifest.input.preprocessing,
            "test_samples": manifest.dataset.test_samples if data is None else None,
            # a user model's export: where its images were read (edgeconv.data.user)
            "user": manifest.dataset.user if data is None else None,
            "eval_samples": eval_samples}


# --- where rows are timed: an emulated board says so ---------------------------------------

# Written by `edgeconv board create` in an emulated board's root (edgeconv.board.root): the
# board, its CPU, qemu's CPU model. A bench that finds it marks its rows and environment.
EMULATION_MARKER = Path("/etc/edgeconv/emulated.json")
_MARKER = Obj({"board": Str(max_len=100), "target": Str(max_len=100), "cpu": Str(max_len=100),
               "qemu_cpu": Str(max_len=100), "emulator": Str(max_len=300)},
              required=("cpu",))


@functools.lru_cache(maxsize=1)
def emulation() -> dict[str, Any] | None:
    """What this machine's EMULATION_MARKER says when it is an emulated board, else None
    (no marker; one that cannot be read or does not pass its schema counts as none)."""
    try:
        data = json.loads(read_regular(EMULATION_MARKER, 64 << 10, what="marker"))
        _MARKER.check(data, str(EMULATION_MARKER))
    except (EdgeconvError, ValueError):  # SchemaError and JSONDecodeError are ValueErrors
        return None
    return data


def timed_on(target: Target) -> str:
    """Where a row's latency is timed: the target kind's, unless this is an emulated board."""
    return "emulated" if emulation() else target.kind_info.timed_on


# --- the SSH path's staged test split and saved outputs -------------------------------------

# An export's manifest as the SSH path stages it may name its prepared test split (made on
# the machine that sends the job, which has the dataset): {"path", "sha256", "size_bytes",
# "images"}. A board then needs no dataset package (scikit-learn) to measure accuracy.
BENCH_DATA = "bench_data"
MAX_DATA_BYTES = 1 << 30  # a staged test split: x float32 + y int64 (.npz)
_BENCH_DATA = Obj({"path": RelPath(), "sha256": Str(pattern="[0-9a-f]{64}"),
                   "size_bytes": Int(1, MAX_DATA_BYTES), "images": Int(1, 1 << 40)},
                  required=("path", "sha256"))


def staged_split(manifest: Manifest) -> Path | None:
    """The test split the manifest's BENCH_DATA names (None: it names none), checked: a
    regular file in the export's folder of at most MAX_DATA_BYTES with the listed sha256,
    a .npz holding x (float32, N images of the manifest's input shape) and y (int64, N
    labels), read without pickles. Anything else is one EdgeconvError line."""
    import io

    import numpy as np

    given = manifest.data.get(BENCH_DATA)
    if given is None:
        return None
    where = f"{manifest.directory / MANIFEST}: {BENCH_DATA}"
    try:
        _BENCH_DATA.check(given, where)
    except SchemaError as exc:
        raise EdgeconvError(str(exc)) from None
    path = manifest.directory / given["path"]
    if os.path.dirname(os.path.realpath(path)) != os.path.realpath(manifest.directory):
        raise EdgeconvError(f"{where}: {given['path']!r} is not a file beside the manifest")
    with open_regular(path, MAX_DATA_BYTES, what="test split", allow_empty=False) as (fh, _):
        data = read_upto(fh, MAX_DATA_BYTES)
    if hashlib.sha256(data).hexdigest() != given["sha256"]:
        raise EdgeconvError(f"{show_path(path)}: sha256 does not match {where}; copy again")
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            x, y = npz["x"], npz["y"]
    except (KeyError, ValueError, OSError, EOFError) as exc:
        raise EdgeconvError(f"{show_path(path)}: not a test split (.npz with x and y):"
                            f" {' '.join(str(exc).split())[:200]}") from None
    shape = (manifest.input.preprocessing or {}).get("input_shape")
    if shape and (manifest.input.preprocessing or {}).get("layout") == "NCHW":
        shape = [shape[2], shape[0], shape[1]]  # a user's NCHW model: C, H, W
    if x.dtype != np.float32 or x.ndim != 4 or (shape and list(x.shape[1:]) != list(shape)) \
            or y.dtype != np.int64 or y.shape != x.shape[:1] or not len(y):
        raise EdgeconvError(f"{show_path(path)}: a test split is x float32 (N, H, W, C) of the"
                            f" export's input {shape} and y int64 (N,); got x {x.dtype}"
                            f" {x.shape}, y {y.dtype} {y.shape}")
    return path


def outputs_name(label: str, runtime: str, threads: int | None) -> str:
    """The file a row's saved outputs go to: named by the row's key, so that the side that
    sent the job finds it from its own plan (the board's label of the file)."""
    key = json.dumps([label, runtime, threads])
    return f"{hashlib.sha256(key.encode()).hexdigest()[:24]}.npz"


def outputs_file(config: BenchConfig, planned: PlannedRow) -> str | None:
    """Where the child saves this row's raw outputs (config.outputs_dir), or None."""
    if config.outputs_dir is None:
        return None
    a = planned.artifact
    return os.path.join(config.outputs_dir, outputs_name(a.label, planned.runtime,
                                                         planned.threads))
