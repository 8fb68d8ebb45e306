"""The `train` command's stage: load mocap, split it, train with progress, write the checkpoint and report."""

from __future__ import annotations

import json
import shutil
import sys
import tomllib
from pathlib import Path
from typing import Any

from camerapose_cli.atomic import atomic_output
from camerapose_cli.mocap import load_mocap
from camerapose_cli.presets import Preset
from camerapose_cli.splits import split_clips
from camerapose_cli.train import export_half, train_lifter


def _progress(total: int, quiet: bool, label: str):
    """(callback, close) for a rich bar on a terminal, a line every 1000 steps otherwise."""
    if quiet:
        return (lambda step, logs: None), (lambda: None)
    if sys.stderr.isatty():
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        progress = Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[loss]}"),
                            TimeRemainingColumn(), transient=False)  # fmt: skip
        task = progress.add_task(label, total=total, loss="")
        progress.start()

        def update(step: int, logs: dict[str, float]) -> None:
            progress.update(task, completed=step, loss=f"loss {logs['total']:.4f}")

        return update, progress.stop

    def plain(step: int, logs: dict[str, float]) -> None:
        if step % 1000 == 0 or step == total:
            print(f"{label} step {step}/{total} loss {logs['total']:.4f}", file=sys.stderr, flush=True)

    return plain, (lambda: None)


def plot_report(report_path: Path, png_path: Path) -> None:
    """Loss curves and validation metrics of a training report as a PNG (matplotlib, no display needed)."""
    import matplotlib

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
    left.legend(fontsize=7)
    validation = report.get("validation", [])
    for key in ("mpjpe_mm", "pa_mpjpe_mm", "n_mpjpe_mm"):
        right.plot([r["step"] for r in validation], [r[key] for r in validation], marker="o", label=key)
    right.set_xlabel("step")
    right.set_ylabel("mm")
    right.set_title("validation (held-out clips, exact 2D)")
    right.legend(fontsize=7)
    fig.tight_layout()
    with atomic_output(png_path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


def run_training(
    mocap_path: Path, out: Path, preset: Preset, train_cfg: dict[str, Any], *, joint_map: Path | None,
    half: bool, restart: bool, quiet: bool, model: str = "lifter", weak_2d: list[Path] | None = None,
    init: Path | None = None,
) -> dict[str, Any]:  # fmt: skip
    joints = None
    if joint_map is not None:
        with open(joint_map, "rb") as fh:
            joints = tomllib.load(fh).get("joints", {})
    if restart and out.exists():
        (out / "last.pt").unlink(missing_ok=True)
        (out / "refiner_last.pt").unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    if not quiet:
        print(f"train: reading motion capture from {mocap_path} (cached after the first read)", file=sys.stderr)
    mocap = load_mocap(mocap_path, joints)
    splits = split_clips(mocap.names, preset.section("mocap"))
    if model == "refiner":
        return _train_refiner(mocap, splits, out, preset, train_cfg, half=half, quiet=quiet)
    split_sizes = {k: len(v) for k, v in splits.items()}
    weak, weak_cfg, meta = None, None, {"mocap": str(mocap_path), "preset": preset.name, "splits": split_sizes}
    if weak_2d:
        from camerapose_cli.weak2d import load_weak_2d

        weak_cfg = preset.section("weak")
        weak, harvest = load_weak_2d(weak_2d, preset.section("harvest"), float(weak_cfg["fov_deg"]))
        with atomic_output(out / "harvest_report.json") as tmp:
            tmp.write_text(json.dumps(harvest, indent=1))
        if not quiet:
            print(f"train: {len(weak)} 2D-only samples from {len(weak_2d)} source(s); see {out / 'harvest_report.json'}", file=sys.stderr)
        meta["weak_2d"] = harvest
    update, close = _progress(int(train_cfg["steps"]), quiet, "train lifter")
    try:
        checkpoint = train_lifter(
            mocap, splits["train"], splits["val"], preset.section("synth"), train_cfg, out, on_step=update,
            extra_meta=meta, weak=weak, weak_cfg=weak_cfg, init=init,
        )  # fmt: skip
    finally:
        close()
    plot_report(out / "report.json", out / "report.png")
    if half:
        export_half(checkpoint, out / "lifter.fp16.pt")
        shutil.move(out / "lifter.fp16.pt", checkpoint)
    return {"checkpoint": str(checkpoint), "report": str(out / "report.json"), "plot": str(out / "report.png"),
            "splits": split_sizes}  # fmt: skip


def _train_refiner(mocap, splits, out: Path, preset: Preset, refine_cfg: dict[str, Any], *, half: bool, quiet: bool) -> dict[str, Any]:
    from camerapose_cli.noise_model import NoiseCalibration
    from camerapose_cli.resources import shipped_dir
    from camerapose_cli.train import train_refiner

    calibration = NoiseCalibration.load(shipped_dir("weights") / str(refine_cfg["calibration"]))
    update, close = _progress(int(refine_cfg["steps"]), quiet, "train refiner")
    try:
        checkpoint = train_refiner(mocap, splits["train"], refine_cfg, preset.section("synth"), preset.section("refine_noise"),
                                   calibration, out, on_step=update)  # fmt: skip
    finally:
        close()
    if half:
        export_half(checkpoint, out / "refiner.fp16.pt")
        shutil.move(out / "refiner.fp16.pt", checkpoint)
    return {"checkpoint": str(checkpoint), "report": str(out / "refiner_report.json")}
