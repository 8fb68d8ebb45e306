"""Run one stage over many inputs: skip finished ones, keep going past failures, keep a manifest.

The manifest (one row per input) is rewritten atomically after every input, so a run killed at
any moment leaves a manifest that matches the outputs on disk.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from camerapose_cli import __version__
from camerapose_cli.atomic import atomic_output
from camerapose_cli.errors import InputError
from camerapose_cli.progress import Reporter
from camerapose_cli.schema import MANIFEST_SCHEMA


@dataclass
class Job:
    source: Path
    rel: str  # path relative to the input root; names the outputs


@dataclass
class Outcome:
    input: str
    status: str  # done | failed | skipped
    error: str = ""
    frames: int = 0
    people: int = 0
    detections: int = 0
    tracks: int = 0
    seconds: float = 0.0
    model: str = ""
    model_sha256: str = ""
    tool_version: str = __version__
    output: str = ""
    extra: dict = field(default_factory=dict)


# A job function returns a finished Outcome, or raises InputError for a one-line, per-input failure.
JobFn = Callable[[Job, Reporter], Outcome]


def write_manifest(path: Path, outcomes: list[Outcome]) -> None:
    rows = [{k: v for k, v in asdict(o).items() if k in MANIFEST_SCHEMA.names} for o in outcomes]
    table = pa.Table.from_pylist(rows, schema=MANIFEST_SCHEMA)
    with atomic_output(path) as tmp:
        pq.write_table(table, str(tmp))


def run_jobs(jobs: list[Job], work: JobFn, reporter: Reporter, manifest: Path) -> list[Outcome]:
    """Run `work` on every job in order. Failures are recorded and reported; the batch goes on."""
    outcomes: list[Outcome] = []
    try:
        for job in jobs:
            started = time.perf_counter()
            try:
                outcome = work(job, reporter)
            except InputError as exc:
                message = str(exc).replace("\n", " ")
                outcome = Outcome(job.rel, "failed", error=message)
                print(f"error: {job.source}: {message}", file=sys.stderr, flush=True)
            except (MemoryError, KeyboardInterrupt):
                raise
            except Exception as exc:  # an unexpected bug must not sink the other inputs either
                message = f"{exc.__class__.__name__}: {exc}".replace("\n", " ")
                outcome = Outcome(job.rel, "failed", error=message)
                print(f"error: {job.source}: {message}", file=sys.stderr, flush=True)
            if outcome.status != "skipped":
                outcome.seconds = round(time.perf_counter() - started, 3)
            outcomes.append(outcome)
            write_manifest(manifest, outcomes)
            reporter.finish_input(job.rel, outcome.status, describe(outcome))
    finally:
        reporter.close()
    return outcomes


def describe(outcome: Outcome) -> str:
    if outcome.status == "failed":
        return outcome.error
    if outcome.status == "skipped":
        return "outputs already complete"
    return f"{outcome.frames} frames, {outcome.tracks} tracks, {outcome.seconds:.1f} s"


def summary_dict(stage: str, out_root: Path, outcomes: list[Outcome]) -> dict:
    counts = {s: sum(o.status == s for o in outcomes) for s in ("done", "skipped", "failed")}
    return {
        "stage": stage,
        "out": str(out_root),
        "tool_version": __version__,
        "inputs": len(outcomes),
        **counts,
        "frames": sum(o.frames for o in outcomes),
        "results": [{k: v for k, v in asdict(o).items() if k != "extra"} for o in outcomes],
    }
