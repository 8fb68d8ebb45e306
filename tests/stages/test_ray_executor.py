"""The Ray executor (`--executor ray`, a local Ray instance of 2 one-thread workers) against the local executor,
on the shared videos and a 160-frame clip: the same tables and manifests, skip-if-current, a worker killed by
PID mid-video, a bad input among good ones, a killed driver then a rerun, and Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from conftest import COURTYARD, STREET, copy_video, ffmpeg, require_shared, run_cli, wait_for

from camerapose_cli.errors import UsageError
from camerapose_cli.io.atomic import PARTIAL_MARK, partial_writer, pid_alive, split_writer_tag

pytestmark = pytest.mark.slow

# One torch thread in both executors: Ray gives each worker its CPUs' worth (1 here), and float sums over
# different thread counts differ in the last bits. At equal thread counts the tables must be bitwise equal.
ONE_THREAD = {"OMP_NUM_THREADS": "1"}
RAY = ["--executor", "ray", "--workers", "2", "--cpus-per-worker", "1"]
MANIFEST_COLUMNS = ["input", "status", "error", "frames", "people", "detections", "tracks", "model_sha256", "output"]


@pytest.fixture(scope="module")
def videos(tmp_path_factory, shared_videos) -> Path:
    """The shared videos and a 160-frame clip (the courtyard clip four times), long enough to kill mid-video."""
    folder = tmp_path_factory.mktemp("ray_videos")
    for video in shared_videos.glob("*.mp4"):
        copy_video(video, folder / video.name)
    ffmpeg("-stream_loop", "3", "-i", str(COURTYARD), "-c", "copy", str(folder / "long.mp4"))
    return folder


@pytest.fixture(scope="module")
def one_thread(tmp_path_factory) -> Path:
    preset = tmp_path_factory.mktemp("preset") / "one_thread.toml"
    preset.write_text("[extract]\nthreads = 1\nbatch_size = 4\n")
    return preset


@pytest.fixture(scope="module")
def local_run(videos, one_thread, tmp_path_factory) -> Path:
    """The local executor's extract, refine and lift over the videos: the reference."""
    out = tmp_path_factory.mktemp("local") / "run"
    for args in (
        ["extract", str(videos), "--out", str(out), "--overlay", "-p", str(one_thread)],
        ["refine", str(out)],
        ["lift", str(out)],
    ):
        result = run_cli(*args, "--quiet", env=ONE_THREAD)
        assert result.returncode == 0, result.stderr
    return out


def tables(out: Path, folder: str) -> dict[str, object]:
    return {p.name: pq.read_table(p) for p in sorted((out / folder).glob("*.parquet"))}


def assert_same_tables(out: Path, reference: Path, folder: str) -> None:
    mine, theirs = tables(out, folder), tables(reference, folder)
    assert sorted(mine) == sorted(theirs) and mine
    for name, table in mine.items():
        assert table.equals(theirs[name]), f"{folder}/{name} differs from the local executor's"


def manifest(out: Path, name: str = "manifest.parquet") -> pd.DataFrame:
    frame = pd.read_parquet(out / name)[MANIFEST_COLUMNS]
    frame["output"] = [Path(p).relative_to(out).as_posix() for p in frame["output"]]
    return frame


def partials(out: Path) -> list[Path]:
    return [p for p in out.rglob("*") if PARTIAL_MARK in p.name]


def test_ray_writes_the_local_executors_tables_manifests_and_overlays(videos, one_thread, local_run, tmp_path):
    out = tmp_path / "run"
    extract = run_cli("extract", str(videos), "--out", str(out), "--overlay", "-p", str(one_thread), "--json", *RAY)
    assert extract.returncode == 0, extract.stderr
    summary = json.loads(extract.stdout)
    assert summary["done"] == 4 and [r["input"] for r in summary["results"]] == sorted(p.name for p in videos.iterdir())
    assert_same_tables(out, local_run, "keypoints2d")
    pd.testing.assert_frame_equal(manifest(out), manifest(local_run))
    overlays = sorted(p.name for p in (out / "overlays").iterdir())
    assert overlays == sorted(p.name for p in (local_run / "overlays").iterdir()) and len(overlays) == 4

    for stage, folder in (("refine", "keypoints2d_refined"), ("lift", "keypoints3d")):
        result = run_cli(stage, str(out), "--json", *RAY)
        assert result.returncode == 0, result.stderr
        assert_same_tables(out, local_run, folder)
        rows = f"manifest_{stage}.parquet"
        pd.testing.assert_frame_equal(manifest(out, rows), manifest(local_run, rows))

    again = run_cli("extract", str(videos), "--out", str(out), "--overlay", "-p", str(one_thread), "--json", *RAY)
    assert again.returncode == 0 and json.loads(again.stdout)["skipped"] == 4, again.stderr
    assert not partials(out)


def start_extract(videos: Path, out: Path, preset: Path) -> subprocess.Popen:
    command = [sys.executable, "-m", "camerapose_cli", "extract", str(videos), "--out", str(out), "-p", str(preset)]
    return subprocess.Popen([*command, "--json", *RAY], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def partial_of(out: Path, name: str) -> Path | None:
    folder = out / "keypoints2d"
    if not folder.exists():
        return None
    return next((p for p in folder.iterdir() if p.name.startswith(f".{name}") and PARTIAL_MARK in p.name), None)


def test_a_worker_killed_mid_video_is_retried_and_the_run_completes_unchanged(videos, one_thread, local_run, tmp_path):
    out = tmp_path / "killed_worker"
    proc = start_extract(videos, out, one_thread)
    assert wait_for(lambda: partial_of(out, "long.mp4") is not None), "the long video never started"
    time.sleep(1.0)  # some batches into it
    writer = partial_of(out, "long.mp4")
    pid = int(split_writer_tag(partial_writer(writer))[1])
    assert pid != proc.pid  # a worker process, not the driver
    os.kill(pid, signal.SIGKILL)
    stdout, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 0, stderr
    assert json.loads(stdout)["done"] == 4
    assert_same_tables(out, local_run, "keypoints2d")
    pd.testing.assert_frame_equal(manifest(out), manifest(local_run))
    assert not partials(out)


def test_an_input_whose_worker_dies_past_its_retries_fails_alone_and_a_rerun_redoes_it(videos, tmp_path):
    preset = tmp_path / "no_retries.toml"
    preset.write_text("[extract]\nthreads = 1\nbatch_size = 4\n\n[ray]\nmax_retries = 0\n")
    out = tmp_path / "out"
    proc = start_extract(videos, out, preset)
    assert wait_for(lambda: partial_of(out, "long.mp4") is not None), "the long video never started"
    writer = partial_of(out, "long.mp4")
    os.kill(int(split_writer_tag(partial_writer(writer))[1]), signal.SIGKILL)
    stdout, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 1, stderr
    statuses = {r["input"]: (r["status"], r["error"]) for r in json.loads(stdout)["results"]}
    died = "the worker process died once on this input (killed, or out of memory)"
    assert statuses.pop("long.mp4") == ("failed", died)
    assert {status for status, _ in statuses.values()} == {"done"}, statuses
    assert not partials(out)
    rerun = run_cli("extract", str(videos), "--out", str(out), "-p", str(preset), "--json", *RAY)
    assert rerun.returncode == 0 and json.loads(rerun.stdout)["done"] == 1, rerun.stderr


def test_a_bad_input_costs_one_failed_row_and_one_error_line(tmp_path):
    require_shared(STREET)
    folder = tmp_path / "mixed"
    copy_video(STREET, folder / "good.mp4")
    (folder / "text.mp4").write_text("this is not a video\n")
    (folder / "empty.mp4").write_bytes(b"")
    result = run_cli("extract", str(folder), "--out", str(tmp_path / "out"), "--json", "--quiet", *RAY)
    assert result.returncode == 1, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert sorted(errors) == [
        f"error: {folder / 'empty.mp4'}: the file is empty (0 bytes)",
        f"error: {folder / 'text.mp4'}: not a readable video container (Invalid data found when processing input)",
    ]
    rows = pd.read_parquet(tmp_path / "out" / "manifest.parquet").set_index("input")["status"].to_dict()
    assert rows == {"empty.mp4": "failed", "good.mp4": "done", "text.mp4": "failed"}


def test_a_killed_driver_leaves_a_run_that_a_rerun_completes(videos, one_thread, local_run, tmp_path):
    out = tmp_path / "killed_driver"
    proc = start_extract(videos, out, one_thread)
    finished = out / "keypoints2d" / "street_people_5f.mp4.parquet"
    assert wait_for(lambda: finished.exists() and partial_of(out, "long.mp4") is not None)
    proc.kill()
    proc.communicate()
    # Ray stops the dead driver's workers a moment later; they may still finish the videos they hold (whole tables).
    assert wait_for(lambda: not any(pid_alive(int(split_writer_tag(partial_writer(p))[1])) for p in partials(out)))
    tables = out / "keypoints2d"
    complete = {p.name.removesuffix(".parquet") for p in tables.glob("*.parquet") if PARTIAL_MARK not in p.name}
    rerun = run_cli("extract", str(videos), "--out", str(out), "-p", str(one_thread), "--json", *RAY)
    assert rerun.returncode == 0, rerun.stderr
    statuses = {r["input"]: r["status"] for r in json.loads(rerun.stdout)["results"]}
    assert "street_people_5f.mp4" in complete and set(statuses.values()) <= {"skipped", "done"}
    assert all(statuses[name] == "skipped" for name in complete)  # finished tables are never redone
    assert_same_tables(out, local_run, "keypoints2d")
    assert not partials(out)


def test_ctrl_c_on_the_driver_cancels_the_workers_and_leaves_no_partial_files(videos, one_thread, tmp_path):
    out = tmp_path / "interrupted"
    proc = start_extract(videos, out, one_thread)
    assert wait_for(lambda: partial_of(out, "long.mp4") is not None)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "interrupted" in stderr
    assert not partials(out)
    assert not (out / "keypoints2d" / "long.mp4.parquet").exists()


def test_the_ray_executor_without_ray_is_a_usage_error(monkeypatch, tmp_path):
    import camerapose_cli as cp

    monkeypatch.setitem(sys.modules, "ray", None)  # as if the extra were not installed
    with pytest.raises(UsageError, match=r'pip install "camerapose\[ray\]"'):
        cp.extract(require_shared(STREET), tmp_path / "out", executor="ray")
    assert not (tmp_path / "out").exists()


def test_an_unknown_executor_is_refused_at_parse_time(tmp_path):
    result = run_cli("extract", str(require_shared(STREET)), "--out", str(tmp_path / "o"), "--executor", "spark")
    assert result.returncode == 2 and "spark" in result.stderr


@pytest.mark.parametrize(
    ("resources", "keys", "inputs", "expected"),
    [
        ({"CPU": 16.0}, {}, 100, 8),  # the default 2 CPUs per worker
        ({"CPU": 16.0}, {"cpus_per_worker": 1}, 100, 16),
        ({"CPU": 16.0}, {"cpus_per_worker": 1}, 3, 3),  # never more workers than inputs
        ({"CPU": 64.0, "GPU": 2.0}, {"cpus_per_worker": 4, "gpus_per_worker": 0.25}, 100, 8),
        ({"CPU": 2.0}, {"workers": 2, "cpus_per_worker": 1}, 100, 2),
        ({"CPU": 2.0}, {"workers": 2, "cpus_per_worker": 2}, 100, "do not fit"),
        ({"CPU": 16.0}, {"gpus_per_worker": 1}, 100, "0 GPUs"),
    ],
)
def test_worker_count_follows_the_cluster_and_refuses_what_cannot_be_scheduled(resources, keys, inputs, expected):
    from types import SimpleNamespace

    from camerapose_cli.config import load_preset
    from camerapose_cli.stages.ray_executor import worker_count

    cluster = SimpleNamespace(cluster_resources=lambda: resources)
    config = load_preset("default").ray.with_values(**keys)
    if isinstance(expected, str):
        with pytest.raises(UsageError, match=expected):
            worker_count(cluster, config, inputs)
    else:
        assert worker_count(cluster, config, inputs) == expected
