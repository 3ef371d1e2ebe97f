"""Build libtflm.a for one core and kernel set, once, and cache it.

The recipe (flags, which files) is the one CORTEX_M-style prototypes calibrated against
published figures: kernels (TFLM's and CMSIS-NN's) at -O2, the rest at -Os, sections per
function so the firmware link drops what a model does not use. cortex_m_generic/micro_time.cc
is left out: its DWT cycle counter is not emulated, and the firmware supplies
GetCurrentTimeTicks() from the emulated timer instead.

Cache key: (core, kernels, tree content hash, compiler version, flags, recipe). Compiles run
os.cpu_count() at a time, each file reported through Progress (and to any process waiting
for this build, edgeconv._cache); each compile and the archive step has a time limit.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from edgeconv._cache import TellWaiters
from edgeconv.errors import EdgeconvError
from edgeconv.mcu import cache
from edgeconv.mcu.cores import CORES, Core
from edgeconv.mcu.sources import SourceTree
from edgeconv.mcu.toolchain import Toolchain, find_toolchain
from edgeconv.progress import Progress

RECIPE = 2  # bump when the file list or the flags below change meaning
LIB_NAME = "libtflm.a"
STAMP = "build.json"

COMMON = ("-DTF_LITE_STATIC_MEMORY", "-DNDEBUG", "-ffunction-sections", "-fdata-sections",
          "-fno-common")
CXX_ONLY = ("-std=c++17", "-fno-rtti", "-fno-exceptions", "-fno-threadsafe-statics",
            "-fno-unwind-tables", "-fno-use-cxa-atexit")
C_ONLY = ("-std=c11",)
KERNEL_OPT, OTHER_OPT = "-O2", "-Os"
LEFT_OUT = ("tensorflow/lite/micro/cortex_m_generic/micro_time.cc",)
# The longest file takes ~20 s on a loaded 2-core machine; a compile past this is stuck.
COMPILE_TIMEOUT_S = 600
ARCHIVE_TIMEOUT_S = 300  # ar over ~900 objects: seconds

INCLUDES = ("", "third_party/flatbuffers/include", "third_party/gemmlowp", "third_party/ruy",
            "third_party/kissfft", "third_party/cmsis/CMSIS/Core/Include",
            "third_party/cmsis_nn", "third_party/cmsis_nn/Include")


@dataclass(frozen=True)
class Library:
    path: Path            # libtflm.a
    key: str
    core: str
    kernels: str
    tree: SourceTree
    compiler: str
    build_seconds: float  # how long the cached build took (0 is never written)
    include_flags: tuple[str, ...]
    defines: tuple[str, ...]
    built_now: bool = False  # False: taken from the cache


def defines(kernels: str) -> tuple[str, ...]:
    return COMMON + (("-DCMSIS_NN",) if kernels == "cmsis-nn" else ())


def prefix_map(tree: SourceTree) -> str:
    """__FILE__ (in TFLM's error strings, linked into flash) relative to the tree, so flash
    does not depend on where the cache is, and matches a board project's build."""
    return f"-ffile-prefix-map={tree.root}/="


def include_flags(tree: SourceTree) -> tuple[str, ...]:
    return tuple(f"-I{tree.root / sub}" if sub else f"-I{tree.root}" for sub in INCLUDES
                 if (tree.root / sub).is_dir())


def sources(tree: SourceTree) -> list[str]:
    """Relative paths of the files compiled into the library."""
    root = tree.root
    found = [p.relative_to(root).as_posix() for p in root.rglob("*.cc")]
    # kissfft's .c files are #included by signal/src/kiss_fft_wrappers, once per type.
    found += [p.relative_to(root).as_posix() for p in (root / "third_party" / "cmsis_nn"
                                                        / "Source").rglob("*.c")
              if not p.name.endswith(("_f16.c", "_f32.c"))]
    return sorted(f for f in found if f not in LEFT_OUT)


def _is_kernel(rel: str) -> bool:
    return "/kernels/" in rel or rel.startswith("third_party/cmsis_nn/")


def library_key(core: Core, tree: SourceTree, tools: Toolchain,
                only: tuple[str, ...] | None = None) -> str:
    recipe = {"recipe": RECIPE, "core": core.name, "cflags": core.cflags,
              "kernels": tree.kernels, "tree": tree.content_hash, "compiler": tools.version,
              "defines": defines(tree.kernels), "cxx": CXX_ONLY, "c": C_ONLY,
              "opt": [KERNEL_OPT, OTHER_OPT], "left_out": LEFT_OUT}
    if only is not None:  # a subset library (edgeconv.mcu.subset): its own entry
        recipe["only"] = sorted(only)
    blob = json.dumps(recipe, sort_keys=True).encode()
    return f"{core.name}-{tree.kernels}-{hashlib.sha256(blob).hexdigest()[:16]}"


def build_library(core_name: str, tree: SourceTree, progress: Progress | None = None,
                  jobs: int | None = None, only: tuple[str, ...] | None = None) -> Library:
    """libtflm.a of every source of `tree` for the core, or of the files in `only` (a
    subset, edgeconv.mcu.subset: quicker to build, enough for the models it was made for)."""
    core = CORES[core_name]
    tools = find_toolchain()
    key = library_key(core, tree, tools, only)
    progress = TellWaiters(progress or Progress())  # what a process waiting for us shows
    incs = include_flags(tree)
    built: list[bool] = []

    def build(tmp: Path) -> None:
        built.append(True)
        files = sources(tree)
        if only is not None:
            missing = sorted(set(only) - set(files))
            if missing:
                raise EdgeconvError(f"the subset names {len(missing)} file(s) the"
                                    f" {tree.kernels} tree lacks, e.g. {missing[0]}")
            files = [f for f in files if f in set(only)]
        started = time.monotonic()
        _compile_all(files, tree, core, tools, incs, tmp, progress, jobs or os.cpu_count() or 1)
        objects = sorted(str(p) for p in (tmp / "obj").iterdir())
        _run([str(tools.ar), "rcs", str(tmp / LIB_NAME), *objects], "archiving libtflm.a",
             ARCHIVE_TIMEOUT_S)
        for folder in ("obj", "log"):  # the archive holds the objects: keep the entry small
            shutil.rmtree(tmp / folder)
        stamp = {"key": key, "core": core.name, "kernels": tree.kernels,
                 "tree": tree.label, "tree_origin": tree.origin, "compiler": tools.version,
                 "files": len(files), "subset": only is not None,
                 "jobs": jobs or os.cpu_count(),
                 "build_seconds": round(time.monotonic() - started, 1)}
        (tmp / STAMP).write_text(json.dumps(stamp, indent=2) + "\n")  # last: marks complete

    folder = cache.entry("lib", key, build, _complete, progress=progress,
                         what=f"TFLite Micro library ({tree.kernels}, {core.name}"
                              f"{', subset' if only is not None else ''})")
    stamp = json.loads((folder / STAMP).read_text())
    return Library(folder / LIB_NAME, key, core.name, tree.kernels, tree, tools.version,
                   float(stamp.get("build_seconds", 0.0)), incs, defines(tree.kernels),
                   built_now=bool(built))


def _complete(folder: Path) -> bool:
    return (folder / STAMP).is_file() and (folder / LIB_NAME).is_file()


def compile_command(rel: str, tree: SourceTree, core: Core, tools: Toolchain,
                    incs: tuple[str, ...], obj: Path) -> list[str]:
    is_c = rel.endswith(".c")
    return [str(tools.gcc if is_c else tools.gxx), *core.cflags,
            KERNEL_OPT if _is_kernel(rel) else OTHER_OPT, *defines(tree.kernels), prefix_map(tree),
            *(C_ONLY if is_c else CXX_ONLY), *incs, "-c", str(tree.root / rel), "-o", str(obj)]


def _compile_all(files: list[str], tree: SourceTree, core: Core, tools: Toolchain,
                 incs: tuple[str, ...], tmp: Path, progress: Progress, jobs: int) -> None:
    (tmp / "obj").mkdir()
    (tmp / "log").mkdir()
    total = len(files)
    progress.start(total, f"building TFLite Micro ({tree.kernels}) for {core.name}")
    pending = list(enumerate(files))
    running: dict[subprocess.Popen[bytes], tuple[str, Path, float]] = {}
    done = 0
    try:
        while pending or running:
            while pending and len(running) < jobs:
                i, rel = pending.pop(0)
                obj = tmp / "obj" / f"{i:04d}_{Path(rel).stem}.o"
                log = tmp / "log" / f"{i:04d}.txt"
                with open(log, "wb") as err:
                    proc = subprocess.Popen(compile_command(rel, tree, core, tools, incs, obj),
                                            stdout=subprocess.DEVNULL, stderr=err)
                running[proc] = (rel, log, time.monotonic())
            finished = [p for p in running if p.poll() is not None]
            for proc, (rel, _, began) in running.items():
                if proc not in finished and time.monotonic() - began > COMPILE_TIMEOUT_S:
                    raise EdgeconvError(f"compiling {rel} for {core.name} timed out after "
                                        f"{COMPILE_TIMEOUT_S} s")  # the finally kills it
            if not finished:
                time.sleep(0.02)
                continue
            for proc in finished:
                rel, log, _ = running.pop(proc)
                if proc.returncode != 0:
                    first = next((ln for ln in log.read_text(errors="replace").splitlines()
                                  if "error" in ln), f"exit {proc.returncode}")
                    raise EdgeconvError(f"compiling {rel} for {core.name} failed: {first.strip()}")
                done += 1
                progress.update(done, f"{done} of {total} files compiled ({Path(rel).name})")
    finally:
        for proc in running:  # interrupted or failed: stop the rest, leave nothing running
            proc.kill()
            proc.wait()
        progress.stop()


def _run(cmd: list[str], what: str, timeout: float) -> None:
    try:
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise EdgeconvError(f"{what} timed out after {timeout:g} s") from None
    except OSError as exc:
        raise EdgeconvError(f"{what}: cannot run {cmd[0]}: {exc.strerror or exc}") from None
    if result.returncode != 0:
        raise EdgeconvError(f"{what} failed: {' '.join(result.stderr.split())[:300]}")
