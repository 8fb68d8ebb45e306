"""Which augmentation helps: short single-frame lifter trainings with and without each, measured across datasets.

    python bench/augment_ablation.py --steps 4000 [--only pose] [--threads 1] [--out runs/ablation]

Each variant trains a single-frame lifter from scratch for --steps steps (resumable: rerun to continue or to
only print) and is measured on the CC validation set (another rig, other people; never trained on) and on
Bandai's held-out clips of trained motions (test_seen) and held-out motions (test_unseen), exact 2D and 2D
noise of 2% of the person's size, every 5th frame.

Variants (the rest of the preset is `default`, whose own choice is "both"):
- baseline: body proportions and the adult-size prior only ([synth]);
- pose: + [pose_augment] on half the samples (limbs bent and turned, legs recombined, bodies tilted);
- joints: + other rigs' joint placement ([synth] joint_offset_m = 0.04);
- both: pose + joints;
- torso: both, and the upper body bent and twisted at the pelvis ([pose_augment] torso_prob = 0.5);
- bandai-size: the body-size prior of earlier shipped weights (Bandai's height, +-15%) instead of adults' heights.
"""

from __future__ import annotations

import argparse
from pathlib import Path

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
}
SETS = (("CC all", CC, "all"), ("Bandai test_seen", BANDAI, "test_seen"), ("Bandai test_unseen", BANDAI, "test_unseen"))


def preset_file(out: Path, variant: str, threads: int) -> Path:
    path = out / f"{variant}.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    text = VARIANTS[variant]
    threads_line = f"threads = {threads}\n"
    text = (
        text.replace("[train]\n", "[train]\n" + threads_line)
        if "[train]" in text
        else text + "[train]\n" + threads_line
    )
    path.write_text(f'name = "ablation-{variant}"\n' + text)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=4000)
    parser.add_argument("--only", choices=list(VARIANTS), nargs="*", default=list(VARIANTS))
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("runs/ablation"))
    parser.add_argument("--no-train", action="store_true", help="only measure the variants already trained")
    args = parser.parse_args()
    for variant in args.only:
        out = args.out / variant
        if not args.no_train:
            preset = preset_file(args.out, variant, args.threads)
            camerapose_cli.train(BANDAI, out, preset=str(preset), steps=args.steps)
    print(
        f"single-frame lifters, {args.steps} steps each; MPJPE / PA-MPJPE (limbs MPJPE: 12 limb joints, mid-hip "
        "aligned) in mm, every 5th frame"
    )
    print(
        f"{'variant':10s} " + " ".join(f"{label + ' ' + kind:>28s}" for label, _, _ in SETS for kind in ("exact", "2%"))
    )
    for variant in args.only:
        weights = args.out / variant / "lifter.pt"
        if not weights.is_file():
            continue
        cells = []
        for _, mocap, split in SETS:
            for noise in (0.0, 0.02):
                r = camerapose_cli.evaluate(weights=weights, mocap=mocap, split=split, noise=noise)
                cells.append(f"{r['mpjpe_mm']:6.1f} / {r['pa_mpjpe_mm']:5.1f} ({r['limb_mpjpe_mm']:5.1f})")
        print(f"{variant:10s} " + " ".join(f"{c:>28s}" for c in cells))


if __name__ == "__main__":
    main()
