"""Training losses: 3D pose, camera, confidence-weighted reprojection, and the priors for 2D-only data."""

from __future__ import annotations

import torch

from camerapose_cli.geometry import project_normalized


def pose_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean Euclidean joint error (MPJPE), metres."""
    return (pred - target).norm(dim=-1).mean()


def camera_targets(root: torch.Tensor, focal: torch.Tensor, principal: torch.Tensor, centre: torch.Tensor, scale: torch.Tensor):
    """The lifter's camera for a known root (N, 3) and intrinsics: (log d, root_xy)."""
    log_d = torch.log(root[:, 2] * scale / focal)
    root_px = root[:, :2] / root[:, 2:3] * focal[:, None] + principal
    return log_d, (root_px - centre) / scale[:, None]


def reprojection_loss(
    points: torch.Tensor,
    log_depth_ratio: torch.Tensor,
    root_xy: torch.Tensor,
    keypoints: torch.Tensor,
    conf: torch.Tensor,
    principal: torch.Tensor,
    root_depth: torch.Tensor | None,
) -> torch.Tensor:
    """Confidence-weighted distance between the projected 3D points (N, J, 3) and normalized 2D (N, J, 2)."""
    projected = project_normalized(points, log_depth_ratio.exp(), root_xy, principal, root_depth)
    err = (projected - keypoints).norm(dim=-1)
    return (err * conf).sum() / conf.sum().clamp(min=1e-6)
