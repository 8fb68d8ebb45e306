"""The refiner against the issue's targets, in one run, beside the classical filters on the same input.

    python bench/refine_accuracy.py [--weights weights/refiner.pt] [--ablation runs/refiner-plain/refiner.pt]

1. Held-out mocap clips (test_seen), filmed by virtual cameras and corrupted by the detector noise model:
   2D error of the raw keypoints, the refiner, a One-Euro filter and a Butterworth low-pass (scipy filtfilt),
   the two filters' parameters tuned on the validation clips. Then the 3D MPJPE after lifting each.
2. The courtyard video: jitter (acceleration error) and agreement with confident detections.
"""

from __future__ import annotations

import argparse
import itertools
import tempfile
from pathlib import Path

import numpy as np
import torch
from scipy.signal import butter, filtfilt

import camerapose_cli
from camerapose_cli.config import load_preset
from camerapose_cli.core.metrics import acceleration_error
from camerapose_cli.core.skeleton import NUM_H36M_JOINTS
from camerapose_cli.io.mocap import load_mocap
from camerapose_cli.io.schema import read_keypoints2d
from camerapose_cli.models.checkpoints import default_weights, load_lifter, load_refiner
from camerapose_cli.stages.lift import lift_with_intrinsics
from camerapose_cli.stages.refine import refine_table, refine_track
from camerapose_cli.training.data import make_sequences
from camerapose_cli.training.loop import valid_window_starts
from camerapose_cli.training.noise import load_calibration
from camerapose_cli.training.splits import split_clips

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
FPS = 30.0


def test_sequences(mocap, clips, count, length, seed, preset):
    index = {n: i for i, n in enumerate(mocap.names)}
    starts = valid_window_starts(
        np.array([mocap.starts[index[c]] for c in clips]),
        np.array([mocap.starts[index[c] + 1] for c in clips]),
        length,
        1,
    )
    chosen = np.random.default_rng(seed).choice(starts, count, replace=False)
    calibration = load_calibration(preset.refine_noise)
    return make_sequences(
        mocap.points,
        chosen,
        length,
        1,
        preset.synth,
        preset.refine_noise,
        calibration,
        torch.Generator().manual_seed(seed),
    )


def fill_gaps(noisy: np.ndarray, present: np.ndarray) -> np.ndarray:
    """Linear interpolation over missing frames, for the filters (which need every frame)."""
    t = np.arange(len(noisy))
    out = noisy.copy()
    if present.sum() >= 2 and not present.all():
        for j in range(noisy.shape[1]):
            for c in range(2):
                out[~present, j, c] = np.interp(t[~present], t[present], noisy[present, j, c])
    return out


def one_euro(seq: np.ndarray, mincutoff: float, beta: float) -> np.ndarray:
    from OneEuroFilter import OneEuroFilter

    out = np.empty_like(seq)
    for j, c in itertools.product(range(seq.shape[1]), range(2)):
        f = OneEuroFilter(FPS, mincutoff=mincutoff, beta=beta)
        out[:, j, c] = [f(float(v), i / FPS) for i, v in enumerate(seq[:, j, c])]
    return out


def butterworth(seq: np.ndarray, cutoff_hz: float) -> np.ndarray:
    b, a = butter(2, cutoff_hz / (FPS / 2))
    return filtfilt(b, a, seq, axis=0, padlen=min(len(seq) - 1, 3 * max(len(a), len(b))))


def errors(pred: list[np.ndarray], seqs) -> float:
    """Mean 2D error (px) over present frames."""
    total, count = 0.0, 0
    for p, clean, present in zip(pred, seqs.clean.numpy(), seqs.present.numpy()):
        e = np.linalg.norm(p[present, :, :2] - clean[present], axis=-1)
        total, count = total + e.sum(), count + e.size
    return total / count


def confident_stats(pred: list[np.ndarray], seqs, threshold: float = 0.8) -> tuple[float, float]:
    """On joints the detector gave confidence > threshold: (mean error px, median distance moved from the detection px)."""
    err, moved = [], []
    for p, clean, noisy, conf, present in zip(
        pred, seqs.clean.numpy(), seqs.noisy.numpy(), seqs.conf.numpy(), seqs.present.numpy()
    ):
        sure = (conf > threshold) & present[:, None]
        err.append(np.linalg.norm(p[..., :2] - clean, axis=-1)[sure])
        moved.append(np.linalg.norm(p[..., :2] - noisy, axis=-1)[sure])
    return float(np.concatenate(err).mean()), float(np.median(np.concatenate(moved)))


def run_method(seqs, fn):
    return [
        fn(noisy, conf, present)
        for noisy, conf, present in zip(seqs.noisy.numpy(), seqs.conf.numpy(), seqs.present.numpy())
    ]


def refined(model, window):
    def fn(noisy, conf, present):
        frames = np.flatnonzero(present)
        kp = np.concatenate([noisy, conf[..., None]], -1)[present]
        out = np.zeros_like(np.concatenate([noisy, conf[..., None]], -1))
        out[present] = refine_track(model, frames, kp, window)
        return out

    return fn


def lift_mpjpe(lifter, preds, seqs) -> float:
    errs = []
    for pred, cam, present, focal, principal in zip(
        preds, seqs.cam_points.numpy(), seqs.present.numpy(), seqs.focal.numpy(), seqs.principal.numpy()
    ):
        kp = pred[present].copy()
        if kp.shape[-1] == 2:
            kp = np.concatenate([kp, np.ones((*kp.shape[:2], 1), np.float32)], -1)
        n = len(kp)
        result = lift_with_intrinsics(
            lifter, kp.astype(np.float32), np.full(n, focal), np.tile(principal, (n, 1)), 4096
        )
        truth = cam[present][:, :NUM_H36M_JOINTS] - cam[present][:, :1]
        errs.append(np.linalg.norm(result.pose - truth, axis=-1).mean(1))
    return float(np.concatenate(errs).mean() * 1000)


def courtyard(model, window, preset):
    video = SHARED / "videos" / "courtyard_dribble_40f.mp4"
    with tempfile.TemporaryDirectory() as tmp:
        camerapose_cli.extract(video, tmp, preset=preset, device="cpu", force=True)
        table = read_keypoints2d(Path(tmp) / "keypoints2d" / f"{video.name}.parquet")
    ids, counts = np.unique(table.track_id, return_counts=True)
    rows = np.flatnonzero(table.track_id == ids[counts.argmax()])
    rows = rows[np.argsort(table.frame[rows])]
    raw = table.keypoints[rows]
    ref = refine_table(table, model, preset.refine).keypoints[rows]

    def accel(kp):  # jitter: the mean size of the second difference along time
        xy = torch.from_numpy(kp[..., :2])
        return float(acceleration_error(xy, torch.zeros_like(xy)))

    confident = raw[..., 2] > 0.8
    agreement = float(np.median(np.linalg.norm(ref[..., :2] - raw[..., :2], axis=-1)[confident]))
    return accel(raw), accel(ref), agreement, len(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path, default=default_weights("refiner"))
    parser.add_argument("--ablation", type=Path, default=None, help="a refiner trained with the plain loss")
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--length", type=int, default=90)
    args = parser.parse_args()
    preset = load_preset("default")
    window = preset.refine.window
    mocap = load_mocap(SHARED / "mocap" / "bandai_motion.tar.xz")
    splits = split_clips(mocap.names, preset.mocap)
    test = test_sequences(mocap, splits["test_seen"], args.count, args.length, 1, preset)
    val = test_sequences(mocap, splits["val"], 60, args.length, 2, preset)

    def filled(fn):
        return lambda noisy, conf, present: fn(fill_gaps(noisy, present))

    best_euro = min(
        ((m, b) for m in (0.3, 1.0, 3.0, 10.0) for b in (0.0, 0.001, 0.01, 0.1)),
        key=lambda p: errors(run_method(val, filled(lambda s: one_euro(s, *p))), val),
    )
    best_cut = min(
        (1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 10.0),
        key=lambda c: errors(run_method(val, filled(lambda s: butterworth(s, c))), val),
    )
    methods = {
        "raw detections": lambda noisy, conf, present: noisy,
        f"One-Euro (mincutoff {best_euro[0]}, beta {best_euro[1]})": filled(lambda s: one_euro(s, *best_euro)),
        f"Butterworth filtfilt ({best_cut} Hz, order 2)": filled(lambda s: butterworth(s, best_cut)),
        "refiner (confidence-guided loss)": refined(load_refiner(args.weights), window),
    }
    if args.ablation is not None:
        methods["refiner (plain loss, ablation)"] = refined(load_refiner(args.ablation), window)
    lifter = load_lifter(default_weights("lifter"))
    print(
        f"{args.count} held-out sequences of {args.length} frames (30 fps), detector noise model; filters tuned on {len(val.noisy)} validation sequences"
    )
    print(
        f"{'method':48s} {'2D error px':>11s} {'vs raw':>7s} {'3D MPJPE mm':>12s}   {'conf>0.8: error, moved (px)':>28s}"
    )
    raw_err = raw_mpjpe = None
    for name, fn in methods.items():
        preds = run_method(test, fn)
        err, mp = errors(preds, test), lift_mpjpe(lifter, preds, test)
        raw_err, raw_mpjpe = raw_err or err, raw_mpjpe or mp
        sure_err, moved = confident_stats(preds, test)
        print(
            f"{name:48s} {err:11.2f} {err / raw_err:7.2f} {mp:12.1f} ({mp / raw_mpjpe - 1:+.0%})   {sure_err:10.2f} {moved:8.2f}"
        )
    if (SHARED / "videos").is_dir():
        a_raw, a_ref, agree, n = courtyard(load_refiner(args.weights), window, preset)
        print(f"\ncourtyard video, dominant track ({n} frames):")
        print(
            f"  jitter (mean |2nd difference|): raw {a_raw:.1f} px, refined {a_ref:.1f} px ({a_ref / a_raw - 1:+.0%}; target <= -50%)"
        )
        print(f"  agreement with detections of confidence > 0.8: median {agree:.2f} px (target <= 3 px)")


if __name__ == "__main__":
    main()
