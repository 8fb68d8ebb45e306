"""Single-frame against temporal lifting, on tracks: accuracy, jitter, real detections and speed.

    python bench/temporal_lifting.py [--temporal weights/temporal.pt] [--single weights/lifter.pt]
                                     [--cameras default|studio-cameras] [--detector-keypoints]

1. Mocap filmed as video tracks (a static seeded virtual camera per piece of at most --max-frames frames,
   at the clip's own frame rate: CC 60 fps, Bandai 30 fps), lifted exactly as `lift` lifts a table
   (stages.lift.lift_tracks). Exact 2D, and "noisy": the detector-like corruption of [refine_noise] (jitter,
   swaps, occlusions, misses, spikes, gaps) followed by the shipped refiner, the lift stage's default.
   MPJPE and PA-MPJPE in mm over the 17 joints, "limbs": MPJPE over the 12 limb joints after aligning the
   mid-hips (issue 11's measure, fair across rigs), acceleration error in mm/frame^2 (second difference of the
   root-relative joints against the truth's, over runs of three detected frames). --cameras names the preset
   whose [synth] cameras film the tracks: default (the training cameras, 2-12 m) or studio-cameras (3.5-5 m).
   --detector-keypoints puts the 2D where a COCO detector marks the body (core.keypoints), not at the joints.
   Rows: the CC validation set (never trained on) per motion group, Bandai test_seen and test_unseen.
2. Real detections (YOLO11n-pose, refined) on the shared videos and the robustness clip: the detector's jitter
   against the noise model's (lever 4), then the reprojection error (px, median over rows) and the spread of
   bone lengths along each track (coefficient of variation of each bone's length over the track's frames, median
   over bones and tracks). No 3D truth there.
3. Throughput of lift_tracks on this CPU, person-frames/s, 100 tracks of 1,000 frames.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import torch
from scipy.signal import savgol_filter

import camerapose_cli
from camerapose_cli.config import load_preset
from camerapose_cli.core.device import native_bf16, precision_name, resolve_device, resolve_precision
from camerapose_cli.core.keypoints import DETECTOR_PLACEMENT, KeypointPlacement
from camerapose_cli.core.skeleton import H36M17_BONES
from camerapose_cli.io.schema import read_keypoints2d
from camerapose_cli.models.checkpoints import default_weights, load_lifter, load_refiner, load_temporal
from camerapose_cli.stages.lift import lift_tracks, read_camera_joints
from camerapose_cli.training.evaluate import TrackNoise, clip_table, evaluate_tracks, film_clip, mocap_eval_clips
from camerapose_cli.training.noise import corrupt_sequences, load_calibration

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
BANDAI = SHARED / "mocap" / "bandai_motion.tar.xz"
CC = SHARED / "mocap" / "cmu_cc_validation.tar.xz"
JITTER_WINDOW = 9  # frames of the smooth fit that detector jitter is measured against
SYNTHETIC_JITTER_STRIDE = 10  # every 10th test clip for the noise model's jitter
MEASURES = ("mpjpe_mm", "pa_mpjpe_mm", "limb_mpjpe_mm", "accel_mm")
REAL_VIDEOS = [*sorted((SHARED / "videos").glob("*.mp4")), SHARED / "robustness" / "treadmill_vp9_100f.mp4"]


def accuracy_table(
    single_path: Path,
    temporal_path: Path,
    max_frames: int,
    cameras: str,
    placement: KeypointPlacement | None = None,
) -> None:
    preset = load_preset("default")
    synth = load_preset(cameras).synth
    single = load_lifter(single_path)
    temporal = load_temporal(temporal_path).use_base(single)
    lifters = {"single": (single, None), "temporal": (single, temporal)}
    noise = TrackNoise(
        load_calibration(preset.refine_noise),
        preset.refine_noise,
        load_refiner(default_weights("refiner")),
        preset.refine,
    )
    field = temporal.receptive_field
    print(
        f"1. Tracks: single-frame {single_path.name} against temporal {temporal_path.name} (field {field} frames),"
        f" {cameras} cameras, 2D at the {'detector keypoints' if placement else 'joints'}"
    )
    head = f"{'MPJPE':>7s} {'PA':>6s} {'limbs':>6s} {'accel':>6s}"
    print(f"   {'set / motion group':30s} {'2D':6s} {'frames':>7s}   single: {head}   temporal: {head}")
    sets = [
        ("CC", mocap_eval_clips(CC, "all", preset.mocap, max_frames), True),
        ("Bandai test_seen", mocap_eval_clips(BANDAI, "test_seen", preset.mocap, max_frames), False),
        ("Bandai test_unseen", mocap_eval_clips(BANDAI, "test_unseen", preset.mocap, max_frames), False),
    ]
    for label, clips, by_group in sets:
        for kind, track_noise in (("exact", None), ("noisy", noise)):
            scores = evaluate_tracks(lifters, clips, synth, preset.lift, track_noise, seed=0, placement=placement)
            groups = sorted(k for k in scores["single"] if k != "all") if by_group else []
            for group in ["all", *groups]:
                s, t = scores["single"][group], scores["temporal"][group]
                name = f"{label} {group}" if group != "all" or by_group else label
                cells = [" ".join(f"{row[k]:{w}.1f}" for k, w in zip(MEASURES, (7, 6, 6, 6))) for row in (s, t)]
                print(f"   {name:30s} {kind:6s} {s['frames']:7d}   single: {cells[0]}   temporal: {cells[1]}")


def bone_spread(joints: np.ndarray, track_id: np.ndarray) -> float:
    """Median over tracks (of 5+ frames) and H36M bones of each bone length's coefficient of variation."""
    spreads = []
    for track in np.unique(track_id):
        pose = joints[track_id == track]
        if len(pose) < 5:
            continue
        lengths = np.stack([np.linalg.norm(pose[:, c] - pose[:, p], axis=-1) for p, c in H36M17_BONES], -1)
        spreads.extend(lengths.std(0) / lengths.mean(0))
    return float(np.median(spreads)) if spreads else float("nan")


def track_jitter(keypoints: np.ndarray, track_id: np.ndarray, frame: np.ndarray) -> float:
    """Median distance of confident keypoints from a Savitzky-Golay fit along their track (window 9, order 2),
    over the person's size (sqrt of the keypoints' box area): the frame-to-frame noise of a detector."""
    residuals = []
    for track in np.unique(track_id):
        rows = np.flatnonzero(track_id == track)
        rows = rows[np.argsort(frame[rows])]
        if len(rows) < JITTER_WINDOW or np.any(np.diff(frame[rows]) != 1):
            continue
        kp = keypoints[rows]
        size = np.sqrt(np.prod(kp[..., :2].max(1) - kp[..., :2].min(1), -1))
        smooth = savgol_filter(kp[..., :2], JITTER_WINDOW, 2, axis=0)
        err = np.linalg.norm(kp[..., :2] - smooth, axis=-1) / size[:, None]
        residuals.extend(err[kp[..., 2] > 0.5])
    return float(np.median(residuals)) if residuals else float("nan")


def real_rows(single_path: Path, temporal_path: Path) -> None:
    print("\n2. Real detections, no 3D truth")
    with tempfile.TemporaryDirectory() as tmp:
        videos = Path(tmp, "videos")
        videos.mkdir()
        for video in REAL_VIDEOS:
            (videos / video.name).symlink_to(video)
        camerapose_cli.extract(videos, tmp, device="cpu")
        for name, temporal in (("single", False), ("temporal", True)):
            camerapose_cli.lift(
                tmp, Path(tmp, name), weights=single_path, temporal=temporal, temporal_weights=temporal_path
            )
        print("   detector jitter (median residual from a smooth fit, fraction of the person's size):")
        preset = load_preset("default")
        calibration = load_calibration(preset.refine_noise)
        for video in REAL_VIDEOS:
            table = read_keypoints2d(Path(tmp, "keypoints2d", video.name + ".parquet"))
            real = track_jitter(table.keypoints, table.track_id, table.frame)
            print(f"   {video.name:34s} {real:.4f}")
        clips = mocap_eval_clips(BANDAI, "test_seen", preset.mocap, 120)[::SYNTHETIC_JITTER_STRIDE]
        gen = torch.Generator().manual_seed(0)
        synthetic = []
        for clip in clips:
            _, coco, _, _, _ = film_clip(clip, preset.synth, gen)
            noisy, conf, _ = corrupt_sequences(coco[None], calibration, preset.refine_noise, gen)
            kp = torch.cat([noisy[0], conf[0, ..., None]], -1).numpy()
            synthetic.append(track_jitter(kp, np.ones(len(kp)), np.arange(len(kp))))
        print(f"   {'noise model ([refine_noise]), Bandai':34s} {np.median(synthetic):.4f}")
        print("   refined and lifted: reprojection error and bone-length spread along tracks")
        columns = f"{'reproj px single':>16s} {'temporal':>9s}   {'bone CV single':>14s} {'temporal':>9s}"
        print(f"   {'video':34s} {'rows':>5s}   {columns}")
        for video in REAL_VIDEOS:
            cells = {}
            for name in ("single", "temporal"):
                path = Path(tmp, name, "keypoints3d", video.name + ".parquet")
                table = pq.read_table(path, columns=["track_id", "reproj_err_px", "lifter_model"]).to_pandas()
                joints = read_camera_joints(path)
                joints = joints - joints[:, :1]
                cells[name] = (float(table.reproj_err_px.median()), bone_spread(joints, table.track_id.to_numpy()))
                rows, used = len(table), int((table.lifter_model == "temporal").sum())
            print(
                f"   {video.name:34s} {rows:5d}   {cells['single'][0]:16.1f} {cells['temporal'][0]:9.1f}   "
                f"{cells['single'][1]:14.3f} {cells['temporal'][1]:9.3f}   ({used} rows temporal)"
            )


def throughput(single_path: Path, temporal_path: Path, device: str) -> None:
    preset = load_preset("default")
    on = resolve_device(device)
    single = load_lifter(single_path).to(on)
    temporal = load_temporal(temporal_path).to(on).use_base(single)
    rng = np.random.default_rng(0)
    tracks, frames = 100, 1000
    keypoints = np.concatenate(
        [np.cumsum(rng.normal(0, 2, (frames, 17, 2)), 0) + rng.uniform(200, 800, (1, 17, 2)) for _ in range(tracks)]
    )
    with_conf = np.concatenate([keypoints, np.ones((len(keypoints), 17, 1))], -1)
    table = clip_table(with_conf, np.ones(len(keypoints), bool), torch.tensor([1280, 720]), 30.0)
    table.track_id[:] = np.repeat(np.arange(tracks), frames)
    table.frame[:] = np.tile(np.arange(frames), tracks)
    where = (
        f"{on}, {torch.cuda.get_device_name(on)}"
        if on.type == "cuda"
        else f"the CPU, {torch.get_num_threads()} threads"
    )
    default = preset.lift
    print(f"\n3. lift_tracks throughput on {where} (100 tracks x 1,000 frames), person-frames/s")
    print(
        f"   default [lift]: precision {default.precision} (here {precision_name(resolve_precision(default.precision, on))}),"
        f" mirror_average {default.mirror_average}; bf16 native here: {native_bf16(on)}"
    )
    print(f"   {'precision':10s} {'mirror':7s} {'single-frame':>13s} {'temporal':>10s}")
    for precision in ("fp32", "bf16"):
        for mirror in (False, True):
            config = default.with_values(precision=precision, mirror_average=mirror)
            speeds = []
            for model in (None, temporal):
                lift_tracks(table, single, model, config)  # warm-up
                start = time.perf_counter()
                lift_tracks(table, single, model, config)
                speeds.append(len(table) / (time.perf_counter() - start))
            print(f"   {precision:10s} {str(mirror):7s} {speeds[0]:13,.0f} {speeds[1]:10,.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--single", type=Path, default=default_weights("lifter"))
    parser.add_argument("--temporal", type=Path, default=default_weights("temporal"))
    parser.add_argument("--max-frames", type=int, default=300, help="longest piece of a clip filmed as one track")
    parser.add_argument("--skip", nargs="*", default=[], choices=["accuracy", "real", "speed"])
    parser.add_argument("--cameras", default="default", help="preset whose [synth] cameras film the mocap tracks")
    parser.add_argument("--device", default="cpu", help="where the throughput part runs: cpu, cuda, cuda:N")
    parser.add_argument("--detector-keypoints", action="store_true", help="section 1's 2D where a detector marks it")
    args = parser.parse_args()
    if "accuracy" not in args.skip:
        placement = DETECTOR_PLACEMENT if args.detector_keypoints else None
        accuracy_table(args.single, args.temporal, args.max_frames, args.cameras, placement)
    if "real" not in args.skip:
        real_rows(args.single, args.temporal)
    if "speed" not in args.skip:
        throughput(args.single, args.temporal, args.device)


if __name__ == "__main__":
    main()
