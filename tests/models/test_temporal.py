"""The temporal lifter: its receptive field, output frames and checkpoints."""

from __future__ import annotations

import pytest
import torch

from camerapose_cli.errors import CheckpointError
from camerapose_cli.models.checkpoints import default_weights, load_temporal, save_checkpoint
from camerapose_cli.models.lifter import Lifter, LifterConfig
from camerapose_cli.models.temporal import TemporalLifter, TemporalLifterConfig


def temporal_lifter(**config) -> TemporalLifter:
    torch.manual_seed(0)
    model = TemporalLifter(Lifter(LifterConfig(hidden=32, blocks=1)), TemporalLifterConfig(channels=16, **config))
    for head in (model.pose_head, model.camera_head):  # trained heads are not zero
        torch.nn.init.normal_(head.weight, std=0.1)
    return model.eval()


@pytest.mark.parametrize(("dilations", "field"), [((3, 9), 27), ((3, 9, 27), 81), ((2,), 7)])
def test_each_window_gives_its_centre_frames(dilations, field):
    model = temporal_lifter(dilations=dilations)
    assert model.receptive_field == field
    out = model(torch.randn(2, field + 4, 17, 3), torch.ones(2, field + 4, dtype=torch.bool))
    assert out.body.shape == (2 * 5, 21, 3) and out.log_depth_ratio.shape == (10,) and out.root_xy.shape == (10, 2)
    assert out.body[:, 0].abs().max() == 0  # pelvis-relative


def test_an_output_frame_sees_only_its_receptive_field():
    model = temporal_lifter()
    inputs, present = torch.randn(1, 40, 17, 3), torch.ones(1, 40, dtype=torch.bool)
    before = model(inputs, present).body
    changed = inputs.clone()
    changed[0, 39] += 1.0  # the last input frame: only the last output frame (centre 26) can see it
    after = model(changed, present).body
    torch.testing.assert_close(after[:-1], before[:-1])
    assert not torch.allclose(after[-1], before[-1])


def test_an_untrained_temporal_lifter_is_its_single_frame_lifter():
    base = Lifter(LifterConfig(hidden=32, blocks=1)).eval()
    model = TemporalLifter(base, TemporalLifterConfig(channels=16)).train()
    assert not model.base.training and not any(p.requires_grad for p in model.base.parameters())
    model.eval()
    inputs = torch.randn(1, 30, 17, 3)
    out = model(inputs, torch.ones(1, 30, dtype=torch.bool))
    alone = base(inputs[0, 13:17])
    torch.testing.assert_close(out.body, alone.body)
    torch.testing.assert_close(out.log_depth_ratio, alone.log_depth_ratio)


def test_checkpoints_round_trip_and_kinds_are_checked(tmp_path):
    model = temporal_lifter(dilations=(3,), fps=(20.0, 50.0))
    save_checkpoint(model.checkpoint(), tmp_path / "t.pt")
    loaded = load_temporal(tmp_path / "t.pt")
    assert loaded.config == model.config and loaded.base.config == model.base.config
    x, present = torch.randn(1, 12, 17, 3), torch.ones(1, 12, dtype=torch.bool)
    torch.testing.assert_close(loaded(x, present).body, model(x, present).body)
    with pytest.raises(CheckpointError, match="not a camerapose temporal checkpoint"):
        load_temporal(default_weights("lifter"))
