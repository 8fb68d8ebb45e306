"""Pose-space augmentation: poses the motion capture lacks, made from the poses it has.

The Bandai actors never sit, crouch, kneel or lie, and their arms rarely reach towards or away from a camera.
On world bodies (N, 21, 3), Y up, in runs of `repeat` frames (one window) that share one draw:

- `bend_limbs`: arms turned at the shoulder about a random axis and bent further at the elbow; legs flexed at
  the hips and knees together (crouching, sitting, kneeling) and spread at the hip; flexion stays within
  [pose_augment] max_flex_deg;
- `recombine_limbs`: the lower body of another window under this window's upper body, turned to its heading;
- `bend_torso`: the upper body bent forward or back and sideways at the pelvis and twisted against the legs
  (bending over, reaching down, turning the shoulders);
- `tilt_bodies`: the whole body turned about a horizontal axis through the pelvis (leaning, lying).

Every range comes from the preset's [pose_augment] table.
"""

from __future__ import annotations

import math

import torch

from camerapose_cli.config import PoseAugmentSection
from camerapose_cli.core.skeleton import BODY_INDEX, BODY_PARENTS, NUM_BODY_POINTS

ARMS = (("l_shoulder", "l_elbow", "l_wrist"), ("r_shoulder", "r_elbow", "r_wrist"))
LEGS = (("l_hip", "l_knee", "l_ankle"), ("r_hip", "r_knee", "r_ankle"))
LOWER_BODY = tuple(BODY_INDEX[n] for leg in LEGS for n in leg)


def _descendants(root: int) -> list[int]:
    """The body point `root` and every point below it in the tree."""
    out = [root]
    for child, parent in enumerate(BODY_PARENTS):  # topological order: parents come first
        if parent in out:
            out.append(child)
    return out


def axis_angle_matrix(axis: torch.Tensor, angle: torch.Tensor) -> torch.Tensor:
    """Rotation matrices (N, 3, 3) turning by `angle` (N,) radians about unit axes (N, 3), right-handed."""
    k = torch.zeros(len(axis), 3, 3, dtype=axis.dtype)
    k[:, 0, 1], k[:, 0, 2], k[:, 1, 0] = -axis[:, 2], axis[:, 1], axis[:, 2]
    k[:, 1, 2], k[:, 2, 0], k[:, 2, 1] = -axis[:, 0], -axis[:, 1], axis[:, 0]
    sin, cos = torch.sin(angle)[:, None, None], torch.cos(angle)[:, None, None]
    return torch.eye(3, dtype=axis.dtype) + sin * k + (1 - cos) * (k @ k)


def _unit(v: torch.Tensor) -> torch.Tensor:
    return v / v.norm(dim=-1, keepdim=True).clamp(min=1e-9)


def body_axes(points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-body (forward, up, left) unit vectors, each (N, 3): core.body.torso_frame's convention."""
    up = _unit(points[:, BODY_INDEX["thorax"]] - points[:, BODY_INDEX["pelvis"]])
    left = (points[:, BODY_INDEX["l_hip"]] - points[:, BODY_INDEX["r_hip"]]) + (
        points[:, BODY_INDEX["l_shoulder"]] - points[:, BODY_INDEX["r_shoulder"]]
    )
    left = _unit(left - (left * up).sum(-1, keepdim=True) * up)
    return torch.cross(left, up, dim=-1), up, left


def rotate_about(
    points: torch.Tensor, pivot: int, rotation: torch.Tensor, where: torch.Tensor, centre: int | None = None
) -> torch.Tensor:
    """Turn the points below `pivot` (itself included) by `rotation` (N, 3, 3) about the point `centre` (default:
    the pivot itself), for the bodies `where` (N,)."""
    moving = _descendants(pivot)
    at = pivot if centre is None else centre
    origin = points[:, at : at + 1]
    turned = (points[:, moving] - origin) @ rotation.transpose(1, 2) + origin
    out = points.clone()
    out[:, moving] = torch.where(where[:, None, None], turned, points[:, moving])
    return out


def _flexion(points: torch.Tensor, chain: tuple[str, str, str]) -> torch.Tensor:
    """The bend (N,) radians at a chain's middle joint: 0 when straight."""
    a, b, c = (BODY_INDEX[n] for n in chain)
    upper, lower = _unit(points[:, b] - points[:, a]), _unit(points[:, c] - points[:, b])
    return torch.acos((upper * lower).sum(-1).clamp(-1, 1))


def _per_window(values: torch.Tensor, repeat: int) -> torch.Tensor:
    return values.repeat_interleave(repeat, 0)


def _draw(n: int, low: float, high: float, gen: torch.Generator) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=gen)


def bend_limbs(points: torch.Tensor, cfg: PoseAugmentSection, gen: torch.Generator, repeat: int = 1) -> torch.Tensor:
    """Arms turned at the shoulder and bent at the elbow; legs flexed at hip and knee, and spread; per window."""
    n = len(points) // repeat
    max_flex = math.radians(cfg.max_flex_deg)
    forward, _, left = body_axes(points)  # the torso does not move: every turn below pivots at a limb's root or middle
    right = -left  # a turn about the body's right axis swings a limb forward (forward x up = right)
    for chain in ARMS:
        pick = _per_window(torch.rand(n, generator=gen) < cfg.arm_prob, repeat)
        bend = _per_window(torch.deg2rad(_draw(n, *cfg.elbow_flex_deg, gen)), repeat)
        shoulder, elbow, wrist = (BODY_INDEX[j] for j in chain)
        hinge = torch.cross(points[:, elbow] - points[:, shoulder], points[:, wrist] - points[:, elbow], dim=-1)
        hinge = torch.where(hinge.norm(dim=-1, keepdim=True) > 1e-4, _unit(hinge), -left)
        flexion = _flexion(points, chain)
        bend = (flexion + bend).clamp(max=max_flex) - flexion
        points = rotate_about(points, elbow, axis_angle_matrix(hinge, bend), pick)
        axis = _per_window(_unit(torch.randn(n, 3, generator=gen)), repeat)
        turn = _per_window(torch.deg2rad(_draw(n, 0.0, cfg.shoulder_deg, gen)), repeat)
        points = rotate_about(points, shoulder, axis_angle_matrix(axis, turn), pick)
    pick_legs = _per_window(torch.rand(n, generator=gen) < cfg.leg_prob, repeat)
    hip_flex = torch.deg2rad(_draw(n, *cfg.hip_flex_deg, gen))
    knee_flex = torch.deg2rad(_draw(n, *cfg.knee_flex_deg, gen))
    for side, chain in enumerate(LEGS):
        # Each leg its own angles sometimes (one knee down, a step up); both the same otherwise.
        alone = torch.rand(n, generator=gen) < cfg.legs_apart_prob
        hip = _per_window(torch.where(alone, torch.deg2rad(_draw(n, *cfg.hip_flex_deg, gen)), hip_flex), repeat)
        knee = _per_window(torch.where(alone, torch.deg2rad(_draw(n, *cfg.knee_flex_deg, gen)), knee_flex), repeat)
        spread = _per_window(torch.deg2rad(_draw(n, 0.0, cfg.hip_spread_deg, gen)), repeat)
        hip_i, knee_i, _ = (BODY_INDEX[j] for j in chain)
        flexion = _flexion(points, chain)
        knee = (flexion + knee).clamp(max=max_flex) - flexion
        points = rotate_about(points, knee_i, axis_angle_matrix(left, knee), pick_legs)  # the shin swings back
        points = rotate_about(points, hip_i, axis_angle_matrix(right, hip), pick_legs)  # the thigh swings forward
        outward = forward if side == 0 else -forward  # about forward, a left leg swings out to the left
        points = rotate_about(points, hip_i, axis_angle_matrix(outward, spread), pick_legs)
    return points


SKELETON_JOINTS = ("l_hip", "r_hip", "spine", "thorax", "l_shoulder", "r_shoulder", "neck_nose", "head")


def move_joints(points: torch.Tensor, offset_m: float, gen: torch.Generator, repeat: int = 1) -> torch.Tensor:
    """Another rig's joint placement: each of the hips, spine, thorax, shoulders, nose and head (with everything
    below it) moved by up to `offset_m` metres per axis of the torso frame, one draw per window."""
    n = len(points) // repeat
    forward, up, left = body_axes(points)
    frame = torch.stack([forward, up, left], -1)  # (N, 3, 3), columns
    out = points
    for name in SKELETON_JOINTS:
        local = _per_window((torch.rand(n, 3, generator=gen) * 2 - 1) * offset_m, repeat)
        shift = (frame @ local[..., None])[..., 0]
        moving = _descendants(BODY_INDEX[name])
        out = out.clone()
        out[:, moving] = out[:, moving] + shift[:, None]
    return out


def _heading(points: torch.Tensor) -> torch.Tensor:
    """Per-body horizontal frame (N, 3, 3), rows (left, up, forward) with up = +Y."""
    _, _, left = body_axes(points)
    up = torch.zeros_like(left)
    up[:, 1] = 1
    left = _unit(left - left[:, 1:2] * up)
    return torch.stack([left, up, torch.cross(left, up, dim=-1)], 1)


def recombine_limbs(
    points: torch.Tensor, cfg: PoseAugmentSection, gen: torch.Generator, repeat: int = 1
) -> torch.Tensor:
    """The legs of another window (frame by frame), turned from its heading to this one's, under this pelvis."""
    n = len(points) // repeat
    pick = _per_window(torch.rand(n, generator=gen) < cfg.recombine_prob, repeat)
    donor_window = torch.randperm(n, generator=gen)
    donor = (donor_window[:, None] * repeat + torch.arange(repeat)).reshape(-1)
    pelvis = BODY_INDEX["pelvis"]
    legs = list(LOWER_BODY)
    turn = _heading(points).transpose(1, 2) @ _heading(points[donor])  # donor frame -> world, via this heading
    moved = (points[donor][:, legs] - points[donor][:, pelvis : pelvis + 1]) @ turn.transpose(1, 2)
    out = points.clone()
    out[:, legs] = torch.where(pick[:, None, None], moved + points[:, pelvis : pelvis + 1], points[:, legs])
    return out


def tilt_bodies(points: torch.Tensor, cfg: PoseAugmentSection, gen: torch.Generator, repeat: int = 1) -> torch.Tensor:
    """Whole windows turned about a horizontal axis through their middle frame's pelvis (leaning, lying)."""
    n = len(points) // repeat
    pick = _per_window(torch.rand(n, generator=gen) < cfg.tilt_prob, repeat)
    azimuth = torch.rand(n, generator=gen) * 2 * math.pi
    axis = torch.stack([torch.cos(azimuth), torch.zeros(n), torch.sin(azimuth)], -1)
    angle = torch.deg2rad(_draw(n, -cfg.tilt_deg, cfg.tilt_deg, gen))
    rotation = _per_window(axis_angle_matrix(axis, angle), repeat)
    middle = points.reshape(n, repeat, NUM_BODY_POINTS, 3)[:, repeat // 2, BODY_INDEX["pelvis"]]
    centre = _per_window(middle, repeat)[:, None]
    turned = (points - centre) @ rotation.transpose(1, 2) + centre
    return torch.where(pick[:, None, None], turned, points)


def bend_torso(points: torch.Tensor, cfg: PoseAugmentSection, gen: torch.Generator, repeat: int = 1) -> torch.Tensor:
    """The upper body (spine and everything above it) turned at the pelvis against the legs, per window: bent
    forward (positive) or back, bent sideways and twisted about the torso's own axis."""
    if cfg.torso_prob == 0:  # draws nothing, so presets without it reproduce earlier trainings exactly
        return points
    n = len(points) // repeat
    pick = _per_window(torch.rand(n, generator=gen) < cfg.torso_prob, repeat)
    forward, up, left = body_axes(points)
    flex = _per_window(torch.deg2rad(_draw(n, *cfg.torso_flex_deg, gen)), repeat)
    side = _per_window(torch.deg2rad(_draw(n, -cfg.torso_side_deg, cfg.torso_side_deg, gen)), repeat)
    twist = _per_window(torch.deg2rad(_draw(n, -cfg.torso_twist_deg, cfg.torso_twist_deg, gen)), repeat)
    # About the left axis a positive turn takes up towards forward (left x up = forward): a forward bend.
    rotation = axis_angle_matrix(forward, side) @ axis_angle_matrix(left, flex) @ axis_angle_matrix(up, twist)
    return rotate_about(points, BODY_INDEX["spine"], rotation, pick, centre=BODY_INDEX["pelvis"])


def augment_poses(
    points: torch.Tensor, cfg: PoseAugmentSection, share: float, gen: torch.Generator, repeat: int = 1
) -> torch.Tensor:
    """All four, in the order recombine, bend limbs, tilt, bend torso, on a `share` of the windows; the others are
    left as they are."""
    n = len(points) // repeat
    pick = _per_window(torch.rand(n, generator=gen) < share, repeat)
    augmented = recombine_limbs(points, cfg, gen, repeat)
    for augment in (bend_limbs, tilt_bodies, bend_torso):
        augmented = augment(augmented, cfg, gen, repeat)
    return torch.where(pick[:, None, None], augmented, points)
