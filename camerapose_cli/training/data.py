"""Training data from mocap: augment bodies, film them with random virtual cameras, corrupt the 2D (training.noise).

- lifter pairs (`make_batch`): single poses, each with its own camera;
- refiner sequences (`make_sequences`): windows of consecutive frames, one fixed camera per window.

Every range comes from the preset's [synth] table (pipelines/*.toml), so nothing is tuned in code.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from camerapose_cli.config import LifterNoiseSection, RefineNoiseSection, SynthSection
from camerapose_cli.core.geometry import focal_from_fov, lifter_inputs, look_at, project_to_image
from camerapose_cli.core.skeleton import (
    BODY_FLIP,
    BODY_INDEX,
    BODY_PARENTS,
    BONE_GROUP_OF,
    BONE_GROUPS,
    COCO_FROM_BODY,
    NUM_COCO_JOINTS,
)
from camerapose_cli.training.noise import NoiseCalibration, corrupt_keypoints, corrupt_sequences, uniform


@dataclass
class SyntheticBatch:
    """One batch of lifter training pairs, in each sample's virtual camera (geometry.to_virtual_camera)."""

    inputs: torch.Tensor  # (N, 17, 3) normalized COCO x, y and confidence: what the lifter sees
    body: torch.Tensor  # (N, 21, 3) body points (H36M joints first), virtual camera frame, root-relative, metres
    root: torch.Tensor  # (N, 3) pelvis in virtual camera coordinates, metres
    focal: torch.Tensor  # (N,) px
    principal: torch.Tensor  # (N, 2) px in the virtual image (zero)
    centre: torch.Tensor  # (N, 2) px in the virtual image, the 2D normalization
    scale: torch.Tensor  # (N,) px


def scale_bones(points: torch.Tensor, factors: dict[str, torch.Tensor]) -> torch.Tensor:
    """Rescale every bone of body points (N, 21, 3) by its group's per-sample factor (N,)."""
    bones = points - points[:, [max(p, 0) for p in BODY_PARENTS]]
    group_of = {BODY_INDEX[c]: g for c, g in BONE_GROUP_OF.items()}
    out = torch.empty_like(points)
    out[:, 0] = points[:, 0]
    for child, parent in enumerate(BODY_PARENTS):  # BODY_POINTS is in topological order
        if parent >= 0:
            out[:, child] = out[:, parent] + bones[:, child] * factors[group_of[child]][:, None]
    return out


def augment_bodies(points: torch.Tensor, cfg: SynthSection, gen: torch.Generator, repeat: int = 1) -> torch.Tensor:
    """Random proportions (limbs and widths), overall size and left-right mirroring of world bodies (N, 21, 3).

    With `repeat` = T, consecutive runs of T bodies (the frames of one sequence) share one draw.
    """
    n = len(points) // repeat
    limb_lo, limb_hi = cfg.limb_scale
    factors = {g: uniform(n, limb_lo, limb_hi, gen) for g in BONE_GROUPS}
    factors["hip_width"] = uniform(n, *cfg.hip_width_scale, gen)
    factors["shoulder_width"] = uniform(n, *cfg.shoulder_width_scale, gen)
    height = uniform(n, *cfg.height_scale, gen)
    for g in BONE_GROUPS:
        factors[g] = (factors[g] * height).repeat_interleave(repeat)
    points = scale_bones(points, factors)
    flip = (torch.rand(n, generator=gen) < cfg.flip_prob).repeat_interleave(repeat)
    mirrored = points[:, list(BODY_FLIP)] * torch.tensor([-1.0, 1.0, 1.0])
    return torch.where(flip[:, None, None], mirrored, points)


def sample_cameras(
    points: torch.Tensor, cfg: SynthSection, gen: torch.Generator, clearance: torch.Tensor | None = None
):
    """A random pinhole camera per body: distance, height, azimuth, aim, roll, image size, focal, principal point.

    `clearance` (N,) metres is added to the distance (for sequences, how far the person travels).
    Returns (world-to-camera rotation (N,3,3), translation (N,3), focal (N,), principal point (N,2), image size (N,2)).
    """
    n = len(points)
    pelvis = points[:, BODY_INDEX["pelvis"]]
    floor = points[..., 1].amin(1)
    azimuth = uniform(n, 0, 2 * math.pi, gen)
    distance = torch.exp(uniform(n, math.log(cfg.distance[0]), math.log(cfg.distance[1]), gen))
    if clearance is not None:  # a moving person must stay in front of the camera: keep this much farther away
        distance = distance + clearance
    height = floor + uniform(n, *cfg.camera_height, gen)
    eye = torch.stack(
        [pelvis[:, 0] + distance * torch.cos(azimuth), height, pelvis[:, 2] + distance * torch.sin(azimuth)], -1
    )
    sizes = torch.tensor(cfg.image_sizes, dtype=torch.float32)
    size = sizes[torch.randint(len(sizes), (n,), generator=gen)]
    fov_deg = uniform(n, *cfg.fov_deg, gen)  # across the longer side
    focal = focal_from_fov(size[:, 0], size[:, 1], fov_deg)
    fov = torch.deg2rad(fov_deg)
    principal = size / 2 + (torch.rand(n, 2, generator=gen) - 0.5) * 2 * cfg.principal_jitter * size
    target = pelvis + (torch.rand(n, 3, generator=gen) - 0.5) * 2 * cfg.aim_jitter_m
    rotation = look_at(eye, target, torch.tensor([0.0, 1.0, 0.0]))
    # Put the person off-centre too, and tilt the camera a little.
    yaw = (torch.rand(n, generator=gen) - 0.5) * fov * cfg.off_centre
    pitch = (torch.rand(n, generator=gen) - 0.5) * fov * cfg.off_centre
    roll = torch.deg2rad((torch.rand(n, generator=gen) - 0.5) * 2 * cfg.roll_deg)
    rotation = _axis_rotation(roll, 2) @ _axis_rotation(pitch, 0) @ _axis_rotation(yaw, 1) @ rotation
    translation = -(rotation @ eye[..., None])[..., 0]
    return rotation, translation, focal, principal, size


def _axis_rotation(angle: torch.Tensor, axis: int) -> torch.Tensor:
    c, s = torch.cos(angle), torch.sin(angle)
    out = torch.zeros(len(angle), 3, 3)
    i, j = [a for a in range(3) if a != axis]
    out[:, axis, axis] = 1
    out[:, i, i], out[:, i, j], out[:, j, i], out[:, j, j] = c, -s, s, c
    return out


def film_bodies(bodies: torch.Tensor, cfg: SynthSection, gen: torch.Generator):
    """Film world bodies (N, 21, 3) with random cameras.

    Returns (camera-frame points (N, 21, 3), COCO keypoints (N, 17, 2) px, focal (N,), principal point (N, 2),
    image size (N, 2)).
    """
    rotation, translation, focal, principal, size = sample_cameras(bodies, cfg, gen)
    cam = (rotation[:, None] @ bodies[..., None])[..., 0] + translation[:, None]
    return cam, project_to_image(cam[:, list(COCO_FROM_BODY)], focal, principal), focal, principal, size


def make_batch(
    world_points: torch.Tensor,
    cfg: SynthSection,
    gen: torch.Generator,
    noise: LifterNoiseSection | None,
    *,
    augment: bool = True,
) -> SyntheticBatch:
    """Body points in the world (N, 21, 3) → a lifter batch: optionally augmented bodies, 2D corrupted by `noise`
    (exact 2D, confidence 1, with None)."""
    bodies = augment_bodies(world_points, cfg, gen) if augment else world_points
    cam, coco_px, focal, principal, _ = film_bodies(bodies, cfg, gen)
    if noise is None:
        noisy, conf = coco_px, torch.ones(coco_px.shape[:2])
    else:
        noisy, conf = corrupt_keypoints(coco_px, noise, gen)
    inputs, centre, scale, rotation = lifter_inputs(noisy, conf, focal, principal)
    virtual = cam @ rotation  # camera → virtual camera (R^T p for row vectors)
    root = virtual[:, BODY_INDEX["pelvis"]]
    return SyntheticBatch(inputs, virtual - root[:, None], root, focal, torch.zeros_like(principal), centre, scale)


@dataclass
class KeypointSequences:
    clean: torch.Tensor  # (B, T, 17, 2) px, the true projection
    noisy: torch.Tensor  # (B, T, 17, 2) px, what a detector would report
    conf: torch.Tensor  # (B, T, 17) the detector-like confidence
    present: torch.Tensor  # (B, T) bool: the frame has a detection (False = a gap in the track)
    focal: torch.Tensor  # (B,)
    principal: torch.Tensor  # (B, 2)
    cam_points: torch.Tensor  # (B, T, 21, 3) body points in camera coordinates, metres


def film_windows(
    windows: torch.Tensor, synth_cfg: SynthSection, gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Body windows (B, T, 21, 3) → (camera points (B, T, 21, 3), focal (B,), principal (B, 2)), a camera per window."""
    b, t = windows.shape[:2]
    bodies = augment_bodies(windows.reshape(b * t, *windows.shape[2:]), synth_cfg, gen, repeat=t).reshape(windows.shape)
    pelvis = bodies[:, :, 0]
    travel = (pelvis - pelvis[:, t // 2 : t // 2 + 1])[..., [0, 2]].norm(dim=-1).amax(1)
    rotation, translation, focal, principal, _ = sample_cameras(bodies[:, t // 2], synth_cfg, gen, clearance=travel)
    cam = torch.einsum("bij,btkj->btki", rotation, bodies) + translation[:, None, None]
    return cam, focal, principal


def make_sequences(
    points: np.ndarray,
    starts: np.ndarray,
    length: int,
    stride: int,
    synth_cfg: SynthSection,
    noise_cfg: RefineNoiseSection,
    calibration: NoiseCalibration,
    gen: torch.Generator,
) -> KeypointSequences:
    """Windows of `length` frames, every `stride`-th mocap frame from each start index, filmed and corrupted."""
    index = torch.as_tensor(starts)[:, None] + torch.arange(length)[None] * stride
    windows = torch.from_numpy(points)[index]
    cam, focal, principal = film_windows(windows, synth_cfg, gen)
    clean = project_to_image(
        cam[..., list(COCO_FROM_BODY), :].flatten(0, 1),
        focal.repeat_interleave(length),
        principal.repeat_interleave(length, 0),
    )
    clean = clean.reshape(len(starts), length, NUM_COCO_JOINTS, 2)
    noisy, conf, present = corrupt_sequences(clean, calibration, noise_cfg, gen)
    return KeypointSequences(clean, noisy, conf, present, focal, principal, cam)


def valid_window_starts(clip_starts: np.ndarray, clip_ends: np.ndarray, length: int, stride: int) -> np.ndarray:
    """Every frame index from which a window of `length` frames at `stride` stays inside its clip."""
    span = (length - 1) * stride
    return np.concatenate(
        [np.arange(s, e - span) for s, e in zip(clip_starts, clip_ends) if e - s > span] or [np.zeros(0, np.int64)]
    )
