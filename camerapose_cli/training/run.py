"""The `train` command: read mocap, split it, choose the schedule (from scratch or fine-tuning), train with
progress, and write the checkpoint, the report and its plot."""

from __future__ import annotations

import json
import tomllib
from dataclasses import replace
from pathlib import Path
from typing import Any

from camerapose_cli.config import LifterNoiseSection, ModelKind, Preset, TrainSection
from camerapose_cli.core.device import resolve_device
from camerapose_cli.core.skeleton import BVH_JOINT_NAMES
from camerapose_cli.errors import UsageError
from camerapose_cli.io.atomic import atomic_output
from camerapose_cli.io.mocap import MocapSet, load_mocap
from camerapose_cli.models.checkpoints import default_weights, load_model, read_checkpoint, save_checkpoint, to_half
from camerapose_cli.progress import StepReporter, info
from camerapose_cli.training.loop import finetune_config, train_lifter, train_refiner, train_temporal
from camerapose_cli.training.noise import DetectorFrameNoise, load_calibration
from camerapose_cli.training.splits import split_clips
from camerapose_cli.training.weak import load_weak_2d


def plot_report(report_path: Path, png_path: Path) -> None:
    """Loss curves and validation metrics of a training report as a PNG (matplotlib, no display needed)."""
    import matplotlib  # lazy: only training plots, and matplotlib costs a second of start-up

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    report = json.loads(report_path.read_text())
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    history = report.get("history", [])
    for key in sorted({k for row in history for k in row} - {"step"}):
        left.plot([r["step"] for r in history if key in r], [r[key] for r in history if key in r], label=key)
    left.set_yscale("log")
    left.set_xlabel("step")
    left.set_title("training losses")
    if history:  # a run shorter than one logging interval has no curve to label
        left.legend(fontsize=7)
    validation = report.get("validation", [])
    for key in ("mpjpe_mm", "pa_mpjpe_mm", "n_mpjpe_mm"):
        right.plot([r["step"] for r in validation], [r[key] for r in validation], marker="o", label=key)
    right.set_xlabel("step")
    right.set_ylabel("mm")
    right.set_title("validation (held-out clips)")
    right.legend(fontsize=7)
    fig.tight_layout()
    with atomic_output(png_path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


def read_joint_map(path: Path) -> dict[str, str | list[str]]:
    """The [joints] table of a joint-map TOML file: body point = BVH joint name(s)."""
    try:
        with open(path, "rb") as fh:
            joints = tomllib.load(fh).get("joints", {})
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(f"{path}: not a readable joint-map TOML file ({exc})") from None
    if not isinstance(joints, dict) or not all(isinstance(v, (str, list)) for v in joints.values()):
        raise UsageError(f"{path}: [joints] must map body points to a BVH joint name or a list of names")
    unknown = sorted(set(joints) - set(BVH_JOINT_NAMES))
    if unknown:
        raise UsageError(f"{path}: unknown body point {unknown[0]!r} in [joints]; known: {', '.join(BVH_JOINT_NAMES)}")
    return joints


def lifter_training_noise(preset: Preset) -> LifterNoiseSection | DetectorFrameNoise:
    """How the single-frame lifter's training 2D is corrupted: [lifter_noise]'s Gaussian model, or single frames of
    the detector model that the refiner and the temporal lifter train on ([refine_noise] and its calibration)."""
    section = preset.lifter_noise
    if section.model == "gaussian":
        return section
    return DetectorFrameNoise.of(preset.refine_noise, section.detector_strength)


def lifter_schedule(preset: Preset, steps: int | None, seed: int | None, init: Path | None) -> TrainSection:
    """From scratch: the [train] table. Fine-tuning (`init`): [weak] finetune_lr over finetune_steps.
    `steps` and `seed`, when given, override either."""
    cfg = preset.train.with_values(steps=steps, seed=seed)
    return finetune_config(cfg, preset.weak, steps) if init is not None else cfg


def run_training(
    mocap_path: Path,
    out: Path,
    preset: Preset,
    *,
    model: ModelKind = "lifter",
    steps: int | None = None,
    seed: int | None = None,
    joint_map: Path | None = None,
    weak_2d: list[Path] | None = None,
    init: Path | None = None,
    from_scratch: bool = False,
    half: bool = False,
    restart: bool = False,
    device: str | None = None,
    quiet: bool = False,
) -> dict[str, Any]:
    """Train a lifter (optionally with 2D-only data), a temporal lifter or a refiner. With --weak-2d the lifter
    starts from the shipped one unless `init` or `from_scratch` says otherwise. `device` overrides the preset's."""
    if device is not None:
        preset = replace(
            preset,
            train=preset.train.with_values(device=device),
            train_refiner=preset.train_refiner.with_values(device=device),
            train_temporal=preset.train_temporal.with_values(device=device),
        )
    schedules = {"lifter": preset.train, "refiner": preset.train_refiner, "temporal": preset.train_temporal}
    resolve_device(schedules[model].device)  # a missing GPU is a usage error now, not after the mocap is read
    if weak_2d and model != "lifter":
        raise UsageError(f"--weak-2d trains the single-frame lifter; drop --model {model}")
    if from_scratch and init is not None:
        raise UsageError("--from-scratch and --init exclude each other")
    if weak_2d and init is None and not from_scratch:
        init = default_weights("lifter")
    if init is not None:
        load_model(init, model)  # a wrong or bad file is a usage error now, not after the mocap is read
    joints = read_joint_map(joint_map) if joint_map is not None else None
    last = out / {"lifter": "last.pt", "refiner": "refiner_last.pt", "temporal": "temporal_last.pt"}[model]
    if restart:
        last.unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    info(f"train: reading motion capture from {mocap_path} (cached after the first read)", quiet)
    mocap = load_mocap(mocap_path, joints, unit=preset.mocap.unit)
    splits = split_clips(mocap.names, preset.mocap)
    split_sizes = {k: len(v) for k, v in splits.items()}
    meta: dict[str, Any] = {"mocap": str(mocap_path), "preset": preset.name, "splits": split_sizes}
    if model == "refiner":
        checkpoint, report = _train_refiner(mocap, splits["train"], out, preset, steps, seed, init, quiet)
    elif model == "temporal":
        checkpoint, report = _train_temporal(mocap, splits, out, preset, steps, seed, init, meta, quiet)
        plot_report(report, out / "temporal_report.png")
    else:
        weak = None
        if weak_2d:
            weak, harvest = load_weak_2d(weak_2d, preset.harvest, preset.weak.fov_deg)
            with atomic_output(out / "harvest_report.json") as tmp:
                tmp.write_text(json.dumps(harvest, indent=1))
            info(
                f"train: {len(weak)} 2D-only samples from {len(weak_2d)} source(s); see {out / 'harvest_report.json'}",
                quiet,
            )
            meta["weak_2d"] = harvest
        cfg = lifter_schedule(preset, steps, seed, init)
        with StepReporter(cfg.steps, "train lifter", quiet) as progress:
            checkpoint = train_lifter(
                mocap,
                splits["train"],
                splits["val"],
                preset.synth,
                lifter_training_noise(preset),
                cfg,
                out,
                on_step=progress.update,
                extra_meta=meta,
                weak=weak,
                weak_cfg=preset.weak,
                init=init,
                poses=preset.pose_augment,
            )
        report = out / "report.json"
        plot_report(report, out / "report.png")
    if half:
        save_checkpoint(to_half(read_checkpoint(checkpoint)), checkpoint)
    result = {"checkpoint": str(checkpoint), "report": str(report), "splits": split_sizes}
    if model != "refiner":
        result["plot"] = str(out / ("report.png" if model == "lifter" else "temporal_report.png"))
    return result


def _train_refiner(
    mocap: MocapSet,
    clips: list[str],
    out: Path,
    preset: Preset,
    steps: int | None,
    seed: int | None,
    init: Path | None,
    quiet: bool,
) -> tuple[Path, Path]:
    cfg = preset.train_refiner.with_values(steps=steps, seed=seed)
    calibration = load_calibration(preset.refine_noise)
    with StepReporter(cfg.steps, "train refiner", quiet) as progress:
        checkpoint = train_refiner(
            mocap,
            clips,
            cfg,
            preset.refine.window,
            preset.synth,
            preset.refine_noise,
            calibration,
            out,
            on_step=progress.update,
            init=init,
        )
    return checkpoint, out / "refiner_report.json"


def _train_temporal(
    mocap: MocapSet,
    splits: dict[str, list[str]],
    out: Path,
    preset: Preset,
    steps: int | None,
    seed: int | None,
    init: Path | None,
    meta: dict[str, Any],
    quiet: bool,
) -> tuple[Path, Path]:
    cfg = preset.train_temporal.with_values(steps=steps, seed=seed)
    calibration = load_calibration(preset.refine_noise)
    with StepReporter(cfg.steps, "train temporal lifter", quiet) as progress:
        checkpoint = train_temporal(
            mocap,
            splits["train"],
            splits["val"],
            preset.synth,
            preset.pose_augment,
            preset.refine_noise,
            calibration,
            cfg,
            out,
            on_step=progress.update,
            extra_meta=meta,
            init=init,
        )
    return checkpoint, out / "temporal_report.json"
