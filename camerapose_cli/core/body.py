"""Body points from joint positions: the up axis turned into +Y, a torso frame, and face points placed in a head frame.

Every source of 3D bodies (BVH mocap, Human3.6M files) goes through these, so all of them agree on what
"up", "forward" and the eyes and ears are.
"""

from __future__ import annotations

import numpy as np

from camerapose_cli.core.skeleton import BODY_INDEX, HEAD_FRAME_OFFSETS


def y_up_rotation(rise: np.ndarray) -> np.ndarray:
    """The rotation (3, 3) that turns the world axis nearest to `rise` (pelvis to head, (3,)) into +Y, right-handed."""
    up_axis = int(np.argmax(np.abs(rise)))
    if up_axis == 1 and rise[up_axis] >= 0:
        return np.eye(3)
    sign = np.sign(rise[up_axis])
    other = [a for a in range(3) if a != up_axis]
    rotation = np.zeros((3, 3))
    rotation[1, up_axis] = sign
    rotation[0, other[0]] = 1.0
    rotation[2, other[1]] = sign
    if np.linalg.det(rotation) < 0:
        rotation[2] *= -1
    return rotation


def normalize(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-9)


def torso_frame(points: np.ndarray) -> np.ndarray:
    """Per-frame torso axes (T, 3, 3) of body points (T, 21, 3), Y up, as columns (forward, up, left):
    up along the spine, left from the hips and shoulders, forward = left x up."""
    up = normalize(points[:, BODY_INDEX["thorax"]] - points[:, BODY_INDEX["pelvis"]])
    left = (points[:, BODY_INDEX["l_hip"]] - points[:, BODY_INDEX["r_hip"]]) + (
        points[:, BODY_INDEX["l_shoulder"]] - points[:, BODY_INDEX["r_shoulder"]]
    )
    left = normalize(left - np.sum(left * up, -1, keepdims=True) * up)
    return np.stack([np.cross(left, up), up, left], axis=-1)


def place_head_points(points: np.ndarray, origin: np.ndarray, axes: np.ndarray, names: tuple[str, ...]) -> None:
    """Write the named points (skeleton.HEAD_FRAME_OFFSETS) into body points (T, 21, 3), in place, from the head
    joint `origin` (T, 3) and the head's (forward, up, left) axes (T, 3, 3) as columns."""
    for name in names:
        points[:, BODY_INDEX[name]] = origin + axes @ np.asarray(HEAD_FRAME_OFFSETS[name])
