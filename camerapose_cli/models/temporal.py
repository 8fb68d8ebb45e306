"""The temporal lifter: a single-frame lifter (frozen, carried inside) and VideoPose3D-style dilated temporal
convolutions over one track that correct its output frame by frame.

Input (B, T, 17, 3): each frame's COCO keypoints normalized as the single-frame lifter's are (its own virtual
camera and 2D box, geometry.lifter_inputs), with the confidences, plus a (B, T) mask of the frames that have a
detection (gap frames carry interpolated keypoints with confidence 0). The single-frame lifter's pose and camera
for every frame join the 2D as inputs of the convolutions, which output a residual on them. The convolutions are
unpadded: T input frames give T - receptive_field + 1 outputs, each one the frame at the centre of its receptive
field. Callers pad a track's ends by repeating its first and last frames (stages.lift.lift_tracks), as training
does.

Per output frame: the root-relative body points and the camera (log d, t_x, t_y), exactly the single-frame
lifter's outputs (models.lifter.LifterOutput), so reprojection and weak supervision work unchanged. The
residual heads start at zero: before training, the temporal lifter is its single-frame lifter.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from camerapose_cli.core.skeleton import NUM_BODY_POINTS, NUM_COCO_JOINTS
from camerapose_cli.models.lifter import Lifter, LifterConfig, LifterOutput, in_fp32

CAMERA_PARAMS = 3  # log d, t_x, t_y
FRAME_FEATURES = NUM_COCO_JOINTS * 3 + 1 + NUM_BODY_POINTS * 3 + CAMERA_PARAMS  # 2D, detected, base pose, camera


@dataclass(frozen=True)
class TemporalLifterConfig:
    channels: int = 256
    kernel: int = 3
    dilations: tuple[int, ...] = (3, 9)  # after the first convolution (dilation 1): receptive field 27
    dropout: float = 0.1
    fps: tuple[float, float] = (15.0, 60.0)  # the frame rates it was trained on (lift resamples faster tracks)

    @property
    def receptive_field(self) -> int:
        return 1 + (self.kernel - 1) * (1 + sum(self.dilations))


class TemporalBlock(nn.Module):
    """A dilated convolution and a 1x1 one, residual; unpadded, so the residual is cropped to the output."""

    def __init__(self, channels: int, kernel: int, dilation: int, dropout: float) -> None:
        super().__init__()
        self.crop = dilation * (kernel - 1) // 2
        self.body = nn.Sequential(
            nn.Conv1d(channels, channels, kernel, dilation=dilation, bias=False),
            nn.BatchNorm1d(channels),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Conv1d(channels, channels, 1, bias=False),
            nn.BatchNorm1d(channels),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[..., self.crop : x.shape[-1] - self.crop] + self.body(x)


class TemporalLifter(nn.Module):
    KIND = "camerapose-temporal-lifter"

    def __init__(self, base: Lifter, config: TemporalLifterConfig = TemporalLifterConfig()) -> None:
        super().__init__()
        self.config = config
        self.base = base.eval().requires_grad_(False)
        c = config.channels
        self.stem = nn.Sequential(
            nn.Conv1d(FRAME_FEATURES, c, config.kernel, bias=False),
            nn.BatchNorm1d(c),
            nn.ReLU(inplace=True),
            nn.Dropout(config.dropout),
        )
        self.blocks = nn.Sequential(*[TemporalBlock(c, config.kernel, d, config.dropout) for d in config.dilations])
        self.pose_head = nn.Conv1d(c, NUM_BODY_POINTS * 3, 1)
        self.camera_head = nn.Conv1d(c, CAMERA_PARAMS, 1)
        for head in (self.pose_head, self.camera_head):
            nn.init.zeros_(head.weight)
            nn.init.zeros_(head.bias)

    @property
    def receptive_field(self) -> int:
        return self.config.receptive_field

    def use_base(self, base: Lifter) -> TemporalLifter:
        """Correct another single-frame lifter (one fine-tuned from this one's base, with --weak-2d), frozen."""
        self.base = base.eval().requires_grad_(False)
        return self

    def train(self, mode: bool = True) -> TemporalLifter:
        super().train(mode)
        self.base.eval()  # frozen: its BatchNorm statistics and dropout stay as trained
        return self

    def forward(self, inputs: torch.Tensor, present: torch.Tensor) -> LifterOutput:
        """inputs (B, T, 17, 3), present (B, T) → the outputs of the B * (T - receptive_field + 1) centre frames,
        flattened window by window (LifterOutput, as the single-frame lifter's)."""
        b, t = inputs.shape[:2]
        with torch.no_grad():
            base = self.base(inputs.reshape(b * t, *inputs.shape[2:]))
        base_camera = torch.cat([base.log_depth_ratio[:, None], base.root_xy], -1)
        frames = [inputs.reshape(b * t, -1), present.reshape(-1, 1).to(inputs.dtype), base.body.flatten(1), base_camera]
        x = torch.cat(frames, -1).reshape(b, t, -1).transpose(1, 2)
        features = self.blocks(in_fp32(self.stem, x))
        half = self.receptive_field // 2
        centre = slice(half, t - half)
        base_body = base.body.reshape(b, t, NUM_BODY_POINTS, 3)[:, centre].reshape(-1, NUM_BODY_POINTS, 3)
        body = base_body + in_fp32(self.pose_head, features).transpose(1, 2).reshape(-1, NUM_BODY_POINTS, 3)
        body = body - body[:, :1]  # the root (pelvis) is the origin by construction
        camera = base_camera.reshape(b, t, CAMERA_PARAMS)[:, centre].reshape(-1, CAMERA_PARAMS)
        camera = camera + in_fp32(self.camera_head, features).transpose(1, 2).reshape(-1, CAMERA_PARAMS)
        return LifterOutput(body, camera[:, 0], camera[:, 1:])

    def checkpoint(self, extra: dict | None = None) -> dict:
        config = {**asdict(self.config), "base": asdict(self.base.config)}
        return {"kind": self.KIND, "config": config, "state_dict": self.state_dict(), **(extra or {})}

    @classmethod
    def from_checkpoint(cls, checkpoint: dict) -> TemporalLifter:
        config = dict(checkpoint["config"])
        base = Lifter(LifterConfig(**config.pop("base")))
        config["dilations"] = tuple(config["dilations"])
        config["fps"] = tuple(config["fps"])
        model = cls(base, TemporalLifterConfig(**config))
        state = {k: v.float() if v.is_floating_point() else v for k, v in checkpoint["state_dict"].items()}
        model.load_state_dict(state)
        return model.eval()
