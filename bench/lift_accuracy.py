"""The lifter against the issue's targets, in one run: held-out mocap accuracy, throughput, COCO coverage.

    python bench/lift_accuracy.py [--weights weights/lifter.pt] [--stride 5] [--mirror]

Everything lifts as the default preset does; `--mirror` turns on [lift] mirror_average (docs/method.md).

1. Held-out Bandai clips (whole clips of trained motions, and whole held-out motions: dance, fighting),
   filmed by seeded virtual cameras: MPJPE / PA-MPJPE with exact 2D and with 2D noise of 2% of the height.
2. `lift` throughput on this CPU, batched (person-frames per second), against the 50,000 target.
3. Coverage of poses the mocap lacks: the shared COCO annotations (real people; sitting, crouching...) lifted
   from their labelled 2D: reprojection error (px and % of the person's height) and limb symmetry.
"""

from __future__ import annotations

import argparse
import os
import time
from functools import partial
from pathlib import Path

import numpy as np
import torch

from camerapose_cli.config import load_preset
from camerapose_cli.core.device import module_device, precision_name, resolve_precision
from camerapose_cli.core.metrics import limb_asymmetry
from camerapose_cli.io.coco import read_coco_keypoints
from camerapose_cli.models.checkpoints import default_weights, load_lifter
from camerapose_cli.stages.lift import lift_keypoints
from camerapose_cli.training.evaluate import evaluate_on_bodies, mocap_test_bodies

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path, default=default_weights("lifter"))
    parser.add_argument("--stride", type=int, default=5)
    parser.add_argument("--rows", type=int, default=262_144, help="rows for the throughput run")
    parser.add_argument("--mirror", action="store_true", help="average each lift with its mirror image's")
    args = parser.parse_args()
    preset = load_preset("default")
    mirror = args.mirror or preset.lift.mirror_average
    model = load_lifter(args.weights)
    precision = resolve_precision(preset.lift.precision, module_device(model))
    archive = SHARED / "mocap" / "bandai_motion.tar.xz"
    print(
        f"weights {args.weights} ({args.weights.stat().st_size / 1e6:.1f} MB); {os.cpu_count()} cores, torch {torch.__version__}"
    )

    print("\n1. held-out mocap (mm)                       MPJPE   PA-MPJPE  target")
    for split in ("test_seen", "test_unseen"):
        bodies = mocap_test_bodies(archive, split, preset.mocap, args.stride)
        for noise, target in ((0.0, "<= 45 / <= 35"), (0.02, "<= 60")):
            r = evaluate_on_bodies(
                model,
                bodies,
                preset.synth,
                preset.lifter_noise,
                noise_frac=noise,
                seed=0,
                mirror=mirror,
                precision=precision,
            )
            label = f"{split:11s} {len(bodies):6d} poses, noise {noise:.0%}"
            print(f"   {label:40s} {r['mpjpe_mm']:6.1f}   {r['pa_mpjpe_mm']:6.1f}    {target}")

    print("\n2. lift throughput (batched, CPU)")
    rng = np.random.default_rng(0)
    keypoints = np.concatenate(
        [rng.uniform(100, 900, (args.rows, 17, 2)), rng.uniform(0.3, 1, (args.rows, 17, 1))], -1
    ).astype(np.float32)
    width, height = np.full(args.rows, 1920), np.full(args.rows, 1080)
    params = preset.lift
    lift = partial(lift_keypoints, model, fov_deg=params.fov_deg, mirror=mirror, precision=precision)
    lift(keypoints[:4096], width[:4096], height[:4096], batch_size=params.batch_size)
    started = time.perf_counter()
    lift(keypoints, width, height, batch_size=params.batch_size)
    seconds = time.perf_counter() - started
    print(
        f"   {args.rows / seconds:,.0f} person-frames/s ({args.rows} rows, batch {params.batch_size}, "
        f"{precision_name(precision)}, mirror {mirror})   target >= 50,000"
    )

    print("\n3. COCO annotations (real people, poses the mocap lacks)")
    coco = read_coco_keypoints(SHARED / "coco" / "test_coco.json", min_keypoints=8)
    result = lift(coco.keypoints, coco.width, coco.height, batch_size=1024)
    labelled = coco.keypoints[..., 2] > 0
    tall = np.array([np.ptp(k[mask, 1]) for k, mask in zip(coco.keypoints, labelled)])
    asym = limb_asymmetry(torch.from_numpy(result.pose)).numpy()
    print(f"   {len(coco.keypoints)} people with >= 8 labelled keypoints")
    print(
        f"   reprojection error: median {np.median(result.reproj_err_px):.1f} px, "
        f"{np.median(result.reproj_err_px / tall) * 100:.1f}% of the person's 2D height"
    )
    print(
        f"   limb asymmetry |L-R|/mean: median {np.median(asym) * 100:.1f}%, worst person {asym.mean(1).max() * 100:.1f}%"
    )
    for i, (err, h, a) in enumerate(zip(result.reproj_err_px, tall, asym.mean(1))):
        print(
            f"     person {i:2d} ({coco.image[i].name}): reprojection {err:6.1f} px ({err / h * 100:4.1f}%), asymmetry {a * 100:4.1f}%"
        )


if __name__ == "__main__":
    main()
