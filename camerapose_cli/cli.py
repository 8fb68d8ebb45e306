"""The `camerapose` command line: parse options, call a stage, map outcomes to exit codes. No logic here.

Exit codes: 0 every input succeeded (or was already done); 1 some input failed; 2 usage error;
130 interrupted (Ctrl-C or SIGTERM).
"""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from camerapose_cli import __version__
from camerapose_cli.errors import InputError

app = typer.Typer(
    name="camerapose",
    help="Video archives to tracked 2D and 3D human-pose tables.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Boxed rich errors on a terminal; plain one-line errors in scripts and logs.
    rich_markup_mode="rich" if sys.stderr.isatty() else None,
)

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def _version(value: bool) -> None:
    if value:
        typer.echo(f"camerapose {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """CameraPose: 2D keypoints, refinement and 3D lifting for folders of video."""


def _terminate_as_interrupt(signum, frame):  # SIGTERM cleans up like Ctrl-C
    raise KeyboardInterrupt


def _usage_error(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(EXIT_USAGE)


def _run_stage(stage: str, out: Path, run, as_json: bool, quiet: bool) -> None:
    """Run a batch stage (`run(reporter)` returns Outcomes) and turn the result into output and an exit code."""
    from camerapose_cli.progress import make_reporter
    from camerapose_cli.runner import summary_dict

    signal.signal(signal.SIGTERM, _terminate_as_interrupt)
    try:
        outcomes = run(lambda total: make_reporter(total, stage, quiet))
    except (InputError, ValueError) as exc:  # a bad checkpoint, --device and the like: found before any input
        raise _usage_error(str(exc)) from None
    except KeyboardInterrupt:
        typer.echo("interrupted: partial outputs were removed; rerun to continue", err=True)
        raise typer.Exit(EXIT_INTERRUPTED) from None
    summary = summary_dict(stage, out, outcomes)
    if as_json:
        sys.stdout.write(json.dumps(summary, indent=2) + "\n")
    elif not quiet:
        typer.echo(f"{stage}: {summary['done']} done, {summary['skipped']} skipped, {summary['failed']} failed -> {out}", err=True)
    raise typer.Exit(EXIT_FAILED if summary["failed"] else EXIT_OK)


def _stage_jobs(run: Path) -> list:
    from camerapose_cli.lift import lift_jobs

    jobs = lift_jobs(run)
    if not jobs:
        raise _usage_error(f"{run}: no keypoints2d tables found (run camerapose extract first)")
    return jobs


def _preset_section(pipeline: str, section: str, **overrides):
    from camerapose_cli.presets import load_preset

    try:
        preset = load_preset(pipeline)
        return preset, preset.section(section, **overrides)
    except (FileNotFoundError, KeyError) as exc:
        raise _usage_error(str(exc).strip('"')) from None


def _existing(path: Path | None, default, option: str) -> Path:
    path = path if path is not None else default()
    if not path.is_file():
        raise _usage_error(f"{option} {path}: no such file")
    return path


PipelineOpt = Annotated[str, typer.Option("--pipeline", "-p", help="Preset name (default, cpu-fast) or TOML path.")]
OutOpt = Annotated[Optional[Path], typer.Option("--out", "-o", help="Output folder [default: runs/<input name>].")]
OverlayOpt = Annotated[bool, typer.Option("--overlay", help="Also write overlay videos with skeletons and track ids.")]
ForceOpt = Annotated[bool, typer.Option("--force", help="Redo inputs whose outputs are already complete.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print a JSON summary to stdout.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress output (errors still go to stderr).")]


def _run_extract_command(
    jobs, out: Path, pipeline: str, overlay: bool, force: bool, as_json: bool, quiet: bool, **overrides
) -> None:
    from camerapose_cli.extract import run_extract
    from camerapose_cli.resources import default_pose_model

    pose_model = overrides.pop("pose_model")
    preset, params = _preset_section(pipeline, "extract", **overrides)
    _, overlay_params = _preset_section(pipeline, "overlay")
    if pose_model is None and params["pose_model"]:
        pose_model = Path(params["pose_model"])
    pose_model = _existing(pose_model, default_pose_model, "--pose-model")
    if int(params["batch_size"]) < 1:
        raise _usage_error("--batch-size must be at least 1")
    _run_stage("extract", out, lambda reporter: run_extract(
        jobs, out, params, overlay_params, pose_model=pose_model, preset_name=preset.name,
        want_overlay=overlay, force=force, reporter=reporter(len(jobs)),
    ), as_json, quiet)  # fmt: skip


@app.command()
def extract(
    inputs: Annotated[
        Path,
        typer.Argument(exists=True, readable=False, metavar="INPUTS", help="A folder of videos/images (searched recursively) or one file."),
    ],
    out: OutOpt = None,
    pipeline: PipelineOpt = "default",
    overlay: OverlayOpt = False,
    pose_model: Annotated[
        Optional[Path], typer.Option("--pose-model", help="Any Ultralytics COCO-17 pose checkpoint.")
    ] = None,
    batch_size: Annotated[Optional[int], typer.Option("--batch-size", "-b", help="Frames per inference batch.")] = None,
    device: Annotated[Optional[str], typer.Option("--device", help="auto | cpu | cuda | cuda:N.")] = None,
    imgsz: Annotated[Optional[int], typer.Option("--imgsz", help="Detector input size (long side, px).")] = None,
    conf: Annotated[Optional[float], typer.Option("--conf", help="Minimum person-detection score.")] = None,
    tracker: Annotated[Optional[str], typer.Option("--tracker", help="bytetrack | botsort.")] = None,
    force: ForceOpt = False,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Detect, pose and track people in every video under INPUTS; write keypoints2d/*.parquet."""
    from camerapose_cli.extract import extract_jobs

    jobs = extract_jobs(inputs)
    if not jobs:
        raise _usage_error(f"{inputs}: no videos or images found (.mp4 .mov .avi .mkv .webm .jpg .jpeg .png)")
    out = out if out is not None else Path("runs") / (inputs.resolve().stem or "extract")
    _run_extract_command(
        jobs, out, pipeline, overlay, force, as_json, quiet,
        pose_model=pose_model, batch_size=batch_size, device=device, imgsz=imgsz, conf=conf, tracker=tracker,
    )  # fmt: skip


@app.command()
def demo(
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")] = Path("runs/demo"),
    pipeline: PipelineOpt = "cpu-fast",
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Run extract, with overlays, on the two sample photos that the ultralytics package ships."""
    from camerapose_cli.resources import sample_images
    from camerapose_cli.runner import Job

    jobs = [Job(p, p.name) for p in sample_images()]
    if not jobs:
        raise _usage_error("the ultralytics package ships no sample images here")
    _run_extract_command(
        jobs, out, pipeline, True, False, as_json, quiet,
        pose_model=None, batch_size=None, device=None, imgsz=None, conf=None, tracker=None,
    )  # fmt: skip


@app.command()
def train(
    mocap: Annotated[
        Path, typer.Option("--mocap", exists=True, help="BVH motion capture: a .tar.xz, a folder or one .bvh file.")
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder (resumes from its last.pt).")] = Path("runs/train"),
    pipeline: PipelineOpt = "default",
    steps: Annotated[Optional[int], typer.Option("--steps", help="Training steps.")] = None,
    seed: Annotated[Optional[int], typer.Option("--seed", help="Random seed.")] = None,
    joint_map: Annotated[
        Optional[Path], typer.Option("--joint-map", exists=True, help="TOML [joints] table: body point = BVH joint name(s).")
    ] = None,
    model: Annotated[str, typer.Option("--model", help="lifter | refiner.")] = "lifter",
    weak_2d: Annotated[
        Optional[list[Path]],
        typer.Option("--weak-2d", exists=True, help="2D-only data: a run folder of extract/refine tables, or COCO keypoint JSON. Repeatable."),
    ] = None,
    init: Annotated[Optional[Path], typer.Option("--init", exists=True, help="Start from this lifter checkpoint.")] = None,
    from_scratch: Annotated[bool, typer.Option("--from-scratch", help="With --weak-2d: do not start from the shipped lifter.")] = False,
    half: Annotated[bool, typer.Option("--half", help="Store the final weights in fp16.")] = False,
    restart: Annotated[bool, typer.Option("--restart", help="Ignore last.pt and start over.")] = False,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Train the 3D lifter (pose + camera branch), or the 2D refiner, on virtual views of motion capture."""
    from camerapose_cli.training_run import run_training

    if model not in ("lifter", "refiner"):
        raise _usage_error(f"--model {model}: choose lifter or refiner")
    preset, train_cfg = _preset_section(pipeline, "train" if model == "lifter" else "refine", steps=steps, seed=seed)
    if weak_2d and model != "lifter":
        raise _usage_error("--weak-2d trains the lifter; drop --model refiner")
    if weak_2d and init is None and not from_scratch:
        from camerapose_cli.lift import default_lifter_weights

        init = default_lifter_weights()
    if init is not None:  # fine-tuning: fewer steps at a lower learning rate, unless --steps says otherwise
        from camerapose_cli.train import finetune_config

        train_cfg = finetune_config(train_cfg, preset.section("weak"), steps)
    signal.signal(signal.SIGTERM, _terminate_as_interrupt)
    try:
        summary = run_training(mocap, out, preset, train_cfg, joint_map=joint_map, half=half, restart=restart, quiet=quiet,
                               model=model, weak_2d=list(weak_2d or []), init=init)  # fmt: skip
    except KeyboardInterrupt:
        typer.echo(f"interrupted: rerun the same command to resume from {out / 'last.pt'}", err=True)
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except InputError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(EXIT_FAILED) from None
    if as_json:
        sys.stdout.write(json.dumps(summary, indent=2) + "\n")
    elif not quiet:
        typer.echo(f"train: wrote {summary['checkpoint']}", err=True)


@app.command()
def lift(
    run: Annotated[Path, typer.Argument(exists=True, file_okay=False, metavar="RUN", help="A run folder written by extract (or a keypoints2d folder).")],
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Output folder [default: RUN].")] = None,
    weights: Annotated[Optional[Path], typer.Option("--weights", help="Lifter checkpoint [default: the shipped one].")] = None,
    pipeline: PipelineOpt = "default",
    fov: Annotated[Optional[float], typer.Option("--fov", help="Camera field of view across the longer side, degrees.")] = None,
    overlay: Annotated[bool, typer.Option("--overlay", help="Also render the video with side and top views of the 3D skeletons.")] = False,
    refine: Annotated[bool, typer.Option("--refine/--no-refine", help="Refine the 2D keypoints first.")] = True,
    refiner: Annotated[Optional[Path], typer.Option("--refiner", help="Refiner checkpoint [default: the shipped one].")] = None,
    force: ForceOpt = False,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Lift every keypoints2d table in RUN to 3D joints in metres: RUN/keypoints3d/*.parquet."""
    from camerapose_cli.lift import RefineStep, default_lifter_weights, run_lift
    from camerapose_cli.refine import default_refiner_weights, load_refiner

    preset, params = _preset_section(pipeline, "lift", fov_deg=fov)
    weights = _existing(weights, default_lifter_weights, "--weights")
    refine_step = None
    if refine:
        refiner = _existing(refiner, default_refiner_weights, "--refiner")
        try:
            refine_step = RefineStep(load_refiner(refiner), refiner, preset.section("refine"))
        except InputError as exc:
            raise _usage_error(str(exc)) from None
    jobs = _stage_jobs(run)
    out = out if out is not None else run
    overlay_params = preset.section("overlay") if overlay else None
    _run_stage("lift", out, lambda reporter: run_lift(
        jobs, out, params, weights=weights, preset_name=preset.name, force=force, reporter=reporter(len(jobs)),
        overlay_params=overlay_params, refine=refine_step,
    ), as_json, quiet)  # fmt: skip


@app.command("eval")
def evaluate(
    weights: Annotated[Optional[Path], typer.Option("--weights", help="Lifter checkpoint [default: the shipped one].")] = None,
    mocap: Annotated[Optional[Path], typer.Option("--mocap", exists=True, help="Evaluate on a held-out split of this mocap.")] = None,
    split: Annotated[str, typer.Option("--split", help="test_seen | test_unseen | val.")] = "test_seen",
    h36m: Annotated[Optional[Path], typer.Option("--h36m", exists=True, help="A data_3d_h36m.npz (VideoPose3D layout).")] = None,
    subjects: Annotated[str, typer.Option("--subjects", help="H36M subjects, comma-separated.")] = "S9,S11",
    noise: Annotated[float, typer.Option("--noise", help="2D noise sigma, fraction of the person's height.")] = 0.0,
    stride: Annotated[int, typer.Option("--stride", help="Use every N-th frame.")] = 5,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the virtual cameras.")] = 0,
    pipeline: PipelineOpt = "default",
    as_json: JsonOpt = False,
) -> None:
    """Report MPJPE, PA-MPJPE, N-MPJPE and per-joint errors (mm) of a lifter on held-out 3D."""
    from camerapose_cli.evaluate import evaluate_on_bodies, load_h36m_npz, mocap_test_bodies
    from camerapose_cli.lift import default_lifter_weights, load_lifter

    if (mocap is None) == (h36m is None):
        raise _usage_error("give exactly one of --mocap PATH or --h36m FILE")
    preset, _ = _preset_section(pipeline, "lift")
    weights = _existing(weights, default_lifter_weights, "--weights")
    try:
        model = load_lifter(weights)
        if mocap is not None:
            bodies, source = mocap_test_bodies(mocap, split, preset.section("mocap"), stride), f"{mocap} [{split}]"
        else:
            bodies = load_h36m_npz(h36m, [x.strip() for x in subjects.split(",") if x.strip()])[::stride]
            source = f"{h36m} [{subjects}]"
    except InputError as exc:
        raise _usage_error(str(exc)) from None
    result = evaluate_on_bodies(model, bodies, preset.section("synth"), noise_frac=noise, seed=seed)
    result.update({"source": source, "weights": str(weights), "noise_frac": noise, "stride": stride})
    if as_json:
        sys.stdout.write(json.dumps(result, indent=2) + "\n")
        return
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=escape(f"{source}: {result['poses']} poses, 2D noise {noise:.0%} of height"))
    table.add_column("joint")
    table.add_column("error (mm)", justify="right")
    for joint, err in result["per_joint_mm"].items():
        table.add_row(joint, f"{err:.1f}")
    for key, label in (("mpjpe_mm", "MPJPE"), ("pa_mpjpe_mm", "PA-MPJPE"), ("n_mpjpe_mm", "N-MPJPE")):
        table.add_row(f"[bold]{label}", f"[bold]{result[key]:.1f}")
    table.add_row("reprojection (px per 200 px person)", f"{result['reproj_px_at_scale100']:.2f}")
    Console().print(table)


@app.command()
def refine(
    run: Annotated[Path, typer.Argument(exists=True, file_okay=False, metavar="RUN", help="A run folder written by extract.")],
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Output folder [default: RUN].")] = None,
    weights: Annotated[Optional[Path], typer.Option("--weights", help="Refiner checkpoint [default: the shipped one].")] = None,
    pipeline: PipelineOpt = "default",
    force: ForceOpt = False,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Refine every keypoints2d table in RUN with the confidence-guided network: RUN/keypoints2d_refined/."""
    from camerapose_cli.refine import default_refiner_weights, run_refine

    preset, params = _preset_section(pipeline, "refine")
    weights = _existing(weights, default_refiner_weights, "--weights")
    jobs = _stage_jobs(run)
    out = out if out is not None else run
    _run_stage("refine", out, lambda reporter: run_refine(
        jobs, out, params, weights=weights, preset_name=preset.name, force=force, reporter=reporter(len(jobs)),
    ), as_json, quiet)  # fmt: skip
