"""How the lifter does on data it was not trained on, and how far its 2D inputs are from real detections.

    python bench/generalization.py [--weights weights/lifter.pt] [--stride 5] [--ratios-only]

1. MPJPE / PA-MPJPE (mm) by motion group: the CMU-on-Character-Creator validation set (another skeleton,
   other performers and motions; never trained on) and Bandai's held-out clips (seen) and motions (unseen),
   filmed by seeded virtual cameras ([synth]), exact 2D and 2D noise of 2% of the person's size.
2. The gap between mocap joints and detector keypoints (issue 11, lever 3): 2D body ratios (hip width,
   shoulder width and leg length, each over the torso length) in YOLO detections on the shared videos and in
   the shared COCO annotations, against the same ratios in the lifter's synthetic inputs (Bandai and CC bodies
   projected by the same virtual cameras). Medians and quartiles over people. Then, on upright people with
   straight legs, the ratios that place the detector's keypoints on the skeleton (core.keypoints.DETECTOR_PLACEMENT):
   thigh over shin, torso over shin and legs over torso, synthetic at the skeleton's joints and at that placement.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch

import camerapose_cli
from camerapose_cli.config import load_preset
from camerapose_cli.core.keypoints import DETECTOR_PLACEMENT
from camerapose_cli.core.skeleton import COCO17_JOINTS
from camerapose_cli.io.coco import read_coco_keypoints
from camerapose_cli.io.schema import read_keypoints2d
from camerapose_cli.models.checkpoints import default_weights
from camerapose_cli.training.data import augment_bodies, film_bodies
from camerapose_cli.training.evaluate import mocap_eval_bodies

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
BANDAI = SHARED / "mocap" / "bandai_motion.tar.xz"
CC = SHARED / "mocap" / "cmu_cc_validation.tar.xz"
NOISE = 0.02
MIN_CONF = 0.5  # detector keypoints used for the ratios
STRAIGHT_KNEE_COS = -0.97  # hip-knee-ankle angle over about 166 degrees in 2D: a straight leg
UPRIGHT = 0.9  # the shoulder-to-hip line within about 25 degrees of the image's vertical
J = {name: i for i, name in enumerate(COCO17_JOINTS)}


def accuracy_rows(weights: Path, stride: int) -> None:
    print(f"1. 3D error (mm), shipped single-frame lifter {weights.name}; virtual cameras from [synth], seed 0")
    print(f"   {'set / motion group':34s} {'poses':>6s}   {'exact 2D':>15s}   {'2D noise 2%':>15s}")
    print(f"   {'':34s} {'':6s}   {'MPJPE':>7s} {'PA':>7s}   {'MPJPE':>7s} {'PA':>7s}")
    for label, mocap, split in (
        ("CC validation", CC, "all"),
        ("Bandai", BANDAI, "test_seen"),
        ("Bandai", BANDAI, "test_unseen"),
    ):
        exact = camerapose_cli.evaluate(weights=weights, mocap=mocap, split=split, by_group=True, stride=stride)
        noisy = camerapose_cli.evaluate(
            weights=weights, mocap=mocap, split=split, by_group=True, stride=stride, noise=NOISE
        )
        print(
            f"   {label + ' ' + split + ', all':34s} {exact['poses']:6d}   {exact['mpjpe_mm']:7.1f} {exact['pa_mpjpe_mm']:7.1f}"
            f"   {noisy['mpjpe_mm']:7.1f} {noisy['pa_mpjpe_mm']:7.1f}"
        )
        if mocap == CC or split == "test_unseen":
            for group, row in exact["groups"].items():
                n = noisy["groups"][group]
                print(
                    f"     {group:32s} {row['poses']:6d}   {row['mpjpe_mm']:7.1f} {row['pa_mpjpe_mm']:7.1f}"
                    f"   {n['mpjpe_mm']:7.1f} {n['pa_mpjpe_mm']:7.1f}"
                )


def body_ratios(keypoints: np.ndarray) -> np.ndarray:
    """(N, 3) hip width, shoulder width and hip-to-ankle length over the torso length (mid-hip to mid-shoulder),
    from COCO-17 keypoints (N, 17, 2+): NaN where a needed keypoint is missing (x, y = 0 or confidence low)."""
    xy = keypoints[..., :2].astype(np.float64)
    if keypoints.shape[-1] > 2:
        xy = np.where(keypoints[..., 2:3] >= MIN_CONF, xy, np.nan)
    mid_hip = (xy[:, J["left_hip"]] + xy[:, J["right_hip"]]) / 2
    mid_shoulder = (xy[:, J["left_shoulder"]] + xy[:, J["right_shoulder"]]) / 2
    mid_ankle = (xy[:, J["left_ankle"]] + xy[:, J["right_ankle"]]) / 2
    torso = np.linalg.norm(mid_shoulder - mid_hip, axis=-1)
    hips = np.linalg.norm(xy[:, J["left_hip"]] - xy[:, J["right_hip"]], axis=-1)
    shoulders = np.linalg.norm(xy[:, J["left_shoulder"]] - xy[:, J["right_shoulder"]], axis=-1)
    legs = np.linalg.norm(mid_ankle - mid_hip, axis=-1)
    return np.stack([hips, shoulders, legs], -1) / torso[:, None]


def leg_ratios(keypoints: np.ndarray) -> np.ndarray:
    """(M, 3) thigh over shin, torso over shin and hip-to-ankle over torso of each side of each person (N, 17, 2+)
    whose leg is straight and torso upright in the image (so that the view foreshortens neither much)."""
    xy = keypoints[..., :2].astype(np.float64)
    if keypoints.shape[-1] > 2:
        xy = np.where(keypoints[..., 2:3] >= MIN_CONF, xy, np.nan)
    rows = []
    for side in ("left", "right"):
        hip, knee, ankle, shoulder = (xy[:, J[f"{side}_{j}"]] for j in ("hip", "knee", "ankle", "shoulder"))
        thigh, shin = np.linalg.norm(knee - hip, axis=-1), np.linalg.norm(ankle - knee, axis=-1)
        torso = np.linalg.norm(shoulder - hip, axis=-1)
        with np.errstate(invalid="ignore", divide="ignore"):
            straight = np.sum((hip - knee) * (ankle - knee), -1) / (thigh * shin) < STRAIGHT_KNEE_COS
            upright = np.abs((shoulder - hip)[:, 1]) / torso > UPRIGHT
            rows.append(np.stack([thigh / shin, torso / shin, (thigh + shin) / torso], -1)[straight & upright])
    return np.concatenate(rows)


def synthetic_keypoints(
    mocap: Path, split: str, stride: int, augment: bool = False, detector: bool = False
) -> np.ndarray:
    """COCO keypoints (N, 17, 2) px of mocap bodies filmed by [synth] cameras; `augment`: with the training
    augmentation of body proportions (what the lifter is trained on); `detector`: the keypoints where a detector
    places them (core.keypoints.DETECTOR_PLACEMENT), else at the skeleton's joints."""
    preset = load_preset("default")
    gen = torch.Generator().manual_seed(0)
    bodies = torch.from_numpy(mocap_eval_bodies(mocap, split, preset.mocap, stride)[0])
    if augment:
        bodies = augment_bodies(bodies, preset.synth, gen)
    placement = DETECTOR_PLACEMENT if detector else None
    return film_bodies(bodies, preset.synth, gen, placement)[1].numpy()


def ratio_rows(stride: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        camerapose_cli.extract(SHARED / "videos", tmp, device="cpu")
        detections = np.concatenate(
            [read_keypoints2d(p).keypoints for p in sorted(Path(tmp, "keypoints2d").glob("*.parquet"))]
        )
    coco = read_coco_keypoints(SHARED / "coco" / "test_coco.json").keypoints
    coco = np.where(coco[..., 2:3] > 0, coco, np.nan)
    sources = {
        "YOLO11n-pose on the shared videos": body_ratios(detections),
        "COCO annotations (shared)": body_ratios(coco[..., :2]),
        "synthetic inputs, Bandai test_seen": body_ratios(synthetic_keypoints(BANDAI, "test_seen", stride * 4)),
        "training inputs (augmented), Bandai train": body_ratios(
            synthetic_keypoints(BANDAI, "train", stride * 40, augment=True)
        ),
        "synthetic inputs, CC validation": body_ratios(synthetic_keypoints(CC, "all", stride * 4)),
    }
    print("\n2. 2D body ratios over the torso length (median [quartiles]), people with the needed keypoints")
    print(f"   {'source':42s} {'people':>6s}   {'hip width':>18s}   {'shoulder width':>18s}   {'hip-ankle':>18s}")
    for label, ratios in sources.items():
        ok = ratios[np.isfinite(ratios).all(1)]
        cells = [f"{np.median(c):.2f} [{np.quantile(c, 0.25):.2f}-{np.quantile(c, 0.75):.2f}]" for c in ok.T]
        print(f"   {label:42s} {len(ok):6d}   {cells[0]:>18s}   {cells[1]:>18s}   {cells[2]:>18s}")
    legs = {
        "YOLO11n-pose on the shared videos": leg_ratios(detections),
        "COCO annotations (shared)": leg_ratios(coco[..., :2]),
    }
    for label, mocap, split in (("Bandai test_seen", BANDAI, "test_seen"), ("CC validation", CC, "all")):
        for detector in (False, True):
            where = "detector placement" if detector else "joints"
            keypoints = synthetic_keypoints(mocap, split, stride * 4, detector=detector)
            legs[f"synthetic, {label}, {where}"] = leg_ratios(keypoints)
    d = DETECTOR_PLACEMENT
    placement = f"hip {d.hip_along_thigh.item():.2f}, knee {d.knee_along_shin.item():.2f}, shoulder {d.shoulder_up_m.item():.2f} m"
    print(f"\n   upright, straight legs (one row per side), median: detector placement {placement}")
    print(f"   {'source':52s} {'legs':>6s}   {'thigh/shin':>10s}   {'torso/shin':>10s}   {'legs/torso':>10s}")
    for label, ratios in legs.items():
        ok = ratios[np.isfinite(ratios).all(1)]
        cells = "   ".join(f"{np.median(c):10.2f}" for c in ok.T)
        print(f"   {label:52s} {len(ok):6d}   {cells}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path, default=default_weights("lifter"))
    parser.add_argument("--stride", type=int, default=5)
    parser.add_argument("--ratios-only", action="store_true", help="only section 2 (no lifter)")
    args = parser.parse_args()
    if not args.ratios_only:
        accuracy_rows(args.weights, args.stride)
    ratio_rows(args.stride)


if __name__ == "__main__":
    main()
