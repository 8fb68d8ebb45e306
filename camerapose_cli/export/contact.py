"""Foot contact on the floor in world joints (y up, floor at 0): how far planted feet slide (foot skate), and a
correction that moves the body so that a planted foot stays where it landed."""

from __future__ import annotations

import numpy as np

from camerapose_cli.config import ExportSection
from camerapose_cli.export.world import ANKLES

HORIZONTAL = [0, 2]


def planted_steps(joints: np.ndarray, cfg: ExportSection, fps: float) -> np.ndarray:
    """(T - 1, 2) whether each ankle stays planted from one frame to the next: within `contact_height_m` of
    standing height in both, and moving slower than `contact_speed_m_s` (a swinging foot passes low and fast)."""
    low = joints[:, ANKLES, 1] < cfg.ankle_height_m + cfg.contact_height_m
    speed = np.linalg.norm(np.diff(joints[:, ANKLES][..., HORIZONTAL], axis=0), axis=-1) * fps
    return low[1:] & low[:-1] & (speed < cfg.contact_speed_m_s)


def foot_skate_mm_per_frame(joints: np.ndarray, cfg: ExportSection, fps: float) -> float:
    """Mean horizontal slide (mm per frame) of planted ankles. NaN when no foot is planted."""
    planted = planted_steps(joints, cfg, fps)
    slide = np.linalg.norm(np.diff(joints[:, ANKLES][..., HORIZONTAL], axis=0), axis=-1)
    return float(slide[planted].mean() * 1000) if planted.any() else float("nan")


def pin_planted_feet(joints: np.ndarray, cfg: ExportSection, fps: float) -> np.ndarray:
    """Shift the whole body horizontally, frame by frame, by the opposite of the mean slide of the feet that
    are on the floor in this frame and the last: planted feet stay put, the body travels by its steps. The
    pose and the heights do not change."""
    planted = planted_steps(joints, cfg, fps)  # (T - 1, 2)
    slide = np.diff(joints[:, ANKLES][..., HORIZONTAL], axis=0)  # (T - 1, 2, 2)
    count = planted.sum(1, keepdims=True)
    mean_slide = np.where(count > 0, (slide * planted[..., None]).sum(1) / np.maximum(count, 1), 0.0)
    shift = np.zeros((len(joints), 3))
    shift[1:, HORIZONTAL] = -np.cumsum(mean_slide, 0)
    return joints + shift[:, None]
