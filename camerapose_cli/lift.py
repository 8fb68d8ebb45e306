"""The lift stage: keypoints2d tables → 3D joints in metres with the lifter and its camera branch.

read → (refine) → lift → write. `lift_keypoints` is the pure core: arrays in, arrays out.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import torch

from camerapose_cli import __version__
from camerapose_cli.atomic import atomic_output
from camerapose_cli.errors import InputError
from camerapose_cli.geometry import VISIBLE_CONF, lifter_inputs, project_to_image
from camerapose_cli.models.lifter import Lifter
from camerapose_cli.resources import file_sha256, shipped_dir
from camerapose_cli.video import IMAGE_SUFFIXES
from camerapose_cli.schema import file_stamp, keypoints3d_table, output_is_current, read_keypoints2d, read_metadata, write_parquet


def default_lifter_weights() -> Path:
    return shipped_dir("weights") / "lifter.pt"


def load_lifter(path: Path) -> Lifter:
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=False)
        return Lifter.from_checkpoint(checkpoint)
    except (OSError, RuntimeError, ValueError, KeyError) as exc:
        raise InputError(f"{path}: not a usable lifter checkpoint ({exc})") from None


def focal_from_fov(width: np.ndarray, height: np.ndarray, fov_deg: float) -> np.ndarray:
    """Focal length in pixels for a field of view across the image's longer side."""
    return np.maximum(width, height) / 2 / math.tan(math.radians(fov_deg) / 2)


@dataclass
class LiftResult:
    pose: np.ndarray  # (N, 17, 3) metres, pelvis-relative, camera frame
    root_cam: np.ndarray  # (N, 3)
    focal: np.ndarray  # (N,)
    principal: np.ndarray  # (N, 2)
    depth_ratio: np.ndarray  # (N,) the camera branch's output, in the virtual camera that looks at the person
    root_xy: np.ndarray  # (N, 2) likewise
    reproj_err_px: np.ndarray  # (N,)


def lift_keypoints(
    model: Lifter, keypoints: np.ndarray, width: np.ndarray, height: np.ndarray, fov_deg: float, batch_size: int
) -> LiftResult:
    """Lift COCO-17 keypoints (N, 17, 3: x, y, conf in pixels) of frames of the given sizes, focal length
    from the field of view, principal point at the image centre."""
    focal = focal_from_fov(width, height, fov_deg).astype(np.float32)
    principal = np.stack([width, height], -1).astype(np.float32) / 2
    return lift_with_intrinsics(model, keypoints, focal, principal, batch_size)


@torch.inference_mode()
def lift_with_intrinsics(
    model: Lifter, keypoints: np.ndarray, focal: np.ndarray, principal: np.ndarray, batch_size: int
) -> LiftResult:
    """Lift COCO-17 keypoints (N, 17, 3) px seen by cameras of known focal length (N,) and principal point (N, 2)."""
    parts: list[dict[str, torch.Tensor]] = []
    focal_all = torch.from_numpy(np.ascontiguousarray(focal, dtype=np.float32))
    principal_all = torch.from_numpy(np.ascontiguousarray(principal, dtype=np.float32))
    kp_all = torch.from_numpy(np.ascontiguousarray(keypoints, dtype=np.float32))
    for start in range(0, len(kp_all), batch_size):
        kp = kp_all[start : start + batch_size]
        focal, principal = focal_all[start : start + batch_size], principal_all[start : start + batch_size]
        conf = kp[..., 2]
        inputs, centre, scale, rotation = lifter_inputs(kp[..., :2], conf, focal, principal)
        out = model(inputs)
        depth = out.depth_ratio * focal / scale
        root_px = centre + out.root_xy * scale[:, None]  # in the virtual image, principal point at 0
        root_virtual = torch.cat([root_px / focal[:, None] * depth[:, None], depth[:, None]], -1)
        to_camera = rotation.transpose(1, 2)  # row vectors: p_cam = p_virtual @ R^T
        root = (root_virtual[:, None] @ to_camera)[:, 0]
        pose = out.pose @ to_camera
        projected = project_to_image(out.coco @ to_camera + root[:, None], focal, principal)
        weight = (conf >= VISIBLE_CONF).float()
        err = ((projected - kp[..., :2]).norm(dim=-1) * weight).sum(-1) / weight.sum(-1).clamp(min=1)
        parts.append({"pose": pose, "root": root, "focal": focal, "principal": principal,
                      "d": out.depth_ratio, "t": out.root_xy, "err": err})  # fmt: skip
    if not parts:
        empty = np.zeros(0, np.float32)
        return LiftResult(np.zeros((0, 17, 3), np.float32), np.zeros((0, 3), np.float32), empty, np.zeros((0, 2), np.float32), empty, np.zeros((0, 2), np.float32), empty)
    cat = {k: torch.cat([p[k] for p in parts]).numpy() for k in parts[0]}
    return LiftResult(cat["pose"], cat["root"], cat["focal"], cat["principal"], cat["d"], cat["t"], cat["err"])


@dataclass
class RefineStep:
    """The refiner that `lift` runs first (on by default), with its parameters."""

    model: Any
    weights: Path
    params: dict[str, Any]


def lift_table(
    table_path: Path, out_path: Path, model: Lifter, model_path: Path, params: dict[str, Any], preset_name: str,
    refine: RefineStep | None = None,
) -> int:  # fmt: skip
    """Lift one keypoints2d file (refined first when `refine` is given) into a keypoints3d file. Returns rows."""
    table = read_keypoints2d(table_path)
    if refine is not None:
        from camerapose_cli.refine import refine_table

        table = refine_table(table, refine.model, refine.params)
    result = lift_keypoints(model, table.keypoints, table.width, table.height, float(params["fov_deg"]), int(params["batch_size"]))
    columns = {
        "video": table.video, "frame": table.frame, "time_s": table.time_s, "track_id": table.track_id,
        "kp3d_x": result.pose[..., 0], "kp3d_y": result.pose[..., 1], "kp3d_z": result.pose[..., 2],
        "root_cam": result.root_cam, "focal_px": result.focal, "principal_px": result.principal,
        "cam_depth_ratio": result.depth_ratio, "cam_root_xy": result.root_xy, "reproj_err_px": result.reproj_err_px,
    }  # fmt: skip
    arrow = keypoints3d_table(columns)
    meta = {
        **{k: v for k, v in table.metadata.items() if k in ("video", "source", "fps", "frames", "width", "height")},
        "input_table": str(table_path.resolve()),
        **file_stamp(table_path, "input"),
        "lifter": model_path.name,
        "lifter_sha256": file_sha256(model_path),
        "fov_deg": float(params["fov_deg"]),
        "tool_version": __version__,
        "preset": preset_name,
        "joints": "h36m17",
        "refiner_sha256": file_sha256(refine.weights) if refine is not None else "none",
    }
    with atomic_output(out_path) as tmp:
        write_parquet(arrow, tmp, meta)
    return len(arrow)


def lift_output_current(out_path: Path, table_path: Path, lifter_sha: str, fov_deg: float, refiner_sha: str) -> bool:
    expected = {"lifter_sha256": lifter_sha, "fov_deg": str(float(fov_deg)), "refiner_sha256": refiner_sha}
    return output_is_current(out_path, table_path, "input", expected)


def lift_jobs(run_dir: Path) -> list:
    """One job per keypoints2d table under `run_dir` (a run folder or a keypoints2d folder)."""
    from camerapose_cli.runner import Job

    tables_dir = run_dir / "keypoints2d" if (run_dir / "keypoints2d").is_dir() else run_dir
    return [Job(p, p.relative_to(tables_dir).as_posix()[: -len(".parquet")]) for p in sorted(tables_dir.rglob("*.parquet"))]


def write_lift_overlay(table_path: Path, lifted_path: Path, out_path: Path, overlay_params: dict[str, Any]) -> None:
    """Render the source video with its 2D skeletons and side/top views of the lifted 3D ones."""
    from camerapose_cli.overlay import render_overlay_3d
    from camerapose_cli.video import probe

    table = read_keypoints2d(table_path)
    source = Path(table.metadata.get("source", ""))
    if not source.is_file():
        raise InputError(f"overlay: the source video {source} named by {table_path} is not there")
    lifted = pq.read_table(lifted_path, columns=["kp3d_x", "kp3d_y", "kp3d_z", "root_cam"])
    n = lifted.num_rows
    xyz = [lifted.column(c).combine_chunks().flatten().to_numpy().reshape(n, -1) for c in ("kp3d_x", "kp3d_y", "kp3d_z")]
    root = lifted.column("root_cam").combine_chunks().flatten().to_numpy().reshape(n, 3)
    joints_cam = np.stack(xyz, -1) + root[:, None]
    info = probe(source)
    with atomic_output(out_path) as tmp:
        render_overlay_3d(info, table, joints_cam, tmp, overlay_params, batch_size=8)


def run_lift(
    jobs: list, out_root: Path, params: dict[str, Any], *, weights: Path, preset_name: str, force: bool, reporter,
    overlay_params: dict[str, Any] | None = None, refine: RefineStep | None = None,
) -> list:  # fmt: skip
    from camerapose_cli.atomic import remove_stale_partials
    from camerapose_cli.runner import Outcome, run_jobs

    remove_stale_partials(out_root / "keypoints3d")
    model = load_lifter(weights)
    sha = file_sha256(weights)

    def work(job, progress) -> Outcome:
        out_path = out_root / "keypoints3d" / f"{job.rel}.parquet"
        overlay = None
        if overlay_params is not None:
            suffix = ".png" if Path(job.rel).suffix.lower() in IMAGE_SUFFIXES else ".mp4"
            overlay = out_root / "overlays3d" / f"{job.rel}{suffix}"
        refiner_sha = file_sha256(refine.weights) if refine is not None else "none"
        current = not force and lift_output_current(out_path, job.source, sha, float(params["fov_deg"]), refiner_sha)
        if current and (overlay is None or overlay.exists()):
            rows = pq.ParquetFile(out_path).metadata.num_rows
            return Outcome(job.rel, "skipped", detections=rows, model=weights.name, model_sha256=sha, output=str(out_path))
        started = time.perf_counter()
        try:
            if not current:
                lift_table(job.source, out_path, model, weights, params, preset_name, refine)
            if overlay is not None:
                write_lift_overlay(job.source, out_path, overlay, overlay_params)
        except InputError:
            out_path.unlink(missing_ok=True)
            raise
        meta = read_metadata(out_path)
        track_ids = pq.read_table(out_path, columns=["track_id"]).column("track_id").to_numpy()
        return Outcome(
            job.rel, "done", frames=int(meta.get("frames", 0) or 0), detections=len(track_ids),
            tracks=len(np.unique(track_ids)), model=weights.name, model_sha256=sha,
            output=str(out_path), seconds=time.perf_counter() - started,
        )  # fmt: skip

    return run_jobs(jobs, work, reporter, out_root / "manifest_lift.parquet")
