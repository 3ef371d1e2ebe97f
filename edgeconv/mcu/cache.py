"""Where the MCU path keeps what it builds, and how an entry becomes complete.

    $EDGECONV_MCU_CACHE, else $XDG_CACHE_HOME/edgeconv/mcu, else ~/.cache/edgeconv/mcu
      trees/SHA/            a source tarball unpacked (SHA: the tarball's sha256)
      lib/KEY/              libtflm.a + build.json for one (core, kernels, tree, compiler, flags)
      fw/KEY/               one firmware (library key + model sha256)
      KIND/.KEY.partial-PID/  an entry being built; renamed to KEY/ when complete
      KIND/.KEY.lock        held while an entry is built, so two processes never build it twice
      KIND/.KEY.holder      who builds it, since when, and how far (what a waiter shows)

The protocol (edgeconv._cache.build_once) is the boards' too: an entry exists under its
final name only once everything in it was written (a rename is atomic), so an interrupted
build (Ctrl-C, kill -9, power loss) never leaves a cache entry that looks complete; its
partial folder is removed by the next build of the same key.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from edgeconv import _cache
from edgeconv.errors import EdgeconvError
from edgeconv.progress import Progress

CACHE_ENV = "EDGECONV_MCU_CACHE"
WHAT = {"lib": "TFLite Micro library", "fw": "firmware", "trees": "TFLite Micro source tree"}


def cache_root() -> Path:
    return _cache.cache_dir("mcu", CACHE_ENV)


def _unwritable(folder: Path) -> Callable[[OSError], EdgeconvError]:
    return lambda exc: EdgeconvError(f"cannot write the MCU cache in {folder} "
                                     f"({exc.strerror or exc}); set {CACHE_ENV} to a writable"
                                     " folder")


def partials(kind: str, key: str) -> list[Path]:
    return _cache.partials(cache_root() / kind / key)


def entry(kind: str, key: str, build: Callable[[Path], None],
          complete: Callable[[Path], bool], *, what: str | None = None,
          progress: Progress | None = None) -> Path:
    """The folder `kind/key`, built by `build(tmp)` into a partial folder and renamed into
    place, unless a complete one is there already. While another process builds it, wait,
    showing on `progress` which process, since when and how far it is (`what` names the
    entry: "TFLite Micro library (cmsis-nn, cortex-m7)")."""
    folder = cache_root() / kind
    return _cache.build_once(folder / key, build, complete,
                             what=what or WHAT.get(kind, kind), progress=progress,
                             unwritable=_unwritable(folder))
