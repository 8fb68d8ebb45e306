"""The export stage: each keypoints3d table → its people in a world frame (`keypoints3d_world/`, the stage's
table) and one file per track part in BVH, TRC, C3D or CSV, named `<video file name>.track<ID>[.part<K>].<ext>`.

read → world frame (export.world) → per track: split at long gaps, interpolate short ones → write files.
A track too short or without finite joints is reported and left out; the others are still exported.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from camerapose_cli.config import ExportSection
from camerapose_cli.core.sequence import track_segments
from camerapose_cli.errors import InputError, SchemaError
from camerapose_cli.export.contact import foot_skate_mm_per_frame, pin_planted_feet
from camerapose_cli.export.formats import ExportFormat, frame_time, write_bvh, write_c3d, write_csv, write_trc
from camerapose_cli.export.world import WorldFrame, estimate_world_frame
from camerapose_cli.io.atomic import atomic_output
from camerapose_cli.io.schema import (
    KEYPOINTS3D_WORLD_SCHEMA,
    keypoints3d_table,
    read_metadata,
    table_files,
    write_parquet,
)
from camerapose_cli.progress import Reporter
from camerapose_cli.stages.base import Job, Outputs, Stage
from camerapose_cli.stages.lift import CAMERA_JOINT_COLUMNS, camera_joints

READ_COLUMNS = ("video", "frame", "time_s", "track_id", *CAMERA_JOINT_COLUMNS)


@dataclass(frozen=True)
class LiftedRows:
    """The rows of one keypoints3d table: camera-frame joints (N, 17, 3) = pelvis-relative joints + root_cam."""

    video: np.ndarray
    frame: np.ndarray
    time_s: np.ndarray
    track_id: np.ndarray
    joints: np.ndarray


@dataclass(frozen=True)
class TrackPart:
    """One exported piece of a track: consecutive frames, short gaps filled."""

    track_id: int
    part: int  # 1, 2, ... (one part: the file name has no .partK)
    frames: np.ndarray  # (T,)
    times: np.ndarray  # (T,)
    joints: np.ndarray  # (T, 17, 3) world
    filled: int  # frames interpolated


def read_lifted_rows(path: Path) -> LiftedRows:
    """Read a keypoints3d table written by `lift`; SchemaError if it is not one."""
    try:
        schema = pq.read_schema(str(path))
    except Exception as exc:
        raise SchemaError(f"{path}: not a readable Parquet file ({exc})") from None
    missing = [c for c in READ_COLUMNS if c not in schema.names]
    if missing:
        raise SchemaError(f"{path}: not a keypoints3d table (missing column {missing[0]!r}); run `camerapose lift`")
    table = pq.read_table(str(path), columns=list(READ_COLUMNS))
    return LiftedRows(
        table.column("video").to_numpy(zero_copy_only=False),
        table.column("frame").to_numpy(),
        table.column("time_s").to_numpy(),
        table.column("track_id").to_numpy(),
        camera_joints(table).astype(np.float64),
    )


def track_parts(
    frames: np.ndarray, times: np.ndarray, joints: np.ndarray, track_id: int, max_gap: int
) -> list[TrackPart]:
    """A track's rows (sorted by frame) cut at gaps longer than `max_gap` frames, shorter gaps interpolated."""
    parts = []
    for number, rows in enumerate(track_segments(frames, max_gap), start=1):
        have = frames[rows]
        full = np.arange(have[0], have[-1] + 1)
        flat = joints[rows].reshape(len(rows), -1)
        filled = np.stack([np.interp(full, have, flat[:, k]) for k in range(flat.shape[1])], -1)
        parts.append(
            TrackPart(
                track_id,
                number,
                full,
                np.interp(full, have, times[rows]),
                filled.reshape(len(full), *joints.shape[1:]),
                len(full) - len(rows),
            )
        )
    return parts


def part_file_name(video_name: str, part: TrackPart, parts: int, ext: str) -> str:
    suffix = f".part{part.part}" if parts > 1 else ""
    return f"{video_name}.track{part.track_id}{suffix}.{ext}"


class ExportStage(Stage):
    name = "export"
    table_dir = "keypoints3d_world"
    overlay_dir = ""
    stamp_prefix = "input"

    def __init__(self, run: Path, out: Path, fmt: ExportFormat, config: ExportSection, preset_name: str) -> None:
        self.run, self.out, self.format, self.config = run, out, fmt, config
        self.manifest = f"manifest_export_{fmt}.parquet"
        self.preset_name = preset_name

    def settings(self) -> dict[str, Any]:
        return {"export": self.config.result_settings(), "format": self.format, "out": str(self.out.resolve())}

    def outputs(self, out_root: Path, job: Job, overlay: bool) -> Outputs:
        return Outputs(self.run / self.table_dir / f"{job.rel}.parquet", None)

    def products_complete(self, table: Path) -> bool:
        try:
            files = json.loads(read_metadata(table).get("files", "[]"))
        except Exception:
            return False
        return all(Path(f).is_file() for f in files)

    def write_table(self, job: Job, path: Path, footer: dict[str, Any], progress: Reporter) -> None:
        rows = read_lifted_rows(job.source)
        progress.start_input(job.rel, len(rows.frame))
        finite = np.isfinite(rows.joints).all((1, 2))
        if len(finite) and not finite.any():
            raise InputError("no row has finite 3D joints: the table is broken; lift it again")
        world = np.full_like(rows.joints, np.nan)
        world_meta: dict[str, Any] = {"gravity_from": "none"}
        if finite.any():
            world_frame = estimate_world_frame(rows.joints[finite], self.config)
            world[finite] = world_frame.to_world(rows.joints[finite])
            world_meta = self._world_meta(world_frame)
        else:
            self._warn(job, "no people were lifted; nothing to export")
        video_name = Path(job.rel).name
        folder = self.out / Path(job.rel).parent
        part_of_row = np.zeros(len(rows.frame), np.int64)
        files, tracks = [], []
        for track in np.unique(rows.track_id):
            mine = np.flatnonzero(rows.track_id == track)
            dropped = int((~finite[mine]).sum())
            if dropped:
                self._warn(job, f"track {track}: {dropped} rows without finite joints left out")
            mine = mine[finite[mine]]
            mine = mine[np.argsort(rows.frame[mine], kind="stable")]
            gap = self.config.max_gap_frames
            parts = track_parts(rows.frame[mine], rows.time_s[mine], world[mine], int(track), gap)
            for part in parts:
                if len(part.frames) < self.config.min_frames:
                    short = f"{len(part.frames)} frames, fewer than --min-frames {self.config.min_frames}"
                    self._warn(job, f"track {track}: {short}; not exported")
                    continue
                in_part = mine[(rows.frame[mine] >= part.frames[0]) & (rows.frame[mine] <= part.frames[-1])]
                fps = 1.0 / frame_time(part.times)
                skate_before = foot_skate_mm_per_frame(part.joints, self.config, fps)
                if self.config.pin_feet:
                    part = replace(part, joints=pin_planted_feet(part.joints, self.config, fps))
                    world[in_part] = part.joints[rows.frame[in_part] - part.frames[0]]
                target = folder / part_file_name(video_name, part, len(parts), self.format)
                with atomic_output(target) as tmp:
                    self._write_part(tmp, part, target.name)
                part_of_row[in_part] = part.part
                files.append(str(target.resolve()))
                tracks.append(self._describe(part, target, fps, skate_before))
            progress.advance(len(mine))
        if finite.any() and not files:
            self._warn(job, f"no track of --min-frames {self.config.min_frames} or more; nothing exported")
        columns = {
            "video": rows.video,
            "frame": rows.frame,
            "time_s": rows.time_s,
            "track_id": rows.track_id,
            "part": part_of_row,
            **{f"kp3d_world_{a}": world[..., i] for i, a in enumerate("xyz")},
        }
        meta = {
            **{k: v for k, v in read_metadata(job.source).items() if k in ("video", "source", "fps", "frames")},
            "input_table": str(job.source.resolve()),
            "joints": "h36m17",
            **world_meta,
            "format": self.format,
            "files": json.dumps(files),
            "tracks": json.dumps(tracks),
            **footer,
        }
        write_parquet(keypoints3d_table(columns, KEYPOINTS3D_WORLD_SCHEMA), path, meta)

    def _write_part(self, path: Path, part: TrackPart, name: str) -> None:
        if self.format == "bvh":
            write_bvh(path, part.joints, part.times)
        elif self.format == "trc":
            write_trc(path, part.joints, part.times, name)
        elif self.format == "c3d":
            write_c3d(path, part.joints, part.times)
        else:
            write_csv(path, part.joints, part.times, part.frames)

    def _describe(self, part: TrackPart, target: Path, fps: float, skate_before: float) -> dict[str, Any]:
        described = {
            "track_id": part.track_id,
            "part": part.part,
            "file": target.name,
            "frames": len(part.frames),
            "interpolated_frames": part.filled,
            "foot_skate_mm_per_frame": round(foot_skate_mm_per_frame(part.joints, self.config, fps), 2),
        }
        if self.config.pin_feet:
            described["foot_skate_before_pinning"] = round(skate_before, 2)
        return described

    @staticmethod
    def _world_meta(frame: WorldFrame) -> dict[str, Any]:
        return {
            "world_rotation": json.dumps(np.round(frame.rotation, 6).tolist()),
            "world_origin_cam": json.dumps(np.round(frame.origin, 6).tolist()),
            "gravity_from": frame.method,
            "camera_height_m": round(frame.camera_height_m, 4),
        }

    @staticmethod
    def _warn(job: Job, message: str) -> None:
        print(f"warning: {job.source}: {message}", file=sys.stderr, flush=True)


def keypoints3d_jobs(run: Path) -> list[Job]:
    """One job per keypoints3d table of a run folder, named by its path under `RUN/keypoints3d/`."""
    root = run / "keypoints3d"
    return [Job(p, p.relative_to(root).as_posix()[: -len(".parquet")]) for p in table_files(root)]
