"""The lift stage: read → (refine) → lift → write, keypoints2d tables to 3D joints in metres with the lifter
and its camera branch.

`lift_keypoints` is the pure core: arrays in, arrays out.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from camerapose_cli.config import LiftSection, OverlaySection, RefineSection
from camerapose_cli.core.device import CPU, compute_in, module_device, precision_name, resolve_device, resolve_precision
from camerapose_cli.core.geometry import VISIBLE_CONF, focal_from_fov, lifter_inputs, project_to_image
from camerapose_cli.core.metrics import body_height
from camerapose_cli.core.sequence import fill_gaps, track_segments
from camerapose_cli.core.skeleton import BODY_HEIGHT_PER_STATURE, NUM_H36M_JOINTS
from camerapose_cli.errors import InputError
from camerapose_cli.io.overlay import render_overlay_3d
from camerapose_cli.io.resources import file_sha256
from camerapose_cli.io.schema import KeypointTable, keypoints3d_table, read_keypoints2d, write_parquet
from camerapose_cli.io.video import probe
from camerapose_cli.models.checkpoints import load_lifter, load_temporal
from camerapose_cli.models.lifter import Lifter, LifterOutput, mirror_average
from camerapose_cli.models.temporal import TemporalLifter
from camerapose_cli.progress import Reporter
from camerapose_cli.stages.base import Job, Stage
from camerapose_cli.stages.refine import Refinement

OVERLAY_BATCH_FRAMES = 8  # frames decoded at a time for the 3D overlay
DEFAULT_FPS = 30.0  # a table that does not say its video's frame rate


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
    model: Lifter,
    keypoints: np.ndarray,
    width: np.ndarray,
    height: np.ndarray,
    fov_deg: float,
    batch_size: int,
    *,
    mirror: bool = False,
    precision: torch.dtype = torch.float32,
) -> LiftResult:
    """Lift COCO-17 keypoints (N, 17, 3: x, y, conf in pixels) of frames of the given sizes, focal length
    from the field of view, principal point at the image centre; `mirror`: average with the mirrored input's;
    `precision`: what the network computes in (core.device.compute_in)."""
    focal = focal_from_fov(width, height, fov_deg).astype(np.float32)
    principal = np.stack([width, height], -1).astype(np.float32) / 2
    return lift_with_intrinsics(model, keypoints, focal, principal, batch_size, mirror=mirror, precision=precision)


def _to_camera(
    out: LifterOutput,
    keypoints: torch.Tensor,
    focal: torch.Tensor,
    principal: torch.Tensor,
    centre: torch.Tensor,
    scale: torch.Tensor,
    rotation: torch.Tensor,
) -> dict[str, torch.Tensor]:
    """A lifter's output in each frame's virtual camera → pose and root in the real camera, and the reprojection
    error of the confident keypoints (N, 17, 3) px."""
    depth = out.depth_ratio * focal / scale
    root_px = centre + out.root_xy * scale[:, None]  # in the virtual image, principal point at 0
    root_virtual = torch.cat([root_px / focal[:, None] * depth[:, None], depth[:, None]], -1)
    to_camera = rotation.transpose(1, 2)  # row vectors: p_cam = p_virtual @ R^T
    root = (root_virtual[:, None] @ to_camera)[:, 0]
    projected = project_to_image(out.detector_points @ to_camera + root[:, None], focal, principal)
    weight = (keypoints[..., 2] >= VISIBLE_CONF).float()
    err = ((projected - keypoints[..., :2]).norm(dim=-1) * weight).sum(-1) / weight.sum(-1).clamp(min=1)
    return {
        "pose": out.pose @ to_camera,
        "root": root,
        "focal": focal,
        "principal": principal,
        "d": out.depth_ratio,
        "t": out.root_xy,
        "err": err,
    }


def _result(parts: list[dict[str, torch.Tensor]]) -> LiftResult:
    if not parts:
        return empty_result(0)
    cat = {k: torch.cat([p[k] for p in parts]).cpu().numpy() for k in parts[0]}
    return LiftResult(cat["pose"], cat["root"], cat["focal"], cat["principal"], cat["d"], cat["t"], cat["err"])


def empty_result(n: int) -> LiftResult:
    """A LiftResult of n rows, zero-filled (to be written into)."""
    shapes = {"pose": (NUM_H36M_JOINTS, 3), "root_cam": (3,), "principal": (2,), "root_xy": (2,)}
    return LiftResult(
        **{name: np.zeros((n, *shapes.get(name, ())), np.float32) for name in LiftResult.__dataclass_fields__}
    )


def _tensor(a: np.ndarray, device: torch.device = CPU) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)).to(device)


@torch.inference_mode()
def lift_with_intrinsics(
    model: Lifter,
    keypoints: np.ndarray,
    focal: np.ndarray,
    principal: np.ndarray,
    batch_size: int,
    *,
    mirror: bool = False,
    precision: torch.dtype = torch.float32,
) -> LiftResult:
    """Lift COCO-17 keypoints (N, 17, 3) px seen by cameras of known focal length (N,) and principal point (N, 2),
    frame by frame, on the model's device; `mirror`: averaged with the mirrored input's (`mirror_average`);
    `precision`: what the network computes in."""
    parts: list[dict[str, torch.Tensor]] = []
    device = module_device(model)
    focal_all, principal_all, kp_all = _tensor(focal, device), _tensor(principal, device), _tensor(keypoints, device)
    for start in range(0, len(kp_all), batch_size):
        kp = kp_all[start : start + batch_size]
        focal, principal = focal_all[start : start + batch_size], principal_all[start : start + batch_size]
        inputs, centre, scale, rotation = lifter_inputs(kp[..., :2], kp[..., 2], focal, principal)
        with compute_in(precision, device):
            out = mirror_average(model, inputs) if mirror else model(inputs)
        parts.append(_to_camera(out.float(), kp, focal, principal, centre, scale, rotation))
    return _result(parts)


@torch.inference_mode()
def lift_sequence(
    model: TemporalLifter,
    keypoints: np.ndarray,
    present: np.ndarray,
    focal: np.ndarray,
    principal: np.ndarray,
    batch_size: int,
    *,
    mirror: bool = False,
    precision: torch.dtype = torch.float32,
) -> LiftResult:
    """Lift one track with the temporal lifter: keypoints (T, 17, 3) px on consecutive frames, `present` (T,) False
    where the detector missed the person (those frames are interpolated, confidence 0, as in training). The ends
    are padded by repeating the first and last frames; at most `batch_size` frames go through at a time, on the
    model's device; `mirror`: averaged with the mirrored track's (`mirror_average`); `precision`: what the network
    computes in."""
    device = module_device(model)
    detected = torch.from_numpy(present).to(device)
    kp = fill_gaps(_tensor(keypoints, device)[None], detected[None])[0]
    kp[..., 2] = torch.where(detected[:, None], kp[..., 2], torch.zeros_like(kp[..., 2]))
    focal_t, principal_t = _tensor(focal, device), _tensor(principal, device)
    inputs, centre, scale, rotation = lifter_inputs(kp[..., :2], kp[..., 2], focal_t, principal_t)
    half = model.receptive_field // 2
    index = torch.arange(-half, len(kp) + half, device=device).clamp(0, len(kp) - 1)  # repeat first and last frames
    padded, mask = inputs[index], detected[index]
    parts = []
    for start in range(0, len(kp), batch_size):
        stop = min(start + batch_size, len(kp))
        window = padded[None, start : stop + 2 * half]
        present_window = mask[None, start : stop + 2 * half]
        with compute_in(precision, device):
            predict = partial(model, present=present_window)
            out = mirror_average(predict, window) if mirror else predict(window)
        rows = slice(start, stop)
        camera = (focal_t[rows], principal_t[rows], centre[rows], scale[rows], rotation[rows])
        parts.append(_to_camera(out.float(), kp[rows], *camera))
    return _result(parts)


def phase_stride(fps: float, max_fps: float) -> int:
    """k such that every k-th frame of a video at `fps` is no faster than `max_fps` (the temporal lifter's range)."""
    return max(1, int(np.ceil(fps / max_fps - 1e-6)))


def _track_phases(frames: np.ndarray, stride: int) -> list[np.ndarray]:
    """Positions into a track segment's sorted `frames`, one array per phase: every `stride`-th frame makes a
    track of its own."""
    offset = (frames - frames[0]) % stride
    return [np.flatnonzero(offset == p) for p in range(stride) if np.any(offset == p)]


def lift_tracks(
    table: KeypointTable,
    single: Lifter,
    temporal: TemporalLifter | None,
    config: LiftSection,
    intrinsics: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[LiftResult, np.ndarray]:
    """Lift every row of a keypoints2d table: each track segment (cut at gaps of more than max_gap_frames) of at
    least temporal_min_frames frames with the temporal lifter, everything else frame by frame with `single`.
    `intrinsics`: each row's known (focal (N,), principal point (N, 2)); default: from [lift] fov_deg and the
    image centre. The networks compute in [lift] precision on `single`'s device. Returns (the result in the table's
    row order, the model of each row: "temporal" or "single")."""
    precision = resolve_precision(config.precision, module_device(single))
    if intrinsics is not None:
        focal, principal = intrinsics
    else:
        focal = focal_from_fov(table.width, table.height, config.fov_deg).astype(np.float32)
        principal = np.stack([table.width, table.height], -1).astype(np.float32) / 2
    result, used = empty_result(len(table)), np.full(len(table), "single", dtype=object)
    if temporal is not None:
        stride = phase_stride(float(table.metadata.get("fps") or DEFAULT_FPS), temporal.config.fps[1])
        for rows in _temporal_pieces(table, stride, config):
            slot = (table.frame[rows] - table.frame[rows[0]]) // stride
            dense = np.zeros((slot[-1] + 1, *table.keypoints.shape[1:]), np.float32)
            dense[slot] = table.keypoints[rows]
            present = np.zeros(len(dense), bool)
            present[slot] = True
            dense_focal = np.full(len(dense), focal[rows[0]], np.float32)
            dense_principal = np.repeat(principal[rows[:1]], len(dense), 0)
            lifted = lift_sequence(
                temporal,
                dense,
                present,
                dense_focal,
                dense_principal,
                config.batch_size,
                mirror=config.mirror_average,
                precision=precision,
            )
            _write_rows(result, rows, lifted, slot)
            used[rows] = "temporal"
    rest = np.flatnonzero(used == "single")
    if len(rest):
        lifted = lift_with_intrinsics(
            single,
            table.keypoints[rest],
            focal[rest],
            principal[rest],
            config.batch_size,
            mirror=config.mirror_average,
            precision=precision,
        )
        _write_rows(result, rest, lifted, np.arange(len(rest)))
    return result, used


def scale_to_height(result: LiftResult, track_id: np.ndarray, person_height_m: float) -> LiftResult:
    """Rescale each track's 3D to a known standing height: its median body height (core.metrics.body_height)
    becomes `person_height_m` x BODY_HEIGHT_PER_STATURE. Pose, root and depth scale together, so the reprojection
    is unchanged: one image cannot tell a person's size, the user can."""
    target = person_height_m * BODY_HEIGHT_PER_STATURE
    heights = body_height(torch.from_numpy(result.pose)).numpy()
    for track in np.unique(track_id):
        rows = track_id == track
        factor = np.float32(target / np.median(heights[rows]))
        result.pose[rows] *= factor
        result.root_cam[rows] *= factor
        result.depth_ratio[rows] *= factor
    return result


def _temporal_pieces(table: KeypointTable, stride: int, config: LiftSection) -> list[np.ndarray]:
    """Row indices, sorted by frame, of each piece of a track that the temporal lifter takes: tracks cut at long
    gaps, split into `stride` interleaved phases, and kept if at least temporal_min_frames long."""
    order = np.lexsort((table.frame, table.track_id))
    tracks = np.split(order, np.flatnonzero(np.diff(table.track_id[order])) + 1) if len(order) else []
    pieces = []
    for rows in tracks:
        frames = table.frame[rows]
        for segment in track_segments(frames, config.max_gap_frames):
            for phase in _track_phases(frames[segment], stride):
                if len(phase) >= config.temporal_min_frames:
                    pieces.append(rows[segment[phase]])
    return pieces


def _write_rows(result: LiftResult, rows: np.ndarray, lifted: LiftResult, source: np.ndarray) -> None:
    for name in LiftResult.__dataclass_fields__:
        getattr(result, name)[rows] = getattr(lifted, name)[source]


CAMERA_JOINT_COLUMNS = ("kp3d_x", "kp3d_y", "kp3d_z", "root_cam")


def camera_joints(lifted: pa.Table) -> np.ndarray:
    """The joints of keypoints3d rows in camera coordinates (N, 17, 3): pelvis-relative joints plus root_cam."""
    n = lifted.num_rows

    def fixed(name: str) -> np.ndarray:
        return lifted.column(name).combine_chunks().flatten().to_numpy().reshape(n, -1)

    return np.stack([fixed(c) for c in CAMERA_JOINT_COLUMNS[:3]], -1) + fixed("root_cam")[:, None]


def read_camera_joints(path: Path) -> np.ndarray:
    """The joints of a keypoints3d table in camera coordinates (N, 17, 3)."""
    return camera_joints(pq.read_table(path, columns=list(CAMERA_JOINT_COLUMNS)))


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
        refiner: Path | None,
        refine_config: RefineSection,
        overlay: OverlaySection,
        preset_name: str,
        temporal_weights: Path | None = None,
    ) -> None:
        """`refiner`: the refiner run first (None: none). `temporal_weights`: the temporal lifter for long enough
        tracks; None lifts every frame alone."""
        self.config, self.weights, self.overlay = config, weights, overlay
        self.refinement = Refinement.load(refiner, refine_config) if refiner is not None else None
        self.device = resolve_device(config.device)
        self.precision = precision_name(resolve_precision(config.precision, self.device))
        self.model = load_lifter(weights).to(self.device)
        self.model_name, self.model_sha256, self.preset_name = weights.name, file_sha256(weights), preset_name
        self.temporal = None
        if temporal_weights is not None:  # its single-frame lifter is `weights`, so a fine-tuned one counts in both
            self.temporal = load_temporal(temporal_weights).to(self.device).use_base(self.model)
        self.temporal_name = temporal_weights.name if temporal_weights is not None else "none"
        self.temporal_sha256 = file_sha256(temporal_weights) if temporal_weights is not None else "none"

    def settings(self) -> dict[str, Any]:
        refine = self.refinement.settings() if self.refinement is not None else None
        return {
            "lift": self.config.result_settings(),
            "device": self.device.type,
            "precision": self.precision,
            "lifter_sha256": self.model_sha256,
            "temporal_sha256": self.temporal_sha256,
            "refinement": refine,
        }

    def write_table(self, job: Job, path: Path, footer: dict[str, Any], progress: Reporter) -> None:
        table = read_keypoints2d(job.source)
        progress.start_input(job.rel, len(table))
        if self.refinement is not None:
            table = self.refinement(table)
        result, used = lift_tracks(table, self.model, self.temporal, self.config)
        if self.config.person_height_m > 0:
            result = scale_to_height(result, table.track_id, self.config.person_height_m)
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
            "lifter_model": used,
        }
        meta = {
            **{k: v for k, v in table.metadata.items() if k in ("video", "source", "fps", "frames", "width", "height")},
            "input_table": str(job.source.resolve()),
            "lifter": self.model_name,
            "lifter_sha256": self.model_sha256,
            "temporal_lifter": self.temporal_name,
            "temporal_lifter_sha256": self.temporal_sha256,
            "fov_deg": self.config.fov_deg,
            "precision": self.precision,
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
