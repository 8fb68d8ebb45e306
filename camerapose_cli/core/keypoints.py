"""Where a 2D detector's COCO-17 keypoints sit on a body, against the skeleton joints that the lifters output.

People annotated COCO on the body's surface: its shoulder keypoints sit above a skeleton's shoulder joints,
its hips and knees a little lower. A lifter trained on projected skeleton joints reads those differences as
a pose (a longer torso, shorter shins), so the lifters' training inputs move each keypoint by a per-body
amount along the body (docs/method.md, "Keypoints and joints"); the 3D they learn to output stays the skeleton's.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from camerapose_cli.core.skeleton import BODY_INDEX, COCO17_JOINTS, COCO_FROM_BODY

_COCO = {name: i for i, name in enumerate(COCO17_JOINTS)}
_SIDES = (("left", "l"), ("right", "r"))


@dataclass(frozen=True)
class KeypointPlacement:
    """Per-body keypoint offsets, each (N,), or (1,) for every body: 0 everywhere is the skeleton's own joints."""

    hip_along_thigh: torch.Tensor  # hip keypoint moved towards the knee, fraction of the thigh
    knee_along_shin: torch.Tensor  # knee keypoint moved towards the ankle, fraction of the shin
    shoulder_up_m: torch.Tensor  # shoulder keypoints moved along the pelvis-to-thorax axis, metres

    @classmethod
    def constant(cls, hip: float, knee: float, shoulder: float) -> KeypointPlacement:
        """One placement for every body, however many."""
        return cls(torch.tensor([hip]), torch.tensor([knee]), torch.tensor([shoulder]))


# The placement that brings the synthetic 2D body ratios of the Bandai and CC skeletons to YOLO11n-pose's on the
# shared videos (thigh/shin, torso/shin, legs/torso; docs/experiments.md). Any detector trained on COCO's
# annotations places its keypoints alike.
DETECTOR_PLACEMENT = KeypointPlacement.constant(hip=0.06, knee=0.08, shoulder=0.06)


def detector_keypoints(points: torch.Tensor, placement: KeypointPlacement | None = None) -> torch.Tensor:
    """The 3D points (..., 17, 3) behind the COCO-17 keypoints of body points (..., 21, 3), in any frame.

    With `placement` (one value per body of the leading dimensions, flattened, or one for all), hips, knees and
    shoulders move along the body; without, every keypoint is its body point (skeleton.COCO_FROM_BODY).
    """
    keypoints = points[..., list(COCO_FROM_BODY), :]
    if placement is None:
        return keypoints
    flat, body = keypoints.reshape(-1, *keypoints.shape[-2:]).clone(), points.reshape(-1, *points.shape[-2:])
    up = torch.nn.functional.normalize(body[:, BODY_INDEX["thorax"]] - body[:, BODY_INDEX["pelvis"]], dim=-1)
    hip_f, knee_f, shoulder_m = (
        offset.to(body)[:, None]
        for offset in (placement.hip_along_thigh, placement.knee_along_shin, placement.shoulder_up_m)
    )
    for coco_side, side in _SIDES:
        hip, knee, ankle = (body[:, BODY_INDEX[f"{side}_{j}"]] for j in ("hip", "knee", "ankle"))
        flat[:, _COCO[f"{coco_side}_hip"]] = hip + hip_f * (knee - hip)
        flat[:, _COCO[f"{coco_side}_knee"]] = knee + knee_f * (ankle - knee)
        flat[:, _COCO[f"{coco_side}_shoulder"]] = body[:, BODY_INDEX[f"{side}_shoulder"]] + shoulder_m * up
    return flat.reshape(keypoints.shape)
