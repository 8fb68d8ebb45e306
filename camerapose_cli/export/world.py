"""A world frame for one video's lifted people: gravity up, the floor at height 0, the camera above the origin.

The camera is assumed static. Gravity is first the people's mean body axis (legs and trunk) over the
frames where they stand upright, then refined by their feet: the lowest ankle of each frame lies on the floor,
so the floor's normal is gravity when the feet cover an area, and is at least perpendicular to the direction
walked when they cover a line. The floor sits `ankle_height_m` below the median lowest ankle.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from camerapose_cli.config import ExportSection
from camerapose_cli.core.skeleton import H36M17_JOINTS

PELVIS, THORAX = H36M17_JOINTS.index("pelvis"), H36M17_JOINTS.index("thorax")
ANKLES = [H36M17_JOINTS.index("l_ankle"), H36M17_JOINTS.index("r_ankle")]
HIPS = [H36M17_JOINTS.index("l_hip"), H36M17_JOINTS.index("r_hip")]
CAMERA_FORWARD = np.array([0.0, 0.0, 1.0])  # OpenCV camera frame: z forward, y down
MIN_FLOOR_POINTS = 3  # feet needed to fit a direction or a plane


@dataclass(frozen=True)
class WorldFrame:
    """World = rotation @ (camera point - origin): y up (gravity), the floor at y = 0, the camera's view
    direction in the y-z plane (world z = where the camera looks, levelled)."""

    rotation: np.ndarray  # (3, 3) camera -> world
    origin: np.ndarray  # (3,) camera coordinates of the world origin: the floor point below the camera
    method: str  # "floor plane" | "walk direction" | "body up": how gravity was found

    @property
    def up_camera(self) -> np.ndarray:
        """Gravity's up direction in camera coordinates."""
        return self.rotation[1]

    @property
    def camera_height_m(self) -> float:
        return float(-self.rotation[1] @ self.origin)

    def to_world(self, camera_points: np.ndarray) -> np.ndarray:
        """Camera-frame points (..., 3) in world coordinates."""
        return (camera_points - self.origin) @ self.rotation.T


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True).clip(1e-9)


def body_up(joints: np.ndarray, tolerance_deg: float) -> np.ndarray:
    """The mean body axis of camera-frame joints (N, 17, 3): per frame, the legs' (mid-ankle to mid-hip) and the
    trunk's (pelvis to thorax) directions averaged, since each leans its own way (a walker's legs swing, a
    trunk bows); over the frames within `tolerance_deg` of the first estimate."""
    legs = joints[:, HIPS].mean(1) - joints[:, ANKLES].mean(1)
    axes = _unit(_unit(legs) + _unit(joints[:, THORAX] - joints[:, PELVIS]))
    up = _unit(np.median(axes, 0))
    upright = axes @ up > np.cos(np.radians(tolerance_deg))
    return _unit(axes[upright].mean(0)) if upright.any() else up


def lowest_ankles(joints: np.ndarray, up: np.ndarray) -> np.ndarray:
    """Each frame's lower ankle along `up` (N, 3): the foot most likely on the floor."""
    ankles = joints[:, ANKLES]
    return ankles[np.arange(len(joints)), np.argmin(ankles @ up, 1)]


def estimate_world_frame(joints: np.ndarray, cfg: ExportSection) -> WorldFrame:
    """The world frame of one static camera from every lifted person-frame it saw (N, 17, 3), camera frame."""
    if len(joints) == 0:
        raise ValueError("no lifted frames to find the floor from")
    up = body_up(joints, cfg.upright_tolerance_deg)
    feet = lowest_ankles(joints, up)
    centred = feet - np.median(feet, 0)
    # Drop feet off the floor (jumps, a raised foot) before fitting: those well above the median height.
    on_floor = centred @ up < cfg.foot_lift_m
    method = "body up"
    if on_floor.sum() >= MIN_FLOOR_POINTS:
        up, method = _refine_by_feet(up, feet[on_floor], cfg)
    else:
        on_floor[:] = True
    floor_height = float(np.median(feet[on_floor] @ up)) - cfg.ankle_height_m
    forward = _unit(CAMERA_FORWARD - (CAMERA_FORWARD @ up) * up)
    left = np.cross(up, forward)
    rotation = np.stack([left, up, forward])  # rows: world x, y, z in camera coordinates
    origin = floor_height * up  # the floor point below the camera centre
    return WorldFrame(rotation, origin, method)


def _refine_by_feet(up: np.ndarray, feet: np.ndarray, cfg: ExportSection) -> tuple[np.ndarray, str]:
    """Gravity from feet on the floor (M >= 3, 3): the floor's normal where they cover an area, the body's up
    made perpendicular to the walk where they cover a line, else the body's up unchanged."""
    _, spread, axes = np.linalg.svd(feet - feet.mean(0), full_matrices=False)
    spread = spread / np.sqrt(len(feet))
    if spread[1] > cfg.floor_spread_m:
        candidate, method = axes[2] * np.sign(axes[2] @ up), "floor plane"
    elif spread[0] > cfg.floor_spread_m:
        candidate, method = _unit(up - (up @ axes[0]) * axes[0]), "walk direction"
    else:
        return up, "body up"
    if np.degrees(np.arccos(np.clip(candidate @ up, -1, 1))) < cfg.max_floor_tilt_deg:
        return candidate, method
    return up, "body up"
