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
    from camerapose_cli.presets import load_preset
    from camerapose_cli.progress import make_reporter
    from camerapose_cli.resources import default_pose_model
    from camerapose_cli.runner import summary_dict

    try:
        preset = load_preset(pipeline)
        pose_model = overrides.pop("pose_model")
        params = preset.section("extract", **overrides)
        overlay_params = preset.section("overlay")
    except (FileNotFoundError, KeyError, ValueError) as exc:
        raise _usage_error(str(exc).strip('"')) from None
    if pose_model is None:
        pose_model = Path(params["pose_model"]) if params["pose_model"] else default_pose_model()
    if not pose_model.is_file():
        raise _usage_error(f"--pose-model {pose_model}: no such file")
    if int(params["batch_size"]) < 1:
        raise _usage_error("--batch-size must be at least 1")

    signal.signal(signal.SIGTERM, _terminate_as_interrupt)
    reporter = make_reporter(len(jobs), "extract", quiet)
    try:
        outcomes = run_extract(
            jobs, out, params, overlay_params, pose_model=pose_model, preset_name=preset.name,
            want_overlay=overlay, force=force, reporter=reporter,
        )  # fmt: skip
    except ValueError as exc:  # bad --device and the like, found when the detector is built
        raise _usage_error(str(exc)) from None
    except KeyboardInterrupt:
        typer.echo("interrupted: partial outputs were removed; rerun to continue", err=True)
        raise typer.Exit(EXIT_INTERRUPTED) from None
    summary = summary_dict("extract", out, outcomes)
    if as_json:
        sys.stdout.write(json.dumps(summary, indent=2) + "\n")
    elif not quiet:
        typer.echo(
            f"extract: {summary['done']} done, {summary['skipped']} skipped, {summary['failed']} failed "
            f"-> {out}",
            err=True,
        )
    raise typer.Exit(EXIT_FAILED if summary["failed"] else EXIT_OK)


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
