"""Camera geometry: pinhole projection, the lifter's normalized camera, 2D normalization, Procrustes.

Camera coordinates follow OpenCV (x right, y down, z forward), metres. Functions take torch tensors
with any leading batch dimensions unless noted.
"""

from __future__ import annotations

import numpy as np
import torch

VISIBLE_CONF = 0.2  # keypoints below this confidence do not define the person's 2D box


def focal_from_fov(width, height, fov_deg):
    """Focal length in pixels for a field of view (degrees) across the image's longer side.

    Works on numpy arrays (fov a number) and on torch tensors (fov a number or a tensor of the batch).
    """
    if isinstance(width, torch.Tensor):
        half_angle = torch.deg2rad(torch.as_tensor(fov_deg, dtype=width.dtype)) / 2
        return torch.maximum(width, height) / 2 / torch.tan(half_angle)
    return np.maximum(width, height) / 2 / np.tan(np.radians(fov_deg) / 2)


def project_to_image(points: torch.Tensor, focal: torch.Tensor, center: torch.Tensor) -> torch.Tensor:
    """Pinhole projection of camera-frame points (..., J, 3) with focal (...,) px and principal point (..., 2)."""
    z = points[..., 2:3].clamp(min=1e-4)
    return points[..., :2] / z * focal[..., None, None] + center[..., None, :]


def on_image_border(keypoints: np.ndarray, width: np.ndarray, height: np.ndarray, margin: float) -> np.ndarray:
    """Which keypoints (N, J, 2) px lie within `margin` (a fraction of the shorter image side) of their image's
    border, on either side of it, the image of each row being `width` x `height` (N,) px: (N, J) bool."""
    size = np.stack([width, height], -1).astype(np.float64)[:, None, :]
    reach = margin * size.min(-1, keepdims=True)
    return ((np.abs(keypoints) <= reach) | (np.abs(keypoints - size) <= reach)).any(-1)


def unproject_from_image(
    uv: torch.Tensor, depth: torch.Tensor, focal: torch.Tensor, center: torch.Tensor
) -> torch.Tensor:
    """Inverse of project_to_image for pixels (..., J, 2) at depths (..., J)."""
    xy = (uv - center[..., None, :]) / focal[..., None, None] * depth[..., None]
    return torch.cat([xy, depth[..., None]], dim=-1)


def normalize_keypoints(keypoints: torch.Tensor, conf: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Centre and scale 2D keypoints (N, J, 2) by the box of the confident ones.

    Returns (normalized (N, J, 2), centre (N, 2) px, scale (N,) px = half the box's longer side).
    """
    visible = conf >= VISIBLE_CONF
    too_few = visible.sum(-1) < 2
    visible = torch.where(too_few[:, None], torch.ones_like(visible), visible)
    big = torch.finfo(keypoints.dtype).max
    lo = torch.where(visible[..., None], keypoints, torch.full_like(keypoints, big)).amin(1)
    hi = torch.where(visible[..., None], keypoints, torch.full_like(keypoints, -big)).amax(1)
    centre = (lo + hi) / 2
    scale = ((hi - lo).amax(-1) / 2).clamp(min=1e-3)
    return (keypoints - centre[:, None]) / scale[:, None, None], centre, scale


def normalize_track(
    keypoints: torch.Tensor, conf: torch.Tensor, present: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Normalize 2D sequences (B, T, J, 2) by one centre and scale per track: the medians over its frames.

    Returns (normalized (B, T, J, 2), centre (B, 2), scale (B,)). Frames where `present` is False are ignored.
    """
    b, t = keypoints.shape[:2]
    _, centre, scale = normalize_keypoints(keypoints.reshape(b * t, *keypoints.shape[2:]), conf.reshape(b * t, -1))
    centre, scale = centre.reshape(b, t, 2), scale.reshape(b, t)
    nan = torch.full_like(scale, float("nan"))
    track_centre = torch.where(present[..., None], centre, nan[..., None]).nanmedian(1).values
    track_scale = torch.where(present, scale, nan).nanmedian(1).values
    track_centre, track_scale = track_centre.nan_to_num(0.0), track_scale.nan_to_num(1.0).clamp(min=1e-3)
    return (keypoints - track_centre[:, None, None]) / track_scale[:, None, None, None], track_centre, track_scale


def project_normalized(
    pose: torch.Tensor,
    depth_ratio: torch.Tensor,
    root_xy: torch.Tensor,
    principal: torch.Tensor,
    root_depth: torch.Tensor | None,
) -> torch.Tensor:
    """Project a root-relative pose (N, J, 3) through the lifter's camera, into normalized 2D (N, J, 2).

    The camera is (depth_ratio d, root_xy t): the root sits at normalized image position t and at depth
    Z = d * f / S, where f is the focal length and S the 2D scale in pixels. `principal` is the principal
    point in normalized units, (c - centre) / S. With `root_depth` Z given the projection is a full pinhole;
    with None it is the weak-perspective limit, t + pose_xy / d.
    """
    if root_depth is None:
        return root_xy[:, None] + pose[..., :2] / depth_ratio[:, None, None]
    root_cam_xy = (root_xy - principal) * depth_ratio[:, None]  # = X_root, Y_root in metres
    z = (root_depth[:, None] + pose[..., 2]).clamp(min=1e-3)
    xy = (root_cam_xy[:, None] + pose[..., :2]) / z[..., None]
    return xy * (root_depth / depth_ratio)[:, None, None] + principal[:, None]


def procrustes_align(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Align pred (N, J, 3) to target with the best similarity transform (rotation, scale, translation)."""
    mu_p, mu_t = pred.mean(1, keepdim=True), target.mean(1, keepdim=True)
    p, t = pred - mu_p, target - mu_t
    cov = p.transpose(1, 2) @ t
    u, s, vt = torch.linalg.svd(cov)
    d = torch.sign(torch.linalg.det(u @ vt))
    fix = torch.ones_like(s)
    fix[:, -1] = d
    rotation = u @ torch.diag_embed(fix) @ vt
    scale = (s * fix).sum(-1) / (p**2).sum((1, 2)).clamp(min=1e-12)
    return scale[:, None, None] * (p @ rotation) + mu_t


def look_at(eye: torch.Tensor, target: torch.Tensor, world_up: torch.Tensor) -> torch.Tensor:
    """World-to-camera rotations (N, 3, 3) for cameras at `eye` looking at `target` (OpenCV axes, world Y up)."""
    forward = torch.nn.functional.normalize(target - eye, dim=-1)
    right = torch.nn.functional.normalize(torch.cross(forward, world_up.expand_as(forward), dim=-1), dim=-1)
    down = torch.cross(forward, right, dim=-1)
    return torch.stack([right, down, forward], dim=1)


def ray_rotation(direction: torch.Tensor) -> torch.Tensor:
    """Rotations (N, 3, 3) turning the optical axis (0, 0, 1) onto unit rays (N, 3), by the shortest arc."""
    z = torch.zeros_like(direction)
    z[:, 2] = 1
    axis = torch.cross(z, direction, dim=-1)
    sin = axis.norm(dim=-1).clamp(min=1e-12)
    cos = direction[:, 2]
    k = axis / sin[:, None]
    kx = torch.zeros(len(direction), 3, 3, dtype=direction.dtype, device=direction.device)
    kx[:, 0, 1], kx[:, 0, 2], kx[:, 1, 0] = -k[:, 2], k[:, 1], k[:, 2]
    kx[:, 1, 2], kx[:, 2, 0], kx[:, 2, 1] = -k[:, 0], -k[:, 1], k[:, 0]
    eye = torch.eye(3, dtype=direction.dtype, device=direction.device).expand_as(kx)
    return eye + sin[:, None, None] * kx + (1 - cos)[:, None, None] * (kx @ kx)


def to_virtual_camera(
    keypoints: torch.Tensor, conf: torch.Tensor, focal: torch.Tensor, principal: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Re-image 2D keypoints (N, J, 2) px in a virtual camera that looks straight at the person.

    A person at the edge of a wide image is seen obliquely; their pose in camera coordinates is turned by
    the angle of the ray to them, which the keypoints' box alone cannot tell. Rotating the camera about its
    centre onto that ray (a perspective crop) removes the ambiguity: the lifter works in the virtual camera
    and its output is rotated back. Returns (keypoints in the virtual image, principal point at 0, same
    focal length; the rotation R (N, 3, 3) with camera = R @ virtual).
    """
    _, centre, _ = normalize_keypoints(keypoints, conf)
    ray = torch.cat([(centre - principal) / focal[:, None], torch.ones_like(focal)[:, None]], -1)
    rotation = ray_rotation(torch.nn.functional.normalize(ray, dim=-1))
    rays = torch.cat([(keypoints - principal[:, None]) / focal[:, None, None], torch.ones_like(keypoints[..., :1])], -1)
    virtual = rays @ rotation  # = (R^T ray) for each row vector
    return virtual[..., :2] / virtual[..., 2:3].clamp(min=1e-6) * focal[:, None, None], rotation


def lifter_inputs(
    keypoints: torch.Tensor, conf: torch.Tensor, focal: torch.Tensor, principal: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """What the lifter sees of 2D keypoints (N, J, 2) px: re-imaged in the virtual camera aimed at the person,
    normalized by the box of the confident joints, with the confidences.

    Returns (inputs (N, J, 3), centre (N, 2) and scale (N,) in the virtual image, rotation (N, 3, 3) virtual → camera).
    """
    virtual_px, rotation = to_virtual_camera(keypoints, conf, focal, principal)
    normalized, centre, scale = normalize_keypoints(virtual_px, conf)
    # Unconfident joints can sit anywhere (a detector's far-off guess); keep them near the person.
    normalized = torch.where(conf[..., None] < VISIBLE_CONF, normalized.clamp(-1.5, 1.5), normalized)
    return torch.cat([normalized, conf[..., None]], -1), centre, scale, rotation
