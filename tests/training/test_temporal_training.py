"""The temporal lifter's training data (windows of mocap filmed by moving cameras) and a tiny training run."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import ARCHIVE, require_shared, run_cli

from camerapose_cli.config import load_preset
from camerapose_cli.models.checkpoints import load_temporal
from camerapose_cli.training.data import film_moving, in_view, keep_filmable, make_track_batch, sample_window_points
from camerapose_cli.training.noise import load_calibration

pytestmark = pytest.mark.slow


def track_batch(bandai, windows: int, seed: int = 0, edge: str | None = None, **temporal):
    preset = load_preset("default")
    synth = preset.synth
    if edge is not None:  # every cut window by that edge
        side, top = {"bottom": (0.0, 0.0), "side": (1.0, 0.0), "top": (0.0, 1.0)}[edge]
        synth = synth.with_values(frame_cut_side_share=side, frame_cut_top_share=top)
    cfg = preset.train_temporal.with_values(**temporal)
    rng = np.random.default_rng(seed)
    frames = rng.integers(0, len(bandai.points), windows)
    calibration = load_calibration(preset.refine_noise)
    batch = make_track_batch(
        torch.from_numpy(bandai.points),
        bandai.starts,
        bandai.fps.astype(np.float64),
        frames,
        27,
        synth,
        cfg,
        preset.pose_augment,
        preset.refine_noise,
        calibration,
        rng,
        torch.Generator().manual_seed(seed),
    )
    return batch, cfg


def test_track_batches_have_a_window_of_inputs_per_output_frames(bandai):
    batch, cfg = track_batch(bandai, 16)
    length = 27 + cfg.outputs - 1
    assert batch.inputs.shape == (16, length, 17, 3) and batch.present.shape == (16, length)
    assert batch.frames.body.shape == (16 * cfg.outputs, 21, 3)
    assert torch.isfinite(batch.inputs).all() and (batch.frames.root[:, 2] > 0).all()
    assert not batch.present.all()  # detector-like gaps


def test_windows_cut_by_the_frame_lose_their_lower_keypoints(bandai):
    whole, _ = track_batch(bandai, 32, noise_prob=0.0, frame_cut_prob=0.0)
    cut, _ = track_batch(bandai, 32, noise_prob=0.0, frame_cut_prob=1.0, edge="bottom")
    assert (whole.inputs[..., 2] == 1).all()  # exact 2D: nothing unconfident
    ankles = cut.inputs[..., 15:, 2]  # COCO ankles: below any edge that keeps at most 90% of the height
    assert (ankles < 0.2).float().mean() > 0.5 and (cut.inputs[..., :5, 2] == 1).all()  # the face stays in view
    sideways, _ = track_batch(bandai, 32, noise_prob=0.0, frame_cut_prob=1.0, edge="side")
    unconfident = sideways.inputs[..., 2] < 1
    assert unconfident.any() and unconfident[..., 15:].float().mean() < 0.8  # not the legs alone: half the body
    from_top, _ = track_batch(bandai, 32, noise_prob=0.0, frame_cut_prob=1.0, edge="top")
    face = from_top.inputs[..., :5, 2]  # COCO nose, eyes, ears: above any edge that keeps at most 90% of the height
    ankles_in_view = (from_top.inputs[..., 15:, 2] == 1).float().mean()  # all but the odd kick or inverted pose
    assert (face < 0.2).float().mean() > 0.5 and ankles_in_view > 0.95


def test_windows_stay_inside_their_clip_at_the_drawn_frame_rate(bandai):
    rng = np.random.default_rng(0)
    frames = rng.integers(0, len(bandai.points), 64)
    points = torch.from_numpy(bandai.points)
    fast = sample_window_points(points, bandai.starts, bandai.fps.astype(np.float64), frames, 20, (60.0, 60.0), rng)
    slow = sample_window_points(points, bandai.starts, bandai.fps.astype(np.float64), frames, 20, (15.0, 15.0), rng)
    step = lambda w: (w[:, 1:, 0] - w[:, :-1, 0]).norm(dim=-1).median()  # noqa: E731  pelvis motion per frame
    assert step(slow) > 2.5 * step(fast)  # 4x the time between frames
    # Every window is a piece of one clip: no jump at a clip boundary.
    jumps = (fast[:, 1:, 0] - fast[:, :-1, 0]).norm(dim=-1).amax(1)
    assert (jumps < 0.2).all()


def test_panning_cameras_keep_the_person_in_view_and_the_body_in_front(bandai):
    preset = load_preset("default")
    cfg = preset.train_temporal.with_values(pan_prob=1.0, move_prob=1.0, camera_speed=2.0)
    rng = np.random.default_rng(1)
    frames = rng.integers(0, len(bandai.points), 32)
    windows = sample_window_points(
        torch.from_numpy(bandai.points), bandai.starts, bandai.fps.astype(np.float64), frames, 60, (30.0, 30.0), rng
    )
    cam, focal, principal = film_moving(
        windows, preset.synth, cfg, torch.Generator().manual_seed(0), torch.full((32,), 1 / 30)
    )
    assert (cam[..., 2] > 0.3).all()
    pelvis_px = cam[:, :, 0, :2] / cam[:, :, 0, 2:] * focal[:, None, None]
    # A camera that follows keeps the pelvis near where it started in the image.
    drift = (pelvis_px - pelvis_px[:, :1]).norm(dim=-1).amax(1) / focal
    assert drift.median() < 0.15


def test_windows_that_leave_the_view_are_replaced_by_windows_that_stay_in_it(bandai):
    """A window whose person gets behind the camera or to its edge of vision somewhere (rare: an 81-frame run once
    met one, and its targets turned NaN) is replaced by a copy of a window that stays in view."""
    preset = load_preset("default")
    rng = np.random.default_rng(2)
    frames = rng.integers(0, len(bandai.points), 32)
    windows = sample_window_points(
        torch.from_numpy(bandai.points), bandai.starts, bandai.fps.astype(np.float64), frames, 40, (30.0, 30.0), rng
    )
    gen = torch.Generator().manual_seed(0)
    cam, focal, principal = film_moving(windows, preset.synth, preset.train_temporal, gen, torch.full((32,), 1 / 30))
    assert in_view(cam).all()
    lost = cam.clone()
    lost[0, 20:, :, 2] -= 20.0  # the person ends behind the camera
    lost[1, 5, 3, 0] += 10 * lost[1, 5, 3, 2]  # a hand far off the camera's axis in one frame
    assert not in_view(lost[:2]).flatten(1).all(1).any()
    kept, kept_focal, _ = keep_filmable(lost, focal, principal, gen)
    assert in_view(kept).all()
    assert torch.equal(kept[2:], cam[2:]) and torch.equal(kept_focal[2:], focal[2:])
    for window in kept[:2]:
        assert any(torch.equal(window, good) for good in cam[2:])


def test_train_temporal_end_to_end(tmp_path):
    require_shared(ARCHIVE)
    preset = tmp_path / "tiny.toml"
    preset.write_text(
        "[train_temporal]\nchannels = 32\ndilations = [3]\noutputs = 4\nbatch_size = 8\nval_every = 10\n"
        "val_windows = 16\nlr_final = 1e-3\n"
    )
    out = tmp_path / "run"
    result = run_cli(
        "train",
        "--model",
        "temporal",
        "--mocap",
        str(ARCHIVE),
        "--out",
        str(out),
        "--steps",
        "20",
        "--pipeline",
        str(preset),
        "--json",
        "--half",
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    model = load_temporal(out / "temporal.pt")
    assert model.receptive_field == 9 and summary["checkpoint"].endswith("temporal.pt")
    report = json.loads((out / "temporal_report.json").read_text())
    assert len(report["validation"]) == 2 and "accel_mm" in report["validation"][-1]
    assert (out / "temporal_report.png").is_file()
