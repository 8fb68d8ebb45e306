"""lift_tracks: which lifter each row gets, gaps, frame rates, bounded memory, and what the temporal lifter buys."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from camerapose_cli.config import load_preset
from camerapose_cli.core.device import CPU, resolve_precision
from camerapose_cli.core.geometry import focal_from_fov
from camerapose_cli.core.skeleton import COCO17_FLIP, H36M17_FLIP
from camerapose_cli.io.schema import KeypointTable
from camerapose_cli.models.checkpoints import default_weights, load_lifter, load_refiner, load_temporal
from camerapose_cli.models.temporal import TemporalLifter, TemporalLifterConfig
from camerapose_cli.stages.lift import lift_tracks, lift_with_intrinsics
from camerapose_cli.training.evaluate import EvalClip, TrackNoise, clip_table, evaluate_tracks, film_clip
from camerapose_cli.training.noise import load_calibration
from camerapose_cli.training.splits import split_clips

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def models():
    torch.manual_seed(0)
    single = load_lifter(default_weights("lifter"))
    temporal = TemporalLifter(single, TemporalLifterConfig(channels=32, fps=(15.0, 60.0)))
    torch.nn.init.normal_(temporal.pose_head.weight, std=0.01)  # not the untrained zero residual
    return single, temporal.eval()


def exact_config():
    """[lift] in fp32: there a row's result does not depend on the batch it is lifted in, to 1e-5 m (in bf16 the
    rounding does; tests/stages/test_lift.py measures bf16 against fp32)."""
    return load_preset("default").lift.with_values(precision="fp32")


def filmed_table(bandai, frames: int, fps: float = 30.0) -> KeypointTable:
    clip = EvalClip("c", "g", bandai.points[1000 : 1000 + frames], fps)
    _, coco, _, _, size = film_clip(clip, load_preset("default").synth, torch.Generator().manual_seed(0))
    keypoints = torch.cat([coco, torch.ones(frames, 17, 1)], -1).numpy()
    return clip_table(keypoints, np.ones(frames, bool), size, fps)


def test_long_tracks_go_temporal_short_ones_single_and_rows_keep_their_order(bandai, models):
    single, temporal = models
    long, short = filmed_table(bandai, 60), filmed_table(bandai, 5)
    short.track_id[:] = 2
    table = KeypointTable.concat([short, long])
    order = np.random.default_rng(0).permutation(len(table))
    shuffled = table.take(order)
    config = exact_config()
    result, used = lift_tracks(shuffled, single, temporal, config)
    assert set(used[shuffled.track_id == 2]) == {"single"} and set(used[shuffled.track_id == 1]) == {"temporal"}
    alone, _ = lift_tracks(long, single, temporal, config)
    rows = np.flatnonzero(shuffled.track_id == 1)
    np.testing.assert_allclose(result.pose[rows], alone.pose[np.argsort(shuffled.frame[rows]).argsort()], atol=1e-5)
    _, none_temporal = lift_tracks(shuffled, single, None, config)
    assert set(none_temporal) == {"single"}


def test_single_frame_rows_equal_the_frame_by_frame_lifter(bandai, models):
    single, _ = models
    table = filmed_table(bandai, 20)
    config = exact_config()
    result, _ = lift_tracks(table, single, None, config)
    focal = focal_from_fov(table.width, table.height, config.fov_deg).astype(np.float32)
    principal = np.stack([table.width, table.height], -1).astype(np.float32) / 2
    precision = resolve_precision(config.precision, CPU)
    direct = lift_with_intrinsics(
        single, table.keypoints, focal, principal, 7, mirror=config.mirror_average, precision=precision
    )
    np.testing.assert_allclose(result.pose, direct.pose, atol=1e-5)


@pytest.mark.parametrize("use_temporal", [False, True])
def test_mirror_averaging_makes_the_lifters_left_right_equivariant(bandai, models, use_temporal):
    """With [lift] mirror_average, lifting the mirrored video gives the mirror image of the lifted one (exactly,
    up to rounding); without it the two differ by the lifter's left-right bias."""
    single, temporal = models
    table = filmed_table(bandai, 40)
    mirrored = replace(table, keypoints=table.keypoints[:, list(COCO17_FLIP)].copy())
    mirrored.keypoints[..., 0] = table.width[:, None] - mirrored.keypoints[..., 0]
    gaps = {}
    for average in (True, False):
        config = load_preset("default").lift.with_values(mirror_average=average)
        direct, used = lift_tracks(table, single, temporal if use_temporal else None, config)
        seen, _ = lift_tracks(mirrored, single, temporal if use_temporal else None, config)
        assert set(used) == {"temporal" if use_temporal else "single"}
        unmirrored = seen.pose[:, list(H36M17_FLIP)] * np.array([-1.0, 1.0, 1.0])
        gaps[average] = np.abs(unmirrored - direct.pose).max()
    assert gaps[True] < 1e-4 and gaps[False] > 1e-3, gaps


def test_memory_is_bounded_by_the_batch_not_the_track(bandai, models):
    single, temporal = models
    table = filmed_table(bandai, 200)
    config = exact_config()
    whole, _ = lift_tracks(table, single, temporal, config)
    chunked, _ = lift_tracks(table, single, temporal, config.with_values(batch_size=16))
    np.testing.assert_allclose(chunked.pose, whole.pose, atol=1e-5)
    np.testing.assert_allclose(chunked.root_cam, whole.root_cam, atol=1e-4)


def test_long_gaps_cut_a_track_and_short_pieces_go_single(bandai, models):
    single, temporal = models
    table = filmed_table(bandai, 80)
    keep = np.ones(80, bool)
    keep[30:50] = False  # a 20-frame gap: longer than max_gap_frames
    keep[75:77] = False  # a 2-frame gap: bridged
    keep[:25] = False  # leaves frames 25..29, shorter than temporal_min_frames
    config = load_preset("default").lift.with_values(max_gap_frames=15, temporal_min_frames=9)
    cut = table.take(keep)
    _, used = lift_tracks(cut, single, temporal, config)
    assert set(used[cut.frame < 30]) == {"single"} and set(used[cut.frame >= 50]) == {"temporal"}


def test_fast_videos_are_lifted_as_interleaved_tracks_in_the_trained_frame_rates(bandai, models):
    single, temporal = models
    table = filmed_table(bandai, 60, fps=120.0)
    config = load_preset("default").lift
    result, used = lift_tracks(table, single, temporal, config)
    assert set(used) == {"temporal"}
    even = np.flatnonzero(table.frame % 2 == 0)
    half = replace(table.take(even), metadata={"fps": "60.0"})
    half.frame[:] = half.frame // 2
    alone, _ = lift_tracks(half, single, temporal, config)
    np.testing.assert_allclose(result.pose[even], alone.pose, atol=1e-5)


def test_the_shipped_temporal_lifter_removes_most_jitter_from_refined_detections(bandai):
    """Held-out Bandai clips filmed as tracks, detector-like noise, refined: the lift stage's default path."""
    preset = load_preset("default")
    clips = [
        EvalClip(name, "", bandai.clip(name)[:150], float(bandai.fps[bandai.names.index(name)]))
        for name in split_clips(bandai.names, preset.mocap)["test_seen"][:12]
    ]
    noise = TrackNoise(
        load_calibration(preset.refine_noise),
        preset.refine_noise,
        load_refiner(default_weights("refiner")),
        preset.refine,
    )
    single = load_lifter(default_weights("lifter"))
    lifters = {"single": (single, None), "temporal": (single, load_temporal(default_weights("temporal")))}
    scores = evaluate_tracks(lifters, clips, preset.synth, preset.lift, noise, seed=0)
    s, t = scores["single"]["all"], scores["temporal"]["all"]
    assert t["accel_mm"] < 0.5 * s["accel_mm"]
    assert t["mpjpe_mm"] < s["mpjpe_mm"] * 1.05
