"""The lift stage: read → (refine) → lift → write, keypoints2d tables to 3D joints in metres with the lifter
and its camera branch.

`lift_keypoints` is the pure core: arrays in, arrays out.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import torch

from camerapose_cli.config import LiftSection, OverlaySection
from camerapose_cli.core.geometry import VISIBLE_CONF, focal_from_fov, lifter_inputs, project_to_image
from camerapose_cli.core.skeleton import NUM_H36M_JOINTS
from camerapose_cli.errors import InputError
from camerapose_cli.io.overlay import render_overlay_3d
from camerapose_cli.io.resources import file_sha256
from camerapose_cli.io.schema import keypoints3d_table, read_keypoints2d, write_parquet
from camerapose_cli.io.video import probe
from camerapose_cli.models.checkpoints import load_lifter
from camerapose_cli.models.lifter import Lifter
from camerapose_cli.progress import Reporter
from camerapose_cli.stages.base import Job, Stage
from camerapose_cli.stages.refine import Refinement

OVERLAY_BATCH_FRAMES = 8  # frames decoded at a time for the 3D overlay


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
        parts.append(
            {
                "pose": pose,
                "root": root,
                "focal": focal,
                "principal": principal,
                "d": out.depth_ratio,
                "t": out.root_xy,
                "err": err,
            }
        )
    if not parts:
        empty = np.zeros(0, np.float32)
        return LiftResult(
            np.zeros((0, NUM_H36M_JOINTS, 3), np.float32),
            np.zeros((0, 3), np.float32),
            empty,
            np.zeros((0, 2), np.float32),
            empty,
            np.zeros((0, 2), np.float32),
            empty,
        )
    cat = {k: torch.cat([p[k] for p in parts]).numpy() for k in parts[0]}
    return LiftResult(cat["pose"], cat["root"], cat["focal"], cat["principal"], cat["d"], cat["t"], cat["err"])


def read_camera_joints(path: Path) -> np.ndarray:
    """The joints of a keypoints3d table in camera coordinates (N, 17, 3): pelvis-relative joints plus root_cam."""
    lifted = pq.read_table(path, columns=["kp3d_x", "kp3d_y", "kp3d_z", "root_cam"])
    n = lifted.num_rows
    xyz = [
        lifted.column(c).combine_chunks().flatten().to_numpy().reshape(n, -1) for c in ("kp3d_x", "kp3d_y", "kp3d_z")
    ]
    root = lifted.column("root_cam").combine_chunks().flatten().to_numpy().reshape(n, 3)
    return np.stack(xyz, -1) + root[:, None]


class LiftStage(Stage):
    name = "lift"
    table_dir = "keypoints3d"
    overlay_dir = "overlays3d"
    manifest = "manifest_lift.parquet"
    stamp_prefix = "input"

    def __init__(
        self,
        config: LiftSection,
        weights: Path,
        refinement: Refinement | None,
        overlay: OverlaySection,
        preset_name: str,
    ) -> None:
        self.config, self.weights, self.refinement, self.overlay = config, weights, refinement, overlay
        self.model = load_lifter(weights)
        self.model_name, self.model_sha256, self.preset_name = weights.name, file_sha256(weights), preset_name

    def settings(self) -> dict[str, Any]:
        refine = self.refinement.settings() if self.refinement is not None else None
        return {"lift": self.config.result_settings(), "lifter_sha256": self.model_sha256, "refinement": refine}

    def write_table(self, job: Job, path: Path, footer: dict[str, Any], progress: Reporter) -> None:
        table = read_keypoints2d(job.source)
        progress.start_input(job.rel, len(table))
        if self.refinement is not None:
            table = self.refinement(table)
        result = lift_keypoints(
            self.model, table.keypoints, table.width, table.height, self.config.fov_deg, self.config.batch_size
        )
        columns = {
            "video": table.video,
            "frame": table.frame,
            "time_s": table.time_s,
            "track_id": table.track_id,
            "kp3d_x": result.pose[..., 0],
            "kp3d_y": result.pose[..., 1],
            "kp3d_z": result.pose[..., 2],
            "root_cam": result.root_cam,
            "focal_px": result.focal,
            "principal_px": result.principal,
            "cam_depth_ratio": result.depth_ratio,
            "cam_root_xy": result.root_xy,
            "reproj_err_px": result.reproj_err_px,
        }
        meta = {
            **{k: v for k, v in table.metadata.items() if k in ("video", "source", "fps", "frames", "width", "height")},
            "input_table": str(job.source.resolve()),
            "lifter": self.model_name,
            "lifter_sha256": self.model_sha256,
            "fov_deg": self.config.fov_deg,
            "joints": "h36m17",
            "refiner_sha256": self.refinement.sha256 if self.refinement is not None else "none",
            **footer,
        }
        write_parquet(keypoints3d_table(columns), path, meta)

    def write_overlay(self, job: Job, table: Path, path: Path, progress: Reporter) -> None:
        """The source video with its 2D skeletons and side/top views of the lifted 3D ones."""
        keypoints2d = read_keypoints2d(job.source)
        source = Path(keypoints2d.metadata.get("source", ""))
        if not source.is_file():
            raise InputError(f"overlay: the source video {source} named by {job.source} is not there")
        info = probe(source)
        progress.start_input(job.rel, info.frame_count)
        render_overlay_3d(info, keypoints2d, read_camera_joints(table), path, self.overlay, OVERLAY_BATCH_FRAMES)
