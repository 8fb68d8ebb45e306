"""The one stage skeleton (stages/base.py) with a stage made for the test: skip-if-current by fingerprint,
atomic tables, an overlay failure that keeps its table, old outputs removed on failure, the error log."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from camerapose_cli.errors import InputError
from camerapose_cli.io.atomic import PARTIAL_MARK
from camerapose_cli.io.schema import read_metadata, write_parquet
from camerapose_cli.progress import QuietReporter
from camerapose_cli.stages.base import ERROR_LOG, Job, Stage, run_stage


class CountingStage(Stage):
    """Writes a two-row table; counts its calls; fails on demand."""

    name = "count"
    table_dir = "tables"
    overlay_dir = "overlays"
    manifest = "manifest_count.parquet"
    stamp_prefix = "input"

    def __init__(self, setting: int = 1) -> None:
        self.setting = setting
        self.tables = self.overlays = 0
        self.table_error: Exception | None = None
        self.overlay_error: Exception | None = None

    def settings(self) -> dict[str, Any]:
        return {"setting": self.setting}

    def write_table(self, job: Job, path: Path, footer: dict[str, Any], progress) -> None:
        self.tables += 1
        if self.table_error is not None:
            raise self.table_error
        table = pa.table({"frame": pa.array([0, 1], pa.int64()), "track_id": pa.array([1, 1], pa.int64())})
        write_parquet(table, path, {**footer, "frames": 2})

    def write_overlay(self, job: Job, table: Path, path: Path, progress) -> None:
        self.overlays += 1
        if self.overlay_error is not None:
            raise self.overlay_error
        path.write_bytes(b"overlay")


@pytest.fixture
def job(tmp_path) -> Job:
    source = tmp_path / "in" / "clip.mp4"
    source.parent.mkdir()
    source.write_bytes(b"not really a video")
    return Job(source, "clip.mp4")


def run(stage: Stage, job: Job, out: Path, overlay: bool = False, force: bool = False):
    return run_stage(stage, [job], out, overlay=overlay, force=force, reporter=QuietReporter())[0]


def test_a_current_table_is_skipped_and_a_changed_setting_redoes_it(job, tmp_path):
    out = tmp_path / "out"
    stage = CountingStage()
    assert run(stage, job, out).status == "done"
    assert run(stage, job, out).status == "skipped" and stage.tables == 1
    assert run(CountingStage(setting=2), job, out).status == "done"
    assert run(stage, job, out, force=True).status == "done"
    meta = read_metadata(out / "tables" / "clip.mp4.parquet")
    assert {"fingerprint", "input_size", "input_mtime_ns", "tool_version"} <= set(meta)


def test_a_changed_input_is_redone(job, tmp_path):
    out = tmp_path / "out"
    stage = CountingStage()
    run(stage, job, out)
    job.source.write_bytes(b"another video, another size")
    assert run(stage, job, out).status == "done" and stage.tables == 2


def test_an_overlay_that_fails_keeps_its_good_table(job, tmp_path):
    out = tmp_path / "out"
    stage = CountingStage()
    stage.overlay_error = InputError("overlay: the source video moved")
    outcome = run(stage, job, out, overlay=True)
    assert outcome.status == "failed" and "source video moved" in outcome.error
    table = out / "tables" / "clip.mp4.parquet"
    assert table.is_file()
    stamp = table.stat().st_mtime_ns
    stage.overlay_error = None
    outcome = run(stage, job, out, overlay=True)
    assert outcome.status == "done" and stage.tables == 1  # only the overlay was drawn
    assert table.stat().st_mtime_ns == stamp and (out / "overlays" / "clip.mp4.mp4").read_bytes() == b"overlay"


def test_a_failed_table_removes_the_old_outputs(job, tmp_path):
    out = tmp_path / "out"
    stage = CountingStage()
    run(stage, job, out, overlay=True)
    stage.table_error = InputError("the file is now corrupt")
    outcome = run(stage, job, out, overlay=True, force=True)
    assert outcome.status == "failed"
    assert not (out / "tables" / "clip.mp4.parquet").exists() and not (out / "overlays" / "clip.mp4.mp4").exists()
    assert not list(out.rglob(".*partial*"))


def test_an_unexpected_error_leaves_one_line_and_a_traceback_in_the_run_folder(job, tmp_path, capsys):
    out = tmp_path / "out"
    stage = CountingStage()
    stage.table_error = RuntimeError("a bug")
    outcome = run(stage, job, out)
    assert outcome.status == "failed" and outcome.error == "RuntimeError: a bug"
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and ERROR_LOG in err[0]
    log = (out / ERROR_LOG).read_text()
    assert "Traceback" in log and "write_table" in log and str(job.source) in log


def test_partials_of_killed_runs_are_removed_in_every_output_folder(job, tmp_path):
    out = tmp_path / "out"
    dead_pid = 2**22 + 12345  # above Linux's pid_max: no live process has it
    stale = [out / folder / f".clip.mp4{PARTIAL_MARK}{dead_pid}.parquet" for folder in ("tables", "overlays3d", "x/y")]
    for path in stale:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"half")
    run(CountingStage(), job, out)
    assert not any(path.exists() for path in stale)
