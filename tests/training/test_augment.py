"""Pose-space augmentation on real Bandai bodies: new poses, same bones, anatomical limits."""

from __future__ import annotations

import math

import pytest
import torch

from camerapose_cli.config import load_preset
from camerapose_cli.core.metrics import body_height, bone_lengths
from camerapose_cli.core.skeleton import BODY_INDEX, H36M17_BONES
from camerapose_cli.training.augment import (
    ARMS,
    LEGS,
    LOWER_BODY,
    _flexion,
    augment_poses,
    bend_limbs,
    bend_torso,
    body_axes,
    recombine_limbs,
    tilt_bodies,
)
from camerapose_cli.training.data import augment_bodies

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def bodies(bandai):
    return torch.from_numpy(bandai.points[::400].copy())


def test_every_augmentation_keeps_bone_lengths(bodies):
    cfg = load_preset("default").pose_augment.with_values(
        recombine_prob=1.0, tilt_prob=1.0, arm_prob=1, leg_prob=1, torso_prob=1
    )
    before = bone_lengths(bodies, H36M17_BONES)
    for augment in (bend_limbs, recombine_limbs, tilt_bodies, bend_torso):
        after = augment(bodies, cfg, torch.Generator().manual_seed(0))
        assert not torch.allclose(after, bodies)
        torch.testing.assert_close(bone_lengths(after, H36M17_BONES), before, atol=1e-5, rtol=0)


def test_bent_limbs_stay_within_the_flexion_limit_and_legs_crouch(bodies):
    cfg = load_preset("default").pose_augment.with_values(arm_prob=1.0, leg_prob=1.0, hip_flex_deg=(60.0, 100.0))
    after = bend_limbs(bodies, cfg, torch.Generator().manual_seed(0))
    for chain in ARMS + LEGS:
        assert _flexion(after, chain).max() <= math.radians(cfg.max_flex_deg) + 1e-4

    def pelvis_height(points):
        return (points[:, BODY_INDEX["pelvis"], 1] - points[..., 1].amin(1)).median()

    assert pelvis_height(after) < 0.85 * pelvis_height(bodies)  # sitting and crouching bring the pelvis down


def test_bent_torso_leans_the_upper_body_over_planted_legs(bodies):
    cfg = load_preset("default").pose_augment.with_values(
        torso_prob=1.0, torso_flex_deg=(80.0, 90.0), torso_side_deg=0.0, torso_twist_deg=0.0
    )
    after = bend_torso(bodies, cfg, torch.Generator().manual_seed(0))
    torch.testing.assert_close(after[:, list(LOWER_BODY)], bodies[:, list(LOWER_BODY)])
    forward, _, _ = body_axes(bodies)
    thorax, pelvis = BODY_INDEX["thorax"], BODY_INDEX["pelvis"]
    before_axis, after_axis = bodies[:, thorax] - bodies[:, pelvis], after[:, thorax] - after[:, pelvis]
    assert float(after_axis[:, 1].median()) < 0.25 * float(before_axis[:, 1].median())  # bent over, not upright
    assert float((after_axis * forward).sum(-1).median()) > 0.8 * float(before_axis.norm(dim=-1).median())
    twisted = bend_torso(
        bodies, cfg.with_values(torso_flex_deg=(0.0, 0.0), torso_twist_deg=40.0), torch.Generator().manual_seed(0)
    )
    torch.testing.assert_close(twisted[:, thorax], bodies[:, thorax], atol=1e-5, rtol=0)  # turned about its own axis
    assert not torch.allclose(twisted[:, BODY_INDEX["l_shoulder"]], bodies[:, BODY_INDEX["l_shoulder"]])
    off = cfg.with_values(torso_prob=0.0)
    gen = torch.Generator().manual_seed(3)
    torch.testing.assert_close(bend_torso(bodies, off, gen), bodies)
    assert torch.equal(gen.get_state(), torch.Generator().manual_seed(3).get_state())  # drew nothing


def test_windows_share_one_draw_and_share_zero_changes_nothing(bodies):
    cfg = load_preset("default").pose_augment
    gen = torch.Generator().manual_seed(0)
    window = bodies[:1].expand(6, -1, -1).clone()  # one pose held for a window of 6 frames
    out = augment_poses(window, cfg.with_values(arm_prob=1.0, torso_prob=1.0), 1.0, gen, repeat=6)
    torch.testing.assert_close(out, out[:1].expand_as(out))
    torch.testing.assert_close(augment_poses(bodies, cfg, 0.0, gen), bodies)


def test_body_height_does_not_depend_on_the_pose(bandai):
    heights = body_height(torch.from_numpy(bandai.points[::50].copy()))
    assert 1.4 < float(heights.median()) < 1.7  # one actor's build: ankle to head joint along the bones
    assert float((heights.quantile(0.95) - heights.quantile(0.05)) / heights.median()) < 0.03


def test_body_size_is_drawn_in_metres_whatever_the_source_actors_size(bodies):
    cfg = load_preset("default").synth.with_values(joint_offset_m=0.0)  # moved joints change the height after
    low, high = cfg.body_height_m
    for source_scale in (0.7, 1.0, 1.4):  # a child-sized, the Bandai and a giant source rig give the same sizes
        out = augment_bodies(source_scale * bodies, cfg, torch.Generator().manual_seed(0))
        heights = body_height(out)
        assert float(heights.min()) >= low - 1e-4 and float(heights.max()) <= high + 1e-4
        assert float(heights.median()) == pytest.approx((low + high) / 2, abs=0.06 * (high - low) + 0.03)
    window = bodies[:5]  # the frames of one sequence share one size
    out = augment_bodies(window.repeat_interleave(4, 0), cfg, torch.Generator().manual_seed(1), repeat=4)
    torch.testing.assert_close(body_height(out).reshape(5, 4).std(1), torch.zeros(5), atol=1e-4, rtol=0)
