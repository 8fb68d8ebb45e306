"""Which training choice helps: short single-frame lifter trainings with and without it, measured across datasets.

    python bench/augment_ablation.py --steps 4000 [--only pose] [--seeds 2] [--threads 1] [--out runs/ablation]

Each variant trains a single-frame lifter from scratch for --steps steps, once per seed (resumable: rerun to
continue or to only print), and is measured on the CC validation set (another rig, other people; never trained
on) and on Bandai's held-out clips of trained motions (test_seen) and held-out motions (test_unseen), every 5th
frame, with exact 2D, single frames of the detector noise model (`eval --detector-noise`), Gaussian 2D noise of
2% of the person's size, and exact 2D of people whom the frame's bottom edge cuts with 60% of their height in view
(`eval --frame-cut 0.6`: the keypoints below the edge unconfident, on the edge). With several seeds each cell is
the mean, and a second row gives the spread (largest minus smallest) between seeds: a difference between variants
smaller than that is noise.

Variants (the rest of the preset is `default`, whose own choice is "both"):
- baseline: body proportions and the adult-size prior only ([synth]);
- pose: + [pose_augment] on half the samples (limbs bent and turned, legs recombined, bodies tilted);
- joints: + other rigs' joint placement ([synth] joint_offset_m = 0.04);
- both: pose + joints;
- torso: both, and the upper body bent and twisted at the pelvis ([pose_augment] torso_prob = 0.5);
- bandai-size: the body-size prior of earlier shipped weights (Bandai's height, +-15%) instead of adults' heights;
- shipped: the default preset as it is (today the same recipe as both; it follows the preset when that changes);
- no-dropout: the shipped recipe without dropout ([train] dropout = 0);
- more-pose: the shipped recipe with [pose_augment] on 80% of the samples instead of 50%;
- no-joints: the shipped recipe without other rigs' joint placement ([synth] joint_offset_m = 0);
- wide-limbs: the shipped recipe with limb lengths drawn wider ([synth] limb_scale = [0.75, 1.25], not 0.85-1.15);
- deeper: the shipped recipe with three residual blocks instead of two ([train] blocks = 3);
- frame-cut: the shipped recipe with 10% of the people cut, all by the frame's bottom edge ([synth] frame_cut_*);
- side-cut: the shipped recipe with 15% of the people cut, a third of them by a side edge, none by the top one;
- top-cut: 20% cut: bottom 10%, side 5% and top 5% (the shipped recipe's cuts, spelled out).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

import camerapose_cli

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
BANDAI = SHARED / "mocap" / "bandai_motion.tar.xz"
CC = SHARED / "mocap" / "cmu_cc_validation.tar.xz"
NONE = "[train]\npose_augment_prob = 0.0\n[synth]\njoint_offset_m = 0.0\n"
VARIANTS = {
    "baseline": NONE,
    "pose": "[train]\npose_augment_prob = 0.5\n[synth]\njoint_offset_m = 0.0\n",
    "joints": "[train]\npose_augment_prob = 0.0\n[synth]\njoint_offset_m = 0.04\n",
    "both": "[train]\npose_augment_prob = 0.5\n[synth]\njoint_offset_m = 0.04\n",
    "torso": "[train]\npose_augment_prob = 0.5\n[synth]\njoint_offset_m = 0.04\n[pose_augment]\ntorso_prob = 0.5\n",
    "bandai-size": NONE.replace("[synth]\n", "[synth]\nbody_height_m = [1.29, 1.75]\n"),
    "shipped": "",
    "no-dropout": "[train]\ndropout = 0.0\n",
    "more-pose": "[train]\npose_augment_prob = 0.8\n",
    "no-joints": "[synth]\njoint_offset_m = 0.0\n",
    "wide-limbs": "[synth]\nlimb_scale = [0.75, 1.25]\n",
    "deeper": "[train]\nblocks = 3\n",
    "frame-cut": "[synth]\nframe_cut_prob = 0.1\nframe_cut_side_share = 0.0\nframe_cut_top_share = 0.0\n",
    "side-cut": "[synth]\nframe_cut_prob = 0.15\nframe_cut_side_share = 0.33\nframe_cut_top_share = 0.0\n",
    "top-cut": "[synth]\nframe_cut_prob = 0.2\nframe_cut_side_share = 0.25\nframe_cut_top_share = 0.25\n",
}
SETS = (("CC", CC, "all"), ("seen", BANDAI, "test_seen"), ("unseen", BANDAI, "test_unseen"))
CONDITIONS = (
    ("exact", {}),
    ("det.noise", {"detector_noise": True}),
    ("2%", {"noise": 0.02}),
    ("cut 60%", {"frame_cut": 0.6}),
    ("side 60%", {"frame_cut": 0.6, "frame_cut_edge": "side"}),
    ("top 60%", {"frame_cut": 0.6, "frame_cut_edge": "top"}),
)


def run_name(variant: str, seed: int) -> str:
    """Seed 0 keeps the variant's own folder (runs from before --seeds), other seeds get a suffix."""
    return variant if seed == 0 else f"{variant}-seed{seed}"


def preset_file(out: Path, variant: str, seed: int, threads: int) -> Path:
    path = out / f"{run_name(variant, seed)}.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    text = VARIANTS[variant]
    train_lines = f"threads = {threads}\nseed = {seed}\n"
    text = (
        text.replace("[train]\n", "[train]\n" + train_lines) if "[train]" in text else text + "[train]\n" + train_lines
    )
    path.write_text(f'name = "ablation-{run_name(variant, seed)}"\n' + text)
    return path


def measure(weights: Path) -> list[tuple[float, float]]:
    """(MPJPE, PA-MPJPE) mm per set and 2D condition, in the table's column order."""
    cells = []
    for _, mocap, split in SETS:
        for _, kwargs in CONDITIONS:
            r = camerapose_cli.evaluate(weights=weights, mocap=mocap, split=split, **kwargs)
            cells.append((r["mpjpe_mm"], r["pa_mpjpe_mm"]))
    return cells


def print_row(name: str, cells: list[str]) -> None:
    print(f"{name:12s} " + " ".join(f"{cell:>16s}" for cell in cells))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=4000)
    parser.add_argument("--only", choices=list(VARIANTS), nargs="*", default=list(VARIANTS))
    parser.add_argument("--seeds", type=int, default=1, help="trainings per variant, seeds 0..N-1")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("runs/ablation"))
    parser.add_argument("--no-train", action="store_true", help="only measure the variants already trained")
    args = parser.parse_args()
    seeds = range(args.seeds)
    if not args.no_train:
        for variant in args.only:
            for seed in seeds:
                preset = preset_file(args.out, variant, seed, args.threads)
                camerapose_cli.train(BANDAI, args.out / run_name(variant, seed), preset=str(preset), steps=args.steps)
    print(
        f"single-frame lifters, {args.steps} steps each, seeds 0-{args.seeds - 1}; MPJPE / PA-MPJPE in mm, every 5th "
        "frame; det.noise: single frames of the detector noise model, 2%: Gaussian, cut 60%: cut by the frame"
    )
    print_row("variant", [f"{label} {kind}" for label, _, _ in SETS for kind, _ in CONDITIONS])
    for variant in args.only:
        runs = [args.out / run_name(variant, seed) / "lifter.pt" for seed in seeds]
        runs = [weights for weights in runs if weights.is_file()]
        if not runs:
            continue
        figures = np.array([measure(weights) for weights in runs])  # (seeds, cells, 2)
        print_row(variant, [f"{m:.1f} / {pa:.1f}" for m, pa in figures.mean(0)])
        if len(runs) > 1:
            print_row("  spread", [f"{m:.1f} / {pa:.1f}" for m, pa in figures.max(0) - figures.min(0)])


if __name__ == "__main__":
    main()
