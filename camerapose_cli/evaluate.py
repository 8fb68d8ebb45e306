"""Evaluate a lifter on held-out 3D: a mocap split, or a Human3.6M file in VideoPose3D's layout.

Inputs are the test poses filmed by virtual cameras (fixed seed), with exact or noisy 2D.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from camerapose_cli.errors import InputError
from camerapose_cli.metrics import per_joint_error
from camerapose_cli.models.lifter import Lifter
from camerapose_cli.skeleton import BODY_INDEX, BODY_POINTS, H36M17_JOINTS
from camerapose_cli.synth import make_batch
from camerapose_cli.train import evaluate_lifter

# VideoPose3D's data_3d_h36m.npz holds 32 joints per frame; these 17 are the standard H36M-17.
H36M32_TO_17 = (0, 1, 2, 3, 6, 7, 8, 12, 13, 14, 15, 17, 18, 19, 25, 26, 27)


def h36m_body_points(positions: np.ndarray) -> np.ndarray:
    """H36M-17 world positions (T, 17, 3), any up axis → body points (T, 21, 3), Y up.

    H36M has no eyes or ears: they are placed from the nose, head top and shoulders (documented approximation).
    """
    rise = np.median(positions[:, 10] - positions[:, 0], axis=0)
    up_axis = int(np.argmax(np.abs(rise)))
    if up_axis == 2:  # Z up → Y up, right-handed
        positions = positions[..., [0, 2, 1]] * np.array([1.0, 1.0, -1.0])
        if rise[2] < 0:
            positions = positions * np.array([1.0, -1.0, 1.0])
    body = np.zeros((len(positions), len(BODY_POINTS), 3), np.float32)
    body[:, : len(H36M17_JOINTS)] = positions
    nose, top, thorax = positions[:, 9], positions[:, 10], positions[:, 8]
    up = top - thorax
    up /= np.linalg.norm(up, axis=-1, keepdims=True)
    left = positions[:, 11] - positions[:, 14]
    left -= np.sum(left * up, -1, keepdims=True) * up
    left /= np.linalg.norm(left, axis=-1, keepdims=True)
    forward = np.cross(left, up)
    centre = (nose + top) / 2 - 0.05 * forward
    for side, sign in (("l", 1.0), ("r", -1.0)):
        body[:, BODY_INDEX[f"{side}_eye"]] = nose + 0.03 * up + sign * 0.032 * left - 0.01 * forward
        body[:, BODY_INDEX[f"{side}_ear"]] = centre + sign * 0.075 * left
    return body


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
            frames.append(positions[:, H36M32_TO_17] if positions.shape[1] == 32 else positions)
    return h36m_body_points(np.concatenate(frames))


def evaluate_on_bodies(
    model: Lifter, bodies: np.ndarray, synth_cfg: dict[str, Any], *, noise_frac: float, seed: int, batch: int = 8192
) -> dict[str, Any]:
    """Film bodies (N, 21, 3) with seeded virtual cameras and report the MPJPE family (mm) and per-joint errors."""
    cfg = {**synth_cfg, "noise_frac": [noise_frac, noise_frac], "drop_prob": [0.0, 0.0]}
    gen = torch.Generator().manual_seed(seed)
    sums: dict[str, float] = {}
    joint_sum = torch.zeros(len(H36M17_JOINTS))
    count = 0
    points = torch.from_numpy(bodies)
    for start in range(0, len(points), batch):
        chunk = make_batch(points[start : start + batch], cfg, gen, augment=False, corrupt=noise_frac > 0)
        metrics = evaluate_lifter(model, chunk)
        n = len(chunk.inputs)
        for key, value in metrics.items():
            sums[key] = sums.get(key, 0.0) + value * n
        with torch.no_grad():
            pred = model(chunk.inputs).pose * 1000
        joint_sum += per_joint_error(pred, chunk.body[:, : len(H36M17_JOINTS)] * 1000).sum(0)
        count += n
    result: dict[str, Any] = {k: v / count for k, v in sums.items()}
    result["per_joint_mm"] = dict(zip(H36M17_JOINTS, (joint_sum / count).tolist()))
    result["poses"] = count
    return result



def mocap_test_bodies(mocap_path: Path, split: str, mocap_cfg: dict[str, Any], stride: int) -> np.ndarray:
    """Every `stride`-th frame of the clips in one split of a mocap source."""
    from camerapose_cli.mocap import load_mocap
    from camerapose_cli.splits import split_clips

    mocap = load_mocap(mocap_path)
    splits = split_clips(mocap.names, mocap_cfg)
    if split not in splits:
        raise InputError(f"no split {split!r}; choose one of {', '.join(splits)}")
    frames = mocap.frames_of(splits[split])[::stride]
    if len(frames) == 0:
        raise InputError(f"{mocap_path}: the {split} split is empty")
    return mocap.points[frames]
