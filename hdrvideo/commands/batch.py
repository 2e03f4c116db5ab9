"""``hdrvideo batch``: many files, many workers; locally or on a Ray cluster.

    inputs (files, folders, manifests) → jobs (input → output path) → skip the complete ones
      → workers: local processes (one per GPU, or a few on a CPU), or Ray tasks (one per file,
        each asking Ray for a GPU or for CPUs)
      → a report: per file ok / skipped / failed, frames, fps, attempts; JSON and a table

Each file is one :func:`~hdrvideo.commands.convert.convert_video`, which writes to a temporary name and
renames on success: nothing half-written ever looks done, and a rerun after a crash converts only
what is missing. A worker that dies (killed, out of memory) has its file retried on another
worker, up to ``retries`` times; a file that fails on its own (a damaged input) is reported at
once and never stops the batch.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict
from multiprocessing.connection import wait
from pathlib import Path

from ..media.decode import short_error
from ..pipeline.settings import ConversionSettings
from .jobs import (
    BatchError,
    BatchReport,
    FileResult,
    Job,
    collect_inputs,
    format_report,
    is_complete,
    made_otherwise,
    plan_jobs,
    temporary_path,
    write_report,
)

__all__ = [
    "BatchError",
    "FileResult",
    "Job",
    "collect_inputs",
    "plan_jobs",
    "is_complete",
    "run_batch",
    "format_report",
    "write_report",
]



# -- one file, in a worker -------------------------------------------------------------------------
_PROCESSOR_CACHE: dict[str, object] = {}


def _processor(opts: ConversionSettings):
    key = json.dumps(asdict(opts), sort_keys=True)
    proc = _PROCESSOR_CACHE.get(key)
    if proc is None:
        proc = opts.build_processor()
        _PROCESSOR_CACHE.clear()
        _PROCESSOR_CACHE[key] = proc
    proc.reset()
    return proc


def convert_job(job: Job, opts: ConversionSettings) -> FileResult:
    """Convert one file (in whichever process runs it); every error becomes a failed result."""
    from .convert import convert_video

    t0 = time.perf_counter()
    worker = f"{os.uname().nodename}:{os.getpid()}"
    try:
        proc = _processor(opts)
        batch = opts.batch_for(proc.device.type)
        settings = opts.encoder_settings()
        Path(job.output).parent.mkdir(parents=True, exist_ok=True)
        r = convert_video(job.input, job.output, proc, settings, batch_size=batch, overwrite=True, force=opts.force,
                          decoder=opts.decoding(str(proc.device))[0])  # fmt: skip
    except Exception as e:  # noqa: BLE001 - one file's failure is reported, never raised
        message = e.format_message() if hasattr(e, "format_message") else str(e)
        return FileResult(job.input, job.output, "failed", seconds=time.perf_counter() - t0,
                          error=message.splitlines()[0] if message else type(e).__name__, worker=worker)  # fmt: skip
    res = FileResult(job.input, job.output, "ok", r.frames, r.seconds, max_cll=r.max_cll, max_fall=r.max_fall,
                     worker=worker)  # fmt: skip
    if r.lost_frames:
        res.status = "failed"
        res.error = f"damaged input: {r.lost_frames} of {r.expected_frames} frames could not be decoded"
    return res


# -- local workers ---------------------------------------------------------------------------------
def _die_with_parent(parent_pid: int) -> None:
    """End this worker when the batch process that started it is gone, even by ``kill -9``: Linux's
    parent-death signal, and on every system a watcher thread that polls the parent's pid."""
    import signal
    import threading

    if os.uname().sysname == "Linux":
        import ctypes

        try:
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(1.0)
        os._exit(1)

    if os.getppid() != parent_pid:  # the parent died before the signal was armed
        os._exit(1)
    threading.Thread(target=watch, daemon=True, name="parent-watch").start()


def _worker_main(conn, opts: ConversionSettings, device: str | None, parent_pid: int | None = None) -> None:
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    if parent_pid is not None:
        _die_with_parent(parent_pid)
    if device is not None:
        opts = opts.with_(device=device)
    while True:
        job = conn.recv()
        if job is None:
            return
        conn.send(convert_job(job, opts))


class _Worker:
    def __init__(self, ctx, opts: ConversionSettings, device: str | None, name: str) -> None:
        self.name = name
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_worker_main, args=(child, opts, device, os.getpid()), name=name, daemon=True)
        self.proc.start()
        child.close()
        self.job: Job | None = None
        self.attempt = 0

    def stop(self) -> None:
        try:
            self.conn.send(None)
        except (OSError, BrokenPipeError):
            pass
        self.proc.join(timeout=5)
        if self.proc.is_alive():
            self.proc.kill()


def default_workers(opts: ConversionSettings) -> tuple[int, list[str | None]]:
    """One worker per GPU; on a CPU, one per 2 cores (each with 2 torch threads), at least one."""
    import torch

    if (opts.device is None or opts.device.startswith("cuda")) and torch.cuda.is_available():
        if opts.device and ":" in opts.device:
            return 1, [opts.device]
        n = torch.cuda.device_count()
        return n, [f"cuda:{i}" for i in range(n)]
    n = max(1, (os.cpu_count() or 2) // 2)
    return n, [opts.device or "cpu"] * n


def _run_local(jobs: list[Job], opts: ConversionSettings, workers: int | None, retries: int, on_result) -> int:
    n, devices = default_workers(opts)
    if workers:
        n = workers
        devices = (devices * n)[:n] if devices else [None] * n
    if opts.threads is None and all(d in (None, "cpu") for d in devices):
        opts = opts.with_(threads=max(1, (os.cpu_count() or 2) // n))
    ctx = mp.get_context("spawn")  # torch and threads: never fork
    pending = list(range(len(jobs)))
    attempts = [0] * len(jobs)
    pool = [_Worker(ctx, opts, devices[i], f"worker-{i}") for i in range(min(n, max(1, len(jobs))))]
    busy: dict[int, int] = {}  # worker slot → job index
    try:
        while pending or busy:
            for slot, w in enumerate(pool):
                if slot not in busy and pending:
                    i = pending.pop(0)
                    attempts[i] += 1
                    w.conn.send(jobs[i])
                    busy[slot] = i
            ready = wait([pool[s].conn for s in busy] + [pool[s].proc.sentinel for s in busy])
            for slot in list(busy):
                w, i = pool[slot], busy[slot]
                if w.conn in ready:
                    try:
                        res = w.conn.recv()
                    except (EOFError, OSError):
                        res = None
                    if res is not None:
                        res.attempts = attempts[i]
                        on_result(i, res)
                        del busy[slot]
                        continue
                if w.proc.sentinel in ready or not w.proc.is_alive():
                    w.proc.join(timeout=1)
                    code = w.proc.exitcode
                    del busy[slot]
                    why = (
                        f"worker died (exit code {code})"
                        if code is None or code >= 0
                        else f"worker killed by signal {-code}"
                    )
                    if attempts[i] <= retries:
                        pending.insert(0, i)  # next free worker: another process
                    else:
                        on_result(i, FileResult(jobs[i].input, jobs[i].output, "failed", attempts=attempts[i],
                                                error=f"{why}; gave up after {attempts[i]} attempts"))  # fmt: skip
                        _remove_partial(jobs[i])
                    pool[slot] = _Worker(ctx, opts, devices[slot], w.name)
    finally:
        for slot, i in busy.items():  # interrupted mid-file: stop at once, leave nothing half-written
            pool[slot].proc.kill()
            pool[slot].proc.join(timeout=5)
            _remove_partial(jobs[i])
        for w in pool:
            w.stop()
    return len(pool)


def _remove_partial(job: Job) -> None:

    temporary_path(Path(job.output)).unlink(missing_ok=True)


# -- Ray ---------------------------------------------------------------------------------------------
def _run_ray(jobs: list[Job], opts: ConversionSettings, address: str | None, retries: int, on_result) -> int:
    try:
        import ray
    except ImportError:
        raise BatchError("Ray is not installed: pip install 'hdrvideo[ray]'") from None
    if not ray.is_initialized():
        try:
            if address in (None, "local"):
                ray.init(include_dashboard=False, log_to_driver=False)
            else:
                ray.init(address=address, log_to_driver=False)
        except Exception as e:  # noqa: BLE001 - Ray's errors are many and varied
            raise BatchError(f"cannot connect to the Ray cluster at {address}: {short_error(e)}") from None
    gpus = (opts.device is None or opts.device.startswith("cuda")) and ray.cluster_resources().get("GPU", 0) > 0
    if gpus:
        opts = opts.with_(device="cuda")
        resources = {"num_gpus": 1, "num_cpus": 1}
    else:
        opts = opts.with_(device="cpu", threads=opts.threads or 2)
        resources = {"num_cpus": min(opts.threads, max(1, int(ray.cluster_resources().get("CPU", 1))))}
    # max_retries: Ray runs the task again, on any worker, when its worker process dies
    task = ray.remote(max_retries=retries, retry_exceptions=False, **resources)(_ray_convert)
    # workers on other nodes resolve paths on their own: hand them absolute ones (shared storage)
    given, jobs = jobs, [Job(str(Path(j.input).absolute()), str(Path(j.output).absolute())) for j in jobs]
    for job in jobs:
        _attempts_file(job).unlink(missing_ok=True)
    refs = {task.remote(job, opts): i for i, job in enumerate(jobs)}
    while refs:
        done, _ = ray.wait(list(refs), num_returns=1)
        for ref in done:
            i = refs.pop(ref)
            try:
                res = ray.get(ref)
            except Exception as e:  # noqa: BLE001 - WorkerCrashedError after the retries, and the like
                msg = short_error(e)
                res = FileResult(jobs[i].input, jobs[i].output, "failed", attempts=retries + 1,
                                 error=f"{type(e).__name__}: {msg}; gave up after {retries + 1} attempts")  # fmt: skip
                _remove_partial(jobs[i])
                _attempts_file(jobs[i]).unlink(missing_ok=True)
            res.input, res.output = given[i].input, given[i].output  # as the user named them
            on_result(i, res)
    return int(ray.cluster_resources().get("GPU" if gpus else "CPU", 0) // (1 if gpus else resources["num_cpus"]))


def _attempts_file(job: Job) -> Path:
    """Beside the output (shared storage on a cluster): how many times Ray started this file."""
    out = Path(job.output)
    return out.with_name(f".{out.name}.attempts")


def _ray_convert(job: Job, opts: ConversionSettings) -> FileResult:
    marker = _attempts_file(job)
    try:
        n = int(marker.read_text()) + 1
    except (OSError, ValueError):
        n = 1
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(str(n))
    res = convert_job(job, opts)
    res.attempts = n
    marker.unlink(missing_ok=True)
    return res


# -- the batch ---------------------------------------------------------------------------------------
def run_batch(
    inputs: Iterable[str | Path],
    out_dir: str | Path,
    opts: ConversionSettings,
    *,
    suffix: str = ".mkv",
    workers: int | None = None,
    retries: int = 2,
    ray_address: str | None = None,
    use_ray: bool = False,
    overwrite: bool = False,
    on_result: Callable[[FileResult, BatchReport], None] | None = None,
) -> BatchReport:
    """Convert every input into ``out_dir``; outputs that exist and are complete are skipped
    (unless ``overwrite``). Runs on local worker processes, or on Ray when ``use_ray`` (a local
    Ray instance, or the cluster at ``ray_address``; an already initialised Ray is used as is)."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise BatchError(f"--out is a file, not a folder: {out_dir}")
    collected = collect_inputs(inputs, skip=out_dir)
    if not collected:
        raise BatchError("no input video found")
    jobs = plan_jobs(collected, out_dir, suffix)
    out_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    report = BatchReport([None] * len(jobs), 0.0, 0, "ray" if use_ray else "local")  # type: ignore[list-item]
    todo = []
    for i, job in enumerate(jobs):
        if not overwrite and is_complete(job):
            report.results[i] = FileResult(job.input, job.output, "skipped", note=made_otherwise(job, opts))
            if on_result:
                on_result(report.results[i], report)
        else:
            todo.append(i)

    def record(k: int, res: FileResult) -> None:
        report.results[todo[k]] = res
        report.seconds = time.perf_counter() - t0
        if on_result:
            on_result(res, report)

    sub = [jobs[i] for i in todo]
    if sub:
        if use_ray:
            report.workers = _run_ray(sub, opts, ray_address, retries, record)
        else:
            report.workers = _run_local(sub, opts, workers, retries, record)
    report.seconds = time.perf_counter() - t0
    return report
