"""Pose-error metrics (millimetres in, millimetres out if you pass metres × 1000): MPJPE and its variants."""

from __future__ import annotations

import torch

from camerapose_cli.core.geometry import procrustes_align
from camerapose_cli.core.skeleton import HEIGHT_LEG_BONES, HEIGHT_TRUNK_BONES, HIP_JOINTS, LIMB_JOINTS, LIMB_PAIRS


def per_joint_error(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Euclidean error of each joint (N, J)."""
    return (pred - target).norm(dim=-1)


def mpjpe(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean per-joint position error, root-relative poses as given."""
    return per_joint_error(pred, target).mean()


def pa_mpjpe(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """MPJPE after the best similarity transform (rotation, scale, translation) per pose."""
    return mpjpe(procrustes_align(pred, target), target)


def n_mpjpe(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """MPJPE after the best scale per pose (VideoPose3D's N-MPJPE)."""
    scale = (pred * target).sum((1, 2)) / (pred * pred).sum((1, 2)).clamp(min=1e-12)
    return mpjpe(scale[:, None, None] * pred, target)


def limb_mpjpe(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """MPJPE over the 12 limb joints after aligning the mid-hips: comparable across rigs whose spine and head
    joints sit elsewhere."""
    pred, target = pred[:, list(LIMB_JOINTS)], target[:, list(LIMB_JOINTS)]
    hips = [LIMB_JOINTS.index(j) for j in HIP_JOINTS]
    return mpjpe(pred - pred[:, hips].mean(1, keepdim=True), target - target[:, hips].mean(1, keepdim=True))


def limb_pa_mpjpe(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """PA-MPJPE over the 12 limb joints (the similarity transform fitted on them alone)."""
    return pa_mpjpe(pred[:, list(LIMB_JOINTS)], target[:, list(LIMB_JOINTS)])


def second_difference(x: torch.Tensor) -> torch.Tensor:
    """The acceleration along the first (time) dimension: x[t+1] - 2 x[t] + x[t-1], (T - 2, ...)."""
    return x[2:] - 2 * x[1:-1] + x[:-2]


def acceleration_error(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean error of the second finite difference along time (T, ..., D): jitter."""
    return (second_difference(pred) - second_difference(target)).norm(dim=-1).mean()


def bone_lengths(pose: torch.Tensor, bones: tuple[tuple[int, int], ...]) -> torch.Tensor:
    """Lengths (N, B) of the given (parent, child) bones of poses (N, J, 3)."""
    parents = torch.tensor([b[0] for b in bones], device=pose.device)
    children = torch.tensor([b[1] for b in bones], device=pose.device)
    return (pose[:, children] - pose[:, parents]).norm(dim=-1)


def limb_pair_lengths(pose: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Left and right lengths (N, 4) of the LIMB_PAIRS of poses (N, J, 3)."""
    return (
        bone_lengths(pose, tuple(pair[0] for pair in LIMB_PAIRS)),
        bone_lengths(pose, tuple(pair[1] for pair in LIMB_PAIRS)),
    )


def limb_asymmetry(pose: torch.Tensor) -> torch.Tensor:
    """|left - right| / mean length of each limb pair (N, 4): 0 for a symmetric body. A plausibility measure."""
    left, right = limb_pair_lengths(pose)
    return (left - right).abs() / ((left + right) / 2).clamp(min=1e-6)


def body_height(pose: torch.Tensor) -> torch.Tensor:
    """Height (N,) of bodies (N, J>=17, 3) in the H36M joint order whatever their pose: ankle to head joint
    along the bones, the two legs averaged."""
    legs = bone_lengths(pose, HEIGHT_LEG_BONES).sum(-1) / 2
    return legs + bone_lengths(pose, HEIGHT_TRUNK_BONES).sum(-1)
