"""The detector-like noise model: its jitter (white, or persisting from frame to frame as a detector's error does)
and its single frames, which the single-frame lifter can train on."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
import torch
from scipy.signal import savgol_filter

from camerapose_cli.config import load_preset
from camerapose_cli.core.geometry import on_image_border
from camerapose_cli.training.data import make_batch, make_sequences
from camerapose_cli.training.evaluate import LOST_WHEN_CUT, cut_track
from camerapose_cli.training.noise import (
    DetectorFrameNoise,
    FrameCut,
    corrupt_frames,
    corrupt_sequences,
    cut_by_frame_edge,
    drifting_noise,
    load_calibration,
)
from camerapose_cli.training.run import lifter_training_noise


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
    calibration = load_calibration(preset.refine_noise)
    calibration = replace(calibration, swap_rate=0.0, miss_rate=0.0)
    person = torch.rand(1, 1, 17, 2, generator=torch.Generator().manual_seed(1))  # the same for both calls
    clean = person.expand(400, 60, 17, 2) * 200  # still people, 200 px
    noisy, _, _ = corrupt_sequences(clean.clone(), calibration, cfg, torch.Generator().manual_seed(0))
    error = noisy - clean
    residual = error.numpy() - savgol_filter(error.numpy(), 9, 2, axis=1)
    return error.norm(dim=-1).median().item(), float(torch.from_numpy(residual).norm(dim=-1).median())


def test_a_persistent_share_keeps_the_error_and_removes_frame_to_frame_jitter():
    white_error, white_residual = _jitter(1.0)
    drifting_error, drifting_residual = _jitter(0.3)
    assert drifting_error == pytest.approx(white_error, rel=0.1)  # the calibrated error size stays
    assert drifting_residual < 0.45 * white_residual  # what a smooth fit leaves is mostly the white share


def test_sequences_shorter_than_an_event_are_corrupted_too():
    # eval --tracks films the last piece of a clip, or a clip at a low frame rate, in as few as 3 frames; occlusion
    # bursts and swaps last up to [refine_noise] occlusion_max_frames / swap_max_frames, which are longer.
    preset = load_preset("default")
    cfg = preset.refine_noise.with_values(occlusion_rate=1.0)
    calibration = load_calibration(preset.refine_noise)
    clean = torch.rand(64, 3, 17, 2, generator=torch.Generator().manual_seed(1)) * 200
    noisy, conf, present = corrupt_sequences(clean.clone(), calibration, cfg, torch.Generator().manual_seed(0))
    assert noisy.shape == clean.shape and conf.shape == clean.shape[:-1] and present.shape == clean.shape[:2]
    assert (conf < 0.35).any() and torch.isfinite(noisy).all()


def _jitter_only(strength: tuple[float, float]) -> DetectorFrameNoise:
    """The default preset's detector model with every event (swap, occlusion, miss, spike) off."""
    preset = load_preset("default")
    cfg = preset.refine_noise.with_values(jitter_spread=0.0, swap_rate_min=0.0, occlusion_rate=0.0, miss_rate_min=0.0)
    cfg = cfg.with_values(spike_rate=0.0)
    calibration = load_calibration(preset.refine_noise)
    return DetectorFrameNoise(replace(calibration, swap_rate=0.0, miss_rate=0.0), cfg, strength)


def test_single_frames_carry_the_calibrated_jitter_scaled_by_the_strength():
    clean = torch.rand(1, 17, 2, generator=torch.Generator().manual_seed(1)).expand(20000, 17, 2) * 200
    size = math.sqrt(float((clean[0].amax(0) - clean[0].amin(0)).prod()))
    calibration = _jitter_only((1.0, 1.0)).calibration
    full, conf = corrupt_frames(clean.clone(), _jitter_only((1.0, 1.0)), torch.Generator().manual_seed(0))
    half, _ = corrupt_frames(clean.clone(), _jitter_only((0.5, 0.5)), torch.Generator().manual_seed(0))
    exact, _ = corrupt_frames(clean.clone(), _jitter_only((0.0, 0.0)), torch.Generator().manual_seed(0))
    per_joint = (full - clean).norm(dim=-1).median(0).values / size
    assert per_joint.tolist() == pytest.approx(calibration.joint_error_median, rel=0.05)
    assert (half - clean).norm(dim=-1).median().item() == pytest.approx(
        (full - clean).norm(dim=-1).median().item() / 2, rel=0.05
    )
    assert torch.equal(exact, clean)
    assert 0.3 - 1e-6 <= conf.min().item() and conf.max().item() <= 0.99 + 1e-6  # a detected joint's range


def test_single_frames_have_the_models_events():
    preset = load_preset("default")
    calibration = load_calibration(preset.refine_noise)
    noise = DetectorFrameNoise(calibration, preset.refine_noise, (0.0, 0.0))  # no jitter: every error is an event
    clean = torch.rand(20000, 17, 2, generator=torch.Generator().manual_seed(1)) * 200
    noisy, conf = corrupt_frames(clean.clone(), noise, torch.Generator().manual_seed(0))
    moved = (noisy - clean).norm(dim=-1) > 1e-3
    assert 0.01 < moved.float().mean().item() < 0.1  # misses, spikes and swaps: a few percent of the joints
    assert conf[moved & (conf < 0.3)].numel() > 0.5 * moved.sum().item()  # most of them unconfident


def test_the_lifter_noise_model_is_chosen_by_the_preset():
    default = load_preset("default")
    gaussian = replace(default, lifter_noise=default.lifter_noise.with_values(model="gaussian"))
    assert lifter_training_noise(gaussian) is gaussian.lifter_noise  # the earlier lifters' recipe
    noise = lifter_training_noise(default)
    assert isinstance(noise, DetectorFrameNoise) and noise.strength == tuple(default.lifter_noise.detector_strength)
    assert noise.cfg == default.refine_noise  # the model the refiner and the temporal lifter train on
    bodies = torch.randn(64, 21, 3, generator=torch.Generator().manual_seed(1)) * 0.3 + torch.tensor([0.0, 1.0, 0.0])
    batch = make_batch(bodies, default.synth, torch.Generator().manual_seed(0), noise)
    again = make_batch(bodies, default.synth, torch.Generator().manual_seed(0), noise)
    assert torch.equal(batch.inputs, again.inputs)  # seeded
    assert batch.inputs[..., 2].min() < 1.0  # the detector's confidences, not exact 2D's


def test_the_frame_edge_hides_the_keypoints_below_it():
    gen = torch.Generator().manual_seed(0)
    clean = torch.rand(4000, 17, 2, generator=gen) * torch.tensor([100.0, 400.0])  # people 400 px tall
    conf = torch.full((4000, 17), 0.9)
    kept, kept_conf = cut_by_frame_edge(clean, conf, FrameCut(0.0, (0.5, 0.5), 0.2), gen)
    assert torch.equal(kept, clean) and torch.equal(kept_conf, conf)  # no one cut
    cut, cut_conf = cut_by_frame_edge(clean, conf, FrameCut(1.0, (0.5, 0.5), 0.2), gen)
    top, bottom = clean[..., 1].amin(1, keepdim=True), clean[..., 1].amax(1, keepdim=True)
    below = clean[..., 1] > (top + bottom) / 2
    assert (cut_conf[below] < 0.2).all() and torch.equal(cut_conf[~below], conf[~below])
    assert torch.equal(cut[~below], clean[~below]) and torch.equal(cut[..., 0], clean[..., 0])
    edge = ((top + bottom) / 2).expand_as(below)
    assert torch.allclose(cut[..., 1][below], edge[below])  # on the frame's edge, where YOLO puts them
    windows = clean[:100].reshape(10, 10, 17, 2)  # one edge per window, over all its frames
    cut_windows, _ = cut_by_frame_edge(windows, conf[:100].reshape(10, 10, 17), FrameCut(1.0, (0.5, 0.5), 0.2), gen)
    window_edge = (windows[..., 1].amin((1, 2)) + windows[..., 1].amax((1, 2))) / 2
    assert torch.allclose(cut_windows[..., 1].amax((1, 2)), window_edge)
    some, _ = cut_by_frame_edge(clean, conf, FrameCut(0.25, (0.3, 0.9), 0.2), gen)
    share = (some != clean).any(-1).any(-1).float().mean().item()
    assert share == pytest.approx(0.25, abs=0.03)


def test_a_side_edge_hides_one_side_of_the_person():
    gen = torch.Generator().manual_seed(0)
    clean = torch.rand(4000, 17, 2, generator=gen) * torch.tensor([200.0, 400.0])
    conf = torch.full((4000, 17), 0.9)
    cut, cut_conf = cut_by_frame_edge(clean, conf, FrameCut(1.0, (0.3, 0.3), 0.2, 1.0, 0.6), gen)
    assert torch.equal(cut[..., 1], clean[..., 1])  # a side edge moves nothing up or down
    moved = cut[..., 0] != clean[..., 0]
    left, right = clean[..., 0].amin(1, keepdim=True), clean[..., 0].amax(1, keepdim=True)
    from_left = left + 0.3 * (right - left)  # the edge of a person whose left 30% stays in view
    from_right = right - 0.3 * (right - left)
    cut_right = moved.gather(1, clean[..., 0].argmax(1, keepdim=True))[:, 0]  # the rightmost keypoint moved
    assert cut_right.float().mean().item() == pytest.approx(0.5, abs=0.03)  # either side, at random
    edge = torch.where(cut_right[:, None], from_left, from_right).expand_as(moved)
    beyond = torch.where(cut_right[:, None], clean[..., 0] > edge, clean[..., 0] < edge)
    assert torch.equal(moved, beyond) and torch.allclose(cut[..., 0][moved], edge[moved])  # on the edge, not past it
    assert (cut_conf[moved] < 0.6).all() and (cut_conf[moved] > 0.2).any()  # the side's own confidence bound
    assert torch.equal(cut_conf[~moved], conf[~moved])
    bottom = FrameCut(0.1, (0.3, 0.9), 0.2, 1.0, 0.6).everyone(0.5, "bottom")
    bottom_only, _ = cut_by_frame_edge(clean, conf, bottom, gen)
    assert torch.equal(bottom_only[..., 0], clean[..., 0])
    mixed, _ = cut_by_frame_edge(clean, conf, FrameCut(1.0, (0.5, 0.5), 0.2, 0.33, 0.6), gen)
    sideways = (mixed[..., 0] != clean[..., 0]).any(1).float().mean().item()
    assert sideways == pytest.approx(0.33, abs=0.03)


def test_an_evaluated_track_is_cropped_where_the_edge_cuts_it():
    # A person walking across a 1920 x 1080 frame: each edge's crop puts what lies beyond it on the crop's border.
    gen = torch.Generator().manual_seed(0)
    frames = torch.rand(30, 17, 2, generator=gen) * torch.tensor([200.0, 400.0]) + torch.tensor([600.0, 300.0])
    frames[..., 0] += torch.arange(30.0)[:, None] * 10
    track = torch.cat([frames, torch.full((30, 17, 1), 0.9)], -1).numpy()
    size = torch.tensor([1920.0, 1080.0])
    cut = FrameCut.of(load_preset("default").synth, 1.0)
    sides = set()
    for edge in ("bottom", "top", *["side"] * 6):
        cropped, detected, crop = cut_track(track, size, cut.everyone(0.6, edge), gen)
        inside = (cropped[..., 2] == track[..., 2]) & (cropped[..., :2] == track[..., :2] - crop[:2]).all(-1)
        beyond = ~inside
        assert beyond.any() and inside.any()
        border = on_image_border(cropped[..., :2], *np.repeat((crop[2:] - crop[:2])[:, None], 30, 1), 1e-6)
        assert border[beyond].all() and not border[inside].any()
        assert np.array_equal(detected, beyond.mean(-1) <= LOST_WHEN_CUT)  # else the detector loses the person
        sides.add("bottom" if crop[3] < 1080 else "top" if crop[1] > 0 else "left" if crop[0] > 0 else "right")
    assert sides == {"bottom", "top", "left", "right"}


def test_a_top_edge_hides_the_head_and_shoulders():
    gen = torch.Generator().manual_seed(0)
    clean = torch.rand(4000, 17, 2, generator=gen) * torch.tensor([100.0, 400.0])
    conf = torch.full((4000, 17), 0.9)
    cut, cut_conf = cut_by_frame_edge(clean, conf, FrameCut(1.0, (0.5, 0.5), 0.2, 0.0, 0.6, 1.0), gen)
    top, bottom = clean[..., 1].amin(1, keepdim=True), clean[..., 1].amax(1, keepdim=True)
    above = clean[..., 1] < (top + bottom) / 2
    assert torch.equal(cut[..., 0], clean[..., 0]) and torch.equal(cut[~above], clean[~above])
    assert torch.allclose(cut[..., 1][above], ((top + bottom) / 2).expand_as(above)[above])  # on the edge
    assert (cut_conf[above] < 0.2).all() and torch.equal(cut_conf[~above], conf[~above])
    # Shares of the cut people: a third by a side edge, a third by the top one, the rest by the bottom one.
    mixed, _ = cut_by_frame_edge(clean, conf, FrameCut(1.0, (0.5, 0.5), 0.2, 1 / 3, 0.6, 1 / 3), gen)
    sideways = (mixed[..., 0] != clean[..., 0]).any(1)
    from_top = (mixed[..., 1] > clean[..., 1]).any(1)
    assert not (sideways & from_top).any()
    for share in (sideways, from_top, ~sideways & ~from_top):
        assert share.float().mean().item() == pytest.approx(1 / 3, abs=0.03)


def test_training_batches_cut_the_asked_share_of_people():
    default = load_preset("default")
    synth = default.synth.with_values(frame_cut_prob=0.5)
    bodies = torch.randn(2000, 21, 3, generator=torch.Generator().manual_seed(1)) * 0.3 + torch.tensor([0.0, 1.0, 0.0])
    batch = make_batch(bodies, synth, torch.Generator().manual_seed(0), None)
    unconfident = (batch.inputs[..., 2] < 1.0).any(-1).float().mean().item()
    assert unconfident == pytest.approx(0.5, abs=0.05)  # exact 2D otherwise: only the cut people lose confidence
    whole = make_batch(bodies, synth.with_values(frame_cut_prob=0.0), torch.Generator().manual_seed(0), None)
    assert (whole.inputs[..., 2] == 1.0).all()


def test_refiner_sequences_can_be_cut_and_keep_the_truth_beyond_the_edge():
    default = load_preset("default")
    calibration = load_calibration(default.refine_noise)
    points = (
        torch.randn(400, 21, 3, generator=torch.Generator().manual_seed(1)) * 0.3 + torch.tensor([0, 1, 0])
    ).numpy()
    starts = np.arange(0, 300, 10)

    def sequences(prob: float):
        cut = FrameCut.of(default.synth, prob)
        gen = torch.Generator().manual_seed(0)
        return make_sequences(points, starts, 32, 1, default.synth, default.refine_noise, calibration, gen, cut)

    plain, cut = sequences(0.0), sequences(1.0)
    assert torch.equal(plain.clean, cut.clean)  # the target stays where the body is
    assert (cut.noisy != plain.noisy).any() and (cut.conf <= plain.conf).all()
