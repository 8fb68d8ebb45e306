"""Measure the world frame on mocap: film a clip (y up) with a static camera tilted down and rolled by known
angles, then compare export.world's gravity and camera height with the truth. Mocap sets put their floor at
different heights (Bandai at y = 0, most CC clips about 1 m lower), so the true floor here is where the
estimate aims: `ankle_height_m` below the clip's median lowest ankle."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from camerapose_cli.core.geometry import look_at
from camerapose_cli.core.skeleton import BODY_INDEX
from camerapose_cli.export.world import WorldFrame

WORLD_UP = np.array([0.0, 1.0, 0.0])


@dataclass(frozen=True)
class TiltedView:
    camera_joints: np.ndarray  # (T, J, 3) camera frame (OpenCV axes)
    rotation: np.ndarray  # (3, 3) world to camera
    up_camera: np.ndarray  # (3,) the true up direction in camera coordinates
    camera_height_m: float  # above the floor
    floor_y: float  # the floor's height in the mocap's world


def film_tilted(
    points: np.ndarray, tilt_deg: float, roll_deg: float, distance_m: float, azimuth_deg: float, ankle_height_m: float
) -> TiltedView:
    """A static camera `distance_m` from the clip's mean pelvis (horizontally), looking down at it by `tilt_deg`
    and rolled by `roll_deg` about its optical axis."""
    target = points[:, BODY_INDEX["pelvis"]].mean(0)
    azimuth = np.radians(azimuth_deg)
    horizontal = np.array([np.cos(azimuth), 0.0, np.sin(azimuth)]) * distance_m
    eye = target + horizontal + WORLD_UP * distance_m * np.tan(np.radians(tilt_deg))
    aim = look_at(torch.tensor(eye[None]), torch.tensor(target[None]), torch.tensor(WORLD_UP))[0].numpy()
    roll = np.radians(roll_deg)
    about_axis = np.array([[np.cos(roll), -np.sin(roll), 0.0], [np.sin(roll), np.cos(roll), 0.0], [0.0, 0.0, 1.0]])
    rotation = about_axis @ aim
    camera = (points - eye) @ rotation.T
    ankles = points[:, [BODY_INDEX["l_ankle"], BODY_INDEX["r_ankle"]], 1].min(1)
    floor = float(np.median(ankles)) - ankle_height_m
    return TiltedView(camera, rotation, rotation @ WORLD_UP, float(eye[1]) - floor, floor)


def true_world(view: TiltedView) -> np.ndarray:
    """The filmed joints in the world frame that export.world aims for: the mocap's axes, the floor at 0."""
    world = view.camera_joints @ view.rotation
    world[..., 1] += view.camera_height_m
    return world


def gravity_error_deg(frame: WorldFrame, view: TiltedView) -> float:
    return float(np.degrees(np.arccos(np.clip(frame.up_camera @ view.up_camera, -1.0, 1.0))))
