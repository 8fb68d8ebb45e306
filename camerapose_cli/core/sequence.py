"""Tracks as sequences: filling the frames a detector missed, and cutting a track where it is missing too long."""

from __future__ import annotations

import numpy as np
import torch


def fill_gaps(keypoints: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
    """Keypoints (B, T, J, D) with the frames where `present` (B, T) is False replaced by the linear interpolation
    of the nearest present frames on either side (the nearest one at a track's ends)."""
    b, t = present.shape
    frame = torch.arange(t, device=present.device).expand(b, t)
    prev = torch.where(present, frame, torch.full_like(frame, -1)).cummax(1).values
    nxt = torch.where(present, frame, torch.full_like(frame, t)).flip(1).cummin(1).values.flip(1)
    prev_ok, next_ok = prev >= 0, nxt < t
    prev = torch.where(prev_ok, prev, nxt).clamp(0, t - 1)
    nxt = torch.where(next_ok, nxt, prev).clamp(0, t - 1)
    span = (nxt - prev).clamp(min=1)
    w = ((frame - prev) / span).clamp(0, 1)[..., None, None].to(keypoints.dtype)
    take = lambda idx: keypoints.gather(1, idx[..., None, None].expand(-1, -1, *keypoints.shape[2:]))  # noqa: E731
    return take(prev) * (1 - w) + take(nxt) * w


def track_segments(frames: np.ndarray, max_gap: int) -> list[np.ndarray]:
    """Positions into sorted, unique `frames` (N,), split wherever more than `max_gap` frames in a row are missing."""
    if len(frames) == 0:
        return []
    cuts = np.flatnonzero(np.diff(frames) > max_gap + 1) + 1
    return np.split(np.arange(len(frames)), cuts)
