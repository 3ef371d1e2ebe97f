"""Where the MCU path keeps what it builds, and how an entry becomes complete.

    $EDGECONV_MCU_CACHE, else $XDG_CACHE_HOME/edgeconv/mcu, else ~/.cache/edgeconv/mcu
      trees/SHA/            a source tarball unpacked (SHA: the tarball's sha256)
      lib/KEY/              libtflm.a + build.json for one (core, kernels, tree, compiler, flags)
      fw/KEY/               one firmware (library key + model sha256)
      KIND/.KEY.partial-PID/  an entry being built; renamed to KEY/ when complete
      KIND/.KEY.lock        held while an entry is built, so two processes never build it twice

An entry exists under its final name only once everything in it was written (a rename is
atomic), so an interrupted build (Ctrl-C, kill -9, power loss) never leaves a cache entry
that looks complete; its partial folder is removed by the next build of the same key.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

from edgeconv._cache import cache_dir
from edgeconv.errors import EdgeconvError

CACHE_ENV = "EDGECONV_MCU_CACHE"


def cache_root() -> Path:
    return cache_dir("mcu", CACHE_ENV)


@contextlib.contextmanager
def _locked(lock: Path) -> Iterator[None]:
    try:
        lock.parent.mkdir(parents=True, exist_ok=True)
        fh = open(lock, "a")
    except OSError as exc:
        raise EdgeconvError(f"cannot write the MCU cache in {lock.parent} "
                            f"({exc.strerror or exc}); set {CACHE_ENV} to a writable folder"
                            ) from None
    with fh:
        fcntl.flock(fh, fcntl.LOCK_EX)  # waits while another process builds this entry
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def partials(kind: str, key: str) -> list[Path]:
    folder = cache_root() / kind
    return sorted(folder.glob(f".{key}.partial-*")) if folder.is_dir() else []


def entry(kind: str, key: str, build: Callable[[Path], None],
          complete: Callable[[Path], bool]) -> Path:
    """The folder `kind/key`, built by `build(tmp)` into a partial folder and renamed into
    place, unless a complete one is there already."""
    final = cache_root() / kind / key
    if complete(final):
        return final
    with _locked(cache_root() / kind / f".{key}.lock"):
        if complete(final):  # another process built it while we waited
            return final
        for stale in partials(kind, key):  # left by an interrupted build
            shutil.rmtree(stale, ignore_errors=True)
        if final.exists():  # incomplete under the final name: never trusted, rebuilt
            shutil.rmtree(final, ignore_errors=True)
        tmp = final.with_name(f".{key}.partial-{os.getpid()}")
        tmp.mkdir(parents=True)
        try:
            build(tmp)
            os.replace(tmp, final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return final
