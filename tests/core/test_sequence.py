"""Tracks as sequences: gap filling and cutting at long gaps."""

from __future__ import annotations

import numpy as np
import torch

from camerapose_cli.core.sequence import fill_gaps, track_segments


def test_gaps_are_interpolated_and_ends_hold_the_nearest_frame():
    values = torch.tensor([[9.0, 0.0, 9.0, 9.0, 3.0, 9.0], [9.0, 2.0, 9.0, 9.0, 9.0, 5.0]])[..., None, None]
    present = torch.tensor([[False, True, False, False, True, False], [False, True, False, False, False, True]])
    filled = fill_gaps(values, present)[..., 0, 0]
    torch.testing.assert_close(filled[0], torch.tensor([0.0, 0.0, 1.0, 2.0, 3.0, 3.0]))
    torch.testing.assert_close(filled[1], torch.tensor([2.0, 2.0, 2.75, 3.5, 4.25, 5.0]))


def test_present_frames_are_untouched():
    values = torch.randn(2, 7, 17, 3)
    present = torch.rand(2, 7) > 0.4
    present[:, 0] = True
    filled = fill_gaps(values, present)
    torch.testing.assert_close(filled[present], values[present])


def test_tracks_are_cut_only_at_gaps_longer_than_the_limit():
    frames = np.array([0, 1, 2, 5, 6, 20, 21])
    assert [s.tolist() for s in track_segments(frames, max_gap=2)] == [[0, 1, 2, 3, 4], [5, 6]]
    assert [s.tolist() for s in track_segments(frames, max_gap=1)] == [[0, 1, 2], [3, 4], [5, 6]]
    assert track_segments(np.zeros(0, np.int64), 3) == []
