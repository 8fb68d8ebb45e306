"""Training: a tiny run, exact resume, weak supervision (mixed batches, `train --weak-2d` end to end)."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from conftest import ARCHIVE, SHARED_DATA, require_shared, run_cli

from camerapose_cli.config import load_preset
from camerapose_cli.errors import TrainingDiverged
from camerapose_cli.models.checkpoints import default_weights, load_lifter, read_checkpoint
from camerapose_cli.models.lifter import Lifter, LifterConfig
from camerapose_cli.models.refiner import Refiner, RefinerConfig
from camerapose_cli.training.loop import MAX_SKIPPED_IN_A_ROW, run_loop, train_lifter
from camerapose_cli.training.run import lifter_training_noise
from camerapose_cli.training.splits import split_clips

pytestmark = pytest.mark.slow


def tiny_config(steps: int) -> dict:
    return load_preset("default").train.with_values(
        steps=steps, batch_size=256, hidden=128, blocks=1, val_every=20, val_samples=512, lr_final=1e-3
    )


def test_a_tiny_training_run_lowers_the_loss(bandai, tmp_path):
    splits = split_clips(bandai.names, load_preset("default").mocap)
    losses = []
    train_lifter(
        bandai,
        splits["train"][:200],
        splits["val"][:20],
        load_preset("default").synth,
        lifter_training_noise(load_preset("default")),  # the shipped recipe's: single frames of the detector model
        tiny_config(100),
        tmp_path,
        on_step=lambda step, logs: losses.append(logs["pose"]),
    )
    assert np.mean(losses[-10:]) < 0.7 * np.mean(losses[:10])
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["validation"][-1]["mpjpe_mm"] < report["validation"][0]["mpjpe_mm"]
    assert (tmp_path / "lifter.pt").is_file()


def test_training_resumes_exactly(bandai, tmp_path):
    splits = split_clips(bandai.names, load_preset("default").mocap)
    synth = load_preset("default").synth
    args = (bandai, splits["train"][:50], splits["val"][:5], synth, lifter_training_noise(load_preset("default")))
    train_lifter(*args, tiny_config(40), tmp_path / "straight")
    train_lifter(*args, tiny_config(20), tmp_path / "resumed")  # "interrupted" after 20 steps
    (tmp_path / "resumed" / "lifter.pt").unlink()
    train_lifter(*args, tiny_config(40), tmp_path / "resumed")  # same command, continues from last.pt
    a = read_checkpoint(tmp_path / "straight" / "lifter.pt")["state_dict"]
    b = read_checkpoint(tmp_path / "resumed" / "lifter.pt")["state_dict"]
    for key in a:
        torch.testing.assert_close(a[key], b[key], atol=1e-5, rtol=1e-4)


def test_mixed_training_lowers_the_2d_only_loss_and_keeps_the_paired_one(bandai, tmp_path):
    """Fine-tune a small paired model with 2D-only samples from unseen motions: the 2D-only loss must fall,
    the paired loss must not rise beyond a tolerance."""
    from camerapose_cli.training.data import film_bodies, make_batch
    from camerapose_cli.training.loop import lifter_losses, weak_inputs, weak_losses
    from camerapose_cli.training.splits import clip_content
    from camerapose_cli.training.weak import WeakSamples

    preset = load_preset("default")
    splits = split_clips(bandai.names, preset.mocap)
    synth, noise, weak_cfg = preset.synth, preset.lifter_noise, preset.weak
    base = train_lifter(
        bandai, splits["train"][:300], splits["val"][:10], synth, noise, tiny_config(150), tmp_path / "base"
    )
    target = [n for n in bandai.names if clip_content(n) in ("dance-short", "punch", "kick", "slash")]
    bodies = torch.from_numpy(bandai.points[bandai.frames_of(target)][::3])
    _, pixels, focal, principal, _ = film_bodies(bodies, synth, torch.Generator().manual_seed(5))
    n = len(pixels)
    weak = WeakSamples(
        torch.cat([pixels, torch.ones(n, 17, 1)], -1).numpy(), focal.numpy(), principal.numpy(), np.zeros(n, int), ["t"]
    )
    paired = make_batch(
        torch.from_numpy(bandai.points[bandai.frames_of(splits["val"][:10])][::5]),
        synth,
        torch.Generator().manual_seed(6),
        noise,
        augment=False,
    )
    weights = load_preset("default").train
    band = (torch.full((16,), 0.05), torch.full((16,), 0.6))

    def measure(path):
        lifter = load_lifter(path)
        with torch.no_grad():
            inputs, centre, scale = weak_inputs(torch.from_numpy(weak.keypoints), focal, principal)
            w = weak_losses(lifter(inputs), inputs, centre, scale, focal, band)
            p = lifter_losses(lifter(paired.inputs), paired, weights)
        return float(w["weak_reproj"]), float(p["pose"])

    tuned = train_lifter(
        bandai,
        splits["train"][:300],
        splits["val"][:10],
        synth,
        noise,
        tiny_config(80).with_values(lr=5e-4),
        tmp_path / "tuned",
        weak=weak,
        weak_cfg=weak_cfg,
        init=base,
    )
    weak_before, paired_before = measure(base)
    weak_after, paired_after = measure(tuned)
    assert weak_after < 0.8 * weak_before
    assert paired_after < paired_before + 0.02  # metres of MPJPE


def test_train_weak_2d_end_to_end(bandai, extract_run, tmp_path):
    """`train --weak-2d` on a run folder and COCO JSON, fine-tuning the shipped lifter; `lift --weights` uses it."""
    run, _ = extract_run
    coco = require_shared(SHARED_DATA / "coco" / "test_coco.json")
    out = tmp_path / "ft"
    result = run_cli(
        "train",
        "--weak-2d",
        str(run),
        "--weak-2d",
        str(coco),
        "--mocap",
        str(ARCHIVE),
        "--steps",
        "50",
        "--out",
        str(out),
        "--json",
        "--quiet",
    )
    assert result.returncode == 0, result.stderr
    for name in ("lifter.pt", "report.json", "report.png", "harvest_report.json"):
        assert (out / name).is_file(), name
    report = json.loads((out / "report.json").read_text())
    sources = report["meta"]["weak_2d"]["sources"]
    assert sources[str(coco)]["people"] == 12
    assert sources[str(run)]["kind"] == "pseudo-labels" and sources[str(run)]["rows_in"] > 0
    assert {"weak_reproj", "weak_bone", "weak_symmetry"} <= set(report["history"][-1])
    lifted = run_cli("lift", str(run), "--out", str(tmp_path / "lifted"), "--weights", str(out / "lifter.pt"), "--json")
    assert lifted.returncode == 0, lifted.stderr
    tables = sorted((tmp_path / "lifted" / "keypoints3d").glob("*.parquet"))
    assert tables and sum(pq.read_metadata(t).num_rows for t in tables) > 0
    # An option combination that makes no sense is a usage error, not a crash.
    wrong = run_cli(
        "train", "--weak-2d", str(coco), "--model", "refiner", "--mocap", str(ARCHIVE), "--out", str(tmp_path / "x")
    )
    assert wrong.returncode == 2 and "--weak-2d trains the single-frame lifter" in wrong.stderr


def test_paired_samples_are_normalized_as_if_alone_in_a_mixed_batch():
    """stats_from=n: BatchNorm statistics (batch and running) come from the first n samples only, so 2D-only
    samples appended to a paired batch change neither the paired outputs nor what inference will use."""
    from camerapose_cli.models.lifter import Lifter, LifterConfig

    torch.manual_seed(0)
    alone, mixed = (
        Lifter(LifterConfig(hidden=64, blocks=1, dropout=0.0)),
        Lifter(LifterConfig(hidden=64, blocks=1, dropout=0.0)),
    )
    mixed.load_state_dict(alone.state_dict())
    paired, odd = torch.randn(40, 17, 3), torch.randn(24, 17, 3) * 5 + 3  # 2D-only samples unlike the paired ones
    out_alone = alone.train()(paired)
    out_mixed = mixed.train()(torch.cat([paired, odd]), stats_from=len(paired))
    torch.testing.assert_close(out_mixed.body[:40], out_alone.body, atol=1e-5, rtol=0)
    for (name, a), b in zip(alone.state_dict().items(), mixed.state_dict().values()):
        torch.testing.assert_close(b.float(), a.float(), atol=1e-6, rtol=0, msg=name)
    plain = Lifter(LifterConfig(hidden=64, blocks=1, dropout=0.0))
    plain.load_state_dict(alone.state_dict())
    assert (
        plain.train()(torch.cat([paired, odd])).body[:40] - out_alone.body
    ).abs().max() > 1e-3  # ordinary BN would shift them


def test_train_refiner_starts_from_init_with_its_own_schedule(bandai, tmp_path):
    shipped = default_weights("refiner")
    out = tmp_path / "refiner"
    result = run_cli(
        "train",
        "--model",
        "refiner",
        "--init",
        str(shipped),
        "--mocap",
        str(ARCHIVE),
        "--steps",
        "2",
        "--out",
        str(out),
        "--json",
        "--quiet",
    )
    assert result.returncode == 0, result.stderr
    tuned = read_checkpoint(out / "refiner.pt")
    assert tuned["meta"]["init"] == str(shipped) and tuned["meta"]["steps"] == 2
    start = read_checkpoint(shipped)["state_dict"]
    fresh = Refiner(RefinerConfig()).state_dict()
    moved = sum(float((tuned["state_dict"][k].float() - start[k].float()).abs().sum()) for k in start)
    from_fresh = sum(float((fresh[k].float() - start[k].float()).abs().sum()) for k in start)
    assert moved < 0.05 * from_fresh  # two small steps from the shipped weights (measured 1.4%), not a new network
    wrong = run_cli(
        "train",
        "--model",
        "refiner",
        "--init",
        str(default_weights("lifter")),
        "--mocap",
        str(ARCHIVE),
        "--steps",
        "1",
        "--out",
        str(tmp_path / "wrong"),
    )
    assert wrong.returncode == 2 and "not a camerapose refiner checkpoint" in wrong.stderr


def tiny_loop(tmp_path, steps: int, bad_steps: set[int]):
    """run_loop on a small lifter whose loss is NaN at the given (1-based) steps."""
    model = Lifter(LifterConfig(hidden=16, blocks=1))
    cfg = load_preset("default").train.with_values(steps=steps, batch_size=8, threads=1)
    inputs = torch.rand(8, 17, 3)
    done = []

    def step_fn(rng, gen):
        done.append(1)
        loss = model(inputs).body.square().mean()
        return {"total": loss * float("nan") if len(done) in bad_steps else loss}

    return model, run_loop(model, cfg, tmp_path / "last.pt", 1.0, step_fn, save_every=steps)[0]


def test_a_step_with_a_non_finite_loss_is_skipped_not_applied(tmp_path):
    model, report = tiny_loop(tmp_path, 6, {3})
    assert report.skipped_steps == [3]
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_a_run_whose_loss_stays_non_finite_stops_with_one_line(tmp_path):
    with pytest.raises(TrainingDiverged, match=f"{MAX_SKIPPED_IN_A_ROW} steps in a row") as err:
        tiny_loop(tmp_path, MAX_SKIPPED_IN_A_ROW + 5, set(range(2, 100)))
    assert "\n" not in str(err.value)


def test_report_plot_of_a_run_shorter_than_one_logging_interval(tmp_path):
    """No loss curve yet (the first log comes after [train] val_every steps): the plot is written, silently."""
    import warnings

    from camerapose_cli.training.run import plot_report

    report = tmp_path / "report.json"
    report.write_text(json.dumps({"history": [], "validation": []}))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        plot_report(report, tmp_path / "report.png")
    assert (tmp_path / "report.png").read_bytes().startswith(b"\x89PNG")
