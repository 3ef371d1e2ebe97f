"""The TFLite Micro source tree a library is built from: where it is, and what it is.

A tree is the output of TFLM's create_tflm_tree.py (see docs/mcu.md): `tensorflow/`,
`signal/` and `third_party/` (flatbuffers, gemmlowp, ruy, kissfft, CMSIS, and CMSIS-NN when
exported with the CMSIS-NN kernels). The user gives a folder or a .tgz of one, by option or
environment, or `edgeconv mcu fetch` (edgeconv.mcu.fetch) made and cached the pinned one:
looked for in that order. A tree is identified by a hash of its contents, which goes into
the library's cache key, so editing one file in a tree rebuilds the library.
"""

from __future__ import annotations

import hashlib
import os
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

from edgeconv.errors import EdgeconvError
from edgeconv.files import walk_files
from edgeconv.mcu import cache
from edgeconv.mcu.cores import KERNEL_SETS

# The commits the shipped recipe pins (TFLM's download scripts pin the third-party ones).
PINNED: dict[str, str] = {
    "tflite-micro": "90b983c2",
    "CMSIS_6": "5782d6f8",
    "Cortex_DFP": "c2c70a97",
    "CMSIS-NN": "4ab83cc3",
    "flatbuffers": "v25.9.23",
    "gemmlowp": "719139ce",
    "ruy": "d3712831",
    "kissfft": "v130",
}

# Content hashes of the trees create_tflm_tree.py made at the pinned commits (the ones CI
# uses), per kernel set: `edgeconv mcu fetch` caches a tree only when its hash is this one.
PINNED_TREE_HASHES: dict[str, str] = {
    "cmsis-nn": "465d28c509f29a3539b06026bf45a7f9cf4723bd5e4d4373f103628a2fe6e687",
    "reference": "9d55d9501cc76f8c88c6948108f1c16d91f14225f68baab575639210bf5373f9",
}
# A result built from a pinned tree names the commits; any other tree only its hash.
PINNED_TREES: dict[str, str] = {
    PINNED_TREE_HASHES["cmsis-nn"]: "tflite-micro 90b983c2 + CMSIS-NN 4ab83cc3",
    PINNED_TREE_HASHES["reference"]: "tflite-micro 90b983c2 (reference kernels)",
}

# EDGECONV_TFLM_TREE_CMSIS_NN / _REFERENCE: a tree (folder or .tgz) for one kernel set;
# EDGECONV_TFLM_TREE (the bench's variable) or EDGECONV_TFLM_TREES: a tree, or a folder
# holding tflm-tree-cmsis-nn(.tgz) and tflm-tree-reference(.tgz).
TREE_ENV, TREES_ENV = "EDGECONV_TFLM_TREE", "EDGECONV_TFLM_TREES"
MAX_TGZ_BYTES = 256 * 1024 * 1024
# What a tree tarball may unpack to, from its members' declared sizes as they are extracted
# (a real tree: ~10 MB, ~700 files): a gzip bomb stops here, not at the disk's end.
MAX_TREE_BYTES, MAX_TREE_FILES = 2 * 1024**3, 100_000


def tree_env(kernels: str) -> str:
    return "EDGECONV_TFLM_TREE_" + kernels.upper().replace("-", "_")


@dataclass(frozen=True)
class SourceTree:
    kernels: str
    root: Path                  # the folder holding tensorflow/ and third_party/
    origin: str                 # what the user pointed to (folder or tarball)
    content_hash: str           # sha256 over relative paths and contents
    pinned: dict[str, str] = field(default_factory=lambda: dict(PINNED))

    @property
    def label(self) -> str:
        """What a result says the library was built from."""
        known = PINNED_TREES.get(self.content_hash)
        tree = f"tree sha256:{self.content_hash[:12]}"
        return f"{known}, {tree}" if known else f"TFLite Micro {tree} (not a pinned tree)"


def _how_to_get(kernels: str) -> str:
    return (f"no TFLite Micro source tree for kernels '{kernels}': run `edgeconv mcu fetch`"
            f" (it makes and caches the pinned trees), give one (a folder or .tgz), "
            f"or set {tree_env(kernels)}, or {TREE_ENV} to a folder holding "
            f"tflm-tree-{kernels}.tgz; made with TFLM's create_tflm_tree.py at the pinned "
            "commit (docs/mcu.md)")


def _default(kernels: str) -> Path | None:
    for env in (tree_env(kernels), TREE_ENV, TREES_ENV):
        if os.environ.get(env):
            return Path(os.environ[env]).expanduser()
    return None


# --- trees `edgeconv mcu fetch` cached (edgeconv.mcu.fetch builds them) -------------------

FETCHED_RECORD = "fetched.json"  # written last in a fetched entry: where the tree came from


def fetched_entry(kernels: str, content_hash: str) -> str:
    """The MCU cache's trees/ entry of a fetched tree: KERNELS-HASH (a tarball unpacked
    there is named by the tarball's hash alone)."""
    return f"{kernels}-{content_hash}"


def fetched_tree(kernels: str) -> Path | None:
    """The tree `edgeconv mcu fetch` cached for `kernels`: the pinned one if it is there,
    else the latest fetched; None when there is none."""
    trees = cache.cache_root() / "trees"
    pinned = trees / fetched_entry(kernels, PINNED_TREE_HASHES[kernels])
    if (pinned / FETCHED_RECORD).is_file():
        return pinned / "tree"
    try:
        records = [(p.stat().st_mtime, p) for p in trees.glob(f"{kernels}-*/{FETCHED_RECORD}")]
    except OSError:
        return None
    return max(records)[1].parent / "tree" if records else None


def _in_folder_of_trees(folder: Path, kernels: str) -> Path | None:
    """tflm-tree-<kernels>.tgz (or the unpacked folder) inside `folder`, if it is there."""
    for name in (f"tflm-tree-{kernels}.tgz", f"tflm-tree-{kernels}"):
        if (folder / name).exists():
            return folder / name
    return None


def find_tree(kernels: str, tree: str | Path | None = None) -> SourceTree:
    if kernels not in KERNEL_SETS:
        raise EdgeconvError(f"unknown kernel set '{kernels}'; choose one of "
                            f"{', '.join(KERNEL_SETS)}")
    # where a tree is looked for: the option, else the variables, else the fetched cache
    path = Path(tree).expanduser() if tree is not None else _default(kernels)
    fetched = path is None and (path := fetched_tree(kernels)) is not None
    if path is None:
        raise EdgeconvError(_how_to_get(kernels))
    if not path.exists():
        raise EdgeconvError(f"TFLite Micro tree {path} does not exist; " + _how_to_get(kernels))
    if path.is_dir() and (inside := _in_folder_of_trees(path, kernels)) is not None:
        path = inside
    if path.is_dir():
        root = _tree_root(path)
    elif path.is_file() and path.name.endswith((".tgz", ".tar.gz")):
        root = _tree_root(_unpacked(path))
    else:
        raise EdgeconvError(f"TFLite Micro tree {path}: give a folder or a .tgz")
    has_cmsis_nn = (root / "third_party" / "cmsis_nn").is_dir()
    if has_cmsis_nn != (kernels == "cmsis-nn"):
        what = "the CMSIS-NN kernels" if has_cmsis_nn else "the reference kernels only"
        raise EdgeconvError(f"TFLite Micro tree {path} holds {what}, not kernel set '{kernels}'")
    content_hash = _content_hash(root)
    if fetched and path.parent.name != fetched_entry(kernels, content_hash):
        raise EdgeconvError(f"the fetched TFLite Micro tree {path} was changed since it was"
                            f" fetched (content hash sha256:{content_hash[:12]}); run"
                            " `edgeconv mcu fetch` again")
    return SourceTree(kernels, root, str(path), content_hash)


def _tree_root(folder: Path) -> Path:
    """The folder with tensorflow/lite/micro in it: `folder` or its one subfolder
    (create_tflm_tree.py's output folder as tarred)."""
    for candidate in (folder, *sorted(p for p in folder.iterdir() if p.is_dir())):
        if (candidate / "tensorflow" / "lite" / "micro" / "micro_interpreter.cc").is_file():
            return candidate
    raise EdgeconvError(f"{folder} is not a TFLite Micro tree (no "
                        "tensorflow/lite/micro/micro_interpreter.cc in it)")


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _unpacked(tgz: Path) -> Path:
    if tgz.stat().st_size > MAX_TGZ_BYTES:
        raise EdgeconvError(f"{tgz} is larger than {MAX_TGZ_BYTES >> 20} MB; not a TFLM tree")
    key = _sha256_file(tgz)

    def unpack(tmp: Path) -> None:
        try:
            with tarfile.open(tgz, "r:gz") as tar:
                # no links out, no devices; bounded in bytes and files unpacked
                tar.extractall(tmp / "tree", filter=_bounded_filter(tgz))
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise EdgeconvError(f"{tgz}: cannot unpack ({exc})") from None
        (tmp / "unpacked").write_text(str(tgz) + "\n")

    return cache.entry("trees", key, unpack, lambda d: (d / "unpacked").is_file()) / "tree"


def _bounded_filter(tgz: Path):
    """tarfile's "data" filter, refusing the tarball once its members (checked one by one
    as they are read, before each is written) pass MAX_TREE_BYTES or MAX_TREE_FILES."""
    seen = {"bytes": 0, "files": 0}

    def check(member: tarfile.TarInfo, dest: str) -> tarfile.TarInfo | None:
        seen["bytes"] += max(member.size, 0)
        seen["files"] += 1
        if seen["bytes"] > MAX_TREE_BYTES or seen["files"] > MAX_TREE_FILES:
            raise EdgeconvError(f"{tgz} unpacks to more than {MAX_TREE_BYTES:,} bytes or"
                                f" {MAX_TREE_FILES:,} files; not a TFLM tree")
        return tarfile.data_filter(member, dest)

    return check


_SOURCE_SUFFIXES = (".cc", ".c", ".h", ".hpp", ".inc")


def _content_hash(root: Path) -> str:
    """sha256 over every source file's relative path and bytes, in sorted order."""
    digest = hashlib.sha256()
    # walk_files: a tree nested past MAX_FOLDER_DEPTH is one line, not a RecursionError
    for path in sorted(p for p in walk_files(root, what="TFLite Micro tree")
                       if p.suffix in _SOURCE_SUFFIXES and p.is_file()):
        rel = path.relative_to(root).as_posix()
        digest.update(rel.encode() + b"\0" + _sha256_file(path).encode() + b"\n")
    return digest.hexdigest()
