"""The `camerapose` command line: parse options, call the Python API (camerapose_cli.api), map the outcome to
output and an exit code, with one policy for every command:

0 every input succeeded (or was already done); 1 some input failed (the others were processed); 2 usage
error (bad option, file, preset or checkpoint: nothing was processed); 130 interrupted (Ctrl-C or SIGTERM).
"""

from __future__ import annotations

import json
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from camerapose_cli import __version__
from camerapose_cli.config import Backend, Executor, FrameEdge, ModelKind, Precision, Split, Tracker, check_device
from camerapose_cli.errors import InputError, TrainingDiverged, UsageError

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
STAGE_INTERRUPTED = "partial outputs were removed; rerun to continue"


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


def _device(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return check_device(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


def _api():
    # Imported on first use so that `--help` and `--version` stay instant: the API brings in torch and Ultralytics.
    from camerapose_cli import api

    return api


def _run(call: Callable[[], Any], *, as_json: bool, quiet: bool, interrupted: str = STAGE_INTERRUPTED) -> None:
    """The one exit-code policy: call the API, print the result, exit 0/1/2/130."""
    signal.signal(signal.SIGTERM, _terminate_as_interrupt)
    try:
        result = call()
    except (UsageError, InputError) as exc:  # found before any input was processed
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(EXIT_USAGE) from None
    except TrainingDiverged as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(EXIT_FAILED) from None
    except KeyboardInterrupt:
        typer.echo(f"interrupted: {interrupted}", err=True)
        raise typer.Exit(EXIT_INTERRUPTED) from None
    if isinstance(result, _api().RunSummary):
        summary = result.as_dict()
        if as_json:
            sys.stdout.write(json.dumps(summary, indent=2) + "\n")
        elif not quiet:
            counts = f"{summary['done']} done, {summary['skipped']} skipped, {summary['failed']} failed"
            typer.echo(f"{result.stage}: {counts} -> {result.out}", err=True)
        raise typer.Exit(EXIT_FAILED if result.failed else EXIT_OK)
    if as_json:
        sys.stdout.write(json.dumps(result, indent=2) + "\n")


PipelineOpt = Annotated[str, typer.Option("--pipeline", "-p", help="Preset name (default, cpu-fast) or TOML path.")]
OutOpt = Annotated[Path | None, typer.Option("--out", "-o", help="Output folder [default: runs/<input name>].")]
OverlayOpt = Annotated[bool, typer.Option("--overlay", help="Also write overlay videos with skeletons and track ids.")]
ForceOpt = Annotated[bool, typer.Option("--force", help="Redo inputs whose outputs are already complete.")]
DeviceOpt = Annotated[
    str | None, typer.Option("--device", callback=_device, help="auto | cpu | cuda | cuda:N [default: the preset's].")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print a JSON summary to stdout.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress output (errors still go to stderr).")]
RunArg = Annotated[
    Path,
    typer.Argument(
        exists=True,
        file_okay=False,
        metavar="RUN",
        help="A run folder written by extract (or a folder of keypoints2d tables).",
    ),
]
RunOutOpt = Annotated[Path | None, typer.Option("--out", "-o", help="Output folder [default: RUN].")]
ExecutorOpt = Annotated[
    Executor, typer.Option("--executor", help="Run the inputs in this process, or on a Ray cluster (docs/cluster.md).")
]
RayAddressOpt = Annotated[
    str | None,
    typer.Option(
        "--ray-address",
        help="With --executor ray: auto or HOST:PORT joins a running cluster [default: start one on this machine].",
    ),
]
WorkersOpt = Annotated[
    int | None, typer.Option("--workers", min=1, help="With --executor ray: worker processes [default: as fit].")
]
CpusPerWorkerOpt = Annotated[
    int | None, typer.Option("--cpus-per-worker", min=1, help="With --executor ray: CPUs (torch threads) per worker.")
]
GpusPerWorkerOpt = Annotated[
    float | None, typer.Option("--gpus-per-worker", min=0, help="With --executor ray: GPUs per worker (0: CPU only).")
]


def _ray_options(address: str | None, workers: int | None, cpus: int | None, gpus: float | None) -> dict[str, Any]:
    """The [ray] keys that flags set (None keeps the preset's)."""
    return {"address": address, "workers": workers, "cpus_per_worker": cpus, "gpus_per_worker": gpus}


@app.command()
def extract(
    inputs: Annotated[
        Path,
        typer.Argument(
            exists=True,
            readable=False,
            metavar="INPUTS",
            help="A folder of videos/images (searched recursively) or one file.",
        ),
    ],
    out: OutOpt = None,
    pipeline: PipelineOpt = "default",
    overlay: OverlayOpt = False,
    pose_model: Annotated[
        Path | None, typer.Option("--pose-model", help="Any Ultralytics COCO-17 pose checkpoint.")
    ] = None,
    batch_size: Annotated[int | None, typer.Option("--batch-size", "-b", help="Frames per inference batch.")] = None,
    device: DeviceOpt = None,
    backend: Annotated[
        Backend | None,
        typer.Option(
            "--backend", help="Detector engine: auto (OpenVINO on the CPU, torch on CUDA) | torch | openvino."
        ),
    ] = None,
    imgsz: Annotated[int | None, typer.Option("--imgsz", help="Detector input size (long side, px).")] = None,
    conf: Annotated[float | None, typer.Option("--conf", help="Minimum person-detection score.")] = None,
    tracker: Annotated[Tracker | None, typer.Option("--tracker", help="Ultralytics tracker.")] = None,
    force: ForceOpt = False,
    executor: ExecutorOpt = "local",
    ray_address: RayAddressOpt = None,
    workers: WorkersOpt = None,
    cpus_per_worker: CpusPerWorkerOpt = None,
    gpus_per_worker: GpusPerWorkerOpt = None,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Detect, pose and track people in every video under INPUTS; write keypoints2d/*.parquet."""
    api = _api()

    _run(
        lambda: api.extract(
            inputs,
            out,
            preset=pipeline,
            overlay=overlay,
            force=force,
            pose_model=pose_model,
            batch_size=batch_size,
            device=device,
            backend=backend,
            imgsz=imgsz,
            conf=conf,
            tracker=tracker,
            progress=not quiet,
            executor=executor,
            ray=_ray_options(ray_address, workers, cpus_per_worker, gpus_per_worker),
        ),
        as_json=as_json,
        quiet=quiet,
    )


@app.command()
def demo(
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")] = Path("runs/demo"),
    pipeline: PipelineOpt = "cpu-fast",
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Run extract, with overlays, on the two sample photos that the ultralytics package ships."""
    api = _api()

    _run(
        lambda: api.demo(out, preset=pipeline, progress=not quiet),
        as_json=as_json,
        quiet=quiet,
    )


@app.command()
def refine(
    run: RunArg,
    out: RunOutOpt = None,
    weights: Annotated[
        Path | None, typer.Option("--weights", help="Refiner checkpoint [default: the shipped one].")
    ] = None,
    pipeline: PipelineOpt = "default",
    device: DeviceOpt = None,
    force: ForceOpt = False,
    executor: ExecutorOpt = "local",
    ray_address: RayAddressOpt = None,
    workers: WorkersOpt = None,
    cpus_per_worker: CpusPerWorkerOpt = None,
    gpus_per_worker: GpusPerWorkerOpt = None,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Refine every keypoints2d table in RUN with the confidence-guided network: RUN/keypoints2d_refined/."""
    api = _api()

    _run(
        lambda: api.refine(
            run,
            out,
            preset=pipeline,
            weights=weights,
            device=device,
            force=force,
            progress=not quiet,
            executor=executor,
            ray=_ray_options(ray_address, workers, cpus_per_worker, gpus_per_worker),
        ),
        as_json=as_json,
        quiet=quiet,
    )


@app.command()
def lift(
    run: RunArg,
    out: RunOutOpt = None,
    weights: Annotated[
        Path | None, typer.Option("--weights", help="Lifter checkpoint [default: the shipped one].")
    ] = None,
    pipeline: PipelineOpt = "default",
    fov: Annotated[
        float | None, typer.Option("--fov", help="Camera field of view across the longer side, degrees.")
    ] = None,
    overlay: Annotated[
        bool, typer.Option("--overlay", help="Also render the video with side and top views of the 3D skeletons.")
    ] = False,
    refine: Annotated[bool, typer.Option("--refine/--no-refine", help="Refine the 2D keypoints first.")] = True,
    refiner: Annotated[
        Path | None, typer.Option("--refiner", help="Refiner checkpoint [default: the shipped one].")
    ] = None,
    temporal: Annotated[
        bool | None,
        typer.Option(
            "--temporal/--single-frame",
            help="Lift long enough tracks with the temporal lifter, or every frame alone [default: the preset's].",
            show_default=False,
        ),
    ] = None,
    temporal_weights: Annotated[
        Path | None, typer.Option("--temporal-weights", help="Temporal lifter checkpoint [default: the shipped one].")
    ] = None,
    person_height: Annotated[
        float | None,
        typer.Option(
            "--person-height",
            min=0.5,
            max=2.5,
            help="Every person's standing height in metres, when known: scales the 3D to it [default: estimated].",
        ),
    ] = None,
    mirror: Annotated[
        bool | None,
        typer.Option(
            "--mirror/--no-mirror",
            help="Average each input's lift with its mirror image's: a little more accurate, about half the speed "
            "[default: the preset's].",
            show_default=False,
        ),
    ] = None,
    precision: Annotated[
        Precision | None,
        typer.Option(
            "--precision",
            help="What the lifters compute in: auto (bf16 where the device does it in hardware) | fp32 | bf16 "
            "[default: the preset's].",
        ),
    ] = None,
    device: DeviceOpt = None,
    force: ForceOpt = False,
    executor: ExecutorOpt = "local",
    ray_address: RayAddressOpt = None,
    workers: WorkersOpt = None,
    cpus_per_worker: CpusPerWorkerOpt = None,
    gpus_per_worker: GpusPerWorkerOpt = None,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Lift every keypoints2d table in RUN to 3D joints in metres: RUN/keypoints3d/*.parquet."""
    api = _api()

    _run(
        lambda: api.lift(
            run,
            out,
            preset=pipeline,
            weights=weights,
            fov=fov,
            refine=refine,
            refiner=refiner,
            temporal=temporal,
            temporal_weights=temporal_weights,
            person_height=person_height,
            mirror=mirror,
            precision=precision,
            device=device,
            overlay=overlay,
            force=force,
            progress=not quiet,
            executor=executor,
            ray=_ray_options(ray_address, workers, cpus_per_worker, gpus_per_worker),
        ),
        as_json=as_json,
        quiet=quiet,
    )


@app.command()
def export(
    run: Annotated[
        Path, typer.Argument(exists=True, file_okay=False, metavar="RUN", help="A run folder that lift has written.")
    ],
    fmt: Annotated[str, typer.Option("--format", "-f", help="bvh | trc | c3d | csv")] = "bvh",
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Output folder [default: RUN/export/<format>].")
    ] = None,
    min_frames: Annotated[
        int | None, typer.Option("--min-frames", min=1, help="Shortest track part exported [default: the preset's].")
    ] = None,
    pin_feet: Annotated[
        bool | None,
        typer.Option(
            "--pin-feet/--no-pin-feet",
            help="Move each body so that feet on the floor do not slide [default: the preset's].",
            show_default=False,
        ),
    ] = None,
    pipeline: PipelineOpt = "default",
    force: ForceOpt = False,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Export every lifted track in RUN in a world frame (gravity up, floor at 0): one file per track, named
    <video file name>.track<ID>.<format>, and the world joints in RUN/keypoints3d_world/."""
    api = _api()

    _run(
        lambda: api.export(
            run, fmt, out, preset=pipeline, min_frames=min_frames, pin_feet=pin_feet, force=force, progress=not quiet
        ),
        as_json=as_json,
        quiet=quiet,
    )


@app.command()
def train(
    mocap: Annotated[
        Path, typer.Option("--mocap", exists=True, help="BVH motion capture: a .tar.xz, a folder or one .bvh file.")
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder (resumes from its last.pt).")] = Path(
        "runs/train"
    ),
    pipeline: PipelineOpt = "default",
    steps: Annotated[int | None, typer.Option("--steps", min=1, help="Training steps.")] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Random seed.")] = None,
    joint_map: Annotated[
        Path | None,
        typer.Option("--joint-map", exists=True, help="TOML [joints] table: body point = BVH joint name(s)."),
    ] = None,
    model: Annotated[ModelKind, typer.Option("--model", help="What to train.")] = "lifter",
    weak_2d: Annotated[
        list[Path] | None,
        typer.Option(
            "--weak-2d",
            exists=True,
            help="2D-only data: a run folder, a folder of keypoints2d tables, or COCO keypoint JSON. Repeatable.",
        ),
    ] = None,
    init: Annotated[
        Path | None, typer.Option("--init", exists=True, help="Start from this checkpoint (of the --model kind).")
    ] = None,
    from_scratch: Annotated[
        bool, typer.Option("--from-scratch", help="With --weak-2d: do not start from the shipped lifter.")
    ] = False,
    half: Annotated[bool, typer.Option("--half", help="Store the final weights in fp16.")] = False,
    restart: Annotated[bool, typer.Option("--restart", help="Ignore the saved state and start over.")] = False,
    device: DeviceOpt = None,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Train the 3D lifter (pose + camera branch), or the 2D refiner, on virtual views of motion capture."""
    api = _api()

    def call() -> dict:
        summary = api.train(
            mocap,
            out,
            preset=pipeline,
            model=model,
            steps=steps,
            seed=seed,
            joint_map=joint_map,
            weak_2d=weak_2d,
            init=init,
            from_scratch=from_scratch,
            half=half,
            restart=restart,
            device=device,
            quiet=quiet,
        )
        if not quiet and not as_json:
            typer.echo(f"train: wrote {summary['checkpoint']}", err=True)
        return summary

    _run(call, as_json=as_json, quiet=quiet, interrupted=f"rerun the same command to resume from its state in {out}")


@app.command("eval")
def evaluate(
    weights: Annotated[
        Path | None, typer.Option("--weights", help="Lifter checkpoint [default: the shipped one].")
    ] = None,
    mocap: Annotated[
        Path | None, typer.Option("--mocap", exists=True, help="Evaluate on a held-out split of this mocap.")
    ] = None,
    split: Annotated[Split, typer.Option("--split", help="Which split of --mocap (all: every clip).")] = "test_seen",
    joint_map: Annotated[
        Path | None, typer.Option("--joint-map", exists=True, help="TOML [joints] table for --mocap's skeleton.")
    ] = None,
    by_group: Annotated[
        bool,
        typer.Option(
            "--by-group",
            help="Also report each motion group: from a *motions.csv, Bandai clip names, else each clip's folder.",
        ),
    ] = False,
    h36m: Annotated[
        Path | None, typer.Option("--h36m", exists=True, help="A data_3d_h36m.npz (VideoPose3D layout).")
    ] = None,
    subjects: Annotated[str, typer.Option("--subjects", help="H36M subjects, comma-separated.")] = "S9,S11",
    noise: Annotated[
        float, typer.Option("--noise", min=0.0, help="2D noise sigma, fraction of the person's height.")
    ] = 0.0,
    stride: Annotated[int, typer.Option("--stride", min=1, help="Use every N-th frame.")] = 5,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the virtual cameras.")] = 0,
    detector_keypoints: Annotated[
        bool,
        typer.Option(
            "--detector-keypoints",
            help="2D keypoints where a COCO detector marks the body, not at the skeleton's joints (also --tracks).",
        ),
    ] = False,
    tracks: Annotated[
        bool,
        typer.Option(
            "--tracks", help="Film --mocap as video tracks and compare single-frame with temporal lifting, by group."
        ),
    ] = False,
    detector_noise: Annotated[
        bool,
        typer.Option(
            "--detector-noise",
            help="Detector-like 2D noise (the refiner's noise model, raw); with --tracks, refined before lifting.",
        ),
    ] = False,
    frame_cut: Annotated[
        float,
        typer.Option(
            "--frame-cut",
            help="Every person cut by an image edge (--frame-cut-edge), this share of them in view (0: whole).",
        ),
    ] = 0.0,
    frame_cut_edge: Annotated[
        FrameEdge,
        typer.Option(
            "--frame-cut-edge", help="With --frame-cut: the bottom edge, a side one (left or right), or the top."
        ),
    ] = "bottom",
    temporal_weights: Annotated[
        Path | None, typer.Option("--temporal-weights", help="With --tracks: temporal lifter checkpoint.")
    ] = None,
    refiner: Annotated[
        Path | None,
        typer.Option("--refiner", help="With --tracks --detector-noise: refiner checkpoint [default: the shipped one]"),
    ] = None,
    max_frames: Annotated[
        int, typer.Option("--max-frames", min=3, help="With --tracks: longest piece of a clip filmed as one track.")
    ] = 300,
    fps: Annotated[
        float | None,
        typer.Option(
            "--fps",
            min=0.1,
            help="With --tracks: film the clips at about this frame rate (every k-th mocap frame) [default: theirs].",
        ),
    ] = None,
    pipeline: PipelineOpt = "default",
    device: DeviceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Report MPJPE, PA-MPJPE, N-MPJPE and per-joint errors (mm) of a lifter on held-out 3D; with --tracks,
    single-frame against temporal lifting on whole tracks, with acceleration error."""
    api = _api()

    def call() -> dict:
        if tracks:
            if mocap is None:
                raise UsageError("--tracks needs --mocap")
            result = api.evaluate_tracks(
                mocap=mocap,
                split=split,
                joint_map=joint_map,
                weights=weights,
                temporal_weights=temporal_weights,
                refiner=refiner,
                detector_noise=detector_noise,
                detector_keypoints=detector_keypoints,
                frame_cut=frame_cut,
                frame_cut_edge=frame_cut_edge,
                max_frames=max_frames,
                fps=fps,
                seed=seed,
                preset=pipeline,
                device=device,
            )
            if not as_json:
                _print_track_table(result)
            return result
        result = api.evaluate(
            weights=weights,
            mocap=mocap,
            split=split,
            joint_map=joint_map,
            by_group=by_group,
            h36m=h36m,
            noise=noise,
            stride=stride,
            subjects=[s.strip() for s in subjects.split(",") if s.strip()],
            seed=seed,
            detector_keypoints=detector_keypoints,
            detector_noise=detector_noise,
            frame_cut=frame_cut,
            frame_cut_edge=frame_cut_edge,
            preset=pipeline,
            device=device,
        )
        if not as_json:
            _print_eval_table(result, noise)
        return result

    _run(call, as_json=as_json, quiet=False, interrupted="nothing was written")


def _cut_words(result: dict) -> str:
    if not result.get("frame_cut"):
        return ""
    edge = "a side edge" if result["frame_cut_edge"] == "side" else "the bottom edge"
    return f", cut by {edge}, {result['frame_cut']:.0%} in view"


def _print_track_table(result: dict) -> None:
    noise = "detector-like noise, refined" if result["detector_noise"] else "exact 2D"
    where = ", detector keypoints" if result.get("detector_keypoints") else ""
    where += _cut_words(result)
    where += ", " + "/".join(f"{fps:.3g}" for fps in result["clip_fps"]) + " fps"
    table = Table(title=escape(f"{result['source']}: tracks, {noise}{where}"))
    for column in ("group", "frames", "MPJPE single", "temporal", "PA single", "temporal", "accel single", "temporal"):
        table.add_column(column, justify="left" if column == "group" else "right")
    for group in ["all", *sorted(g for g in result["single"] if g != "all")]:
        s, t = result["single"][group], result["temporal"][group]
        cells = [f"{row[k]:.1f}" for k in ("mpjpe_mm", "pa_mpjpe_mm", "accel_mm") for row in (s, t)]
        table.add_row(f"[bold]{group}" if group == "all" else group, str(s["frames"]), *cells)
    Console().print(table)
    Console().print("mm; accel: mm/frame^2")


def _print_eval_table(result: dict, noise: float) -> None:
    where = ", detector keypoints" if result.get("detector_keypoints") else ""
    where += _cut_words(result)
    noise_model = "detector-like 2D noise, raw" if result["detector_noise"] else f"2D noise {noise:.0%} of height"
    title = f"{result['source']}: {result['poses']} poses, {noise_model}{where}"
    table = Table(title=escape(title))
    table.add_column("joint")
    table.add_column("error (mm)", justify="right")
    for joint, err in result["per_joint_mm"].items():
        table.add_row(joint, f"{err:.1f}")
    for key, label in (
        ("mpjpe_mm", "MPJPE"),
        ("pa_mpjpe_mm", "PA-MPJPE"),
        ("n_mpjpe_mm", "N-MPJPE"),
        ("limb_mpjpe_mm", "limbs MPJPE (12 joints, mid-hip aligned)"),
        ("limb_pa_mpjpe_mm", "limbs PA-MPJPE"),
    ):
        table.add_row(f"[bold]{label}", f"[bold]{result[key]:.1f}")
    table.add_row("reprojection (px per 200 px person)", f"{result['reproj_px_at_scale100']:.2f}")
    Console().print(table)
    if "groups" in result:
        groups = Table(title="by motion group")
        for column in ("group", "poses", "MPJPE (mm)", "PA-MPJPE (mm)", "limbs MPJPE", "limbs PA"):
            groups.add_column(column, justify="left" if column == "group" else "right")
        for group, row in result["groups"].items():
            cells = [f"{row[k]:.1f}" for k in ("mpjpe_mm", "pa_mpjpe_mm", "limb_mpjpe_mm", "limb_pa_mpjpe_mm")]
            groups.add_row(escape(group), str(row["poses"]), *cells)
        Console().print(groups)
