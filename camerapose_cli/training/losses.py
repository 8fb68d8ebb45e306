"""Training losses: 3D pose, camera, confidence-weighted reprojection, and the priors for 2D-only data."""

from __future__ import annotations

import torch

from camerapose_cli.core.geometry import project_normalized
from camerapose_cli.core.metrics import bone_lengths, limb_pair_lengths


def pose_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean Euclidean joint error (MPJPE), metres."""
    return (pred - target).norm(dim=-1).mean()


def camera_targets(
    root: torch.Tensor, focal: torch.Tensor, principal: torch.Tensor, centre: torch.Tensor, scale: torch.Tensor
):
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


def detection_trust(conf: torch.Tensor, floor: float, power: float) -> torch.Tensor:
    """How far to trust a detection, from its confidence: 0 below `floor`, rising to 1 at confidence 1."""
    return ((conf - floor) / (1 - floor)).clamp(min=0, max=1) ** power


def confidence_guided_loss(
    refined: torch.Tensor,
    clean: torch.Tensor,
    detected: torch.Tensor,
    conf: torch.Tensor,
    present: torch.Tensor,
    anchor: float,
    floor: float,
    power: float,
) -> torch.Tensor:
    """The refiner's confidence-guided objective (docs/method.md), keypoints (B, T, J, 2), normalized units.

    L = mean over joints of ||r - y||^2 + anchor * w(c) * ||r - x||^2, with y the true keypoint, x the
    detection, c its confidence and w = detection_trust(c). Its minimizer is (y + anchor w x) / (1 + anchor w):
    the detection where the detector is sure, the learned estimate of the truth where it is not.
    `anchor` = 0 is the plain loss. Gaps (present = False) only count the first term.
    """
    weight = anchor * detection_trust(conf, floor, power) * present[..., None].float()
    truth_term = (refined - clean).pow(2).sum(-1)
    anchor_term = (refined - detected).pow(2).sum(-1)
    return (truth_term + weight * anchor_term).mean()


def refined_confidence_loss(
    conf_logit: torch.Tensor, refined: torch.Tensor, clean: torch.Tensor, tolerance: float
) -> torch.Tensor:
    """Teach the refined confidence to say how close the refined joint is to the truth: exp(-(err/tol)^2)."""
    target = torch.exp(-(((refined.detach() - clean).norm(dim=-1) / tolerance) ** 2))
    return torch.nn.functional.binary_cross_entropy_with_logits(conf_logit, target)


def bone_length_prior(
    body: torch.Tensor, low: torch.Tensor, high: torch.Tensor, bones: tuple[tuple[int, int], ...]
) -> torch.Tensor:
    """Penalty on bone lengths of poses (N, J, 3) outside the band [low, high] (B,) seen in paired data, in log units.

    With 2D-only data nothing else stops the lifter from shrinking or stretching limbs along the view ray. The
    band is the range of the paired bodies, not a tolerance around their mean: the augmentation spans widths
    from the mocap's narrow ones to twice that, and every body in that range is plausible.
    """
    lengths = bone_lengths(body, bones).clamp(min=1e-4)
    return (torch.log(low / lengths).clamp(min=0) + torch.log(lengths / high).clamp(min=0)).mean()


def symmetry_prior(body: torch.Tensor) -> torch.Tensor:
    """Mean squared log ratio of left to right limb lengths (thighs, shins, upper arms, forearms).

    Squared, not the absolute difference: an L1 penalty's gradient keeps its full size at symmetry and, summed
    over a batch, shakes the shared layers in every step (docs/experiments.md).
    """
    left, right = (lengths.clamp(min=1e-4) for lengths in limb_pair_lengths(body))
    return torch.log(left / right).pow(2).mean()
