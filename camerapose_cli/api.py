"""The Python API: every stage as a function, over folders (batch, like the CLI) or over in-memory arrays.

```python
import camerapose_cli as cp

summary = cp.extract("videos/", "runs/demo")          # keypoints2d tables, like `camerapose extract`
cp.lift("runs/demo")                                  # refine + lift, like `camerapose lift`
poses = cp.read_keypoints3d("runs/demo")              # one pandas DataFrame, a row per person-frame
```

The CLI calls exactly these functions; `progress=True` shows the CLI's progress on stderr. Errors: UsageError
(bad arguments, files, presets or checkpoints; nothing was processed) and, for the in-memory functions,
InputError. A batch function records a bad input in its RunSummary and goes on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, get_args

import numpy as np
import pandas as pd
import pyarrow.dataset as ds

from camerapose_cli.config import (
    Backend,
    Executor,
    FrameEdge,
    ModelKind,
    Precision,
    Preset,
    RaySection,
    Split,
    Tracker,
    load_preset,
)
from camerapose_cli.core.device import module_device, resolve_device, resolve_precision
from camerapose_cli.core.keypoints import DETECTOR_PLACEMENT
from camerapose_cli.detect.pose2d import PoseDetector
from camerapose_cli.detect.track import make_tracker
from camerapose_cli.errors import UsageError
from camerapose_cli.export.formats import EXPORT_FORMATS, ExportFormat
from camerapose_cli.io.h36m import load_h36m_npz
from camerapose_cli.io.resources import default_pose_model, sample_images
from camerapose_cli.io.schema import KeypointTable
from camerapose_cli.io.video import IMAGE_SUFFIXES, VIDEO_SUFFIXES, FrameBatch, MediaInfo, resize_frame
from camerapose_cli.models.checkpoints import default_weights, load_lifter, load_refiner, load_temporal
from camerapose_cli.progress import make_reporter
from camerapose_cli.stages.base import Job, RunSummary, StageSpec, keypoints2d_jobs, run_stage
from camerapose_cli.stages.export import ExportStage, keypoints3d_jobs
from camerapose_cli.stages.extract import ExtractStage, empty_keypoint_table, extract_jobs, frame_rows
from camerapose_cli.stages.lift import LiftResult, LiftStage, lift_keypoints
from camerapose_cli.stages.refine import RefineStage, keep_border_detections, refine_track
from camerapose_cli.training.evaluate import TrackNoise, evaluate_on_bodies, mocap_eval_bodies, mocap_eval_clips
from camerapose_cli.training.evaluate import evaluate_tracks as evaluate_tracks_of
from camerapose_cli.training.noise import DetectorFrameNoise, FrameCut, load_calibration
from camerapose_cli.training.run import read_joint_map, run_training

PathLike = str | Path


def _preset(preset: str | Preset) -> Preset:
    return preset if isinstance(preset, Preset) else load_preset(preset)


def _existing_file(path: PathLike | None, default: Path, option: str) -> Path:
    path = Path(path) if path is not None else default
    if not path.is_file():
        raise UsageError(f"{option} {path}: no such file")
    return path


def _ray_section(preset: Preset, ray: RaySection | dict[str, Any] | None) -> RaySection:
    """`ray`: a whole [ray] section, or some of its keys over the preset's (None keeps the preset's)."""
    if isinstance(ray, RaySection):
        return ray
    return preset.ray.with_values(**(ray or {}))


def _run_stage(
    spec: StageSpec,
    jobs: list[Job],
    out: Path,
    *,
    overlay: bool,
    force: bool,
    progress: bool,
    executor: Executor = "local",
    ray: RaySection | None = None,
) -> RunSummary:
    """Run the stage skeleton over the jobs with the chosen executor, with progress if asked for: `local` builds
    the stage here and runs it in this process; `ray` hands the spec to a pool of Ray actors."""
    if executor not in get_args(Executor):
        raise UsageError(f"--executor {executor!r}: choose one of {', '.join(get_args(Executor))}")
    if executor == "ray":
        from camerapose_cli.stages.ray_executor import import_ray, run_stage_on_ray

        import_ray()  # a missing extra is a usage error before anything is loaded or started
        reporter = make_reporter(len(jobs), spec.stage.name, quiet=not progress)
        outcomes = run_stage_on_ray(spec, jobs, out, overlay=overlay, force=force, reporter=reporter, config=ray)
    else:
        stage = spec.build()  # models load (and settings are checked) before the first input
        reporter = make_reporter(len(jobs), stage.name, quiet=not progress)
        outcomes = run_stage(stage, jobs, out, overlay=overlay, force=force, reporter=reporter)
    return RunSummary(spec.stage.name, out, outcomes)


def _run_jobs(run: PathLike) -> list[Job]:
    jobs = keypoints2d_jobs(Path(run))
    if not jobs:
        raise UsageError(f"{run}: no keypoints2d tables found (run camerapose extract first)")
    return jobs


def extract(
    inputs: PathLike | list[Job],
    out: PathLike | None = None,
    *,
    preset: str | Preset = "default",
    overlay: bool = False,
    force: bool = False,
    pose_model: PathLike | None = None,
    batch_size: int | None = None,
    device: str | None = None,
    backend: Backend | None = None,
    imgsz: int | None = None,
    conf: float | None = None,
    tracker: Tracker | None = None,
    progress: bool = False,
    executor: Executor = "local",
    ray: RaySection | dict[str, Any] | None = None,
) -> RunSummary:
    """Detect, pose and track people in every video and image under `inputs` (a folder, searched recursively, or
    one file); write `out/keypoints2d/*.parquet` (default out: runs/<input name>), overlays with `overlay`.
    `backend`: the detector's engine, auto | torch | openvino (default: the preset's). `executor="ray"` runs the
    inputs on a Ray cluster, with `ray` (some [ray] keys) over the preset's [ray]."""
    if isinstance(inputs, list):
        jobs, name = inputs, "extract"
    else:
        jobs, name = extract_jobs(Path(inputs)), Path(inputs).resolve().stem or "extract"
        if not jobs:
            suffixes = " ".join(sorted(VIDEO_SUFFIXES | IMAGE_SUFFIXES))
            raise UsageError(f"{inputs}: no videos or images found ({suffixes})")
    preset = _preset(preset)
    config = preset.extract.with_values(
        batch_size=batch_size, device=device, backend=backend, imgsz=imgsz, conf=conf, tracker=tracker
    )
    chosen = pose_model or config.pose_model  # the preset's empty pose_model means the bundled checkpoint
    model = _existing_file(chosen or None, default_pose_model(), "--pose-model")
    out_dir = Path(out) if out is not None else Path("runs") / name
    spec = StageSpec(ExtractStage, (config, preset.overlay, model, preset.name))
    cluster = _ray_section(preset, ray)
    return _run_stage(
        spec, jobs, out_dir, overlay=overlay, force=force, progress=progress, executor=executor, ray=cluster
    )


def demo(out: PathLike = "runs/demo", *, preset: str | Preset = "cpu-fast", progress: bool = False) -> RunSummary:
    """`extract` with overlays on the two sample photos that the ultralytics package ships."""
    jobs = [Job(p, p.name) for p in sample_images()]
    if not jobs:
        raise UsageError("the ultralytics package ships no sample images here")
    return extract(jobs, out, preset=preset, overlay=True, progress=progress)


def refine(
    run: PathLike,
    out: PathLike | None = None,
    *,
    preset: str | Preset = "default",
    weights: PathLike | None = None,
    device: str | None = None,
    force: bool = False,
    progress: bool = False,
    executor: Executor = "local",
    ray: RaySection | dict[str, Any] | None = None,
) -> RunSummary:
    """Refine every keypoints2d table of `run`: `out/keypoints2d_refined/*.parquet` (default out: run).
    `device`: auto | cpu | cuda | cuda:N (default: the preset's [refine] device). `executor`, `ray`: as extract's."""
    preset = _preset(preset)
    config = preset.refine.with_values(device=device)
    refiner = _existing_file(weights, default_weights("refiner"), "--weights")
    jobs = _run_jobs(run)
    out_dir = Path(out) if out is not None else Path(run)
    spec = StageSpec(RefineStage, (refiner, config, preset.name))
    cluster = _ray_section(preset, ray)
    return _run_stage(
        spec, jobs, out_dir, overlay=False, force=force, progress=progress, executor=executor, ray=cluster
    )


def lift(
    run: PathLike,
    out: PathLike | None = None,
    *,
    preset: str | Preset = "default",
    weights: PathLike | None = None,
    fov: float | None = None,
    refine: bool = True,
    refiner: PathLike | None = None,
    temporal: bool | None = None,
    temporal_weights: PathLike | None = None,
    person_height: float | None = None,
    mirror: bool | None = None,
    precision: Precision | None = None,
    device: str | None = None,
    overlay: bool = False,
    force: bool = False,
    progress: bool = False,
    executor: Executor = "local",
    ray: RaySection | dict[str, Any] | None = None,
) -> RunSummary:
    """Refine (unless `refine=False`) and lift every keypoints2d table of `run` to 3D joints in metres:
    `out/keypoints3d/*.parquet` (default out: run), with `overlay` also `out/overlays3d/`. Tracks long enough
    go through the temporal lifter unless `temporal=False` (default: the preset's [lift] temporal). `device`
    (refinement and lifting): auto | cpu | cuda | cuda:N (default: the preset's). `person_height` (metres,
    standing): scale every track to that height instead of the lifter's size prior. `mirror`: average each input's
    lift with its mirror image's; `precision`: auto | fp32 | bf16 (defaults: the preset's). `executor`, `ray`: as
    extract's."""
    preset = _preset(preset)
    config = preset.lift.with_values(
        fov_deg=fov,
        temporal=temporal,
        device=device,
        person_height_m=person_height,
        mirror_average=mirror,
        precision=precision,
    )
    lifter = _existing_file(weights, default_weights("lifter"), "--weights")
    sequence_lifter = None
    if config.temporal:
        sequence_lifter = _existing_file(temporal_weights, default_weights("temporal"), "--temporal-weights")
    refiner_path = _existing_file(refiner, default_weights("refiner"), "--refiner") if refine else None
    refine_config = preset.refine.with_values(device=device)
    jobs = _run_jobs(run)
    out_dir = Path(out) if out is not None else Path(run)
    args = (config, lifter, refiner_path, refine_config, preset.overlay, preset.name, sequence_lifter)
    return _run_stage(
        StageSpec(LiftStage, args),
        jobs,
        out_dir,
        overlay=overlay,
        force=force,
        progress=progress,
        executor=executor,
        ray=_ray_section(preset, ray),
    )


def export(
    run: PathLike,
    fmt: ExportFormat,
    out: PathLike | None = None,
    *,
    preset: str | Preset = "default",
    min_frames: int | None = None,
    pin_feet: bool | None = None,
    force: bool = False,
    progress: bool = False,
) -> RunSummary:
    """Export every lifted table of `run` in a world frame (gravity up, floor at 0): one `fmt` file per track part
    under `out` (default: RUN/export/<fmt>/, keeping the tables' relative folders), and the world joints in
    `RUN/keypoints3d_world/`. `pin_feet`: move each body so that its planted feet do not slide."""
    if fmt not in EXPORT_FORMATS:
        raise UsageError(f"--format {fmt!r}: choose one of {', '.join(EXPORT_FORMATS)}")
    preset = _preset(preset)
    config = preset.export.with_values(min_frames=min_frames, pin_feet=pin_feet)
    run = Path(run)
    jobs = keypoints3d_jobs(run)
    if not jobs:
        raise UsageError(f"{run}: no keypoints3d tables found (run camerapose lift first)")
    out_dir = Path(out) if out is not None else run / "export" / fmt
    spec = StageSpec(ExportStage, (run, out_dir, fmt, config, preset.name))
    return _run_stage(spec, jobs, out_dir, overlay=False, force=force, progress=progress)


def train(
    mocap: PathLike,
    out: PathLike = "runs/train",
    *,
    preset: str | Preset = "default",
    model: ModelKind = "lifter",
    steps: int | None = None,
    seed: int | None = None,
    joint_map: PathLike | None = None,
    weak_2d: list[PathLike] | None = None,
    init: PathLike | None = None,
    from_scratch: bool = False,
    half: bool = False,
    restart: bool = False,
    device: str | None = None,
    quiet: bool = True,
) -> dict:
    """Train a lifter (with `weak_2d`: fine-tune it on 2D-only data too) or a refiner on motion capture."""
    return run_training(
        Path(mocap),
        Path(out),
        _preset(preset),
        model=model,
        steps=steps,
        seed=seed,
        joint_map=Path(joint_map) if joint_map is not None else None,
        weak_2d=[Path(p) for p in weak_2d or []],
        init=Path(init) if init is not None else None,
        from_scratch=from_scratch,
        half=half,
        restart=restart,
        device=device,
        quiet=quiet,
    )


def evaluate(
    *,
    weights: PathLike | None = None,
    mocap: PathLike | None = None,
    split: Split = "test_seen",
    joint_map: PathLike | None = None,
    by_group: bool = False,
    h36m: PathLike | None = None,
    subjects: list[str] | None = None,
    noise: float = 0.0,
    stride: int = 5,
    seed: int = 0,
    detector_keypoints: bool = False,
    detector_noise: bool = False,
    frame_cut: float = 0.0,
    frame_cut_edge: FrameEdge = "bottom",
    preset: str | Preset = "default",
    device: str | None = None,
) -> dict:
    """MPJPE, PA-MPJPE, N-MPJPE and per-joint errors (mm) of a lifter on a mocap split (any BVH skeleton, with
    `joint_map` where its names are not known) or an H36M file; with `by_group` also per motion group.
    `noise`: Gaussian 2D noise of that sigma (fraction of the person's height); `detector_noise`: single frames
    of the detector noise model ([refine_noise], raw detections: no refiner) instead.
    `detector_keypoints`: the 2D keypoints where the detector places them (core.keypoints.DETECTOR_PLACEMENT),
    else at the skeleton's joints. `frame_cut` in (0, 1): every person cut by the frame's `frame_cut_edge`
    ("bottom", or "side": left or right at random) with that share of their 2D extent across it in view (the
    keypoints beyond it unconfident and on it, as a detector reports them: training.noise.FrameCut).
    `device`: where the lifter runs (default: the preset's [lift] device); the views are the same on any."""
    if (mocap is None) == (h36m is None):
        raise UsageError("give exactly one of --mocap PATH or --h36m FILE")
    if detector_noise and noise > 0:
        raise UsageError("--noise and --detector-noise are two noise models; give one")
    preset = _preset(preset)
    cut = _frame_cut(preset, frame_cut, frame_cut_edge)
    frame_noise = DetectorFrameNoise.of(preset.refine_noise, (1.0, 1.0)) if detector_noise else None
    weights = _existing_file(weights, default_weights("lifter"), "--weights")
    model = load_lifter(weights).to(resolve_device(device or preset.lift.device))
    if mocap is not None:
        joints = read_joint_map(Path(joint_map)) if joint_map is not None else None
        bodies, groups = mocap_eval_bodies(Path(mocap), split, preset.mocap, stride, joints)
        source = f"{mocap} [{split}]"
    else:
        subjects = subjects or ["S9", "S11"]
        bodies, source = load_h36m_npz(Path(h36m), subjects)[::stride], f"{h36m} [{','.join(subjects)}]"
        groups = np.full(len(bodies), "h36m", dtype=object)

    def measure(points: np.ndarray) -> dict:
        return evaluate_on_bodies(
            model,
            points,
            preset.synth,
            preset.lifter_noise,
            noise_frac=noise,
            seed=seed,
            mirror=preset.lift.mirror_average,
            precision=resolve_precision(preset.lift.precision, module_device(model)),
            placement=DETECTOR_PLACEMENT if detector_keypoints else None,
            detector_noise=frame_noise,
            frame_cut=cut,
        )

    result = {**measure(bodies), "source": source, "weights": str(weights), "noise_frac": noise, "stride": stride}
    result["detector_keypoints"], result["detector_noise"] = detector_keypoints, detector_noise
    result["frame_cut"], result["frame_cut_edge"] = frame_cut, frame_cut_edge
    if by_group:
        result["groups"] = {
            str(group): {k: v for k, v in measure(bodies[groups == group]).items() if k != "per_joint_mm"}
            for group in sorted(set(groups))
        }
    return result


def _frame_cut(preset: Preset, keep: float, edge: FrameEdge) -> FrameCut | None:
    """`eval --frame-cut KEEP --frame-cut-edge EDGE`, checked: everyone cut, or None for 0."""
    if not 0 <= keep < 1:
        raise UsageError(f"--frame-cut {keep}: give the share of the person in view, from 0 (whole) to below 1")
    if edge not in get_args(FrameEdge):
        raise UsageError(f"--frame-cut-edge {edge}: give one of {', '.join(get_args(FrameEdge))}")
    return FrameCut.of(preset.synth, 1.0).everyone(keep, edge) if keep > 0 else None


def evaluate_tracks(
    *,
    mocap: PathLike,
    split: Split = "test_seen",
    joint_map: PathLike | None = None,
    weights: PathLike | None = None,
    temporal_weights: PathLike | None = None,
    refiner: PathLike | None = None,
    detector_noise: bool = False,
    detector_keypoints: bool = False,
    frame_cut: float = 0.0,
    frame_cut_edge: FrameEdge = "bottom",
    max_frames: int = 300,
    fps: float | None = None,
    seed: int = 0,
    preset: str | Preset = "default",
    device: str | None = None,
) -> dict:
    """Single-frame against temporal lifting of mocap filmed as video tracks (a static virtual camera per piece of
    at most `max_frames` frames), lifted as `lift` does: MPJPE, PA-MPJPE (mm) and acceleration error (mm/frame^2)
    per motion group. `detector_noise`: the 2D gets [refine_noise]'s detector-like corruption, then the refiner
    (`refiner`, default the shipped one), first; `detector_keypoints`: the 2D where a detector marks the body
    (core.keypoints.DETECTOR_PLACEMENT).
    `frame_cut`, `frame_cut_edge`: every piece cut by one image edge, as `evaluate` cuts single poses (frames with
    most of the person beyond it are missed detections). `fps`: every clip filmed at about that frame rate (every
    k-th mocap frame; `clip_fps` in the result: the rates used). `device`: where the models run (default: the
    preset's [lift] device)."""
    preset = _preset(preset)
    cut = _frame_cut(preset, frame_cut, frame_cut_edge)
    where = resolve_device(device or preset.lift.device)
    single = load_lifter(_existing_file(weights, default_weights("lifter"), "--weights")).to(where)
    temporal_path = _existing_file(temporal_weights, default_weights("temporal"), "--temporal-weights")
    joints = read_joint_map(Path(joint_map)) if joint_map is not None else None
    clips = mocap_eval_clips(Path(mocap), split, preset.mocap, max_frames, joint_names=joints, fps=fps)
    noise, refiner_path = None, None
    if detector_noise:
        calibration = load_calibration(preset.refine_noise)
        refiner_path = _existing_file(refiner, default_weights("refiner"), "--refiner")
        noise = TrackNoise(calibration, preset.refine_noise, load_refiner(refiner_path).to(where), preset.refine)
    temporal = load_temporal(temporal_path).to(where).use_base(single)
    lifters = {"single": (single, None), "temporal": (single, temporal)}
    placement = DETECTOR_PLACEMENT if detector_keypoints else None
    scores = evaluate_tracks_of(
        lifters, clips, preset.synth, preset.lift, noise, seed=seed, placement=placement, frame_cut=cut
    )
    return {
        "source": f"{mocap} [{split}]",
        "detector_noise": detector_noise,
        "detector_keypoints": detector_keypoints,
        "frame_cut": frame_cut,
        "frame_cut_edge": frame_cut_edge,
        "clip_fps": sorted({clip.fps for clip in clips}),
        "temporal_weights": str(temporal_path),
        "refiner": None if refiner_path is None else str(refiner_path),
        **scores,
    }


def _read_tables(folder: Path) -> pd.DataFrame:
    if not folder.is_dir():
        raise UsageError(f"{folder}: no such folder (run the stage that writes it first)")
    files = sorted(str(p) for p in folder.rglob("*.parquet") if not p.name.startswith("."))
    if not files:
        raise UsageError(f"{folder}: no tables")
    return ds.dataset(files, format="parquet").to_table().to_pandas()


def read_keypoints2d(run: PathLike, refined: bool = False) -> pd.DataFrame:
    """Every keypoints2d (or, with `refined`, keypoints2d_refined) table of a run folder, as one DataFrame."""
    return _read_tables(Path(run) / ("keypoints2d_refined" if refined else "keypoints2d"))


def read_keypoints3d(run: PathLike) -> pd.DataFrame:
    """Every keypoints3d table of a run folder, as one DataFrame (docs/schema.md has the columns)."""
    return _read_tables(Path(run) / "keypoints3d")


def extract_frames(
    frames: np.ndarray,
    fps: float = 30.0,
    *,
    preset: str | Preset = "default",
    pose_model: PathLike | None = None,
    name: str = "clip",
) -> KeypointTable:
    """Detect, pose and track people in one clip's RGB frames (T, H, W, 3), in memory: a KeypointTable."""
    config = _preset(preset).extract
    model = Path(pose_model) if pose_model is not None else Path(config.pose_model or default_pose_model())
    detector = PoseDetector.from_config(model, config)
    height, width = frames.shape[1:3]
    info = MediaInfo(Path(name), width, height, 0, fps, len(frames), False)
    geometry = detector.geometry(width, height)
    tracker = make_tracker(config.tracker)
    parts = [empty_keypoint_table()]
    for start in range(0, len(frames), config.batch_size):
        chunk = frames[start : start + config.batch_size]
        resized = np.stack([resize_frame(f, *geometry.resized) for f in chunk])
        indices = np.arange(start, start + len(chunk), dtype=np.int64)
        batch = FrameBatch(indices, indices / fps, resized)
        parts.append(
            frame_rows(name, info, batch, detector.detect(resized, geometry), tracker, geometry.resized[0] / width)
        )
    return KeypointTable.concat(parts)


def refine_keypoints(
    keypoints: np.ndarray,
    frames: np.ndarray | None = None,
    *,
    width: int | None = None,
    height: int | None = None,
    weights: PathLike | None = None,
    preset: str | Preset = "default",
) -> np.ndarray:
    """Refine one track's COCO-17 keypoints (N, 17, 3: x, y px, confidence) at `frames` (N,) sorted frame numbers
    (default 0..N-1, no gaps). With the image's `width` and `height`, keypoints on its border keep the detection,
    as `refine` keeps them ([refine] border_margin). Returns the refined (N, 17, 3)."""
    config = _preset(preset).refine
    model = load_refiner(_existing_file(weights, default_weights("refiner"), "--weights"))
    frames = np.arange(len(keypoints)) if frames is None else np.asarray(frames)
    detected = np.asarray(keypoints, np.float32)
    refined = refine_track(model, frames, detected, config.window)
    if width is None or height is None:
        return refined
    n = len(detected)
    return keep_border_detections(refined, detected, np.full(n, width), np.full(n, height), config.border_margin)


def lift_arrays(
    keypoints: np.ndarray,
    width: int | np.ndarray,
    height: int | np.ndarray,
    *,
    fov: float | None = None,
    weights: PathLike | None = None,
    preset: str | Preset = "default",
) -> LiftResult:
    """Lift COCO-17 keypoints (N, 17, 3: x, y px, confidence) of images of size width x height to 3D joints in
    metres (a LiftResult: pose (N, 17, 3) pelvis-relative in camera coordinates, root_cam, camera, reprojection).
    Every row alone, with the single-frame lifter (still images); `lift` runs tracks through the temporal one."""
    config = _preset(preset).lift.with_values(fov_deg=fov)
    model = load_lifter(_existing_file(weights, default_weights("lifter"), "--weights"))
    n = len(keypoints)
    width, height = np.broadcast_to(width, (n,)), np.broadcast_to(height, (n,))
    keypoints = np.asarray(keypoints, np.float32)
    precision = resolve_precision(config.precision, module_device(model))
    return lift_keypoints(
        model,
        keypoints,
        width,
        height,
        config.fov_deg,
        config.batch_size,
        mirror=config.mirror_average,
        precision=precision,
    )
