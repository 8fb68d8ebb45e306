"""Projection, normalization, Procrustes and the metrics, on hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from camerapose_cli.core.geometry import (
    look_at,
    normalize_keypoints,
    on_image_border,
    procrustes_align,
    project_normalized,
    project_to_image,
    unproject_from_image,
)
from camerapose_cli.core.metrics import (
    acceleration_error,
    limb_mpjpe,
    limb_pa_mpjpe,
    mpjpe,
    n_mpjpe,
    pa_mpjpe,
    per_joint_error,
)
from camerapose_cli.core.skeleton import LIMB_JOINTS
from camerapose_cli.training.losses import camera_targets, reprojection_loss


def test_projection_by_hand():
    points = torch.tensor([[[1.0, -0.5, 2.0], [0.0, 0.0, 4.0]]])
    uv = project_to_image(points, torch.tensor([1000.0]), torch.tensor([[640.0, 360.0]]))
    torch.testing.assert_close(uv, torch.tensor([[[1140.0, 110.0], [640.0, 360.0]]]))


def test_projection_unprojection_round_trip():
    gen = torch.Generator().manual_seed(0)
    points = torch.randn(8, 17, 3, generator=gen) + torch.tensor([0.0, 0.0, 6.0])
    focal = 500 + 1000 * torch.rand(8, generator=gen)
    centre = 300 + 400 * torch.rand(8, 2, generator=gen)
    uv = project_to_image(points, focal, centre)
    back = unproject_from_image(uv, points[..., 2], focal, centre)
    torch.testing.assert_close(back, points, atol=1e-4, rtol=1e-4)


def test_normalized_camera_matches_the_pinhole():
    """The lifter's (d, t) camera with the true root depth reproduces pinhole pixels exactly."""
    gen = torch.Generator().manual_seed(1)
    pose = torch.randn(16, 21, 3, generator=gen) * 0.3
    pose = pose - pose[:, :1]
    root = torch.stack(
        [torch.randn(16, generator=gen), torch.randn(16, generator=gen) * 0.3, 3 + 5 * torch.rand(16, generator=gen)],
        -1,
    )
    focal = torch.full((16,), 1200.0)
    principal = torch.tensor([[960.0, 540.0]]).expand(16, 2)
    pixels = project_to_image(pose + root[:, None], focal, principal)
    normalized, centre, scale = normalize_keypoints(pixels, torch.ones(16, 21))
    log_d, root_xy = camera_targets(root, focal, principal, centre, scale)
    principal_n = (principal - centre) / scale[:, None]
    projected = project_normalized(pose, log_d.exp(), root_xy, principal_n, log_d.exp() * focal / scale)
    torch.testing.assert_close(projected, normalized, atol=1e-4, rtol=1e-4)
    assert (
        float(
            reprojection_loss(
                pose, log_d, root_xy, normalized, torch.ones(16, 21), principal_n, log_d.exp() * focal / scale
            )
        )
        < 1e-4
    )
    # Far away, the weak-perspective form agrees with the full one.
    far = root * torch.tensor([1.0, 1.0, 100.0])
    pixels = project_to_image(pose + far[:, None], focal, principal)
    normalized, centre, scale = normalize_keypoints(pixels, torch.ones(16, 21))
    log_d, root_xy = camera_targets(far, focal, principal, centre, scale)
    weak = project_normalized(pose, log_d.exp(), root_xy, principal_n, None)
    assert float((weak - normalized).abs().max()) < 0.02


def test_reprojection_loss_sees_a_wrong_pose():
    pose = torch.zeros(1, 3, 3)
    pose[0, 1] = torch.tensor([0.5, 0.0, 0.0])
    keypoints = torch.zeros(1, 3, 2)
    loss = reprojection_loss(
        pose, torch.zeros(1), torch.zeros(1, 2), keypoints, torch.ones(1, 3), torch.zeros(1, 2), None
    )
    assert float(loss) == pytest.approx(0.5 / 3)
    # Confidence zero removes a joint from the loss.
    conf = torch.tensor([[1.0, 0.0, 1.0]])
    assert (
        float(reprojection_loss(pose, torch.zeros(1), torch.zeros(1, 2), keypoints, conf, torch.zeros(1, 2), None))
        == 0.0
    )


def test_normalize_uses_the_confident_keypoints():
    keypoints = torch.tensor([[[0.0, 0.0], [100.0, 50.0], [9999.0, 9999.0]]])
    normalized, centre, scale = normalize_keypoints(keypoints, torch.tensor([[1.0, 1.0, 0.01]]))
    torch.testing.assert_close(centre, torch.tensor([[50.0, 25.0]]))
    torch.testing.assert_close(scale, torch.tensor([50.0]))
    torch.testing.assert_close(normalized[0, :2], torch.tensor([[-1.0, -0.5], [1.0, 0.5]]))


def test_the_image_border_is_a_band_on_both_sides_of_each_edge():
    # 1% of a 1920 x 1080 image's shorter side: 10.8 px
    points = np.array([[[960, 540], [0, 500], [1925, 500], [960, 1070], [960, 1068], [960, -11], [960, 1200]]], float)
    got = on_image_border(points, np.array([1920]), np.array([1080]), 0.01)
    assert got.tolist() == [[False, True, True, True, False, False, False]]
    portrait = on_image_border(points[:, :3], np.array([1080]), np.array([1920]), 0.01)
    assert portrait.tolist() == [[False, True, False]]


def test_look_at_puts_the_target_on_the_optical_axis():
    eye = torch.tensor([[3.0, 1.5, -2.0]])
    target = torch.tensor([[0.0, 1.0, 0.0]])
    rotation = look_at(eye, target, torch.tensor([0.0, 1.0, 0.0]))
    cam = rotation[0] @ (target[0] - eye[0])
    assert cam[0].abs() < 1e-6 and cam[1].abs() < 1e-6 and cam[2] > 0
    torch.testing.assert_close(rotation[0] @ rotation[0].T, torch.eye(3), atol=1e-6, rtol=0)
    up_in_cam = rotation[0] @ torch.tensor([0.0, 1.0, 0.0])
    assert up_in_cam[1] < 0  # world up is image up: OpenCV's y points down


def test_metrics_by_hand():
    target = torch.zeros(1, 2, 3)
    pred = torch.tensor([[[3.0, 4.0, 0.0], [0.0, 0.0, 1.0]]])
    assert float(mpjpe(pred, target)) == pytest.approx(3.0)
    torch.testing.assert_close(per_joint_error(pred, target), torch.tensor([[5.0, 1.0]]))
    # N-MPJPE: the best scale of pred = 2 * target is 1/2.
    target = torch.tensor([[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]])
    assert float(n_mpjpe(2 * target, target)) == pytest.approx(0.0, abs=1e-6)
    assert float(mpjpe(2 * target, target)) == pytest.approx(1.0)


def test_limb_metrics_ignore_the_trunk_joints_and_the_hip_offset():
    gen = torch.Generator().manual_seed(1)
    target = torch.randn(3, 17, 3, generator=gen)
    pred = target.clone()
    pred[:, [0, 7, 8, 9, 10]] += 0.5  # pelvis, spine, thorax, neck, head placed elsewhere (another rig)
    assert float(limb_mpjpe(pred, target)) == pytest.approx(0.0, abs=1e-6)
    assert float(mpjpe(pred, target)) > 0.1
    shifted = target + torch.tensor([0.2, -0.1, 0.3])  # mid-hips aligned: a translation costs nothing
    assert float(limb_mpjpe(shifted, target)) == pytest.approx(0.0, abs=1e-6)
    wrist = target.clone()
    wrist[:, 16] += torch.tensor([0.0, 0.0, 1.2])  # one limb joint of twelve off by 1.2
    assert float(limb_mpjpe(wrist, target)) == pytest.approx(1.2 / len(LIMB_JOINTS), abs=1e-5)
    assert float(limb_pa_mpjpe(1.3 * shifted, target)) == pytest.approx(0.0, abs=1e-4)


def test_procrustes_with_a_known_similarity_gives_zero():
    gen = torch.Generator().manual_seed(2)
    target = torch.randn(4, 17, 3, generator=gen)
    rotation = torch.from_numpy(Rotation.from_euler("xyz", [30, -50, 110], degrees=True).as_matrix()).float()
    pred = 1.7 * target @ rotation.T + torch.tensor([0.3, -2.0, 5.0])
    assert float(pa_mpjpe(pred, target)) < 1e-4
    torch.testing.assert_close(procrustes_align(pred, target), target, atol=1e-4, rtol=1e-4)
    assert float(mpjpe(pred, target)) > 1.0
    # A reflection is not a rotation: Procrustes must not undo a mirror image.
    mirrored = target * torch.tensor([-1.0, 1.0, 1.0])
    assert float(pa_mpjpe(mirrored, target)) > 0.1


def test_acceleration_error_of_a_constant_velocity_is_zero():
    t = torch.arange(10.0)[:, None, None]
    motion = t * torch.ones(10, 17, 3)
    assert float(acceleration_error(motion, torch.zeros(10, 17, 3))) == 0.0
    jitter = motion.clone()
    jitter[5] += 1.0
    assert float(acceleration_error(jitter, motion)) > 0
    assert math.isfinite(float(acceleration_error(jitter, motion)))


def test_virtual_camera_sees_the_person_head_on():
    """Re-imaged keypoints equal the projection of the rotated 3D points; the person lands at the centre."""
    from camerapose_cli.core.geometry import to_virtual_camera

    gen = torch.Generator().manual_seed(3)
    points = torch.randn(6, 17, 3, generator=gen) * 0.3 + torch.tensor([2.5, -1.0, 5.0])  # far off-axis
    focal = torch.full((6,), 900.0)
    principal = torch.tensor([[640.0, 360.0]]).expand(6, 2)
    pixels = project_to_image(points, focal, principal)
    conf = torch.ones(6, 17)
    virtual, rotation = to_virtual_camera(pixels, conf, focal, principal)
    expected = project_to_image(points @ rotation, focal, torch.zeros(6, 2))
    torch.testing.assert_close(virtual, expected, atol=1e-3, rtol=1e-4)
    _, centre, scale = normalize_keypoints(virtual, conf)
    assert float((centre.abs().amax(-1) / scale).max()) < 0.1  # the person is near the virtual optical axis
    torch.testing.assert_close(rotation @ rotation.transpose(1, 2), torch.eye(3).expand(6, 3, 3), atol=1e-5, rtol=0)


def test_bone_and_symmetry_priors():
    from camerapose_cli.core.metrics import LIMB_PAIRS, limb_asymmetry
    from camerapose_cli.training.losses import bone_length_prior, symmetry_prior

    body = torch.zeros(1, 17, 3)
    body[0, 4] = torch.tensor([0.1, 0.0, 0.0])  # l_hip
    body[0, 5] = torch.tensor([0.1, 0.45, 0.0])  # l_knee: thigh 0.45
    body[0, 1] = torch.tensor([-0.1, 0.0, 0.0])  # r_hip
    body[0, 2] = torch.tensor([-0.1, 0.30, 0.0])  # r_knee: thigh 0.30
    thighs = ((4, 5), (1, 2))
    band = torch.tensor([0.40, 0.40]), torch.tensor([0.50, 0.50])
    assert float(bone_length_prior(body, *band, thighs)) == pytest.approx(math.log(0.40 / 0.30) / 2, rel=1e-4)
    assert float(bone_length_prior(body, torch.tensor([0.30, 0.30]), torch.tensor([0.45, 0.45]), thighs)) == 0.0
    from camerapose_cli.core.skeleton import H36M17_FLIP

    mirrored = torch.randn(3, 17, 3)
    mirrored = (mirrored + mirrored[:, list(H36M17_FLIP)] * torch.tensor([-1.0, 1.0, 1.0])) / 2  # symmetric bodies
    assert float(symmetry_prior(mirrored)) < 1e-5
    stretched = mirrored.clone()
    stretched[:, 13] = stretched[:, 12] + 2 * (stretched[:, 13] - stretched[:, 12])  # one forearm doubled
    assert float(symmetry_prior(stretched)) == pytest.approx(math.log(2) ** 2 / len(LIMB_PAIRS), rel=1e-4)
    assert float(limb_asymmetry(stretched)[:, 3].mean()) == pytest.approx(2 / 3, rel=1e-4)
    assert limb_asymmetry(body).shape == (1, len(LIMB_PAIRS))
