"""`edgeconv mcu fetch` (edgeconv.mcu.fetch) against a git repository made here, laid out
like TFLite Micro's: a fake create_tflm_tree.py that writes a small tree, and refuses to
run without the recipe's traps handled (TARGET_TOOLCHAIN_ROOT, the empty downloads/pigweed),
so the real path runs: clone over file://, check out the pinned commit, run the script,
hash, verify, cache, and find the tree the way bench does. The real upstream fetch needs
GitHub; the real pinned trees are checked through the offline path (../shared)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from edgeconv.errors import EdgeconvError
from edgeconv.mcu import fetch as fetch_mod
from edgeconv.mcu import sources
from edgeconv.mcu.fetch import fetch
from edgeconv.progress import Progress

ROOT = Path(__file__).resolve().parents[1]
SHARED_TREES = ROOT.parent / "shared" / "third_party"
EDGECONV = [sys.executable, "-m", "edgeconv"]

# the tree the fake script writes (the CMSIS-NN file only with OPTIMIZED_KERNEL_DIR=cmsis_nn)
FILES = {
    "tensorflow/lite/micro/micro_interpreter.cc": "// the interpreter\n",
    "tensorflow/lite/micro/kernels/conv.cc": "// conv\n",
    "third_party/flatbuffers/include/flatbuffers/base.h": "// flatbuffers\n",
    "third_party/cmsis_nn/Source/arm_convolve_s8.c": "/* CMSIS-NN */\n",
}
FAKE_CREATE_TREE = '''
import json, os, sys, time
from pathlib import Path

args = sys.argv[1:]
options = next(a.split("=", 1)[1] for a in args if a.startswith("--makefile_options="))
out = Path(next(a for a in args if not a.startswith("--")))
if "TARGET_TOOLCHAIN_ROOT=/usr/bin/" not in options:
    sys.exit("no TARGET_TOOLCHAIN_ROOT: the Makefile would download a GCC")
if not Path("tensorflow/lite/micro/tools/make/downloads/pigweed").is_dir():
    sys.exit("no downloads/pigweed: the Makefile would clone pigweed")
if os.environ.get("FAKE_FAIL"):
    print("downloading https://github.com/ARM-software/CMSIS-NN/archive/4ab83cc3.zip")
    print("curl: (6) Could not resolve host: github.com")
    sys.exit(2)
for n, (rel, text) in enumerate(json.loads(FILES).items()):
    if rel.startswith("third_party/cmsis_nn/") and "OPTIMIZED_KERNEL_DIR=cmsis_nn" not in options:
        continue
    (out / rel).parent.mkdir(parents=True, exist_ok=True)
    (out / rel).write_text(text)
    if n == 0 and os.environ.get("FAKE_STARTED"):  # half written: a kill lands here
        Path(os.environ["FAKE_STARTED"]).write_text(str(os.getpid()))
        time.sleep(120)
'''


def _git(*args: str, cwd: Path) -> str:
    done = subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com",
                           *args], cwd=cwd, capture_output=True, text=True, check=True)
    return done.stdout.strip()


@pytest.fixture(scope="module")
def mirror(tmp_path_factory) -> tuple[Path, str]:
    """A git repository laid out like tflite-micro, and its commit to pin (not its HEAD)."""
    repo = tmp_path_factory.mktemp("tflite-micro")
    _git("init", "-q", "-b", "main", cwd=repo)
    script = repo / fetch_mod.CREATE_TREE
    script.parent.mkdir(parents=True)
    script.write_text(f"FILES = {json.dumps(json.dumps(FILES))}\n" + FAKE_CREATE_TREE)
    (repo / "README.md").write_text("pinned\n")
    _git("add", ".", cwd=repo)
    _git("commit", "-q", "-m", "pinned", cwd=repo)
    pinned = _git("rev-parse", "HEAD", cwd=repo)[:8]
    (repo / "README.md").write_text("later\n")
    script.write_text("import sys\nsys.exit('a later commit: not the pinned one')\n")
    _git("commit", "-q", "-am", "later", cwd=repo)
    return repo, pinned


def _tree(folder: Path, kernels: str) -> Path:
    """The tree the fake script makes for `kernels`, written to `folder`."""
    for rel, text in FILES.items():
        if rel.startswith("third_party/cmsis_nn/") and kernels != "cmsis-nn":
            continue
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_text(text)
    return folder


@pytest.fixture(scope="module")
def hashes(tmp_path_factory) -> dict[str, str]:
    base = tmp_path_factory.mktemp("expected")
    return {k: sources._content_hash(_tree(base / k, k)) for k in ("cmsis-nn", "reference")}


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    """An MCU cache of this test's own, and no tree given by any variable."""
    for name in list(os.environ):
        if name.startswith("EDGECONV_TFLM_TREE"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("EDGECONV_MCU_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _complete_entries(cache: Path) -> list[Path]:
    return sorted(cache.glob("trees/*/fetched.json"))


def _left_in_trees(cache: Path) -> list[Path]:
    """What trees/ holds but the locks (which stay, empty, as every cache's do)."""
    return [p for p in cache.glob("trees/*") if not p.name.endswith(".lock")]


class _Said(Progress):
    def __init__(self) -> None:
        self.lines: list[str] = []

    def message(self, text: str) -> None:
        self.lines.append(text)


def _bench_finds(kernels: str) -> sources.SourceTree:
    """The tree bench builds from when given no --tflm-tree (its own lookup, then ours)."""
    from edgeconv.bench import firmware

    return sources.find_tree(kernels, firmware.tree_for(kernels, firmware.tree_option(None)))


def test_fetch_clones_the_pinned_commit_and_caches_trees_bench_finds(mirror, hashes, cache):
    repo, pinned = mirror
    url = f"file://{repo}"
    trees = fetch(None, url, commit=pinned, expected=hashes)
    assert [t.kernels for t in trees] == ["cmsis-nn", "reference"]
    for tree in trees:
        assert tree.fetched_now and not tree.offline and tree.commit == pinned
        assert tree.content_hash == hashes[tree.kernels]
        record = json.loads((tree.tree.parent / "fetched.json").read_text())
        assert record["source"] == url and record["commit"].startswith(pinned)
        found = _bench_finds(tree.kernels)
        assert found.root == tree.tree and found.content_hash == hashes[tree.kernels]
        assert "not a pinned tree" in found.label  # the label names what it is, as today
    assert (trees[0].tree / "third_party" / "cmsis_nn").is_dir()
    assert not (trees[1].tree / "third_party" / "cmsis_nn").exists()
    # every tree made: the checkout is gone, nothing partial left anywhere
    assert not list((cache / "src").glob("tflite-micro-*"))
    assert not list(cache.rglob("*.partial-*"))
    # a second fetch finds them cached: no clone (the repository is not even needed)
    again = fetch(["reference"], "file:///nowhere", commit=pinned, expected=hashes)
    assert [(t.kernels, t.fetched_now) for t in again] == [("reference", False)]


def test_an_interrupted_fetch_leaves_nothing_complete_and_a_rerun_succeeds(
        mirror, hashes, cache, tmp_path):
    repo, pinned = mirror
    started = tmp_path / "started"
    code = ("import sys, json\nfrom edgeconv.mcu.fetch import fetch\n"
            "fetch(['cmsis-nn'], sys.argv[1], commit=sys.argv[2],"
            " expected=json.loads(sys.argv[3]))\n")
    proc = subprocess.Popen([sys.executable, "-c", code, f"file://{repo}", pinned,
                             json.dumps(hashes)], cwd=ROOT,
                            env={**os.environ, "FAKE_STARTED": str(started)})
    try:
        deadline = time.monotonic() + 60
        while not started.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert started.exists(), "the fake create_tflm_tree.py never started"
        proc.send_signal(signal.SIGKILL)  # kill -9, mid-way through writing the tree
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
        if started.exists():  # the script it ran, in its own process group
            try:
                os.killpg(int(started.read_text()), signal.SIGKILL)
            except ProcessLookupError:
                pass
    assert _complete_entries(cache) == []
    assert list(cache.glob("trees/.cmsis-nn-*.partial-*"))  # what it left: not complete
    assert sources.fetched_tree("cmsis-nn") is None
    with pytest.raises(EdgeconvError, match="edgeconv mcu fetch"):
        sources.find_tree("cmsis-nn")
    (tree,) = fetch(["cmsis-nn"], f"file://{repo}", commit=pinned, expected=hashes)
    assert tree.fetched_now and _bench_finds("cmsis-nn").content_hash == hashes["cmsis-nn"]
    assert not list(cache.rglob("*.partial-*"))  # the killed fetch's leftovers are cleared


def test_a_tree_whose_content_hash_differs_is_refused_and_nothing_is_cached(mirror, hashes,
                                                                             cache):
    repo, pinned = mirror
    wrong = {**hashes, "reference": "0" * 64}
    with pytest.raises(EdgeconvError) as refused:
        fetch(["reference"], f"file://{repo}", commit=pinned, expected=wrong)
    message = str(refused.value)
    assert "\n" not in message and "not the pinned tree's sha256:000000000000" in message
    assert f"sha256:{hashes['reference'][:12]}" in message
    assert _complete_entries(cache) == [] and _left_in_trees(cache) == []
    assert sources.fetched_tree("reference") is None


def test_a_fetched_tree_changed_later_is_refused(mirror, hashes, cache):
    repo, pinned = mirror
    (tree,) = fetch(["reference"], f"file://{repo}", commit=pinned, expected=hashes)
    (tree.tree / "tensorflow" / "lite" / "micro" / "kernels" / "conv.cc").write_text("// edited\n")
    with pytest.raises(EdgeconvError, match="changed since it was fetched.*mcu fetch` again"):
        sources.find_tree("reference")
    (again,) = fetch(["reference"], f"file://{repo}", commit=pinned, expected=hashes)
    assert again.fetched_now  # made anew, as the message says
    assert sources.find_tree("reference").content_hash == hashes["reference"]


def test_a_failed_download_names_what_and_the_offline_way(mirror, hashes, cache, monkeypatch):
    repo, pinned = mirror
    monkeypatch.setenv("FAKE_FAIL", "1")
    with pytest.raises(EdgeconvError) as failed:
        fetch(["cmsis-nn"], f"file://{repo}", commit=pinned, expected=hashes)
    message = str(failed.value)
    assert "\n" not in message
    assert "could not fetch https://github.com/ARM-software/CMSIS-NN/archive/4ab83cc3.zip" \
        in message and "needs the network" in message and "--source a tree .tgz" in message
    assert _complete_entries(cache) == []
    # the checkout stays for the next try (and its log, named in the message)
    log = Path(message.rsplit("its output: ", 1)[1])
    assert "Could not resolve host" in log.read_text()
    monkeypatch.delenv("FAKE_FAIL")
    (tree,) = fetch(["cmsis-nn"], "file:///nowhere", commit=pinned, expected=hashes)
    assert tree.fetched_now  # made from the kept checkout: no clone


def test_a_commit_the_repository_lacks_is_refused(mirror, hashes, cache):
    repo, _ = mirror
    with pytest.raises(EdgeconvError, match="has no commit 0123abcd"):
        fetch(["reference"], f"file://{repo}", commit="0123abcd", expected=hashes)
    assert _complete_entries(cache) == [] and not list((cache / "src").glob("tflite-micro-*"))


def test_a_local_checkout_is_cloned_not_changed(mirror, hashes, cache):
    repo, pinned = mirror
    head = _git("rev-parse", "HEAD", cwd=repo)
    (tree,) = fetch(["reference"], repo, commit=pinned, expected=hashes)
    assert tree.fetched_now and tree.content_hash == hashes["reference"]
    assert _git("rev-parse", "HEAD", cwd=repo) == head
    assert not (repo / fetch_mod.DOWNLOADS).exists()


def test_an_offline_tarball_or_folder_is_taken_as_given_and_says_so(hashes, cache, tmp_path):
    folder = _tree(tmp_path / "given" / "tflm_tree", "cmsis-nn")
    tgz = tmp_path / "tree.tgz"
    with tarfile.open(tgz, "w:gz") as tar:
        tar.add(folder, arcname="tflm_tree")
    said = _Said()
    (tree,) = fetch(None, tgz, expected=hashes, progress=said)
    assert tree.offline and tree.fetched_now and tree.kernels == "cmsis-nn"
    assert said.lines == [f"using the tree you gave ({tgz}), no download"]
    assert _bench_finds("cmsis-nn").root == tree.tree
    # a folder of the other kernel set (the create_tflm_tree.py output folder itself)
    ref = _tree(tmp_path / "ref", "reference")
    (tree,) = fetch(None, ref, expected=hashes)
    assert tree.kernels == "reference" and tree.content_hash == hashes["reference"]
    # a link in a given folder could point anywhere: refused
    (ref / "tensorflow" / "link.h").symlink_to("/etc/hostname")
    with pytest.raises(EdgeconvError, match="is a link or not a regular file"):
        fetch(None, ref, expected={**hashes, "reference": "1" * 64})


def _cli(*args: str, cache: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EDGECONV_TFLM_TREE")}
    return subprocess.run([*EDGECONV, "mcu", *args], capture_output=True, text=True,
                          timeout=120, cwd=ROOT, check=False,
                          env={**env, "EDGECONV_MCU_CACHE": str(cache)})


def test_bad_sources_are_one_line_each(cache, tmp_path):
    plain = tmp_path / "notes.txt"
    plain.write_text("hello")
    checkout = tmp_path / "checkout"
    (checkout / fetch_mod.CREATE_TREE).parent.mkdir(parents=True)
    (checkout / fetch_mod.CREATE_TREE).write_text("")
    cases = {
        str(tmp_path / "nope"): "does not exist",
        "ftp://example.com/tflite-micro": "a git URL must be one of",
        str(plain): "give a git URL, a TFLite Micro checkout",
        str(tmp_path): "is not a TFLite Micro tree",
        str(checkout): "without its git history",
    }
    for source, says in cases.items():
        done = _cli("fetch", "--source", source, cache=cache)
        assert done.returncode == 2, (source, done.stderr)
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and says in lines[0], lines
    done = _cli("fetch", "--kernels", "cmsis-nn,helium", cache=cache)
    assert done.returncode == 2 and "choose from cmsis-nn, reference" in done.stderr
    assert not (cache / "trees").exists()


def test_cli_refuses_a_tree_that_is_not_the_pinned_one(cache, tmp_path):
    tree = _tree(tmp_path / "tree", "reference")
    done = _cli("fetch", "--source", str(tree), cache=cache)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert lines[0] == f"using the tree you gave ({tree}), no download"
    assert len(lines) == 2 and lines[1].startswith("error: the reference tree from")
    assert "not the pinned tree's sha256:9d55d9501cc7" in lines[1]
    assert _left_in_trees(cache) == []


@pytest.mark.skipif(not SHARED_TREES.is_dir(), reason="../shared/third_party not here")
def test_the_real_pinned_trees_verify_offline_and_bench_finds_them(cache):
    """The CI trees: their content hashes are PINNED_TREE_HASHES (a real verification)."""
    done = _cli("fetch", "--source", str(SHARED_TREES), "--json", cache=cache)
    assert done.returncode == 0, done.stderr
    trees = {t["kernels"]: t for t in json.loads(done.stdout)["trees"]}
    assert {k: t["content_hash"] for k, t in trees.items()} == sources.PINNED_TREE_HASHES
    assert all(t["offline"] and t["fetched_now"] for t in trees.values())
    assert "no download" in done.stderr
    found = _bench_finds("cmsis-nn")
    assert found.root == Path(trees["cmsis-nn"]["tree"])
    assert found.label.startswith("tflite-micro 90b983c2 + CMSIS-NN 4ab83cc3, tree sha256:")


def test_the_makefile_options_are_the_documented_recipes():
    recipe = (ROOT / "docs" / "mcu.md").read_text()
    for options in fetch_mod.MAKEFILE_OPTIONS.values():
        assert f'--makefile_options="{options}"' in recipe
