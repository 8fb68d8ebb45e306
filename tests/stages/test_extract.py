"""`camerapose extract` end to end on the real shared videos: the output contract, overlays, reruns."""

from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from conftest import COURTYARD, run_cli

from camerapose_cli.io.schema import KEYPOINTS2D_SCHEMA, read_keypoints2d, read_metadata

pytestmark = pytest.mark.slow


def decoded_frame_count(path: Path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


def test_summary_and_manifest(extract_run, shared_videos):
    out, summary = extract_run
    names = sorted(p.name for p in shared_videos.glob("*.mp4"))
    assert summary["done"] == len(names) and summary["failed"] == 0
    manifest = pd.read_parquet(out / "manifest.parquet")
    assert sorted(manifest["input"]) == names
    assert set(manifest["status"]) == {"done"}
    assert (manifest["model"] == "yolo11n-pose.pt").all()
    assert manifest["model_sha256"].str.fullmatch(r"[0-9a-f]{64}").all()
    assert (manifest["seconds"] > 0).all() and (manifest["tool_version"] != "").all()


def test_frame_count_equals_decoded_frames(extract_run, shared_videos):
    out, _ = extract_run
    for video in shared_videos.glob("*.mp4"):
        table = read_keypoints2d(out / "keypoints2d" / f"{video.name}.parquet")
        decoded = decoded_frame_count(video)
        assert int(table.metadata["frames"]) == decoded
        assert table.frame.min() >= 0 and table.frame.max() < decoded
        # One row per (frame, track): no track appears twice in a frame.
        assert len(set(zip(table.frame.tolist(), table.track_id.tolist()))) == len(table)


def test_courtyard_has_one_dominant_person(extract_run):
    out, _ = extract_run
    table = read_keypoints2d(out / "keypoints2d" / f"{COURTYARD.name}.parquet")
    frames = int(table.metadata["frames"])
    assert len(np.unique(table.frame)) >= 0.9 * frames
    ids, counts = np.unique(table.track_id, return_counts=True)
    assert counts.max() >= 0.9 * frames, dict(zip(ids.tolist(), counts.tolist()))
    dominant = table.track_id == ids[counts.argmax()]
    # Keypoints are on the person: inside the frame and mostly inside the box, with real confidences.
    kp = table.keypoints[dominant]
    assert (kp[..., 0] <= 1080).all() and (kp[..., 1] <= 1920).all()
    assert np.median(kp[..., 2]) > 0.5
    boxes = table.bbox[dominant]
    inside = (kp[..., 0] >= boxes[:, None, 0] - 5) & (kp[..., 0] <= boxes[:, None, 2] + 5)
    assert inside.mean() > 0.95


def test_table_metadata(extract_run):
    out, _ = extract_run
    meta = read_metadata(out / "keypoints2d" / f"{COURTYARD.name}.parquet")
    assert meta["source"].endswith(COURTYARD.name)
    assert float(meta["fps"]) == pytest.approx(12.0)
    assert meta["frames"] == "40" and meta["model"] == "yolo11n-pose.pt"
    assert meta["tool_version"] and meta["preset"] == "default" and meta["decoder"] == "decord"
    table = read_keypoints2d(out / "keypoints2d" / f"{COURTYARD.name}.parquet")
    assert (table.width == 1080).all() and (table.height == 1920).all()
    np.testing.assert_allclose(np.unique(table.time_s), np.unique(table.frame) / 12.0, atol=1e-3)


def test_schema_reads_back_with_pandas_polars_and_duckdb(extract_run):
    import duckdb
    import polars as pl

    out, _ = extract_run
    path = out / "keypoints2d" / f"{COURTYARD.name}.parquet"
    assert pq.read_schema(path).equals(KEYPOINTS2D_SCHEMA, check_metadata=False)

    frame = pd.read_parquet(path)
    assert list(frame.columns) == KEYPOINTS2D_SCHEMA.names
    assert len(frame["kp_x"].iloc[0]) == 17 and frame["frame"].dtype == np.int64

    pl_frame = pl.read_parquet(path)
    assert pl_frame.schema["kp_conf"] == pl.Array(pl.Float32, 17)
    assert pl_frame.schema["bbox"] == pl.Array(pl.Float32, 4)
    assert pl_frame.height == len(frame)

    con = duckdb.connect()
    rows, mean_nose_x = con.execute(f"SELECT count(*), avg(kp_x[1]) FROM read_parquet('{path}')").fetchone()
    assert rows == len(frame)
    assert mean_nose_x == pytest.approx(np.mean([v[0] for v in frame["kp_x"]]), rel=1e-5)


def test_overlay_is_browser_playable_with_source_frame_count(extract_run, shared_videos):
    out, _ = extract_run
    for video in shared_videos.glob("*.mp4"):
        overlay = out / "overlays" / f"{video.name}.mp4"
        with av.open(str(overlay)) as container, av.open(str(video)) as source:
            stream, src = container.streams.video[0], source.streams.video[0]
            assert stream.codec_context.name == "h264"
            assert stream.codec_context.pix_fmt == "yuv420p"
            assert float(stream.average_rate) == pytest.approx(float(src.average_rate), rel=1e-3)
            frames = list(container.decode(stream))
        assert len(frames) == decoded_frame_count(video)
        assert (frames[0].width, frames[0].height) == (src.codec_context.width, src.codec_context.height)
        assert overlay.read_bytes()[4:8] == b"ftyp"


def test_overlay_draws_the_skeleton(extract_run):
    """Overlay pixels differ from the source where the person is, and barely elsewhere."""
    out, _ = extract_run
    table = read_keypoints2d(out / "keypoints2d" / f"{COURTYARD.name}.parquet")
    with av.open(str(out / "overlays" / f"{COURTYARD.name}.mp4")) as a, av.open(str(COURTYARD)) as b:
        drawn = next(a.decode(video=0)).to_ndarray(format="rgb24").astype(int)
        plain = next(b.decode(video=0)).to_ndarray(format="rgb24").astype(int)
    x1, y1, x2, y2 = table.bbox[table.frame == 0][0].astype(int)
    diff = np.abs(drawn - plain).sum(-1)
    near_person = diff[y1:y2, x1:x2]
    far_corner = diff[: y1 // 2, : max(x1 // 2, 1)]
    assert (near_person > 60).mean() > 5 * max((far_corner > 60).mean(), 1e-3)


def test_rerun_skips_and_force_redoes(extract_run, shared_videos):
    out, _ = extract_run
    table = out / "keypoints2d" / f"{COURTYARD.name}.parquet"
    before = table.stat().st_mtime_ns
    again = run_cli("extract", str(shared_videos), "--out", str(out), "--overlay", "--json")
    assert again.returncode == 0, again.stderr
    summary = json.loads(again.stdout)
    assert summary["skipped"] == summary["inputs"] and summary["done"] == 0
    assert table.stat().st_mtime_ns == before
    forced = run_cli("extract", str(COURTYARD), "--out", str(out), "--force", "--json", "-q")
    assert forced.returncode == 0 and json.loads(forced.stdout)["done"] == 1
    assert table.stat().st_mtime_ns != before


def test_changed_settings_are_redone_not_skipped(tmp_path):
    from conftest import STREET, require_shared

    require_shared(STREET)
    out = tmp_path / "run"
    first = run_cli("extract", str(STREET), "--out", str(out), "--json", "--pipeline", "cpu-fast")
    second = run_cli("extract", str(STREET), "--out", str(out), "--json", "--pipeline", "cpu-fast", "--conf", "0.5")
    assert json.loads(first.stdout)["done"] == 1
    assert json.loads(second.stdout)["done"] == 1  # a different threshold makes a different table


def test_demo_runs_on_the_packaged_sample_photos(tmp_path):
    result = run_cli("demo", "--out", str(tmp_path / "demo"), "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["done"] == 2
    bus = read_keypoints2d(tmp_path / "demo" / "keypoints2d" / "bus.jpg.parquet")
    assert len(bus) >= 3 and (bus.frame == 0).all()
    assert (tmp_path / "demo" / "overlays" / "bus.jpg.png").stat().st_size > 10_000
