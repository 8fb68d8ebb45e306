"""Every stage and training on a chosen device: CUDA asked for without a GPU fails at once, with one line."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import ARCHIVE, require_shared, run_cli

from camerapose_cli.core.device import CPU, compute_in, native_bf16, resolve_precision
from camerapose_cli.models.lifter import Lifter, LifterConfig
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


@gpu
def test_extract_on_cuda_in_fp16_finds_the_same_keypoints_as_the_cpu(shared_videos, tmp_path):
    import camerapose_cli
    from camerapose_cli.io.schema import read_keypoints2d

    video = shared_videos / "courtyard_dribble_40f.mp4"
    runs = {d: tmp_path / d for d in ("cpu", "cuda")}
    for device, out in runs.items():
        summary = camerapose_cli.extract(video, out, device=device, backend="torch")
        assert summary.outcomes[0].status == "done"
    cpu, cuda = (read_keypoints2d(runs[d] / "keypoints2d" / f"{video.name}.parquet") for d in runs)
    assert abs(len(cuda) - len(cpu)) <= 0.05 * len(cpu)
    gaps = []
    for frame in np.unique(cpu.frame):
        ours = cuda.keypoints[cuda.frame == frame, :, :2]
        for person in cpu.keypoints[cpu.frame == frame, :, :2]:
            if len(ours):
                gaps.append(np.linalg.norm(ours - person, axis=-1).mean(-1).min())
    assert np.median(gaps) < 1.0  # fp16 against fp32: rounding, not other people


@gpu
def test_refine_and_lift_on_cuda_match_the_cpu(shared_videos, tmp_path):
    import camerapose_cli
    from camerapose_cli.stages.lift import read_camera_joints

    run = tmp_path / "run"
    camerapose_cli.extract(shared_videos, run, device="cpu")
    for device in ("cpu", "cuda"):
        summary = camerapose_cli.lift(run, tmp_path / device, device=device)
        assert summary.failed == 0 and summary.count("done") > 0
    for table in sorted((tmp_path / "cpu" / "keypoints3d").glob("*.parquet")):
        cpu, cuda = read_camera_joints(table), read_camera_joints(tmp_path / "cuda" / "keypoints3d" / table.name)
        assert np.nanmax(np.abs(cpu - cuda)) < 0.005  # metres: float rounding across devices


@gpu
def test_train_on_cuda_gives_the_metrics_of_the_cpu(bandai, tmp_path):
    from camerapose_cli.config import load_preset
    from camerapose_cli.training.loop import train_lifter
    from camerapose_cli.training.splits import split_clips

    preset = load_preset("default")
    splits = split_clips(bandai.names, preset.mocap)
    args = (bandai, splits["train"][:200], splits["val"][:20], preset.synth, preset.lifter_noise)
    reports = {}
    for name, device, seed in (("cpu", "cpu", 0), ("cpu seed 1", "cpu", 1), ("cuda", "cuda", 0)):
        config = preset.train.with_values(
            steps=300, batch_size=256, hidden=128, blocks=1, val_every=100, val_samples=1024, device=device, seed=seed
        )
        train_lifter(*args, config, tmp_path / name)
        reports[name] = json.loads((tmp_path / name / "report.json").read_text())["validation"][-1]
    # Dropout and float rounding differ between devices, so the runs part ways: "the same within noise" means no
    # further apart than two CPU runs with other seeds (and 3% for two seeds that land close by chance).
    for key in ("mpjpe_mm", "pa_mpjpe_mm"):
        cpu, cuda, seed_gap = (
            reports["cpu"][key],
            reports["cuda"][key],
            abs(reports["cpu seed 1"][key] - reports["cpu"][key]),
        )
        assert abs(cuda - cpu) <= max(2 * seed_gap, 0.03 * cpu), (key, reports)


def test_precision_auto_is_bf16_only_where_the_device_computes_it_natively():
    assert resolve_precision("fp32", CPU) == torch.float32 and resolve_precision("bf16", CPU) == torch.bfloat16
    assert resolve_precision("auto", CPU) == (torch.bfloat16 if native_bf16(CPU) else torch.float32)
    assert not native_bf16(torch.device("meta"))


def test_bf16_keeps_the_lifters_stems_and_heads_in_fp32():
    """Under bf16 autocast the wide layers compute in bf16, but the layer that reads keypoints and the ones that
    write metres stay fp32: the outputs are fp32 and within rounding of an fp32 forward pass."""
    torch.manual_seed(0)
    model = Lifter(LifterConfig(hidden=64)).eval()
    inputs = torch.randn(256, 17, 3)
    with torch.no_grad():
        exact = model(inputs)
        with compute_in(torch.bfloat16, CPU):
            rounded = model(inputs)
    assert rounded.body.dtype == torch.float32 and rounded.log_depth_ratio.dtype == torch.float32
    gap = (rounded.body - exact.body).norm(dim=-1)
    assert 0 < gap.mean() < 0.01 * exact.body.norm(dim=-1).mean()
