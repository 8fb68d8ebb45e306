"""The Ray executor: the stage skeleton (`stages.base.run_job`) on a pool of Ray actors, for archives that
outgrow one machine (docs/cluster.md).

- One input per task, never one frame: tracking and temporal lifting need a whole video or table.
- Each actor builds the stage from its `StageSpec` once (loading the models on its own device), sets its torch
  threads to its Ray CPUs, and writes its outputs itself, atomically, to a folder that every node sees.
- The driver hands the next input to whichever actor is free (largest input first), prints error lines,
  notes and progress, and keeps the manifest with the local executor's `RunRecord`.
- A bad input is a `failed` row, not a retry: `run_job` returns it. Only a dead worker process (killed, out
  of memory) makes Ray restart the actor and retry the input, `[ray] max_retries` times.
- Ctrl-C (or SIGTERM) kills the actors, removes the partial files they leave, and re-raises.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

from camerapose_cli.config import RaySection
from camerapose_cli.errors import UsageError
from camerapose_cli.io.atomic import pid_alive, remove_stale_partials, split_writer_tag, writer_tag
from camerapose_cli.progress import QuietReporter, Reporter
from camerapose_cli.stages.base import Job, JobResult, Outcome, RunRecord, Stage, StageSpec, run_job

RAY_MISSING = 'the ray executor needs Ray: pip install "camerapose[ray]"'
KILL_WAIT_S = 10.0  # how long Ctrl-C waits for killed workers on this machine to exit before removing partials


def import_ray():
    try:
        import ray
    except ImportError:
        raise UsageError(RAY_MISSING) from None
    return ray


class NoteCollector(QuietReporter):
    """A worker's reporter: keeps the notes for the driver to print; frame progress stays on the worker."""

    def __init__(self) -> None:
        self.notes: list[str] = []

    def note(self, message: str) -> None:
        self.notes.append(message)


@dataclass(frozen=True)
class WorkerReply:
    result: JobResult
    notes: list[str]


class StageWorker:
    """One Ray actor: the stage, built on first use, and the skeleton on one input per call."""

    def __init__(self, spec: StageSpec, out_root: Path, threads: int) -> None:
        self.spec, self.out_root, self.threads = spec, out_root, threads
        self.stage: Stage | None = None
        remove_stale_partials(out_root)  # left on this node by a worker that died (whose input is being retried)

    def setup(self) -> str:
        """Build the stage (a UsageError here is the run's, raised on the driver); return this writer's tag."""
        if self.stage is None:
            import torch

            self.stage = self.spec.build()
            torch.set_num_threads(self.threads)  # after build: the detector sets its own from the preset
        return writer_tag()

    def run(self, job: Job, overlay: bool, force: bool) -> WorkerReply:
        self.setup()
        reporter = NoteCollector()
        result = run_job(self.stage, job, self.out_root, overlay=overlay, force=force, reporter=reporter)
        return WorkerReply(result, reporter.notes)


def connect(ray, config: RaySection) -> bool:
    """Join the cluster that `config.address` names, or start a local instance; True if this call started Ray."""
    if ray.is_initialized():
        return False  # the caller's own Ray session (the Python API): use it and leave it running
    common: dict[str, Any] = {"logging_level": logging.ERROR, "log_to_driver": False}
    try:
        if config.address:
            ray.init(address=config.address, **common)
        else:
            ray.init(
                address="local",
                num_cpus=os.cpu_count(),
                include_dashboard=False,
                object_store_memory=config.object_store_mb * 1024 * 1024,
                **common,
            )
    except ConnectionError as exc:
        raise UsageError(f"--ray-address {config.address}: {exc}") from None
    return True


def worker_count(ray, config: RaySection, inputs: int) -> int:
    """`[ray] workers`, or (0) as many as the cluster's CPUs and GPUs fit; never more than there are inputs.
    More than fit is a usage error: the extra workers would wait for resources forever."""
    resources = ray.cluster_resources()
    cpus, gpus = resources.get("CPU", 0), resources.get("GPU", 0)
    fit = int(cpus // config.cpus_per_worker)
    if config.gpus_per_worker > 0:
        fit = min(fit, int(gpus // config.gpus_per_worker))
    wanted = config.workers or max(fit, 1)
    if wanted > fit:
        need = f"{wanted} workers of {config.cpus_per_worker} CPUs and {config.gpus_per_worker:g} GPUs do not fit"
        raise UsageError(f"the Ray cluster has {cpus:g} CPUs and {gpus:g} GPUs: {need}")
    return min(wanted, inputs)


def input_size(job: Job) -> int:
    try:
        return job.source.stat().st_size
    except OSError:
        return 0


def died(job: Job, config: RaySection, exc: Exception) -> JobResult:
    attempts = config.max_retries + 1
    times = "once" if attempts == 1 else f"{attempts} times"
    message = f"the worker process died {times} on this input (killed, or out of memory)"
    line = f"error: {job.source}: {message} ({exc.__class__.__name__})"
    return JobResult(Outcome(job.rel, "failed", error=message), line)


def start_workers(ray, spec: StageSpec, out_root: Path, config: RaySection, count: int) -> tuple[list[Any], list[str]]:
    """`count` actors, each with its stage built (so that a UsageError, such as CUDA on a node without a GPU,
    stops the run before any input), and their writer tags."""
    actor = ray.remote(StageWorker).options(
        num_cpus=config.cpus_per_worker,
        num_gpus=config.gpus_per_worker,
        max_restarts=-1,
        max_task_retries=config.max_retries,
    )
    workers = [actor.remote(spec, out_root, config.cpus_per_worker) for _ in range(count)]
    try:
        return workers, ray.get([w.setup.remote() for w in workers])
    except ray.exceptions.RayTaskError as exc:
        cause = exc.cause if isinstance(exc.cause, Exception) else exc
        if isinstance(cause, UsageError):
            raise cause from None
        raise UsageError(f"a Ray worker could not start: {cause}") from None


def dispatch(
    ray,
    workers: list[Any],
    tags: list[str],
    jobs: list[Job],
    *,
    respawn: Callable[[], tuple[list[Any], list[str]]],
    overlay: bool,
    force: bool,
    config: RaySection,
) -> Iterator[tuple[Job, WorkerReply]]:
    """Each job to the next free worker, largest input first (so that one long video does not start last and
    finish alone); yields (job, reply) as they finish. A worker whose input failed by its death (retries spent)
    is replaced by `respawn()`, since Ray may still be restarting it; `workers` and `tags` stay current for
    `stop_workers`."""
    queue = deque(sorted(jobs, key=input_size, reverse=True))
    idle, pending = list(workers), {}
    while queue or pending:
        while idle and queue:
            job, worker = queue.popleft(), idle.pop()
            remote_job = replace(job, source=job.source.absolute())
            pending[worker.run.remote(remote_job, overlay, force)] = (worker, job)
        (ready,), _ = ray.wait(list(pending), num_returns=1)
        worker, job = pending.pop(ready)
        try:
            reply = ray.get(ready)
        except ray.exceptions.RayActorError as exc:
            ray.kill(worker, no_restart=True)
            workers.remove(worker)
            (worker,), (tag,) = respawn()
            workers.append(worker)
            tags.append(tag)
            reply = WorkerReply(died(job, config, exc), [])
        idle.append(worker)
        yield job, reply


def run_stage_on_ray(
    spec: StageSpec,
    jobs: list[Job],
    out_root: Path,
    *,
    overlay: bool,
    force: bool,
    reporter: Reporter,
    config: RaySection,
) -> list[Outcome]:
    """Run the stage of `spec` on every job with a pool of Ray actors; the same outputs, manifest and messages as
    the local executor (`stages.base.run_stage`). Rows come back to `out_root` as given."""
    ray = import_ray()
    absolute_root = out_root.absolute()
    started_ray, workers, tags = False, [], []
    # Ray's driver prints the raylet's messages (a worker died, a task is retried) on stdout: keep it for --json.
    with contextlib.redirect_stdout(sys.stderr):
        try:
            started_ray = connect(ray, config)
            remove_stale_partials(absolute_root)
            count = worker_count(ray, config, len(jobs))
            workers, tags = start_workers(ray, spec, absolute_root, config, count)
            record = RunRecord(out_root / spec.stage.manifest, jobs, reporter)
            respawn = partial(start_workers, ray, spec, absolute_root, config, 1)
            running = dispatch(ray, workers, tags, jobs, respawn=respawn, overlay=overlay, force=force, config=config)
            for job, reply in running:
                for message in reply.notes:
                    reporter.note(message)
                outcome = reply.result.outcome
                if outcome.output:  # as the local executor writes it: under out_root as the caller gave it
                    outcome.output = str(out_root / Path(outcome.output).relative_to(absolute_root))
                record.finish(job, reply.result)
            remove_stale_partials(absolute_root)  # of workers that died meanwhile, and of a killed driver's orphans
            return record.outcomes
        except KeyboardInterrupt:
            stop_workers(ray, workers, tags, absolute_root)
            raise
        finally:
            reporter.close()
            if started_ray:
                ray.shutdown()


def stop_workers(ray, workers: list[Any], tags: list[str], out_root: Path) -> None:
    """Kill the actors, wait for those on this machine to exit, then remove the partial files they leave."""
    for worker in workers:
        ray.kill(worker, no_restart=True)
    here, _ = split_writer_tag(writer_tag())
    pids = [int(pid) for host, pid in map(split_writer_tag, tags) if host == here]
    deadline = time.monotonic() + KILL_WAIT_S
    while time.monotonic() < deadline and any(pid_alive(pid) for pid in pids):
        time.sleep(0.05)
    remove_stale_partials(out_root, dead_writers=set(tags))
