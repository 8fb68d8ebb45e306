"""The detector-like noise model's jitter: white, or persisting from frame to frame as a detector's error does."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch
from scipy.signal import savgol_filter

from camerapose_cli.config import load_preset
from camerapose_cli.io.resources import shipped_dir
from camerapose_cli.training.noise import NoiseCalibration, corrupt_sequences, drifting_noise


def test_drifting_noise_is_stationary_with_the_asked_correlation():
    x = drifting_noise((4000, 60, 2), 15.0, torch.Generator().manual_seed(0))
    for frame in (0, 30, 59):
        assert x[:, frame].std().item() == pytest.approx(1.0, abs=0.05)
    for lag in (1, 5, 15):
        correlation = (x[:, lag:] * x[:, :-lag]).mean().item()
        assert correlation == pytest.approx(math.exp(-lag / 15.0), abs=0.04)


def _jitter(share: float) -> tuple[float, float]:
    """(median error, median residual from a 9-frame Savitzky-Golay fit) of the jitter alone, px, on still people."""
    preset = load_preset("default")
    cfg = preset.refine_noise.with_values(
        jitter_white_share=share, jitter_spread=0.0, swap_rate_min=0.0, occlusion_rate=0.0, miss_rate_min=0.0
    )
    cfg = cfg.with_values(spike_rate=0.0, gap_rate=0.0)
    calibration = NoiseCalibration.load(shipped_dir("weights") / preset.train_refiner.calibration)
    calibration = replace(calibration, swap_rate=0.0, miss_rate=0.0)
    clean = torch.rand(1, 1, 17, 2).expand(400, 60, 17, 2) * 200  # still people, 200 px
    noisy, _, _ = corrupt_sequences(clean.clone(), calibration, cfg, torch.Generator().manual_seed(0))
    error = noisy - clean
    residual = error.numpy() - savgol_filter(error.numpy(), 9, 2, axis=1)
    return error.norm(dim=-1).median().item(), float(torch.from_numpy(residual).norm(dim=-1).median())


def test_a_persistent_share_keeps_the_error_and_removes_frame_to_frame_jitter():
    white_error, white_residual = _jitter(1.0)
    drifting_error, drifting_residual = _jitter(0.3)
    assert drifting_error == pytest.approx(white_error, rel=0.1)  # the calibrated error size stays
    assert drifting_residual < 0.45 * white_residual  # what a smooth fit leaves is mostly the white share
