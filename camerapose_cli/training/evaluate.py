"""Evaluate a lifter on held-out 3D bodies (a mocap split, or Human3.6M via io.h36m), filmed by virtual
cameras with a fixed seed, with exact or noisy 2D."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from camerapose_cli.config import LifterNoiseSection, MocapSection, Split, SynthSection
from camerapose_cli.core.metrics import per_joint_error
from camerapose_cli.core.skeleton import H36M17_JOINTS, NUM_H36M_JOINTS
from camerapose_cli.errors import InputError
from camerapose_cli.io.mocap import load_mocap
from camerapose_cli.models.lifter import Lifter
from camerapose_cli.training.data import make_batch
from camerapose_cli.training.loop import evaluate_lifter
from camerapose_cli.training.splits import clip_content, split_clips

EVAL_BATCH = 8192  # poses per forward pass


@torch.no_grad()
def evaluate_on_bodies(
    model: Lifter,
    bodies: np.ndarray,
    synth_cfg: SynthSection,
    noise_cfg: LifterNoiseSection,
    *,
    noise_frac: float,
    seed: int,
) -> dict[str, Any]:
    """Film bodies (N, 21, 3) with seeded virtual cameras and report the MPJPE family (mm) and per-joint errors.
    `noise_frac` > 0: Gaussian 2D noise of that sigma (fraction of the person's extent), no dropped joints."""
    noise = noise_cfg.with_values(noise_frac=(noise_frac, noise_frac), drop_prob=(0.0, 0.0)) if noise_frac > 0 else None
    gen = torch.Generator().manual_seed(seed)
    sums: dict[str, float] = {}
    joint_sum = torch.zeros(NUM_H36M_JOINTS)
    count = 0
    points = torch.from_numpy(bodies)
    model.eval()
    for start in range(0, len(points), EVAL_BATCH):
        chunk = make_batch(points[start : start + EVAL_BATCH], synth_cfg, gen, noise, augment=False)
        out = model(chunk.inputs)
        n = len(chunk.inputs)
        for key, value in evaluate_lifter(model, chunk, out).items():
            sums[key] = sums.get(key, 0.0) + value * n
        joint_sum += per_joint_error(out.pose * 1000, chunk.body[:, :NUM_H36M_JOINTS] * 1000).sum(0)
        count += n
    result: dict[str, Any] = {k: v / count for k, v in sums.items()}
    result["per_joint_mm"] = dict(zip(H36M17_JOINTS, (joint_sum / count).tolist()))
    result["poses"] = count
    return result


def motion_group(name: str, description: str) -> str:
    """The motion a clip shows: a CMU description's head ("dance - attitude" -> "dance", "jump, hop" -> "jump"),
    else the Bandai content of its name (training.splits.clip_content)."""
    if description:
        return description.lower().split(" - ")[0].split(",")[0].strip() or name
    return clip_content(name)


def mocap_eval_bodies(
    mocap_path: Path,
    split: Split,
    mocap_cfg: MocapSection,
    stride: int,
    joint_names: dict[str, str | list[str]] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Every `stride`-th frame of the clips in one split of a mocap source (`all`: every clip): the body points
    (N, 21, 3) and each one's motion group (N,)."""
    mocap = load_mocap(mocap_path, joint_names, unit=mocap_cfg.unit)
    clips = mocap.names if split == "all" else split_clips(mocap.names, mocap_cfg)[split]
    frames = mocap.frames_of(clips)[::stride]
    if len(frames) == 0:
        raise InputError(f"{mocap_path}: the {split} split is empty")
    clip_groups = np.array([motion_group(n, d) for n, d in zip(mocap.names, mocap.descriptions)], dtype=object)
    return mocap.points[frames], clip_groups[np.searchsorted(mocap.starts, frames, side="right") - 1]


def mocap_test_bodies(mocap_path: Path, split: Split, mocap_cfg: MocapSection, stride: int) -> np.ndarray:
    """Every `stride`-th frame of the clips in one split of a mocap source."""
    return mocap_eval_bodies(mocap_path, split, mocap_cfg, stride)[0]
