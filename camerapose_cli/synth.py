"""Training pairs from mocap: augment the body, film it with a random virtual camera, corrupt the 2D.

Every range here comes from the preset's [synth] table (pipelines/*.toml), so nothing is tuned in code.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from camerapose_cli.geometry import lifter_inputs, look_at, project_to_image
from camerapose_cli.skeleton import BODY_INDEX, BODY_POINTS, COCO_FROM_BODY, H36M17_JOINTS

assert BODY_POINTS[: len(H36M17_JOINTS)] == H36M17_JOINTS  # body points start with the H36M joints

# Parent of each body point, for bone-length scaling; face points hang rigidly off the thorax.
_BODY_PARENT = {
    "pelvis": None, "r_hip": "pelvis", "r_knee": "r_hip", "r_ankle": "r_knee", "l_hip": "pelvis",
    "l_knee": "l_hip", "l_ankle": "l_knee", "spine": "pelvis", "thorax": "spine", "neck_nose": "thorax",
    "head": "thorax", "l_shoulder": "thorax", "l_elbow": "l_shoulder", "l_wrist": "l_elbow",
    "r_shoulder": "thorax", "r_elbow": "r_shoulder", "r_wrist": "r_elbow", "l_eye": "thorax",
    "r_eye": "thorax", "l_ear": "thorax", "r_ear": "thorax",
}  # fmt: skip
BODY_PARENTS = tuple(-1 if _BODY_PARENT[n] is None else BODY_INDEX[_BODY_PARENT[n]] for n in BODY_POINTS)
# Which scale factor each bone (child point) takes.
_BONE_GROUP = {
    "r_hip": "hip_width", "l_hip": "hip_width", "r_knee": "thigh", "l_knee": "thigh", "r_ankle": "shin",
    "l_ankle": "shin", "spine": "torso", "thorax": "torso", "neck_nose": "head", "head": "head", "l_eye": "head",
    "r_eye": "head", "l_ear": "head", "r_ear": "head", "l_shoulder": "shoulder_width",
    "r_shoulder": "shoulder_width", "l_elbow": "upper_arm", "r_elbow": "upper_arm", "l_wrist": "forearm",
    "r_wrist": "forearm",
}  # fmt: skip
BONE_GROUPS = ("hip_width", "thigh", "shin", "torso", "head", "shoulder_width", "upper_arm", "forearm")
_BODY_FLIP = tuple(
    BODY_INDEX[n.replace("l_", "#").replace("r_", "l_").replace("#", "r_")] if n[:2] in ("l_", "r_") else i
    for i, n in enumerate(BODY_POINTS)
)


@dataclass
class SyntheticBatch:
    """One batch of lifter training pairs, in each sample's virtual camera (geometry.to_virtual_camera)."""

    inputs: torch.Tensor  # (N, 17, 3) normalized COCO x, y and confidence: what the lifter sees
    body: torch.Tensor  # (N, 21, 3) body points (H36M joints first), virtual camera frame, root-relative, metres
    root: torch.Tensor  # (N, 3) pelvis in virtual camera coordinates, metres
    keypoints_px: torch.Tensor  # (N, 17, 2) clean COCO projection in the real image, pixels
    focal: torch.Tensor  # (N,) px
    principal: torch.Tensor  # (N, 2) px in the virtual image (zero)
    centre: torch.Tensor  # (N, 2) px in the virtual image, the 2D normalization
    scale: torch.Tensor  # (N,) px
    rotation: torch.Tensor  # (N, 3, 3) virtual → real camera


def _uniform(n: int, low: float, high: float, gen: torch.Generator) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=gen)


def scale_bones(points: torch.Tensor, factors: dict[str, torch.Tensor]) -> torch.Tensor:
    """Rescale every bone of body points (N, 21, 3) by its group's per-sample factor (N,)."""
    bones = points - points[:, [max(p, 0) for p in BODY_PARENTS]]
    group_of = {BODY_INDEX[c]: g for c, g in _BONE_GROUP.items()}
    out = torch.empty_like(points)
    out[:, 0] = points[:, 0]
    for child, parent in enumerate(BODY_PARENTS):  # BODY_POINTS is in topological order
        if parent >= 0:
            out[:, child] = out[:, parent] + bones[:, child] * factors[group_of[child]][:, None]
    return out


def augment_bodies(points: torch.Tensor, cfg: dict[str, Any], gen: torch.Generator, repeat: int = 1) -> torch.Tensor:
    """Random proportions (limbs and widths), overall size and left-right mirroring of world bodies (N, 21, 3).

    With `repeat` = T, consecutive runs of T bodies (the frames of one sequence) share one draw.
    """
    n = len(points) // repeat
    limb_lo, limb_hi = cfg["limb_scale"]
    factors = {g: _uniform(n, limb_lo, limb_hi, gen) for g in BONE_GROUPS}
    factors["hip_width"] = _uniform(n, *cfg["hip_width_scale"], gen)
    factors["shoulder_width"] = _uniform(n, *cfg["shoulder_width_scale"], gen)
    height = _uniform(n, *cfg["height_scale"], gen)
    for g in BONE_GROUPS:
        factors[g] = (factors[g] * height).repeat_interleave(repeat)
    points = scale_bones(points, factors)
    flip = (torch.rand(n, generator=gen) < cfg["flip_prob"]).repeat_interleave(repeat)
    mirrored = points[:, list(_BODY_FLIP)] * torch.tensor([-1.0, 1.0, 1.0])
    return torch.where(flip[:, None, None], mirrored, points)


def sample_cameras(points: torch.Tensor, cfg: dict[str, Any], gen: torch.Generator, clearance: torch.Tensor | None = None):
    """A random pinhole camera per body: distance, height, azimuth, aim offset, roll, image size, focal, principal point.

    `clearance` (N,) metres is added to the distance (for sequences, how far the person travels).
    Returns (world-to-camera rotation (N,3,3), translation (N,3), focal (N,), principal point (N,2), image size (N,2)).
    """
    n = len(points)
    pelvis = points[:, BODY_INDEX["pelvis"]]
    floor = points[..., 1].amin(1)
    azimuth = _uniform(n, 0, 2 * math.pi, gen)
    distance = torch.exp(_uniform(n, math.log(cfg["distance"][0]), math.log(cfg["distance"][1]), gen))
    if clearance is not None:  # a moving person must stay in front of the camera: keep this much farther away
        distance = distance + clearance
    height = floor + _uniform(n, *cfg["camera_height"], gen)
    eye = torch.stack(
        [pelvis[:, 0] + distance * torch.cos(azimuth), height, pelvis[:, 2] + distance * torch.sin(azimuth)], -1
    )
    sizes = torch.tensor(cfg["image_sizes"], dtype=torch.float32)
    size = sizes[torch.randint(len(sizes), (n,), generator=gen)]
    fov = torch.deg2rad(_uniform(n, *cfg["fov_deg"], gen))  # across the longer side
    focal = size.amax(-1) / 2 / torch.tan(fov / 2)
    principal = size / 2 + (torch.rand(n, 2, generator=gen) - 0.5) * 2 * cfg["principal_jitter"] * size
    target = pelvis + (torch.rand(n, 3, generator=gen) - 0.5) * 2 * cfg["aim_jitter_m"]
    rotation = look_at(eye, target, torch.tensor([0.0, 1.0, 0.0]))
    # Put the person off-centre too, and tilt the camera a little.
    yaw = (torch.rand(n, generator=gen) - 0.5) * fov * cfg["off_centre"]
    pitch = (torch.rand(n, generator=gen) - 0.5) * fov * cfg["off_centre"]
    roll = torch.deg2rad((torch.rand(n, generator=gen) - 0.5) * 2 * cfg["roll_deg"])
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


def corrupt_keypoints(
    keypoints: torch.Tensor, cfg: dict[str, Any], gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Detector-like noise on clean 2D (N, 17, 2): Gaussian jitter scaled by the person's size, dropped joints.

    Returns (noisy keypoints, confidences).
    """
    n, j, _ = keypoints.shape
    extent = (keypoints.amax(1) - keypoints.amin(1)).amax(-1)  # the person's height or width, px
    sigma = _uniform(n, *cfg["noise_frac"], gen) * extent
    noise = torch.randn(n, j, 2, generator=gen) * sigma[:, None, None]
    noisy = keypoints + noise
    # Confidence falls as the error grows, as the detector's does.
    err = noise.norm(dim=-1) / extent[:, None].clamp(min=1)
    conf = (1.0 - err * cfg["conf_per_error"] - 0.15 * torch.rand(n, j, generator=gen)).clamp(0.3, 1.0)
    dropped = torch.rand(n, j, generator=gen) < _uniform(n, *cfg["drop_prob"], gen)[:, None]
    wander = (torch.rand(n, j, 2, generator=gen) - 0.5) * extent[:, None, None] * 0.5
    noisy = torch.where(dropped[..., None], keypoints + wander, noisy)
    conf = torch.where(dropped, torch.rand(n, j, generator=gen) * cfg["dropped_conf_max"], conf)
    return noisy, conf


def film_bodies(bodies: torch.Tensor, cfg: dict[str, Any], gen: torch.Generator):
    """Film world bodies (N, 21, 3) with random cameras.

    Returns (camera-frame points (N, 21, 3), COCO keypoints (N, 17, 2) px, focal (N,), principal point (N, 2),
    image size (N, 2)).
    """
    rotation, translation, focal, principal, size = sample_cameras(bodies, cfg, gen)
    cam = (rotation[:, None] @ bodies[..., None])[..., 0] + translation[:, None]
    return cam, project_to_image(cam[:, list(COCO_FROM_BODY)], focal, principal), focal, principal, size


def make_batch(
    world_points: torch.Tensor, cfg: dict[str, Any], gen: torch.Generator, *, augment: bool = True, corrupt: bool = True
) -> SyntheticBatch:
    """Body points in the world (N, 21, 3) → a lifter batch: optionally augmented bodies, corrupted 2D."""
    bodies = augment_bodies(world_points, cfg, gen) if augment else world_points
    cam, coco_px, focal, principal, _ = film_bodies(bodies, cfg, gen)
    if not corrupt:
        noisy, conf = coco_px, torch.ones(coco_px.shape[:2])
    else:
        noisy, conf = corrupt_keypoints(coco_px, cfg, gen)
    inputs, centre, scale, rotation = lifter_inputs(noisy, conf, focal, principal)
    virtual = cam @ rotation  # camera → virtual camera (R^T p for row vectors)
    root = virtual[:, BODY_INDEX["pelvis"]]
    return SyntheticBatch(
        inputs=inputs,
        body=virtual - root[:, None],
        root=root,
        keypoints_px=coco_px,
        focal=focal,
        principal=torch.zeros_like(principal),
        centre=centre,
        scale=scale,
        rotation=rotation,
    )
