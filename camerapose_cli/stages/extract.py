"""The extract stage: discover → decode → detect (pose2d) → track → write keypoints2d (+ overlay)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from camerapose_cli.config import ExtractSection, OverlaySection
from camerapose_cli.core.memory import fix_mmap_threshold
from camerapose_cli.core.skeleton import NUM_COCO_JOINTS
from camerapose_cli.detect.pose2d import FrameDetections, LetterboxGeometry, PoseDetector
from camerapose_cli.detect.track import assign_tracks, make_tracker
from camerapose_cli.errors import InputError
from camerapose_cli.io.overlay import render_overlay
from camerapose_cli.io.prefetch import prefetch
from camerapose_cli.io.resources import file_sha256
from camerapose_cli.io.schema import Keypoints2DWriter, KeypointTable, read_keypoints2d
from camerapose_cli.io.video import (
    Decoder,
    DecordError,
    FrameBatch,
    MediaInfo,
    choose_decoder,
    discover_inputs,
    iter_frame_batches,
    probe,
)
from camerapose_cli.progress import Reporter
from camerapose_cli.stages.base import Job, Stage


def extract_jobs(root: Path) -> list[Job]:
    """One job per video or image under `root`, named by its path relative to `root`."""
    base = root if root.is_dir() else root.parent
    return [Job(p, p.relative_to(base).as_posix()) for p in discover_inputs(root)]


def empty_keypoint_table() -> KeypointTable:
    frames = np.zeros(0, np.int64)
    return KeypointTable(
        np.zeros(0, object),
        frames,
        np.zeros(0),
        frames.copy(),
        np.zeros((0, 4), np.float32),
        np.zeros(0, np.float32),
        np.zeros((0, NUM_COCO_JOINTS, 3), np.float32),
        np.zeros(0, np.int32),
        np.zeros(0, np.int32),
        {},
    )


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
        return empty_keypoint_table()
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


class ExtractStage(Stage):
    name = "extract"
    table_dir = "keypoints2d"
    overlay_dir = "overlays"
    manifest = "manifest.parquet"
    stamp_prefix = "source"

    def __init__(self, config: ExtractSection, overlay: OverlaySection, pose_model: Path, preset_name: str) -> None:
        self.config, self.overlay = config, overlay
        fix_mmap_threshold(config.mmap_threshold_mb)
        self.detector = PoseDetector.from_config(pose_model, config)
        self.model_name, self.model_sha256, self.preset_name = pose_model.name, file_sha256(pose_model), preset_name

    def settings(self) -> dict[str, Any]:
        # Device, engine and precision as they take effect: `auto` and `cuda` give the same keypoints on one machine.
        detector = self.detector
        effective = {
            "device": detector.device.type,
            "half": detector.half,
            "backend": detector.engine.name,
            "precision": detector.precision,
        }
        return {"extract": {**self.config.result_settings(), **effective}, "model_sha256": self.model_sha256}

    def write_table(self, job: Job, path: Path, footer: dict[str, Any], progress: Reporter) -> None:
        info = probe(job.source)
        geometry = self.detector.geometry(info.width, info.height)
        decoder = choose_decoder(info, geometry.resized, self.config.decord_max_mb)
        try:
            self._write_keypoints(job, info, geometry, path, footer, progress, decoder)
        except DecordError as exc:  # start over with PyAV: every row of a table comes from one decoder
            progress.note(f"{job.source}: {exc}; decoding it again with PyAV")
            self._write_keypoints(job, info, geometry, path, footer, progress, "pyav")

    def _write_keypoints(
        self,
        job: Job,
        info: MediaInfo,
        geometry: LetterboxGeometry,
        path: Path,
        footer: dict[str, Any],
        progress: Reporter,
        decoder: Decoder,
    ) -> None:
        progress.start_input(job.rel, info.frame_count)
        started = time.perf_counter()
        scale = geometry.resized[0] / info.width
        tracker = make_tracker(self.config.tracker)
        frames_seen, used = 0, decoder
        writer = Keypoints2DWriter(path)
        try:
            batches = iter_frame_batches(
                info, self.config.batch_size, geometry.resized, decoder, self.config.decode_threads
            )
            uploaded = ((batch, self.detector.upload(batch.frames)) for batch in batches)  # in the decoding thread
            for batch, frames in prefetch(uploaded, self.config.prefetch_batches):
                detections = self.detector.detect(frames, geometry)
                writer.append(frame_rows(job.rel, info, batch, detections, tracker, scale))
                frames_seen += len(batch.indices)
                used = batch.decoder
                progress.advance(len(batch.indices))
        except BaseException:
            writer.abort()
            raise
        if frames_seen == 0:
            writer.abort()
            raise InputError("no frame could be decoded")
        writer.close(
            {
                "video": job.rel,
                "source": str(job.source.resolve()),
                "fps": info.fps,
                "frames": frames_seen,
                "width": info.width,
                "height": info.height,
                "rotation": info.rotation,
                "decoder": used,
                "model": self.model_name,
                "model_sha256": self.model_sha256,
                "params": self.settings()["extract"],
                "seconds": round(time.perf_counter() - started, 3),
                **footer,
            }
        )

    def write_overlay(self, job: Job, table: Path, path: Path, progress: Reporter) -> None:
        info = probe(job.source)
        progress.start_input(job.rel, info.frame_count)
        render_overlay(info, read_keypoints2d(table), path, self.overlay, self.config.batch_size)
