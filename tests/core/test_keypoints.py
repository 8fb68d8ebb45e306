"""Detector keypoint placement on real Bandai bodies: where the lifters' 2D inputs sit against the skeleton."""

from __future__ import annotations

import pytest
import torch

from camerapose_cli.config import load_preset
from camerapose_cli.core.keypoints import DETECTOR_PLACEMENT, KeypointPlacement, detector_keypoints
from camerapose_cli.core.skeleton import BODY_INDEX, COCO17_JOINTS, COCO_FROM_BODY
from camerapose_cli.training.data import draw_keypoint_placement

pytestmark = pytest.mark.slow
COCO = {name: i for i, name in enumerate(COCO17_JOINTS)}


@pytest.fixture(scope="module")
def bodies(bandai):
    return torch.from_numpy(bandai.points[::500].copy())


def test_no_placement_is_the_skeleton(bodies):
    assert torch.equal(detector_keypoints(bodies), bodies[:, list(COCO_FROM_BODY)])
    zero = KeypointPlacement.constant(hip=0.0, knee=0.0, shoulder=0.0)
    torch.testing.assert_close(detector_keypoints(bodies, zero), bodies[:, list(COCO_FROM_BODY)])


def test_keypoints_move_along_the_body(bodies):
    n = len(bodies)
    placement = KeypointPlacement(torch.full((n,), 0.1), torch.full((n,), 0.2), torch.full((n,), 0.05))
    moved = detector_keypoints(bodies, placement)
    joint = {name: bodies[:, BODY_INDEX[name]] for name in ("l_hip", "l_knee", "l_ankle", "l_shoulder")}
    torch.testing.assert_close(moved[:, COCO["left_hip"]], joint["l_hip"] + 0.1 * (joint["l_knee"] - joint["l_hip"]))
    torch.testing.assert_close(
        moved[:, COCO["left_knee"]], joint["l_knee"] + 0.2 * (joint["l_ankle"] - joint["l_knee"])
    )
    shift = moved[:, COCO["left_shoulder"]] - joint["l_shoulder"]
    torch.testing.assert_close(shift.norm(dim=-1), torch.full((n,), 0.05))
    up = bodies[:, BODY_INDEX["thorax"]] - bodies[:, BODY_INDEX["pelvis"]]
    assert (torch.nn.functional.cosine_similarity(shift, up, dim=-1) > 0.999).all()
    untouched = [COCO[name] for name in ("nose", "left_elbow", "right_wrist", "left_ankle", "right_ear")]
    torch.testing.assert_close(moved[:, untouched], bodies[:, list(COCO_FROM_BODY)][:, untouched])


def test_placement_is_the_same_in_any_frame_and_batch_shape(bodies):
    turn = torch.linalg.qr(torch.randn(3, 3, generator=torch.Generator().manual_seed(1)))[0]
    placement = DETECTOR_PLACEMENT
    torch.testing.assert_close(
        detector_keypoints(bodies @ turn.T, placement), detector_keypoints(bodies, placement) @ turn.T
    )
    windows = bodies[: 2 * (len(bodies) // 2)].reshape(2, -1, *bodies.shape[1:])
    every = DETECTOR_PLACEMENT
    torch.testing.assert_close(
        detector_keypoints(windows, every).flatten(0, 1), detector_keypoints(windows.flatten(0, 1), every)
    )


def test_drawn_placements_stay_in_the_preset_ranges_and_one_per_window():
    cfg = load_preset("default").synth
    placement = draw_keypoint_placement(400, cfg, torch.Generator().manual_seed(0), repeat=4)
    for values, (lo, hi) in (
        (placement.hip_along_thigh, cfg.keypoint_hip_along_thigh),
        (placement.knee_along_shin, cfg.keypoint_knee_along_shin),
        (placement.shoulder_up_m, cfg.keypoint_shoulder_up_m),
    ):
        assert values.shape == (400,)
        assert lo <= values.min() and values.max() <= hi and values.std() > (hi - lo) / 5
        runs = values.reshape(100, 4)
        assert torch.equal(runs, runs[:, :1].expand(-1, 4))
