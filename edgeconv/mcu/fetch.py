"""`edgeconv mcu fetch`: the pinned TFLite Micro source trees, made once and cached where
the MCU path (bench, `python -m edgeconv.mcu`) finds them without a flag.

    fetch(["cmsis-nn", "reference"], source=None, progress=...) -> [Fetched, ...]

From git (the upstream repository by default; any git URL, file:// too, or a local TFLM
checkout): clone, check out the pinned commit (refused when it is absent), create the empty
downloads/pigweed, and run TFLM's own create_tflm_tree.py with each kernel set's makefile
options (docs/mcu.md; its Makefile downloads the third-party commits it pins: the network).
Offline: a tree .tgz, a tree folder, or a folder holding tflm-tree-<kernels>(.tgz), copied
in as given. Either way the tree's content hash must be the pinned one for its kernel set
(sources.PINNED_TREE_HASHES), or it is refused and nothing is cached.

In the MCU cache (edgeconv.mcu.cache), each through the one build protocol (edgeconv._cache:
partial folder, lock, holder record, rename into place), so an interrupted fetch (Ctrl-C,
kill -9) leaves nothing that looks complete and the next fetch clears what it left:

    trees/KERNELS-HASH/tree/          the verified tree (what sources.fetched_tree finds)
    trees/KERNELS-HASH/fetched.json   where it came from: source, commit, pinned commits
    src/tflite-micro-COMMIT/          the checkout, kept until every tree asked for is made
                                      (a fetch whose download failed resumes from it)
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import tarfile
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from edgeconv import _cache
from edgeconv._child import python_bin_dir, python_script_command
from edgeconv.errors import EdgeconvError
from edgeconv.files import walk_files
from edgeconv.mcu import cache
from edgeconv.mcu.cores import KERNEL_SETS
from edgeconv.mcu.sources import (
    FETCHED_RECORD,
    MAX_TGZ_BYTES,
    MAX_TREE_BYTES,
    MAX_TREE_FILES,
    PINNED,
    PINNED_TREE_HASHES,
    PINNED_TREES,
    _bounded_filter,
    _content_hash,
    _in_folder_of_trees,
    _tree_root,
    fetched_entry,
)
from edgeconv.progress import Progress

UPSTREAM = "https://github.com/tensorflow/tflite-micro"
CREATE_TREE = "tensorflow/lite/micro/tools/project_generation/create_tflm_tree.py"
DOWNLOADS = "tensorflow/lite/micro/tools/make/downloads"
# docs/mcu.md's recipe, word for word (without TARGET_TOOLCHAIN_ROOT the Makefile downloads
# its own GCC)
MAKEFILE_OPTIONS = {
    "cmsis-nn": "TARGET=cortex_m_generic TARGET_ARCH=cortex-m7 OPTIMIZED_KERNEL_DIR=cmsis_nn"
                " TARGET_TOOLCHAIN_ROOT=/usr/bin/",
    "reference": "TARGET=cortex_m_generic TARGET_ARCH=cortex-m7"
                 " TARGET_TOOLCHAIN_ROOT=/usr/bin/",
}
CLONE_TIMEOUT_S = 30 * 60.0
CREATE_TIMEOUT_S = 30 * 60.0  # per kernel set: the Makefile's downloads are most of it
_URL = re.compile(r"^([a-z][a-z0-9+.-]*)://", re.IGNORECASE)
_SCP = re.compile(r"^[\w.-]+@[\w.-]+:")  # git@github.com:tensorflow/tflite-micro
_SCHEMES = ("https", "http", "ssh", "git", "file")
_THIRD_PARTY = ", ".join(k for k in PINNED if k != "tflite-micro")
_OFFLINE = ("offline, give --source a tree .tgz or folder, or a folder holding"
            " tflm-tree-cmsis-nn.tgz and tflm-tree-reference.tgz (docs/mcu.md)")
_LOG_KEEP_BYTES = 16 << 20  # of a create_tflm_tree.py run's output, in its log


@dataclass(frozen=True)
class Fetched:
    """One cached tree: what `edgeconv mcu fetch` reports."""

    kernels: str
    tree: Path                  # the cached tree folder (tensorflow/, third_party/ in it)
    content_hash: str
    label: str                  # what results name it by (sources.SourceTree.label)
    source: str                 # the git URL or the path it came from
    commit: str | None          # the TFLM commit checked out (None: a tree given offline)
    fetched_now: bool           # False: it was in the cache already
    offline: bool               # made from a tree the user gave, nothing downloaded

    def to_dict(self) -> dict[str, object]:
        return {**asdict(self), "tree": str(self.tree)}


def parse_kernels(text: str | None) -> list[str] | None:
    """`--kernels cmsis-nn,reference` as a list (None when not given); one line for a
    name that is not a kernel set."""
    if text is None:
        return None
    names = list(dict.fromkeys(n.strip() for n in text.split(",") if n.strip()))
    unknown = [n for n in names if n not in KERNEL_SETS]
    if unknown or not names:
        raise EdgeconvError(f"--kernels {text!r}: choose from {', '.join(KERNEL_SETS)}"
                            " (comma-separated)")
    return names


def fetch(kernels: Sequence[str] | None = None, source: str | os.PathLike[str] | None = None,
          *, commit: str = PINNED["tflite-micro"], expected: dict[str, str] | None = None,
          progress: Progress | None = None,
          timeout: float = CREATE_TIMEOUT_S) -> list[Fetched]:
    """The trees of `kernels` (default: both from git, what the source holds offline),
    made from `source` (default: upstream) and cached. `commit` and `expected` (content
    hash per kernel set) are the pinned ones; tests pass others for a repository of their
    own."""
    expected = dict(PINNED_TREE_HASHES if expected is None else expected)
    progress = _cache.TellWaiters(progress)
    asked = list(kernels) if kernels else None
    for name in asked or ():
        if name not in KERNEL_SETS:
            raise EdgeconvError(f"unknown kernel set '{name}'; choose one of "
                                f"{', '.join(KERNEL_SETS)}")
    text = str(source) if source is not None else UPSTREAM
    if source is None or _is_git_url(text):
        return _from_git(text, asked or list(KERNEL_SETS), commit, expected, progress,
                         timeout, local=None)
    path = Path(text).expanduser()
    if not path.exists():
        raise EdgeconvError(f"--source {text} does not exist; give a git URL, a TFLite Micro"
                            " checkout, a tree folder or a tree .tgz")
    if path.is_dir() and (path / CREATE_TREE).is_file():
        if not (path / ".git").exists():
            raise EdgeconvError(f"{path} is a TFLite Micro checkout without its git history"
                                " (no .git): its commit cannot be checked; give a git clone")
        return _from_git(str(path.resolve()), asked or list(KERNEL_SETS), commit, expected,
                         progress, timeout, local=path)
    return [_from_tree(k, given, expected[k], progress)
            for k, given in _offline_trees(path, asked)]


def _is_git_url(text: str) -> bool:
    match = _URL.match(text)
    if match and match.group(1).lower() not in _SCHEMES:
        raise EdgeconvError(f"--source {text}: a git URL must be one of "
                            f"{', '.join(s + '://' for s in _SCHEMES)}")
    return bool(match or _SCP.match(text))


# --- verify and record ---------------------------------------------------------------------


def _verify(root: Path, kernels: str, expected: str, origin: str) -> str:
    """`root`'s content hash, when it holds `kernels` and is the expected tree; else one
    line, and the caller's partial folder (all of it) goes."""
    has_cmsis_nn = (root / "third_party" / "cmsis_nn").is_dir()
    if has_cmsis_nn != (kernels == "cmsis-nn"):
        what = "the CMSIS-NN kernels" if has_cmsis_nn else "the reference kernels only"
        raise EdgeconvError(f"the tree from {origin} holds {what}, not kernel set '{kernels}'")
    got = _content_hash(root)
    if got != expected:
        raise EdgeconvError(f"the {kernels} tree from {origin} has content hash sha256:"
                            f"{got[:12]}, not the pinned tree's sha256:{expected[:12]}: refused,"
                            " nothing cached (bench --tflm-tree still takes a tree of your own)")
    return got


def _record(tmp: Path, kernels: str, content_hash: str, source: str,
            commit: str | None) -> None:
    """fetched.json, written last: the entry is renamed into place only after it."""
    record = {"kernels": kernels, "content_hash": content_hash,
              "label": PINNED_TREES.get(content_hash, "not a pinned tree"),
              "source": source, "commit": commit,
              # a tree with a pinned content hash is what the pinned commits make
              "pinned": dict(PINNED) if content_hash in PINNED_TREES else {},
              "fetched_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    (tmp / FETCHED_RECORD).write_text(json.dumps(record, indent=1) + "\n")


def _complete(entry: Path) -> bool:
    """A fetched entry is complete once its record is written, and still what it was when
    its tree still has its hash (one edited since is fetched again)."""
    if not ((entry / FETCHED_RECORD).is_file() and (entry / "tree").is_dir()):
        return False
    return _content_hash(entry / "tree") == entry.name.rsplit("-", 1)[-1]


def _fetched(kernels: str, entry: Path, source: str, commit: str | None, now: bool,
             offline: bool) -> Fetched:
    content_hash = entry.name.removeprefix(f"{kernels}-")
    label = PINNED_TREES.get(content_hash, "not a pinned tree")
    return Fetched(kernels, entry / "tree", content_hash, label, source, commit, now, offline)


# --- offline: a tree the user gave ----------------------------------------------------------


def _offline_trees(path: Path, asked: list[str] | None) -> list[tuple[str, Path]]:
    """(kernel set, tree .tgz or folder) for each tree `path` gives: itself, or the
    tflm-tree-<kernels>(.tgz) inside a folder of trees."""
    if path.is_dir() and any(_in_folder_of_trees(path, k) for k in KERNEL_SETS):
        found = {k: p for k in KERNEL_SETS if (p := _in_folder_of_trees(path, k))}
        missing = [k for k in asked or () if k not in found]
        if missing:
            raise EdgeconvError(f"{path} holds no tflm-tree-{missing[0]}(.tgz) for the"
                                f" {missing[0]} kernels")
        return [(k, found[k]) for k in (asked or found)]
    if path.is_file() and path.name.endswith((".tgz", ".tar.gz")):
        holds = _kernels_of_tgz(path)
    elif path.is_dir():
        holds = "cmsis-nn" if (_tree_root(path) / "third_party" / "cmsis_nn").is_dir() \
            else "reference"
    else:
        raise EdgeconvError(f"--source {path}: give a git URL, a TFLite Micro checkout, a tree"
                            " folder or a tree .tgz")
    if asked and asked != [holds]:
        raise EdgeconvError(f"{path} holds the {holds} tree only, not {', '.join(asked)}; give"
                            " a folder holding tflm-tree-cmsis-nn.tgz and"
                            " tflm-tree-reference.tgz for both")
    return [(holds, path)]


def _kernels_of_tgz(tgz: Path) -> str:
    """The kernel set a tree tarball holds, from its member names (read within the same
    bounds as unpacking)."""
    if tgz.stat().st_size > MAX_TGZ_BYTES:
        raise EdgeconvError(f"{tgz} is larger than {MAX_TGZ_BYTES >> 20} MB; not a TFLM tree")
    check = _bounded_filter(tgz)
    interpreter = cmsis_nn = False
    try:
        with tarfile.open(tgz, "r:gz") as tar:
            for member in tar:
                check(member, "/")  # counts it; only the bounds matter here
                name = "/" + member.name.lstrip("./")
                interpreter |= name.endswith("/tensorflow/lite/micro/micro_interpreter.cc")
                cmsis_nn |= "/third_party/cmsis_nn/" in name
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise EdgeconvError(f"{tgz}: cannot unpack ({exc})") from None
    if not interpreter:
        raise EdgeconvError(f"{tgz} is not a TFLite Micro tree (no"
                            " tensorflow/lite/micro/micro_interpreter.cc in it)")
    return "cmsis-nn" if cmsis_nn else "reference"


def _from_tree(kernels: str, given: Path, expected: str, progress: Progress) -> Fetched:
    origin = str(given)
    progress.message(f"using the tree you gave ({origin}), no download")
    now = False

    def build(tmp: Path) -> None:
        nonlocal now
        now = True
        progress.start(1, f"verifying the {kernels} tree from {given.name}")
        staged = tmp / "given"
        if given.is_file():
            try:
                with tarfile.open(given, "r:gz") as tar:
                    tar.extractall(staged, filter=_bounded_filter(given))
            except (tarfile.TarError, OSError, EOFError) as exc:
                raise EdgeconvError(f"{given}: cannot unpack ({exc})") from None
        else:
            _copy_files(_tree_root(given), staged)
        os.replace(_tree_root(staged), tmp / "tree")
        shutil.rmtree(staged, ignore_errors=True)
        content_hash = _verify(tmp / "tree", kernels, expected, origin)
        _record(tmp, kernels, content_hash, origin, None)
        progress.update(1)

    try:
        entry = cache.entry("trees", fetched_entry(kernels, expected), build, _complete,
                            what=f"TFLite Micro source tree ({kernels})", progress=progress)
    finally:
        progress.stop()
    return _fetched(kernels, entry, origin, None, now, offline=True)


def _copy_files(root: Path, dest: Path) -> None:
    """Copy the tree folder `root` to `dest`: regular files only (a link could point out
    of the tree), within the bounds a tarball is unpacked in."""
    total = 0
    for count, path in enumerate(walk_files(root, what="TFLite Micro tree"), start=1):
        if path.is_symlink() or not path.is_file():
            raise EdgeconvError(f"{path} in the tree is a link or not a regular file; a tree"
                                " holds files only")
        total += path.stat().st_size
        if total > MAX_TREE_BYTES or count > MAX_TREE_FILES:
            raise EdgeconvError(f"{root} holds more than {MAX_TREE_BYTES:,} bytes or"
                                f" {MAX_TREE_FILES:,} files; not a TFLM tree")
        target = dest / path.relative_to(root)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)


# --- from git ---------------------------------------------------------------------------


def _from_git(url: str, kernels: list[str], commit: str, expected: dict[str, str],
              progress: Progress, timeout: float, *, local: Path | None) -> list[Fetched]:
    entries = {k: cache.cache_root() / "trees" / fetched_entry(k, expected[k]) for k in kernels}
    todo = [k for k in kernels if not _complete(entries[k])]
    if not todo:
        return [_fetched(k, entries[k], url, commit, False, False) for k in kernels]
    for tool in ("git", "make"):
        if shutil.which(tool) is None:
            raise EdgeconvError(f"{tool} is not installed (apt-get install {tool}); it is what"
                                f" makes the TFLite Micro tree from git; {_OFFLINE}")
    checkout = cache.cache_root() / "src" / f"tflite-micro-{commit}"
    made: set[str] = set()
    try:
        progress.start(1 + len(todo), f"fetching TFLite Micro {commit} from {url}")
        # the checkout's lock, held throughout: the Makefile's downloads land in it, and
        # it is removed once every tree is made
        with _cache.exclusive(_cache.lock_path(checkout), "the TFLite Micro checkout",
                              progress=progress, unwritable=_unwritable(checkout.parent)):
            full = _ensure_checkout(checkout, url, commit, local, progress)
            for step, name in enumerate(todo, start=1):
                progress.update(step, f"making the {name} tree (create_tflm_tree.py)")

                def build(tmp: Path, name: str = name, step: int = step) -> None:
                    made.add(name)
                    _create_tree(checkout, tmp, name, expected[name], url, full, progress,
                                 step, timeout)

                cache.entry("trees", entries[name].name, build, _complete,
                            what=f"TFLite Micro source tree ({name})", progress=progress)
            _remove_entry(checkout)  # every tree is made: the checkout is not needed now
    finally:
        progress.stop()
    return [_fetched(k, entries[k], url, commit, k in made, False) for k in kernels]


def _git_says(lines: list[str]) -> str:
    """git's reason: its fatal/error lines, else its last line."""
    said = [line for line in lines if line.startswith(("fatal:", "error:"))] or lines[-1:]
    return " / ".join(said)[-300:]


def _unwritable(folder: Path):
    return lambda exc: EdgeconvError(f"cannot write the MCU cache in {folder} "
                                     f"({exc.strerror or exc}); set {cache.CACHE_ENV} to a"
                                     " writable folder")


def _git_env() -> dict[str, str]:
    # never a prompt for a password; the caller's git settings otherwise
    return {**os.environ, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"}


def _ensure_checkout(checkout: Path, url: str, commit: str, local: Path | None,
                     progress: Progress) -> str:
    """The checkout at `commit` (cloned now unless a complete one is there); holds its
    lock. Its full commit hash."""
    marker = checkout / ".edgeconv-checkout"
    if not marker.is_file():
        _cache.clear_partials(checkout)
        if checkout.exists():  # incomplete under the final name: never trusted
            shutil.rmtree(checkout, ignore_errors=True)
        _cache.build_in_partial(checkout, lambda tmp: _clone(tmp, url, commit, local, progress))
    return json.loads(marker.read_text())["commit"]


def _clone(tmp: Path, url: str, commit: str, local: Path | None, progress: Progress) -> None:
    progress.update(0, f"cloning {url}")
    # a partial clone from a server (blobs come as the checkout needs them); a local
    # folder is cloned with hard links, where a filter does not apply
    filtered = [] if local is not None else ["--filter=blob:none"]
    _run(["git", "clone", "--progress", "--no-checkout", *filtered, "--", url, str(tmp)],
         cwd=None, what=f"cloning {url}", timeout=CLONE_TIMEOUT_S, progress=progress, step=0,
         failed=lambda tail: f"cannot clone {url} ({_git_says(tail)}); {_OFFLINE}")
    found = subprocess.run(["git", "-C", str(tmp), "rev-parse", "--verify", "--quiet",
                            "--end-of-options", f"{commit}^{{commit}}"],
                           capture_output=True, text=True, env=_git_env(), check=False,
                           timeout=60)
    if found.returncode != 0:
        raise EdgeconvError(f"{url} has no commit {commit}: it is not the TFLite Micro"
                            " repository, or one without the pinned commit")
    full = found.stdout.strip()
    _run(["git", "-C", str(tmp), "-c", "advice.detachedHead=false", "checkout", "--quiet",
          full], cwd=None, what=f"checking out {commit}", timeout=CLONE_TIMEOUT_S,
         progress=progress, step=0,
         failed=lambda tail: f"cannot check out {commit} ({_git_says(tail)}); {_OFFLINE}")
    if not (tmp / CREATE_TREE).is_file():
        raise EdgeconvError(f"{url} at {commit} has no {CREATE_TREE}: not the TFLite Micro"
                            " repository")
    downloads = tmp / DOWNLOADS
    if local is not None and (local / DOWNLOADS).is_dir():  # what its Makefile fetched
        shutil.copytree(local / DOWNLOADS, downloads, symlinks=True, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("pigweed"))
    # empty: or the Makefile clones pigweed
    (downloads / "pigweed").mkdir(parents=True, exist_ok=True)
    (tmp / ".edgeconv-checkout").write_text(json.dumps({"commit": full, "source": url}) + "\n")


def _create_tree(checkout: Path, tmp: Path, kernels: str, expected: str, url: str,
                 full: str, progress: Progress, step: int, timeout: float) -> None:
    log = checkout / f".edgeconv-create-{kernels}.log"
    log.unlink(missing_ok=True)
    # the Makefile runs `python3` too (example makefiles, with Pillow): this environment's
    env = {**_git_env(),
           "PATH": os.pathsep.join([python_bin_dir(), os.environ.get("PATH", os.defpath)])}

    def failed(tail: list[str]) -> str:
        urls = re.findall(r"https?://[^\s'\"]+", " ".join(tail))
        what = f"could not fetch {urls[-1]}" if urls else " / ".join(tail[-3:])[-300:]
        return (f"TFLM's create_tflm_tree.py failed for the {kernels} kernels ({what}); its"
                f" Makefile downloads the pinned third-party sources ({_THIRD_PARTY}) and needs"
                f" the network: {_OFFLINE}; its output: {log}")

    _run(python_script_command(CREATE_TREE, [f"--makefile_options={MAKEFILE_OPTIONS[kernels]}",
                                             str(tmp / "tree")]), cwd=checkout, what=f"making the {kernels} tree",
         timeout=timeout, progress=progress, step=step, failed=failed, env=env, log=log)
    if not (tmp / "tree").is_dir():
        raise EdgeconvError(f"TFLM's create_tflm_tree.py made no tree for the {kernels}"
                            f" kernels; its output: {log}")
    if _tree_root(tmp / "tree") != tmp / "tree":
        raise EdgeconvError(f"TFLM's create_tflm_tree.py put the {kernels} tree in a subfolder"
                            f" of its output folder; its output: {log}")
    progress.update(step, f"hashing the {kernels} tree")
    content_hash = _verify(tmp / "tree", kernels, expected, f"{url} at {full[:12]}")
    _record(tmp, kernels, content_hash, url, full)


def _remove_entry(final: Path) -> None:
    """Remove a complete cache entry whose lock this process holds: renamed to a partial
    folder first, so an interrupted removal leaves nothing complete-looking."""
    if final.exists():
        gone = final.with_name(f".{final.name}.partial-{os.getpid()}")
        os.replace(final, gone)
        shutil.rmtree(gone, ignore_errors=True)


# --- running git and create_tflm_tree.py, shown as progress --------------------------------


def _run(cmd: list[str], *, cwd: Path | None, what: str, timeout: float, progress: Progress,
         step: int, failed, env: dict[str, str] | None = None, log: Path | None = None) -> None:
    """Run `cmd`, its latest output line shown as progress (at `step` of the bar; all of its
    output, up to a bound, in `log`); one line (`failed(its last lines)`) when it fails. It
    runs in a process group of its own, killed whole on a timeout or Ctrl-C: no make or
    download outlives us."""
    tail: deque[str] = deque(maxlen=20)
    latest = {"line": ""}
    try:
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=env or _git_env(),
                                start_new_session=True)
    except OSError as exc:
        raise EdgeconvError(f"{what}: cannot run {cmd[0]} ({exc.strerror or exc})") from None
    reader = threading.Thread(target=_read_lines, args=(proc.stdout, tail, latest, log),
                              daemon=True)
    reader.start()
    deadline = time.monotonic() + timeout
    shown = ""
    try:
        while True:
            try:
                proc.wait(timeout=0.5)
                break
            except subprocess.TimeoutExpired:
                pass
            if latest["line"] != shown:
                shown = latest["line"]
                progress.update(step, f"{what}: {shown[:100]}")
            if time.monotonic() > deadline:
                raise EdgeconvError(f"{what} took more than {timeout:g} s; stopped. {_OFFLINE}")
    except BaseException:
        _kill_group(proc)
        raise
    finally:
        reader.join(timeout=5)
    if proc.returncode != 0:
        raise EdgeconvError(failed(list(tail) or [f"exit status {proc.returncode}"]))


def _kill_group(proc: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _read_lines(pipe, tail: deque[str], latest: dict[str, str], log: Path | None) -> None:
    """Split the output on line ends and carriage returns (git's progress redraws)."""
    written = 0
    with open(log, "ab") if log is not None else contextlib.nullcontext() as sink:
        pending = b""
        while chunk := pipe.read1(1 << 16):
            if sink is not None and written < _LOG_KEEP_BYTES:
                sink.write(chunk[:_LOG_KEEP_BYTES - written])
                written += len(chunk)
            pending += chunk
            *lines, pending = re.split(rb"[\r\n]", pending)
            pending = pending[-4096:]
            for raw in lines:
                line = " ".join(raw.decode("utf-8", "replace").split())
                if line:
                    tail.append(line[:300])
                    latest["line"] = line
