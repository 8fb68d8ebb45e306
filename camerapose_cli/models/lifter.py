"""The lifting network: a SimpleBaseline-style residual MLP with two heads.

- pose head: the root-relative 3D body points (the 17 H36M joints, then the eyes and ears that COCO
  needs for reprojection), camera frame, metres;
- camera head: (log d, t_x, t_y), the lifter's camera (see geometry.project_normalized): the root sits
  at normalized image position t and at depth Z = d * f / S.

The input is one person's COCO-17 keypoints, normalized by their 2D box, with the detector's confidences.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch
from torch import nn

from camerapose_cli.core.keypoints import DETECTOR_PLACEMENT, detector_keypoints
from camerapose_cli.core.skeleton import (
    BODY_FLIP,
    COCO17_FLIP,
    COCO_FROM_BODY,
    NUM_BODY_POINTS,
    NUM_COCO_JOINTS,
    NUM_H36M_JOINTS,
)

MIRROR_X = (-1.0, 1.0, 1.0)  # a left-right mirror: x negated (normalized 2D with confidence, or 3D)


@dataclass(frozen=True)
class LifterConfig:
    hidden: int = 512
    blocks: int = 2
    dropout: float = 0.1


class ReferenceBatchNorm1d(nn.BatchNorm1d):
    """BatchNorm that, in training, can take its batch statistics from the first `reference` samples only.

    Weak supervision runs paired and 2D-only samples through one forward pass. With ordinary BatchNorm the
    2D-only samples would shift the statistics that the paired samples are normalized with, and the running
    statistics used at inference (docs/experiments.md). Here every sample is normalized with the paired
    samples' statistics, as it will be at inference.
    Same parameters and state as nn.BatchNorm1d, so checkpoints load either way.
    """

    reference: int | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = self.reference
        if not self.training or n is None or n >= len(x):
            return super().forward(x)
        ref = x[:n]
        mean, var = ref.mean(0), ref.var(0, unbiased=False)
        with torch.no_grad():
            self.num_batches_tracked += 1
            self.running_mean.lerp_(mean, self.momentum)
            self.running_var.lerp_(ref.var(0, unbiased=True), self.momentum)
        return (x - mean) / torch.sqrt(var + self.eps) * self.weight + self.bias


class ResidualBlock(nn.Module):
    def __init__(self, width: int, dropout: float) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Linear(width, width),
            ReferenceBatchNorm1d(width),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(width, width),
            ReferenceBatchNorm1d(width),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


@dataclass
class LifterOutput:
    body: torch.Tensor  # (N, 21, 3) metres, root-relative, camera frame (skeleton.BODY_POINTS)
    log_depth_ratio: torch.Tensor  # (N,)
    root_xy: torch.Tensor  # (N, 2) normalized image position of the root

    @property
    def depth_ratio(self) -> torch.Tensor:
        return self.log_depth_ratio.exp()

    def float(self) -> LifterOutput:
        """In fp32 (after a forward pass under bf16 autocast)."""
        return LifterOutput(self.body.float(), self.log_depth_ratio.float(), self.root_xy.float())

    @property
    def pose(self) -> torch.Tensor:
        """The 17 H36M joints (N, 17, 3)."""
        return self.body[:, :NUM_H36M_JOINTS]

    @property
    def coco(self) -> torch.Tensor:
        """The skeleton's points behind the 17 COCO keypoints (N, 17, 3)."""
        return self.body[:, list(COCO_FROM_BODY)]

    @property
    def detector_points(self) -> torch.Tensor:
        """Where a COCO detector marks the 17 keypoints on this body (N, 17, 3): what reprojects onto detections."""
        return detector_keypoints(self.body, DETECTOR_PLACEMENT)


class Lifter(nn.Module):
    KIND = "camerapose-lifter"

    def __init__(self, config: LifterConfig = LifterConfig()) -> None:
        super().__init__()
        self.config = config
        width = config.hidden
        self.stem = nn.Sequential(
            nn.Linear(NUM_COCO_JOINTS * 3, width),
            ReferenceBatchNorm1d(width),
            nn.ReLU(inplace=True),
            nn.Dropout(config.dropout),
        )
        self.blocks = nn.Sequential(*[ResidualBlock(width, config.dropout) for _ in range(config.blocks)])
        self.pose_head = nn.Linear(width, NUM_BODY_POINTS * 3)
        self.camera_head = nn.Linear(width, 3)

    def forward(self, inputs: torch.Tensor, stats_from: int | None = None) -> LifterOutput:
        """inputs: (N, 17, 3) normalized x, y and confidence. In training, `stats_from` = n takes the
        BatchNorm statistics from the first n samples only (the paired ones of a mixed batch)."""
        flat = inputs.reshape(len(inputs), -1)
        if stats_from is None:
            features = self.blocks(in_fp32(self.stem, flat))
        else:
            norms = [m for m in self.modules() if isinstance(m, ReferenceBatchNorm1d)]
            for m in norms:
                m.reference = stats_from
            try:
                features = self.blocks(in_fp32(self.stem, flat))
            finally:
                for m in norms:
                    m.reference = None
        body = in_fp32(self.pose_head, features).reshape(-1, NUM_BODY_POINTS, 3)
        body = body - body[:, :1]  # the root (pelvis) is the origin by construction
        camera = in_fp32(self.camera_head, features)
        return LifterOutput(body, camera[:, 0], camera[:, 1:])

    def checkpoint(self, extra: dict | None = None) -> dict:
        return {"kind": self.KIND, "config": asdict(self.config), "state_dict": self.state_dict(), **(extra or {})}

    @classmethod
    def from_checkpoint(cls, checkpoint: dict) -> Lifter:
        model = cls(LifterConfig(**checkpoint["config"]))
        state = {k: v.float() for k, v in checkpoint["state_dict"].items()}
        model.load_state_dict(state)
        return model.eval()


def in_fp32(layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """A layer run in fp32 even under bf16 autocast (core.device.compute_in): the stems, which read keypoints, and
    the heads, which write metres. bf16's 8-bit mantissa would round either by millimetres, differently in every
    frame, and the lifted tracks would jitter (docs/experiments.md); the wide layers between stay in bf16."""
    with torch.autocast(x.device.type, enabled=False):
        return layer(x.float())


def mirror_average(predict: Callable[[torch.Tensor], LifterOutput], inputs: torch.Tensor) -> LifterOutput:
    """Test-time mirroring: the mean of the prediction for lifter inputs (..., 17, 3) and the mirror image of the
    prediction for their mirrored copy (left and right swapped, x negated). Training mirrors half the bodies
    ([synth] flip_prob), so both are poses the lifter knows; the mean cancels part of its left-right bias
    (docs/experiments.md). Works for any lifter whose output is a LifterOutput, at twice the compute."""
    sign = inputs.new_tensor(MIRROR_X)
    direct = predict(inputs)
    mirrored = predict(inputs[..., list(COCO17_FLIP), :] * sign)
    return LifterOutput(
        (direct.body + mirrored.body[:, list(BODY_FLIP)] * sign) / 2,
        (direct.log_depth_ratio + mirrored.log_depth_ratio) / 2,
        (direct.root_xy + mirrored.root_xy * sign[:2]) / 2,
    )
