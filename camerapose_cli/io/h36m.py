"""Human3.6M 3D poses in VideoPose3D's `data_3d_h36m.npz` layout, as body points."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from camerapose_cli.core.body import place_head_points, torso_frame, y_up_rotation
from camerapose_cli.core.skeleton import (
    BODY_POINTS,
    FACE_POINTS,
    H36M17_JOINTS,
    H36M32_TO_17,
    HEAD_FRAME_OFFSETS,
    NUM_H36M32_JOINTS,
)
from camerapose_cli.errors import InputError

_HEAD_TOP = H36M17_JOINTS.index("head")
_PELVIS = H36M17_JOINTS.index("pelvis")


def h36m_body_points(positions: np.ndarray) -> np.ndarray:
    """H36M-17 world positions (T, 17, 3) in metres, any up axis -> body points (T, 21, 3), Y up.

    H36M has no eyes or ears and no head orientation: they are placed like mocap's (core.body), in a head
    frame taken parallel to the torso frame and anchored so that its head-top point is H36M's head joint.
    """
    rise = np.median(positions[:, _HEAD_TOP] - positions[:, _PELVIS], axis=0)
    positions = positions @ y_up_rotation(rise).T
    body = np.zeros((len(positions), len(BODY_POINTS), 3))
    body[:, : len(H36M17_JOINTS)] = positions
    axes = torso_frame(body)
    origin = positions[:, _HEAD_TOP] - axes @ np.asarray(HEAD_FRAME_OFFSETS["head"])
    place_head_points(body, origin, axes, FACE_POINTS)
    return body.astype(np.float32)


def load_h36m_npz(path: Path, subjects: list[str]) -> np.ndarray:
    """Body points of every frame of the given subjects in a `data_3d_h36m.npz` (key `positions_3d`)."""
    try:
        data = np.load(path, allow_pickle=True)["positions_3d"].item()
    except Exception as exc:
        raise InputError(f"{path}: not a VideoPose3D data_3d_h36m.npz ({exc})") from None
    frames = []
    for subject in subjects:
        if subject not in data:
            raise InputError(f"{path}: no subject {subject!r} (has {', '.join(sorted(data))})")
        for positions in data[subject].values():
            positions = np.asarray(positions, np.float32)
            frames.append(positions[:, H36M32_TO_17] if positions.shape[1] == NUM_H36M32_JOINTS else positions)
    return h36m_body_points(np.concatenate(frames))
