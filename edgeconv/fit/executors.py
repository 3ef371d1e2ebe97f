"""Where a study's jobs run: local worker processes (the default) or Ray tasks on a cluster.

A job is a plain dict handed to `edgeconv.fit.trial.run_job`, which returns a plain dict.
Both executors run the same function with the same thread settings, so a study gives the
same figures on either. What differs is where the trial's files live:

- local: the worker reads and writes the trial folder in the study folder directly;
- Ray: the folder's files travel with the task (the checkpoint to continue from), the task
  trains in a scratch folder on whichever node runs it, and the files it wrote come back and
  are written into the study folder by the driver. Nothing else crosses the network: the
  dataset is read on the node by its name (digits is embedded; Fashion-MNIST must be
  installed there, or --data-dir must name a folder every node has).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, wait
from pathlib import Path
from typing import Any

from edgeconv import _atomic
from edgeconv.errors import EdgeconvError

# TensorFlow reads these when it starts: fixed per job so that the same trial gives the same
# figures in a local worker and in a Ray worker (a reduction split over a different number
# of threads sums in another order).
DETERMINISM = {"TF_DETERMINISTIC_OPS": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}
MAX_SHIPPED_BYTES = 256 << 20  # a trial folder sent to or from a Ray task


def thread_env(threads: int) -> dict[str, str]:
    return {**DETERMINISM, "TF_NUM_INTRAOP_THREADS": str(threads),
            "TF_NUM_INTEROP_THREADS": "1", "OMP_NUM_THREADS": str(threads)}


def _init_worker(env: dict[str, str], log: str | None) -> None:
    _die_with_parent()
    os.environ.update(env)
    if log is not None:  # TensorFlow's C++ noise goes to the study's log, not the terminal
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(fd, 2)
        os.close(fd)


def _die_with_parent() -> None:
    """A worker whose study is killed (kill -9, a closed terminal) must not go on training
    into the study's folders, where a --resume would then meet it: Linux ends it with its
    parent (prctl PR_SET_PDEATHSIG). Elsewhere the pool's own shutdown is all there is."""
    import signal
    import sys

    if not sys.platform.startswith("linux"):
        return
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    pr_set_pdeathsig = 1
    libc.prctl(pr_set_pdeathsig, signal.SIGKILL)
    if os.getppid() == 1:  # the parent died before prctl took effect
        os._exit(1)


def _run_local(job: dict[str, Any]) -> dict[str, Any]:
    from edgeconv.fit.trial import run_job

    return run_job(job)


class LocalExecutor:
    """`workers` spawned processes on this machine (TensorFlow does not survive a fork)."""

    name = "local"

    def __init__(self, workers: int, threads: int, log: Path | None = None) -> None:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        self.workers = workers
        self._pool = ProcessPoolExecutor(
            max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_worker,
            initargs=(thread_env(threads), None if log is None else str(log)))
        self._running: dict[Future, dict[str, Any]] = {}

    def submit(self, job: dict[str, Any]) -> None:
        self._running[self._pool.submit(_run_local, job)] = job

    def busy(self) -> int:
        return len(self._running)

    def results(self, timeout: float | None = None) -> Iterator[tuple[dict, dict]]:
        """(job, result) for every job finished within `timeout` seconds (at least one
        unless the time ran out)."""
        if not self._running:
            return
        done, _ = wait(list(self._running), timeout=timeout, return_when=FIRST_COMPLETED)
        for future in done:
            job = self._running.pop(future)
            yield job, _result_of(future, job)

    def close(self, cancel: bool = False) -> None:
        if cancel:
            # the workers may be mid-epoch: stop them now; their trial folders keep the
            # last finished epoch (train.py writes atomically) for --resume
            for process in list(getattr(self._pool, "_processes", {}).values()):
                process.terminate()
        self._pool.shutdown(wait=not cancel, cancel_futures=True)


def _result_of(future: Future, job: dict[str, Any]) -> dict[str, Any]:
    try:
        return future.result()
    except Exception as exc:  # noqa: BLE001 - a worker that died: that job failed, not the study
        return {"key": job["key"], "error": f"the worker failed: {type(exc).__name__}: {exc}"}


def _run_remote(job: dict[str, Any], files: dict[str, bytes]) -> tuple[dict, dict]:
    """The Ray task: the trial folder's files in, the job run in a scratch folder, the
    folder's files out."""
    import tempfile

    from edgeconv.fit.trial import run_job

    with tempfile.TemporaryDirectory(prefix="edgeconv-fit-") as scratch:
        folder = Path(scratch) / "trial"
        folder.mkdir()
        for name, content in files.items():
            (folder / name).write_bytes(content)
        if job.get("builder_source") is not None:  # the user's builder file travels too
            job = _with_builder_here(job, Path(scratch))
        result = run_job({**job, "dir": str(folder)})
        return result, pack(folder)


def _with_builder_here(job: dict[str, Any], scratch: Path) -> dict[str, Any]:
    """The job with its builder file written on this node, and the candidate pointing at it
    (the candidate's key leaves out the file's folder, so it is the same trial)."""
    path, function = job["candidate"]["builder"].rsplit(":", 1)
    here = scratch / "builder" / Path(path).name
    here.parent.mkdir()
    here.write_bytes(job["builder_source"])
    return {**job, "candidate": {**job["candidate"], "builder": f"{here}:{function}"}}


def _shipped(job: dict[str, Any]) -> dict[str, Any]:
    """A job as sent to a Ray task: with a user builder's source (the node may not have it)."""
    builder = (job.get("candidate") or {}).get("builder")
    if builder is None:
        return job
    path = Path(builder.rsplit(":", 1)[0])
    try:
        return {**job, "builder_source": path.read_bytes()}
    except OSError as exc:
        raise EdgeconvError(f"cannot read the builder {path}: {exc.strerror}") from None


def pack(folder: Path) -> dict[str, bytes]:
    """The regular files directly in a trial folder (what a training job reads and writes)."""
    files, total = {}, 0
    if folder.is_dir():
        for path in sorted(folder.iterdir()):
            if path.is_file() and not path.is_symlink() and not path.name.startswith("."):
                total += path.stat().st_size
                if total > MAX_SHIPPED_BYTES:
                    raise EdgeconvError(f"{folder} holds more than {MAX_SHIPPED_BYTES >> 20}"
                                        " MiB: too much to ship to a Ray task")
                files[path.name] = path.read_bytes()
    return files


def unpack(files: dict[str, bytes], folder: Path) -> None:
    """A Ray task's trial files written into the study's trial folder, each atomically."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        if "/" in name or name in ("", ".", ".."):  # a name we did not write: refuse it
            raise EdgeconvError(f"a Ray task returned a file named {name!r}")
        _atomic.write_bytes(folder / name, content)


class RayExecutor:
    """Each job a Ray task on the cluster at `address` ("local": a Ray instance started
    here for the study, as a laptop or a test would)."""

    name = "ray"

    def __init__(self, address: str, workers: int, threads: int) -> None:
        try:
            import ray
        except ImportError:
            raise EdgeconvError("--ray needs Ray: pip install 'edgeconv[cluster]'") from None
        self._ray = ray
        env = thread_env(threads)
        runtime_env = {"env_vars": env}
        try:
            if address == "local":
                ray.init(num_cpus=workers * threads, include_dashboard=False,
                         log_to_driver=False, runtime_env=runtime_env)
            else:
                ray.init(address=address, log_to_driver=False, runtime_env=runtime_env)
        except Exception as exc:  # noqa: BLE001 - Ray's connection errors have many types
            raise EdgeconvError(f"cannot join the Ray cluster at {address}:"
                                f" {type(exc).__name__}: {str(exc).splitlines()[0]}") from None
        self.workers = workers
        self._task = ray.remote(num_cpus=threads, max_retries=0)(_run_remote)
        self._running: dict[Any, dict[str, Any]] = {}

    def submit(self, job: dict[str, Any]) -> None:
        files = pack(Path(job["dir"]))
        self._running[self._task.remote(_shipped(job), files)] = job

    def busy(self) -> int:
        return len(self._running)

    def results(self, timeout: float | None = None) -> Iterator[tuple[dict, dict]]:
        if not self._running:
            return
        done, _ = self._ray.wait(list(self._running), num_returns=1, timeout=timeout)
        for ref in done:
            job = self._running.pop(ref)
            try:
                result, files = self._ray.get(ref)
                unpack(files, Path(job["dir"]))
            except Exception as exc:  # noqa: BLE001 - a task or node lost: that job failed
                result = {"key": job["key"], "error": f"the Ray task failed:"
                                                      f" {type(exc).__name__}: {exc}"}
            yield job, result

    def close(self, cancel: bool = False) -> None:
        if cancel:
            for ref in self._running:
                self._ray.cancel(ref, force=True)
        self._running.clear()
        self._ray.shutdown()
