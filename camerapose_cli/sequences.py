"""2D keypoint sequences for the refiner: mocap windows filmed by a fixed virtual camera, then corrupted
the way YOLO11n-pose corrupts real video (jitter, left-right swaps, vanishing joints, occlusion bursts).

The corruption's magnitudes come from the detector's measured statistics (noise_model.NoiseCalibration)
and the preset's [refine_noise] table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from camerapose_cli.geometry import project_to_image
from camerapose_cli.noise_model import NoiseCalibration
from camerapose_cli.skeleton import COCO_FROM_BODY, NUM_COCO_JOINTS
from camerapose_cli.synth import augment_bodies, sample_cameras

# Limb pairs that detectors swap: (left, right) COCO indices of elbows, wrists, knees, ankles, hips, shoulders.
SWAP_PAIRS = ((7, 8), (9, 10), (13, 14), (15, 16), (11, 12), (5, 6))
# Joint groups that disappear together behind an object or another limb.
OCCLUSION_GROUPS = ((5, 7, 9), (6, 8, 10), (11, 13, 15), (12, 14, 16), (7, 9), (8, 10), (13, 15), (14, 16), (0, 1, 2, 3, 4))


@dataclass
class KeypointSequences:
    clean: torch.Tensor  # (B, T, 17, 2) px, the true projection
    noisy: torch.Tensor  # (B, T, 17, 2) px, what a detector would report
    conf: torch.Tensor  # (B, T, 17) the detector-like confidence
    present: torch.Tensor  # (B, T) bool: the frame has a detection (False = a gap in the track)
    focal: torch.Tensor  # (B,)
    principal: torch.Tensor  # (B, 2)
    cam_points: torch.Tensor  # (B, T, 21, 3) body points in camera coordinates, metres


def film_windows(windows: torch.Tensor, synth_cfg: dict[str, Any], gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Body windows (B, T, 21, 3) → (camera points (B, T, 21, 3), focal (B,), principal (B, 2)), one camera per window."""
    b, t = windows.shape[:2]
    bodies = augment_bodies(windows.reshape(b * t, *windows.shape[2:]), synth_cfg, gen, repeat=t).reshape(windows.shape)
    pelvis = bodies[:, :, 0]
    travel = (pelvis - pelvis[:, t // 2 : t // 2 + 1])[..., [0, 2]].norm(dim=-1).amax(1)
    rotation, translation, focal, principal, _ = sample_cameras(bodies[:, t // 2], synth_cfg, gen, clearance=travel)
    cam = torch.einsum("bij,btkj->btki", rotation, bodies) + translation[:, None, None]
    return cam, focal, principal


def _bursts(b: int, t: int, rate: torch.Tensor, max_len: int, gen: torch.Generator) -> torch.Tensor:
    """(B, T) bool: runs of 1..max_len frames starting with probability `rate` (B,) per frame."""
    starts = torch.rand(b, t, generator=gen) < rate[:, None]
    lengths = torch.randint(1, max_len + 1, (b, t), generator=gen)
    covered = torch.zeros(b, t, dtype=torch.bool)
    for offset in range(max_len):
        shifted = torch.zeros(b, t, dtype=torch.bool)
        shifted[:, offset:] = (starts & (lengths > offset))[:, : t - offset]
        covered |= shifted
    return covered


def corrupt_sequences(
    clean: torch.Tensor, calibration: NoiseCalibration, cfg: dict[str, Any], gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Detector-like corruption of clean sequences (B, T, 17, 2). Returns (noisy, conf, present)."""
    b, t, j, _ = clean.shape
    lo, hi = clean.amin(2), clean.amax(2)
    size = torch.sqrt(((hi - lo).prod(-1)).clamp(min=1.0)).mean(1)  # person size per window, px
    # Jitter: per-joint median error from the calibration; a Gaussian's median radius is 1.1774 sigma.
    per_joint = torch.tensor(calibration.joint_error_median, dtype=torch.float32).nan_to_num(0.05) / 1.1774
    level = torch.exp(torch.randn(b, generator=gen) * cfg["jitter_spread"]) * cfg["jitter_scale"]
    sigma = per_joint[None, None, :] * (size * level)[:, None, None]
    noise = torch.randn(b, t, j, 2, generator=gen) * sigma[..., None]
    noisy = clean + noise
    rel_err = noise.norm(dim=-1) / size[:, None, None]
    conf = (cfg["conf_clean"] - cfg["conf_per_error"] * rel_err + cfg["conf_noise"] * torch.randn(b, t, j, generator=gen)).clamp(0.3, 0.99)
    # Left-right swaps in short bursts, with the moderately high confidence the detector keeps.
    swap_rate = torch.full((b,), max(calibration.swap_rate, cfg["swap_rate_min"]))
    for left, right in SWAP_PAIRS:
        burst = _bursts(b, t, swap_rate / len(SWAP_PAIRS), cfg["swap_max_frames"], gen)
        a, c = noisy[..., left, :].clone(), noisy[..., right, :].clone()
        noisy[..., left, :] = torch.where(burst[..., None], c, a)
        noisy[..., right, :] = torch.where(burst[..., None], a, c)
        swapped_conf = 0.5 + 0.3 * torch.rand(b, t, generator=gen)
        conf[..., left] = torch.where(burst, swapped_conf, conf[..., left])
        conf[..., right] = torch.where(burst, swapped_conf, conf[..., right])
    # Occlusion bursts: a limb drifts to a wrong spot with low confidence for a while.
    occ_rate = torch.rand(b, generator=gen) * cfg["occlusion_rate"]
    for group in OCCLUSION_GROUPS:
        burst = _bursts(b, t, occ_rate / len(OCCLUSION_GROUPS), cfg["occlusion_max_frames"], gen)
        drift = torch.cumsum(torch.randn(b, t, 1, 2, generator=gen), 1) * size[:, None, None, None] * cfg["occlusion_drift"]
        for joint in group:
            noisy[..., joint, :] = torch.where(burst[..., None], noisy[..., joint, :] + drift[..., 0, :], noisy[..., joint, :])
            conf[..., joint] = torch.where(burst, cfg["occluded_conf_max"] * torch.rand(b, t, generator=gen), conf[..., joint])
    # Vanishing joints: confidence near zero at a random spot in and around the person's box.
    missing = torch.rand(b, t, j, generator=gen) < max(calibration.miss_rate, cfg["miss_rate_min"])
    margin = (hi - lo)[:, :, None] * cfg["spot_margin"]
    spot = lo[:, :, None] - margin + torch.rand(b, t, j, 2, generator=gen) * ((hi - lo)[:, :, None] + 2 * margin)
    noisy = torch.where(missing[..., None], spot, noisy)
    conf = torch.where(missing, 0.05 * torch.rand(b, t, j, generator=gen), conf)
    # Spikes: a joint jumps far for a single frame, with a low confidence.
    spike = torch.rand(b, t, j, generator=gen) < cfg["spike_rate"]
    angle = torch.rand(b, t, j, generator=gen) * 2 * torch.pi
    reach = (cfg["spike_size"][0] + (cfg["spike_size"][1] - cfg["spike_size"][0]) * torch.rand(b, t, j, generator=gen)) * size[:, None, None]
    jump = torch.stack([torch.cos(angle), torch.sin(angle)], -1) * reach[..., None]
    noisy = torch.where(spike[..., None], noisy + jump, noisy)
    conf = torch.where(spike, cfg["spike_conf_max"] * torch.rand(b, t, j, generator=gen), conf)
    # Gaps: frames where the track has no detection at all.
    present = ~_bursts(b, t, torch.full((b,), cfg["gap_rate"]), cfg["gap_max_frames"], gen)
    return noisy, conf, present


def make_sequences(
    points: np.ndarray, starts: np.ndarray, length: int, stride: int, synth_cfg: dict[str, Any],
    noise_cfg: dict[str, Any], calibration: NoiseCalibration, gen: torch.Generator,
) -> KeypointSequences:  # fmt: skip
    """Windows of `length` frames, every `stride`-th mocap frame from each start index, filmed and corrupted."""
    index = torch.as_tensor(starts)[:, None] + torch.arange(length)[None] * stride
    windows = torch.from_numpy(points)[index]
    cam, focal, principal = film_windows(windows, synth_cfg, gen)
    clean = project_to_image(cam[..., list(COCO_FROM_BODY), :].flatten(0, 1), focal.repeat_interleave(length), principal.repeat_interleave(length, 0))
    clean = clean.reshape(len(starts), length, NUM_COCO_JOINTS, 2)
    noisy, conf, present = corrupt_sequences(clean, calibration, noise_cfg, gen)
    return KeypointSequences(clean, noisy, conf, present, focal, principal, cam)


def valid_window_starts(clip_starts: np.ndarray, clip_ends: np.ndarray, length: int, stride: int) -> np.ndarray:
    """Every frame index from which a window of `length` frames at `stride` stays inside its clip."""
    span = (length - 1) * stride
    return np.concatenate([np.arange(s, e - span) for s, e in zip(clip_starts, clip_ends) if e - s > span] or [np.zeros(0, np.int64)])


