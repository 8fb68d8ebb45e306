"""The one stage skeleton that extract, refine, lift and export run, under every executor.

For every input a stage supplies only its work (`write_table`, `write_overlay`) and its settings; the
skeleton does the rest, the same way for every stage:
- removes partial files left by killed runs, once per run;
- skips an input whose table is current: its footer names the same input file (size, mtime) and the same
  fingerprint, a hash of every result-changing setting and model hash (`Stage.settings`);
- writes each output under a temporary name and renames it into place (io.atomic);
- on an InputError while making the table, removes this input's old outputs (they no longer describe
  it); an overlay that fails leaves the good table in place;
- records one manifest row per input, rewritten after each input, so a run killed at any moment leaves a
  manifest that matches the outputs on disk; an unexpected error costs one line on stderr, and its traceback
  goes to `errors.log` in the run folder.

An executor decides only where and in which order `run_job` runs: `run_stage` here (the local executor, in
this process) or `stages.ray_executor` (a pool of Ray actors). Both build the stage from a `StageSpec` (its
class and constructor arguments, no models) and record outcomes with one `RunRecord`.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
import traceback
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from camerapose_cli import __version__
from camerapose_cli.errors import InputError
from camerapose_cli.io.atomic import atomic_output, remove_stale_partials
from camerapose_cli.io.schema import (
    MANIFEST_SCHEMA,
    file_stamp,
    find_keypoints2d_tables,
    output_is_current,
    read_metadata,
)
from camerapose_cli.io.video import IMAGE_SUFFIXES
from camerapose_cli.progress import Reporter

ERROR_LOG = "errors.log"


@dataclass(frozen=True)
class Job:
    source: Path
    rel: str  # path relative to the input root; names the outputs


@dataclass
class Outcome:
    """One manifest row: what happened to one input."""

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


@dataclass(frozen=True)
class Outputs:
    table: Path
    overlay: Path | None


def overlay_suffix(source_name: str) -> str:
    """Overlays of still images are PNG, of videos MP4. `source_name` may carry the table's .parquet-less rel."""
    return ".png" if Path(source_name).suffix.lower() in IMAGE_SUFFIXES else ".mp4"


def fingerprint(settings: dict[str, Any]) -> str:
    """A short, stable hash of a stage's result-changing settings."""
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


class Stage(ABC):
    """What one stage supplies to the skeleton. Subclasses set the class attributes and the methods."""

    name: str  # "extract"
    table_dir: str  # folder of the tables it writes, under the run folder
    overlay_dir: str  # folder of its overlays
    manifest: str  # manifest file name
    stamp_prefix: str  # footer keys recording the input file: "<prefix>_size", "<prefix>_mtime_ns"
    model_name: str = ""
    model_sha256: str = ""
    preset_name: str = ""

    @abstractmethod
    def settings(self) -> dict[str, Any]:
        """Every setting and model hash that changes the table: the typed sections' result_settings()."""

    @abstractmethod
    def write_table(self, job: Job, path: Path, footer: dict[str, Any], progress: Reporter) -> None:
        """Write the job's table to `path` (a temporary name), with `footer` in its metadata; raise InputError."""

    def write_overlay(self, job: Job, table: Path, path: Path, progress: Reporter) -> None:
        """Write the job's overlay to `path` (a temporary name) from its finished `table`; raise InputError."""
        raise NotImplementedError(f"the {self.name} stage draws no overlays")

    def products_complete(self, table: Path) -> bool:
        """Whether every file that a current `table` says it was written with is there (export's track files)."""
        return True

    def outputs(self, out_root: Path, job: Job, overlay: bool) -> Outputs:
        overlay_path = out_root / self.overlay_dir / f"{job.rel}{overlay_suffix(job.rel)}" if overlay else None
        return Outputs(out_root / self.table_dir / f"{job.rel}.parquet", overlay_path)

    def footer(self, job: Job, fingerprint_value: str) -> dict[str, Any]:
        """What every table's metadata records: the input's stamp, the fingerprint, the tool and preset."""
        return {
            **file_stamp(job.source, self.stamp_prefix),
            "fingerprint": fingerprint_value,
            "tool_version": __version__,
            "preset": self.preset_name,
        }


S = TypeVar("S", bound=Stage)


@dataclass(frozen=True)
class StageSpec(Generic[S]):
    """A stage's class and constructor arguments (settings and paths, never loaded models): what an executor
    builds the stage from, once per process, so that each worker loads the models itself on its own device."""

    stage: type[S]
    args: tuple[Any, ...]

    def build(self) -> S:
        return self.stage(*self.args)


def summarize_table(path: Path) -> dict[str, int]:
    """frames, people (most in one frame), detections (rows) and tracks of a finished table."""
    columns = pq.read_table(path, columns=["frame", "track_id"])
    frames_col = columns.column("frame").to_numpy()
    tracks = columns.column("track_id").to_numpy()
    return {
        "frames": int(read_metadata(path).get("frames", 0) or 0),
        "people": int(np.bincount(frames_col - frames_col.min()).max()) if len(frames_col) else 0,
        "detections": len(tracks),
        "tracks": len(np.unique(tracks)),
    }


def process_job(stage: Stage, job: Job, out_root: Path, *, overlay: bool, force: bool, reporter: Reporter) -> Outcome:
    """The skeleton for one input: skip if current, else write the table and the overlay atomically."""
    outputs = stage.outputs(out_root, job, overlay)
    expected = fingerprint(stage.settings())
    current = not force and output_is_current(outputs.table, job.source, stage.stamp_prefix, {"fingerprint": expected})
    current = current and stage.products_complete(outputs.table)
    if current and (outputs.overlay is None or outputs.overlay.exists()):
        return stage_outcome(stage, job, "skipped", outputs.table)
    if not current:
        try:
            with atomic_output(outputs.table) as tmp:
                stage.write_table(job, tmp, stage.footer(job, expected), reporter)
        except InputError:  # outputs of an earlier run no longer describe this input
            for stale in (outputs.table, stage.outputs(out_root, job, overlay=True).overlay):
                if stale is not None:
                    stale.unlink(missing_ok=True)
            raise
    if outputs.overlay is not None:
        with atomic_output(outputs.overlay) as tmp:
            stage.write_overlay(job, outputs.table, tmp, reporter)
    return stage_outcome(stage, job, "done", outputs.table)


def stage_outcome(stage: Stage, job: Job, status: str, table: Path) -> Outcome:
    return Outcome(
        job.rel,
        status,
        model=stage.model_name,
        model_sha256=stage.model_sha256,
        output=str(table),
        **summarize_table(table),
    )


def write_manifest(path: Path, outcomes: list[Outcome]) -> None:
    table = pa.Table.from_pylist([asdict(o) for o in outcomes], schema=MANIFEST_SCHEMA)
    with atomic_output(path) as tmp:
        pq.write_table(table, str(tmp))


def _log_traceback(out_root: Path, job: Job) -> Path:
    log = out_root / ERROR_LOG
    out_root.mkdir(parents=True, exist_ok=True)
    with open(log, "a") as fh:
        fh.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} {job.source}\n{traceback.format_exc()}\n")
    return log


@dataclass
class JobResult:
    """What running the skeleton on one input gives back to the executor: its manifest row, and the line that
    the driver prints on stderr when it failed."""

    outcome: Outcome
    error_line: str = ""


def run_job(stage: Stage, job: Job, out_root: Path, *, overlay: bool, force: bool, reporter: Reporter) -> JobResult:
    """The skeleton for one input, failures included: an InputError or an unexpected error becomes a `failed`
    row (the traceback of an unexpected one goes to the run folder's errors.log); only MemoryError and
    KeyboardInterrupt propagate."""
    started = time.perf_counter()
    try:
        outcome = process_job(stage, job, out_root, overlay=overlay, force=force, reporter=reporter)
    except InputError as exc:
        message = str(exc).replace("\n", " ")
        return JobResult(Outcome(job.rel, "failed", error=message), f"error: {job.source}: {message}")
    except (MemoryError, KeyboardInterrupt):
        raise
    except Exception as exc:  # an unexpected bug must not sink the other inputs either
        message = f"{exc.__class__.__name__}: {exc}".replace("\n", " ")
        log = _log_traceback(out_root, job)
        return JobResult(
            Outcome(job.rel, "failed", error=message), f"error: {job.source}: {message} (traceback in {log})"
        )
    if outcome.status != "skipped":
        outcome.seconds = round(time.perf_counter() - started, 3)
    return JobResult(outcome)


class RunRecord:
    """The driver's account of a run, the same under every executor: each finished input's error line on
    stderr, its progress, and the manifest, one row per finished input in input order, rewritten after each
    (so a run killed at any moment leaves a manifest that matches the outputs on disk)."""

    def __init__(self, manifest: Path, jobs: list[Job], reporter: Reporter) -> None:
        self.manifest, self.reporter = manifest, reporter
        self.order = {job.rel: i for i, job in enumerate(jobs)}
        self.finished: dict[int, Outcome] = {}

    def finish(self, job: Job, result: JobResult) -> None:
        if result.error_line:
            print(result.error_line, file=sys.stderr, flush=True)
        self.finished[self.order[job.rel]] = result.outcome
        write_manifest(self.manifest, self.outcomes)
        self.reporter.finish_input(job.rel, result.outcome.status, describe(result.outcome))

    @property
    def outcomes(self) -> list[Outcome]:
        return [self.finished[i] for i in sorted(self.finished)]


def run_stage(
    stage: Stage, jobs: list[Job], out_root: Path, *, overlay: bool, force: bool, reporter: Reporter
) -> list[Outcome]:
    """The local executor: run `stage` on every job in order, in this process. The batch goes on past failures."""
    remove_stale_partials(out_root)
    record = RunRecord(out_root / stage.manifest, jobs, reporter)
    try:
        for job in jobs:
            record.finish(job, run_job(stage, job, out_root, overlay=overlay, force=force, reporter=reporter))
    finally:
        reporter.close()
    return record.outcomes


def describe(outcome: Outcome) -> str:
    if outcome.status == "failed":
        return outcome.error
    if outcome.status == "skipped":
        return "outputs already complete"
    return f"{outcome.frames} frames, {outcome.tracks} tracks, {outcome.seconds:.1f} s"


@dataclass(frozen=True)
class RunSummary:
    """What a stage did over a batch: the counts and one Outcome per input."""

    stage: str
    out: Path
    outcomes: list[Outcome]

    def count(self, status: str) -> int:
        return sum(o.status == status for o in self.outcomes)

    @property
    def failed(self) -> int:
        return self.count("failed")

    def as_dict(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "out": str(self.out),
            "tool_version": __version__,
            "inputs": len(self.outcomes),
            **{s: self.count(s) for s in ("done", "skipped", "failed")},
            "frames": sum(o.frames for o in self.outcomes),
            "results": [asdict(o) for o in self.outcomes],
        }


def keypoints2d_jobs(path: Path) -> list[Job]:
    """One job per keypoints2d table that `path` holds (io.schema.find_keypoints2d_tables says which), named by
    the table's path relative to its folder, without `.parquet`."""
    root, tables = find_keypoints2d_tables(path)
    return [Job(p, p.relative_to(root).as_posix()[: -len(".parquet")]) for p in tables]
