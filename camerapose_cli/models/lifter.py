"""The lifting network: a SimpleBaseline-style residual MLP with two heads.

- pose head: the root-relative 3D body points (the 17 H36M joints, then the eyes and ears that COCO
  needs for reprojection), camera frame, metres;
- camera head: (log d, t_x, t_y), the lifter's camera (see geometry.project_normalized): the root sits
  at normalized image position t and at depth Z = d * f / S.

The input is one person's COCO-17 keypoints, normalized by their 2D box, with the detector's confidences.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from camerapose_cli.skeleton import BODY_POINTS, COCO_FROM_BODY, NUM_COCO_JOINTS, NUM_H36M_JOINTS

NUM_BODY_POINTS = len(BODY_POINTS)


@dataclass(frozen=True)
class LifterConfig:
    hidden: int = 512
    blocks: int = 2
    dropout: float = 0.1


class ResidualBlock(nn.Module):
    def __init__(self, width: int, dropout: float) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Linear(width, width), nn.BatchNorm1d(width), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Linear(width, width), nn.BatchNorm1d(width), nn.ReLU(inplace=True), nn.Dropout(dropout),
        )  # fmt: skip

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

    @property
    def pose(self) -> torch.Tensor:
        """The 17 H36M joints (N, 17, 3)."""
        return self.body[:, :NUM_H36M_JOINTS]

    @property
    def coco(self) -> torch.Tensor:
        """The 3D points behind the 17 COCO keypoints (N, 17, 3), for reprojection."""
        return self.body[:, list(COCO_FROM_BODY)]


class Lifter(nn.Module):
    def __init__(self, config: LifterConfig = LifterConfig()) -> None:
        super().__init__()
        self.config = config
        width = config.hidden
        self.stem = nn.Sequential(
            nn.Linear(NUM_COCO_JOINTS * 3, width), nn.BatchNorm1d(width), nn.ReLU(inplace=True), nn.Dropout(config.dropout)
        )  # fmt: skip
        self.blocks = nn.Sequential(*[ResidualBlock(width, config.dropout) for _ in range(config.blocks)])
        self.pose_head = nn.Linear(width, NUM_BODY_POINTS * 3)
        self.camera_head = nn.Linear(width, 3)

    def forward(self, inputs: torch.Tensor) -> LifterOutput:
        """inputs: (N, 17, 3) normalized x, y and confidence."""
        features = self.blocks(self.stem(inputs.reshape(len(inputs), -1)))
        body = self.pose_head(features).reshape(-1, NUM_BODY_POINTS, 3)
        body = body - body[:, :1]  # the root (pelvis) is the origin by construction
        camera = self.camera_head(features)
        return LifterOutput(body, camera[:, 0], camera[:, 1:])

    def checkpoint(self, extra: dict | None = None) -> dict:
        return {"kind": "camerapose-lifter", "config": asdict(self.config), "state_dict": self.state_dict(), **(extra or {})}

    @classmethod
    def from_checkpoint(cls, checkpoint: dict) -> "Lifter":
        if checkpoint.get("kind") != "camerapose-lifter":
            raise ValueError("not a camerapose lifter checkpoint")
        model = cls(LifterConfig(**checkpoint["config"]))
        state = {k: v.float() for k, v in checkpoint["state_dict"].items()}
        model.load_state_dict(state)
        return model.eval()
