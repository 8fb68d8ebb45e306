"""Every stage and training on a chosen device: CUDA asked for without a GPU fails at once, with one line."""

from __future__ import annotations

import pytest
import torch
from conftest import ARCHIVE, require_shared, run_cli

from camerapose_cli.training.data import SyntheticBatch, TrackBatch, to_device

no_gpu = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message of a machine without CUDA")


@no_gpu
@pytest.mark.parametrize("command", ["lift", "refine"])
def test_stages_refuse_cuda_without_a_gpu_before_any_input(command, extract_run, tmp_path):
    run, _ = extract_run
    out = tmp_path / "out"
    result = run_cli(command, str(run), "--out", str(out), "--device", "cuda")
    assert result.returncode == 2
    assert "--device cuda: CUDA is not available on this machine" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not out.exists() or not any(out.rglob("*.parquet"))


@no_gpu
def test_training_refuses_cuda_without_a_gpu_before_reading_the_mocap(tmp_path):
    require_shared(ARCHIVE)
    result = run_cli("train", "--mocap", str(ARCHIVE), "--out", str(tmp_path / "t"), "--device", "cuda:0")
    assert result.returncode == 2 and "CUDA is not available" in result.stderr
    assert "reading motion capture" not in result.stderr


def test_a_device_that_is_not_one_is_a_parse_error(tmp_path):
    result = run_cli("lift", str(tmp_path), "--device", "gpu")
    assert result.returncode == 2 and "is not a device" in result.stderr


def test_batches_move_to_a_device_whole_nested_ones_included():
    frames = SyntheticBatch(*(torch.zeros(2, 3, dtype=torch.float64) for _ in range(7)))
    batch = TrackBatch(torch.ones(1, 4, 17, 3), torch.ones(1, 4, dtype=torch.bool), frames, 2)
    moved = to_device(batch, torch.device("meta"))
    assert moved.inputs.device.type == "meta" and moved.frames.body.device.type == "meta"
    assert moved.outputs == 2 and batch.inputs.device.type == "cpu"  # the original is untouched


CC_SET = ARCHIVE.parent / "cmu_cc_validation.tar.xz"
gpu = pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs a CUDA GPU (run it where the device tool lends one)"
)


def evaluate_on(device: str | None) -> dict:
    import camerapose_cli

    return camerapose_cli.evaluate(mocap=require_shared(CC_SET), split="all", stride=40, device=device)


@no_gpu
def test_eval_refuses_cuda_without_a_gpu(tmp_path):
    result = run_cli("eval", "--mocap", str(require_shared(CC_SET)), "--split", "all", "--device", "cuda")
    assert result.returncode == 2 and "CUDA is not available" in result.stderr


@no_gpu
def test_eval_on_the_cpu_is_the_default_without_a_gpu():
    chosen, default = evaluate_on("cpu"), evaluate_on(None)
    assert chosen["poses"] == default["poses"] > 0
    assert chosen["mpjpe_mm"] == pytest.approx(default["mpjpe_mm"], abs=1e-3)


@gpu
def test_eval_on_cuda_matches_the_cpu():
    cpu, cuda = evaluate_on("cpu"), evaluate_on("cuda")
    assert cuda["poses"] == cpu["poses"]  # the same views: drawn on the CPU either way
    for key in ("mpjpe_mm", "pa_mpjpe_mm", "limb_mpjpe_mm"):
        assert cuda[key] == pytest.approx(cpu[key], abs=0.05)
