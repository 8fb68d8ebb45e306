"""Checkpoints load safely: no pickled code runs, and the wrong kind of file is a clear usage error."""

from __future__ import annotations

import pathlib

import pytest
import torch
from conftest import run_cli

from camerapose_cli.errors import CheckpointError
from camerapose_cli.models.checkpoints import default_weights, load_lifter, load_refiner, load_temporal, read_checkpoint


class Booby:
    """Unpickling this calls Path.touch on a marker: it stands for any code a downloaded file could run."""

    def __init__(self, marker: pathlib.Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return pathlib.Path.touch, (self.marker,)


def test_a_checkpoint_that_holds_code_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "code-ran"
    evil = tmp_path / "evil.pt"
    torch.save({"kind": "camerapose-lifter", "payload": Booby(marker)}, evil)
    with pytest.raises(CheckpointError, match="not a camerapose checkpoint"):
        load_lifter(evil)
    assert not marker.exists()
    result = run_cli("eval", "--weights", str(evil), "--mocap", str(evil))
    assert result.returncode == 2 and not marker.exists()
    assert result.stderr.strip().startswith("error: ") and len(result.stderr.strip().splitlines()) == 1


def test_the_wrong_kind_of_checkpoint_is_named(tmp_path):
    with pytest.raises(CheckpointError, match="not a camerapose lifter checkpoint"):
        load_lifter(default_weights("refiner"))
    with pytest.raises(CheckpointError, match="not a camerapose refiner checkpoint"):
        load_refiner(default_weights("lifter"))
    text = tmp_path / "notes.pt"
    text.write_text("hello")
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        read_checkpoint(text)


def test_shipped_weights_are_small_and_load():
    for kind, name in (("lifter", "lifter"), ("refiner", "refiner"), ("temporal", "temporal-lifter")):
        weights = default_weights(kind)
        assert weights.is_file() and weights.stat().st_size < 8_000_000
        assert read_checkpoint(weights)["kind"] == f"camerapose-{name}"
    temporal = load_temporal(default_weights("temporal"))
    out = temporal(torch.zeros(1, temporal.receptive_field + 1, 17, 3), torch.ones(1, temporal.receptive_field + 1))
    assert out.pose.shape == (2, 17, 3)
    assert load_lifter(default_weights("lifter"))(torch.zeros(2, 17, 3)).pose.shape == (2, 17, 3)
    refined = load_refiner(default_weights("refiner"))(torch.zeros(1, 8, 17, 3), torch.ones(1, 8, dtype=torch.bool))
    assert refined.keypoints.shape == (1, 8, 17, 2)
