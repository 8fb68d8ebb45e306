"""The extract stage for one input: decode → detect/pose2d → track → write keypoints2d (+ overlay)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from camerapose_cli import __version__
from camerapose_cli.atomic import atomic_output
from camerapose_cli.errors import InputError
from camerapose_cli.overlay import render_overlay
from camerapose_cli.pose2d import FrameDetections, PoseDetector
from camerapose_cli.prefetch import prefetch
from camerapose_cli.resources import file_sha256
from camerapose_cli.runner import Job, Outcome, run_jobs
from camerapose_cli.schema import KeypointTable, Keypoints2DWriter, file_stamp, output_is_current, read_keypoints2d
from camerapose_cli.track import assign_tracks, make_tracker
from camerapose_cli.video import FrameBatch, MediaInfo, iter_frame_batches, probe

# Parameters that change the keypoints: a table made with other values is redone, not skipped.
RESULT_PARAMS = ("imgsz", "conf", "iou", "max_det", "tracker")


@dataclass(frozen=True)
class ExtractPaths:
    table: Path
    overlay: Path | None


@dataclass
class ExtractSummary:
    frames: int
    people: int
    detections: int
    tracks: int
    overlay_only: bool = False


def output_paths(out_root: Path, rel: str, source: Path, want_overlay: bool) -> ExtractPaths:
    """Where one input's outputs go: keypoints2d/<rel>.parquet and overlays/<rel>.mp4 (.png for images)."""
    from camerapose_cli.video import IMAGE_SUFFIXES

    overlay = None
    if want_overlay:
        suffix = ".png" if source.suffix.lower() in IMAGE_SUFFIXES else ".mp4"
        overlay = out_root / "overlays" / f"{rel}{suffix}"
    return ExtractPaths(out_root / "keypoints2d" / f"{rel}.parquet", overlay)


def result_fingerprint(params: dict[str, Any], model_sha256: str) -> str:
    return json.dumps({"model_sha256": model_sha256, **{k: params[k] for k in RESULT_PARAMS}}, sort_keys=True)


def table_is_current(table_path: Path, source: Path, fingerprint: str) -> bool:
    """True when `table_path` is a complete extract of the unchanged `source` made with the same settings."""
    return output_is_current(table_path, source, "source", {"fingerprint": fingerprint})


def frame_rows(
    rel: str, info: MediaInfo, batch: FrameBatch, detections: list[FrameDetections], tracker, scale: float
) -> KeypointTable:
    """Track one batch's detections and lay the confirmed people out as table rows."""
    parts: list[tuple[int, float, np.ndarray, np.ndarray, FrameDetections]] = []
    for frame_index, time_s, frame, dets in zip(batch.indices, batch.times, batch.frames, detections):
        det_idx, track_ids = assign_tracks(tracker, dets, frame, scale)
        if len(det_idx):
            parts.append((int(frame_index), float(time_s), det_idx, track_ids, dets))
    counts = [len(p[2]) for p in parts]
    n = sum(counts)
    if n == 0:
        frames = np.zeros(0, np.int64)
        return KeypointTable(
            np.zeros(0, object), frames, np.zeros(0), frames.copy(), np.zeros((0, 4), np.float32),
            np.zeros(0, np.float32), np.zeros((0, 17, 3), np.float32), np.zeros(0, np.int32),
            np.zeros(0, np.int32), {},
        )  # fmt: skip
    return KeypointTable(
        video=np.full(n, rel, dtype=object),
        frame=np.repeat([p[0] for p in parts], counts).astype(np.int64),
        time_s=np.repeat([p[1] for p in parts], counts).astype(np.float64),
        track_id=np.concatenate([p[3] for p in parts]),
        bbox=np.concatenate([p[4].boxes[p[2]] for p in parts]),
        score=np.concatenate([p[4].scores[p[2]] for p in parts]),
        keypoints=np.concatenate([p[4].keypoints[p[2]] for p in parts]),
        width=np.full(n, info.width, np.int32),
        height=np.full(n, info.height, np.int32),
        metadata={},
    )


def extract_input(
    source: Path,
    rel: str,
    paths: ExtractPaths,
    detector: PoseDetector,
    params: dict[str, Any],
    overlay_params: dict[str, Any],
    *,
    preset_name: str,
    force: bool,
    on_start: Callable[[int], None] = lambda total: None,
    on_frames: Callable[[int], None] = lambda n: None,
) -> ExtractSummary | None:
    """Run the whole extract stage on one input. Returns None when its outputs are already complete."""
    model_sha = file_sha256(detector.model_path)
    fingerprint = result_fingerprint(params, model_sha)
    current = not force and table_is_current(paths.table, source, fingerprint)
    if current and (paths.overlay is None or paths.overlay.exists()):
        return None

    info = probe(source)
    if current:  # the table is done; only the overlay is missing (e.g. a rerun that adds --overlay)
        table = read_keypoints2d(paths.table)
        on_start(info.frame_count)
        _write_overlay(info, table, paths.overlay, overlay_params, int(params["batch_size"]))
        summary = summarize(table, int(table.metadata["frames"]))
        summary.overlay_only = True
        return summary

    on_start(info.frame_count)
    started = time.perf_counter()
    geometry = detector.geometry(info.width, info.height)
    scale = geometry.resized[0] / info.width
    tracker = make_tracker(str(params["tracker"]))
    frames_seen = 0
    with atomic_output(paths.table) as tmp:
        writer = Keypoints2DWriter(tmp)
        try:
            batches = iter_frame_batches(info, int(params["batch_size"]), geometry.resized)
            for batch in prefetch(batches, int(params["prefetch_batches"])):
                detections = detector.detect(batch.frames, geometry)
                writer.append(frame_rows(rel, info, batch, detections, tracker, scale))
                frames_seen += len(batch.indices)
                on_frames(len(batch.indices))
        except BaseException:
            writer.abort()
            raise
        if frames_seen == 0:
            writer.abort()
            raise InputError("no frame could be decoded")
        writer.close(
            {
                "video": rel,
                "source": str(source.resolve()),
                **file_stamp(source, "source"),
                "fps": info.fps,
                "frames": frames_seen,
                "width": info.width,
                "height": info.height,
                "rotation": info.rotation,
                "model": detector.model_path.name,
                "model_sha256": model_sha,
                "tool_version": __version__,
                "preset": preset_name,
                "params": {k: params[k] for k in RESULT_PARAMS},
                "fingerprint": fingerprint,
                "seconds": round(time.perf_counter() - started, 3),
            }
        )
    table = read_keypoints2d(paths.table)
    if paths.overlay is not None:
        _write_overlay(info, table, paths.overlay, overlay_params, int(params["batch_size"]))
    return summarize(table, frames_seen)


def _write_overlay(info: MediaInfo, table: KeypointTable, path: Path, params: dict[str, Any], batch_size: int) -> None:
    with atomic_output(path) as tmp:
        render_overlay(info, table, tmp, params, batch_size)


def summarize(table: KeypointTable, frames: int) -> ExtractSummary:
    people = int(np.bincount(table.frame).max()) if len(table) else 0
    return ExtractSummary(frames, people, len(table), len(np.unique(table.track_id)))


def extract_jobs(root: Path) -> list[Job]:
    """One job per video or image under `root`, named by its path relative to `root`."""
    from camerapose_cli.video import discover_inputs

    base = root if root.is_dir() else root.parent
    return [Job(p, p.relative_to(base).as_posix()) for p in discover_inputs(root)]


def run_extract(
    jobs: list[Job],
    out_root: Path,
    params: dict[str, Any],
    overlay_params: dict[str, Any],
    *,
    pose_model: Path,
    preset_name: str,
    want_overlay: bool,
    force: bool,
    reporter,
) -> list[Outcome]:
    """Extract every job into `out_root`, writing `out_root/manifest.parquet`."""
    from camerapose_cli.atomic import remove_stale_partials

    remove_stale_partials(out_root)
    detector = PoseDetector(
        pose_model,
        imgsz=int(params["imgsz"]),
        device=str(params["device"]),
        half=bool(params["half"]),
        conf=float(params["conf"]),
        iou=float(params["iou"]),
        max_det=int(params["max_det"]),
        threads=int(params["threads"]),
    )
    model_name, model_sha = pose_model.name, file_sha256(pose_model)

    def work(job, progress) -> Outcome:
        paths = output_paths(out_root, job.rel, job.source, want_overlay)
        try:
            summary = extract_input(
                job.source, job.rel, paths, detector, params, overlay_params,
                preset_name=preset_name, force=force,
                on_start=lambda total: progress.start_input(job.rel, total), on_frames=progress.advance,
            )  # fmt: skip
        except InputError:
            # Outputs left from an earlier run no longer describe this input: the manifest says failed.
            for stale in (paths.table, output_paths(out_root, job.rel, job.source, True).overlay):
                stale.unlink(missing_ok=True)
            raise
        status = "done"
        if summary is None:
            table = read_keypoints2d(paths.table)
            summary, status = summarize(table, int(table.metadata["frames"])), "skipped"
        return Outcome(
            job.rel, status, frames=summary.frames, people=summary.people, detections=summary.detections,
            tracks=summary.tracks, model=model_name, model_sha256=model_sha, output=str(paths.table),
        )  # fmt: skip

    return run_jobs(jobs, work, reporter, out_root / "manifest.parquet")
