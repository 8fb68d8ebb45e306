"""The refinement network and the refine stage: edges, gaps, what it keeps and what it corrects."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import run_cli

from camerapose_cli.config import load_preset
from camerapose_cli.io.schema import KeypointTable, read_keypoints2d, read_metadata
from camerapose_cli.models.checkpoints import default_weights, load_refiner
from camerapose_cli.stages.refine import refine_table, refine_track, window_starts
from camerapose_cli.training.losses import confidence_guided_loss, detection_trust

REFINE = load_preset("default").refine
WINDOW = REFINE.window


@pytest.fixture(scope="module")
def refiner():
    weights = default_weights("refiner")
    assert weights.is_file(), "weights/refiner.pt is missing"
    return load_refiner(weights)


def standing_track(frames: int, conf: float = 0.95) -> np.ndarray:
    """A person standing still, 400 px tall, in a 1080p frame: (frames, 17, 3)."""
    base = np.array(
        [
            [960, 300],
            [975, 285],
            [945, 285],
            [990, 295],
            [930, 295],
            [1020, 380],
            [900, 380],
            [1040, 480],
            [880, 480],
            [1050, 570],
            [870, 570],
            [1000, 560],
            [920, 560],
            [1005, 660],
            [915, 660],
            [1010, 760],
            [910, 760],
        ],
        np.float32,
    )
    kp = np.concatenate([base, np.full((17, 1), conf, np.float32)], -1)
    return np.repeat(kp[None], frames, axis=0)


def test_windows_cover_every_frame():
    for length in (1, 5, WINDOW, WINDOW + 1, 3 * WINDOW + 7):
        starts = window_starts(length, min(WINDOW, length))
        covered = np.zeros(length, bool)
        for s in starts:
            covered[s : s + min(WINDOW, length)] = True
        assert covered.all() and starts[0] == 0


def test_shapes_edges_and_gaps(refiner):
    frames = np.array([0, 1, 2, 3, 10, 11, 12, 40, 41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 130])
    out = refine_track(refiner, frames, standing_track(len(frames)), WINDOW)
    assert out.shape == (len(frames), 17, 3)
    assert np.isfinite(out).all()
    assert (out[..., 2] >= 0).all() and (out[..., 2] <= 1).all()


def test_a_constant_clean_track_passes_nearly_unchanged(refiner):
    track = standing_track(60)
    out = refine_track(refiner, np.arange(60), track, WINDOW)
    moved = np.linalg.norm(out[..., :2] - track[..., :2], axis=-1)
    assert np.median(moved) < 3.0 and moved.max() < 12.0  # px, on a 400 px person
    first_last = np.linalg.norm(out[[0, -1], :, :2] - track[[0, -1], :, :2], axis=-1)
    assert first_last.max() < 12.0  # the edges too


def test_a_low_confidence_spike_is_pulled_back(refiner):
    track = standing_track(31)
    track[15, 9, :2] += [150.0, -120.0]  # left wrist jumps 190 px for one frame
    track[15, 9, 2] = 0.1
    out = refine_track(refiner, np.arange(31), track, WINDOW)
    before = np.linalg.norm(track[15, 9, :2] - standing_track(1)[0, 9, :2])
    after = np.linalg.norm(out[15, 9, :2] - standing_track(1)[0, 9, :2])
    assert after < 0.3 * before


def test_a_high_confidence_joint_is_not_dragged_away(refiner):
    track = standing_track(31)
    track[15:, 10, :2] += [60.0, -40.0]  # the right wrist really moves, confidently
    track[15:, 10, 2] = 0.97
    out = refine_track(refiner, np.arange(31), track, WINDOW)
    stay = np.linalg.norm(out[20:, 10, :2] - track[20:, 10, :2], axis=-1)
    assert np.median(stay) < 8.0


def one_track_table(keypoints: np.ndarray, width: int, height: int) -> KeypointTable:
    n = len(keypoints)
    return KeypointTable(
        video=np.full(n, "cut.mp4", dtype=object),
        frame=np.arange(n, dtype=np.int64),
        time_s=np.arange(n) / 30.0,
        track_id=np.ones(n, np.int64),
        bbox=np.zeros((n, 4), np.float32),
        score=np.ones(n, np.float32),
        keypoints=keypoints.astype(np.float32),
        width=np.full(n, width, np.int32),
        height=np.full(n, height, np.int32),
        metadata={"fps": "30"},
    )


def test_keypoints_on_the_image_border_keep_the_detection(refiner):
    # The standing person in a frame cropped at y = 620: the knees and ankles sit on its bottom border, unconfident,
    # as YOLO11n-pose reports a person whom the frame cuts; everything above jitters.
    rng = np.random.default_rng(0)
    track = standing_track(40)
    track[..., :2] += rng.normal(0, 3, track[..., :2].shape)
    legs = [13, 14, 15, 16]
    track[:, legs, 1] = 620 - rng.uniform(0, 4, (40, 4))
    track[:, legs, 2] = rng.uniform(0.02, 0.2, (40, 4))
    refined = refine_table(one_track_table(track, 1920, 620), refiner, REFINE).keypoints
    np.testing.assert_array_equal(refined[:, legs], track[:, legs].astype(np.float32))
    assert np.abs(refined[:, :13, :2] - track[:, :13, :2]).max() > 0.5  # the rest is refined
    plain = refine_table(one_track_table(track, 1920, 620), refiner, REFINE.with_values(border_margin=0.0))
    assert np.abs(plain.keypoints[:, legs, :2] - track[:, legs, :2]).max() > 5.0  # else they move
    np.testing.assert_array_equal(plain.keypoints[:, :13], refined[:, :13])


def test_the_confidence_guided_loss_interpolates_by_trust():
    clean, detected = torch.zeros(1, 1, 1, 2), torch.ones(1, 1, 1, 2)
    present = torch.ones(1, 1, dtype=torch.bool)
    for conf, expected in ((0.3, 0.0), (1.0, 4.0 / 5.0)):
        conf_t = torch.full((1, 1, 1), conf)
        candidates = torch.linspace(0, 1, 101)
        losses = [
            float(
                confidence_guided_loss(
                    torch.full((1, 1, 1, 2), float(c)), clean, detected, conf_t, present, 4.0, 0.5, 2.0
                )
            )
            for c in candidates
        ]
        assert float(candidates[int(np.argmin(losses))]) == pytest.approx(expected, abs=0.011)
    assert float(detection_trust(torch.tensor(0.75), 0.5, 2.0)) == pytest.approx(0.25)


@pytest.mark.slow
def test_refine_stage_end_to_end(extract_run, tmp_path):
    out, _ = extract_run
    result = run_cli("refine", str(out), "--out", str(tmp_path), "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["done"] == 3
    for table_path in (out / "keypoints2d").glob("*.parquet"):
        raw = read_keypoints2d(table_path)
        refined = read_keypoints2d(tmp_path / "keypoints2d_refined" / table_path.name)
        np.testing.assert_array_equal(refined.frame, raw.frame)
        np.testing.assert_array_equal(refined.track_id, raw.track_id)
        assert read_metadata(tmp_path / "keypoints2d_refined" / table_path.name)["refined"] == "true"
        confident = raw.keypoints[..., 2] > 0.8
        shift = np.linalg.norm(refined.keypoints[..., :2] - raw.keypoints[..., :2], axis=-1)
        assert np.median(shift[confident]) < 10.0
    again = run_cli("refine", str(out), "--out", str(tmp_path), "--json")
    assert json.loads(again.stdout)["skipped"] == 3
