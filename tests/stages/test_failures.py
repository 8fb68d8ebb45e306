"""Bad inputs, usage errors, SIGKILL-and-resume and Ctrl-C: nothing lost, nothing half-written."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import COURTYARD, STREET, copy_video, ffmpeg, require_shared, run_cli, wait_for

from camerapose_cli.io.atomic import PARTIAL_MARK
from camerapose_cli.io.schema import read_keypoints2d

pytestmark = pytest.mark.slow


def without_read_permission() -> list[str]:
    """A command prefix under which a mode-000 file is unreadable, even for root (CI runs as root)."""
    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv: cannot make a file unreadable")
    return ["setpriv", "--bounding-set", "-dac_override,-dac_read_search"]


@pytest.fixture(scope="module")
def bad_folder(tmp_path_factory) -> Path:
    require_shared(STREET)
    folder = tmp_path_factory.mktemp("bad")
    copy_video(STREET, folder / "good.MP4")
    faststart = folder / "faststart.tmp"
    ffmpeg("-i", str(COURTYARD), "-c", "copy", "-movflags", "+faststart", "-f", "mp4", str(faststart))
    data = faststart.read_bytes()
    (folder / "truncated.mp4").write_bytes(data[: len(data) // 2])  # index intact, frames cut off
    faststart.unlink()
    corrupt = bytearray(STREET.read_bytes())
    rng = np.random.default_rng(0)
    for i in rng.integers(0, 4000, 400):
        corrupt[i] = int(rng.integers(0, 256))
    (folder / "corrupt.mp4").write_bytes(bytes(corrupt))
    (folder / "text.mp4").write_text("this is not a video\n")
    (folder / "empty.mp4").write_bytes(b"")
    unreadable = folder / "unreadable.mp4"
    shutil.copy(STREET, unreadable)
    unreadable.chmod(0)
    ffmpeg("-f", "lavfi", "-i", "sine=frequency=440:duration=1", "-c:a", "aac", str(folder / "audio_only.mp4"))
    ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "color=c=gray:s=320x240:d=1:r=10",
        "-c:v",
        "libx264",
        "-pix_fmt",
        "yuv420p",
        str(folder / "no_people.mp4"),
    )
    return folder


@pytest.fixture(scope="module")
def bad_run(bad_folder, tmp_path_factory):
    out = tmp_path_factory.mktemp("badrun") / "out"
    result = run_cli(
        "extract",
        str(bad_folder),
        "--out",
        str(out),
        "--json",
        "--pipeline",
        "cpu-fast",
        prefix=without_read_permission(),
    )
    return out, result


EXPECTED_ERRORS = {
    "truncated.mp4": "decoding failed at frame",
    "corrupt.mp4": "not a readable video container",
    "text.mp4": "not a readable video container",
    "empty.mp4": "the file is empty",
    "unreadable.mp4": "permission denied",
    "audio_only.mp4": "no video stream (streams: audio)",
}


def test_bad_inputs_are_recorded_and_the_batch_goes_on(bad_run):
    out, result = bad_run
    assert result.returncode == 1  # some input failed; the rest were processed
    manifest = pd.read_parquet(out / "manifest.parquet").set_index("input")
    assert len(manifest) == 8
    for name, fragment in EXPECTED_ERRORS.items():
        assert manifest.loc[name, "status"] == "failed"
        assert fragment in manifest.loc[name, "error"], manifest.loc[name, "error"]
        # one line on stderr that names the file and the problem
        lines = [line for line in result.stderr.splitlines() if line.startswith("error:") and name in line]
        assert len(lines) == 1 and fragment in lines[0]
        assert not (out / "keypoints2d" / f"{name}.parquet").exists()
    assert manifest.loc["good.MP4", "status"] == "done"
    assert manifest.loc["good.MP4", "people"] >= 3
    summary = json.loads(result.stdout)
    assert (summary["done"], summary["failed"]) == (2, 6)


def test_a_video_with_no_people_is_a_valid_empty_table(bad_run):
    out, _ = bad_run
    manifest = pd.read_parquet(out / "manifest.parquet").set_index("input")
    assert manifest.loc["no_people.mp4", "status"] == "done"
    table = read_keypoints2d(out / "keypoints2d" / "no_people.mp4.parquet")
    assert len(table) == 0 and table.metadata["frames"] == "10"


def test_failed_runs_leave_no_partial_files(bad_run):
    out, _ = bad_run
    assert not [p for p in out.rglob("*") if PARTIAL_MARK in p.name]


def test_usage_errors_exit_2(tmp_path):
    missing = run_cli("extract", str(tmp_path / "does-not-exist"))
    assert missing.returncode == 2 and "does not exist" in missing.stderr
    (tmp_path / "empty").mkdir()
    nothing = run_cli("extract", str(tmp_path / "empty"), "--out", str(tmp_path / "o"))
    assert nothing.returncode == 2 and "no videos or images found" in nothing.stderr
    preset = run_cli("extract", str(STREET), "--pipeline", "no-such-preset", "--out", str(tmp_path / "o"))
    assert preset.returncode == 2 and "no preset" in preset.stderr
    assert run_cli("extract", str(STREET), "--bogus-flag").returncode == 2


@pytest.mark.parametrize(
    "args",
    [
        ["extract", "{video}", "--tracker", "bytetrak"],
        ["extract", "{video}", "--device", "gpu"],
        ["extract", "{video}", "--batch-size", "0"],
        ["eval", "--mocap", "{video}", "--split", "test_unsen"],
        ["train", "--mocap", "{video}", "--model", "lfter"],
    ],
    ids=["tracker", "device", "batch-size", "split", "model"],
)
def test_a_mistyped_choice_is_a_usage_error_before_any_input(tmp_path, args):
    out = tmp_path / "out"
    where = [] if args[0] == "eval" else ["--out", str(out)]  # eval writes nothing
    result = run_cli(*[a.format(video=STREET) for a in args], *where)
    assert result.returncode == 2, result.stderr
    assert not out.exists()  # nothing was processed: no manifest full of failures


def test_train_refuses_bad_inputs_with_one_line_and_exit_2(tmp_path):
    not_bvh = tmp_path / "clip.bvh"
    not_bvh.write_text("this is not motion capture")
    result = run_cli("train", "--mocap", str(not_bvh), "--out", str(tmp_path / "t"), "--steps", "1", "--quiet")
    assert result.returncode == 2 and result.stderr.strip() == f"error: {not_bvh}: not a BVH file (no HIERARCHY)"


def outputs_of(out: Path) -> dict[str, object]:
    """Every table's rows (keypoint columns) and every overlay's frame count: what must survive a kill."""
    import av

    result: dict[str, object] = {}
    for table in sorted((out / "keypoints2d").rglob("*.parquet")):
        t = read_keypoints2d(table)
        result[table.name] = (t.frame.tolist(), t.track_id.tolist(), np.round(t.keypoints, 3).tolist())
    for overlay in sorted((out / "overlays").rglob("*.mp4")):
        with av.open(str(overlay)) as c:
            result[overlay.name] = sum(1 for _ in c.decode(video=0))
    return result


def start_extract(videos: Path, out: Path) -> subprocess.Popen:
    command = [
        sys.executable,
        "-m",
        "camerapose_cli",
        "extract",
        str(videos),
        "--out",
        str(out),
        "--overlay",
        "--batch-size",
        "4",
        "--quiet",
    ]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def test_sigkill_then_resume_gives_the_same_outputs(extract_run, shared_videos, tmp_path):
    reference, _ = extract_run
    out = tmp_path / "killed"
    # Kill at several moments: while the first table is being written, and after some outputs exist.
    moments = [
        lambda: (
            any(p.name.startswith(".") for p in (out / "keypoints2d").glob("*"))
            if (out / "keypoints2d").exists()
            else False
        ),
        lambda: len(list((out / "keypoints2d").glob("*.parquet"))) >= 1 if (out / "keypoints2d").exists() else False,
    ]
    for moment in moments:
        proc = start_extract(shared_videos, out)
        assert wait_for(moment, timeout=120), "the run never reached the kill point"
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    resumed = run_cli("extract", str(shared_videos), "--out", str(out), "--overlay", "--json")
    assert resumed.returncode == 0, resumed.stderr
    assert outputs_of(out) == outputs_of(reference)
    assert not [p for p in out.rglob("*") if PARTIAL_MARK in p.name]
    manifest = pd.read_parquet(out / "manifest.parquet")
    assert set(manifest["status"]) <= {"done", "skipped"} and len(manifest) == 3


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_stops_cleanly_without_partial_files(shared_videos, tmp_path, sig):
    out = tmp_path / "interrupted"
    proc = start_extract(shared_videos, out)

    def partial():
        return (out / "keypoints2d").exists() and any(PARTIAL_MARK in p.name for p in (out / "keypoints2d").iterdir())

    assert wait_for(partial, timeout=120)
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "interrupted" in stderr.decode()
    assert not [p for p in out.rglob("*") if PARTIAL_MARK in p.name]
