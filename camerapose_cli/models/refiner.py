"""The refinement network: a temporal convolution over one track's 2D keypoints and confidences.

Input (B, T, 17, 3): x, y normalized per track (geometry.normalize_track) and the detector's confidence,
plus a (B, T) mask of the frames that have a detection (gaps in a track are zeros with mask 0). Output:
refined x, y (a residual on the detection, or for unconfident joints on their neighbours' confidence-weighted
average) and a refined confidence per joint. Fully convolutional, so it runs
on tracks of any length; padding replicates the edge frames, so the first and last frames are handled.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from camerapose_cli.core.skeleton import NUM_COCO_JOINTS


@dataclass(frozen=True)
class RefinerConfig:
    channels: int = 64
    dilations: tuple[int, ...] = (1, 2, 4, 8)
    kernel: int = 3
    base_radius: int = 3  # frames each side averaged for the residual base of unconfident joints
    base_trust: float = 0.5  # confidence from which the detection itself is the residual base


class TemporalBlock(nn.Module):
    def __init__(self, channels: int, kernel: int, dilation: int) -> None:
        super().__init__()
        self.pad = dilation * (kernel - 1) // 2
        self.conv1 = nn.Conv1d(channels, channels, kernel, dilation=dilation)
        self.conv2 = nn.Conv1d(channels, channels, 1)
        self.act = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = nn.functional.pad(x, (self.pad, self.pad), mode="replicate")
        return x + self.conv2(self.act(self.conv1(y)))


@dataclass
class RefinerOutput:
    keypoints: torch.Tensor  # (B, T, 17, 2) normalized, like the input
    conf_logit: torch.Tensor  # (B, T, 17)

    @property
    def conf(self) -> torch.Tensor:
        return torch.sigmoid(self.conf_logit)


class Refiner(nn.Module):
    KIND = "camerapose-refiner"

    def __init__(self, config: RefinerConfig = RefinerConfig()) -> None:
        super().__init__()
        self.config = config
        inputs = NUM_COCO_JOINTS * 3 + 1
        self.stem = nn.Conv1d(inputs, config.channels, 1)
        self.blocks = nn.Sequential(*[TemporalBlock(config.channels, config.kernel, d) for d in config.dilations])
        self.head = nn.Conv1d(config.channels, NUM_COCO_JOINTS * 3, 1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, inputs: torch.Tensor, present: torch.Tensor) -> RefinerOutput:
        b, t = inputs.shape[:2]
        inputs = inputs * present[..., None, None]
        features = torch.cat([inputs.reshape(b, t, -1), present[..., None].float()], -1).transpose(1, 2)
        out = self.head(self.blocks(self.stem(features))).transpose(1, 2).reshape(b, t, NUM_COCO_JOINTS, 3)
        return RefinerOutput(self.residual_base(inputs) + out[..., :2], out[..., 2] + 2.0)

    def residual_base(self, inputs: torch.Tensor) -> torch.Tensor:
        """Where the residual starts: the detection itself if confident, else the confidence-weighted average
        of the joint over neighbouring frames, so a low-confidence outlier does not have to be undone from scratch."""
        xy, conf = inputs[..., :2], inputs[..., 2]
        b, t, j = conf.shape
        kernel = torch.ones(1, 1, 2 * self.config.base_radius + 1, dtype=inputs.dtype, device=inputs.device)

        def smooth(x: torch.Tensor) -> torch.Tensor:  # (B, T, J) summed over the temporal neighbourhood
            flat = x.permute(0, 2, 1).reshape(b * j, 1, t)
            return nn.functional.conv1d(flat, kernel, padding=self.config.base_radius).reshape(b, j, t).permute(0, 2, 1)

        weight = conf**2
        average = (
            torch.stack([smooth(xy[..., k] * weight) for k in range(2)], -1) / smooth(weight).clamp(min=1e-6)[..., None]
        )
        gate = (conf / self.config.base_trust).clamp(max=1.0)[..., None]
        return gate * xy + (1 - gate) * average

    def checkpoint(self, extra: dict | None = None) -> dict:
        return {"kind": self.KIND, "config": asdict(self.config), "state_dict": self.state_dict(), **(extra or {})}

    @classmethod
    def from_checkpoint(cls, checkpoint: dict) -> Refiner:
        config = dict(checkpoint["config"])
        config["dilations"] = tuple(config["dilations"])
        model = cls(RefinerConfig(**config))
        model.load_state_dict({k: v.float() for k, v in checkpoint["state_dict"].items()})
        return model.eval()
