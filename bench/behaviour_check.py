"""Check that a change keeps behaviour: the outputs of two runs agree, and lifted Bandai poses agree with a reference.

    # before the change (e.g. from a `git worktree` of the old commit, with PYTHONPATH pointing at it):
    camerapose extract ../shared/data/videos --out /tmp/ref/run -q && camerapose lift /tmp/ref/run -q
    python bench/behaviour_check.py save-bandai /tmp/ref/bandai_lift.npz
    # after it:
    camerapose extract ../shared/data/videos --out /tmp/new/run -q && camerapose lift /tmp/new/run -q
    python bench/behaviour_check.py compare-runs /tmp/ref/run /tmp/new/run
    python bench/behaviour_check.py compare-bandai /tmp/ref/bandai_lift.npz

`compare-runs` requires keypoints2d tables to be identical, column by column, and reports the largest
difference in every column, which must be within 1e-5 (absolute or relative) for keypoints3d and
keypoints2d_refined; `compare-bandai` lifts the Bandai test_seen
split (every 5th frame, exact 2D from seeded virtual cameras) and reports the largest joint difference (m).
Only the public interfaces are used (`camerapose_cli` and the CLI), so it runs against old and new code alike.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
TOLERANCE_M = 1e-5


def lift_bandai_test_split() -> dict[str, np.ndarray]:
    from camerapose_cli.config import load_preset
    from camerapose_cli.models.checkpoints import default_weights, load_lifter
    from camerapose_cli.stages.lift import lift_with_intrinsics
    from camerapose_cli.training.data import film_bodies
    from camerapose_cli.training.evaluate import mocap_test_bodies

    preset = load_preset("default")
    bodies = mocap_test_bodies(SHARED / "mocap" / "bandai_motion.tar.xz", "test_seen", preset.mocap, 5)
    _, coco_px, focal, principal, _ = film_bodies(
        torch.from_numpy(bodies), preset.synth, torch.Generator().manual_seed(0)
    )
    keypoints = torch.cat([coco_px, torch.ones(*coco_px.shape[:2], 1)], -1).numpy()
    result = lift_with_intrinsics(
        load_lifter(default_weights("lifter")), keypoints, focal.numpy(), principal.numpy(), 4096
    )
    return {"keypoints": keypoints, "pose": result.pose, "root": result.root_cam}


def column_arrays(path: Path) -> dict[str, np.ndarray]:
    table = pq.read_table(path)
    out = {}
    for name in table.column_names:
        column = table.column(name).combine_chunks()
        if pa.types.is_fixed_size_list(column.type):
            out[name] = column.flatten().to_numpy(zero_copy_only=False).reshape(len(column), -1)
        else:
            out[name] = column.to_numpy(zero_copy_only=False)
    return out


def compare_runs(ref: Path, new: Path) -> bool:
    ok = True
    for folder, exact in (("keypoints2d", True), ("keypoints2d_refined", False), ("keypoints3d", False)):
        for ref_table in sorted((ref / folder).rglob("*.parquet")):
            new_table = new / folder / ref_table.relative_to(ref / folder)
            if not new_table.is_file():
                print(f"MISSING {new_table}")
                ok = False
                continue
            a, b = column_arrays(ref_table), column_arrays(new_table)
            for name in a:
                if a[name].shape != b[name].shape:
                    print(f"{folder}/{ref_table.name} {name}: shape {a[name].shape} vs {b[name].shape}")
                    ok = False
                elif a[name].dtype.kind in "fiu":
                    x, y = a[name].astype(np.float64), b[name].astype(np.float64)
                    diff = float(np.abs(x - y).max(initial=0.0))
                    same = diff == 0.0 if exact else bool(np.allclose(x, y, rtol=TOLERANCE_M, atol=TOLERANCE_M))
                    ok &= same
                    print(f"{'ok  ' if same else 'DIFF'} {folder}/{ref_table.name} {name}: max |difference| {diff:.3g}")
                else:
                    same = bool((a[name] == b[name]).all())
                    ok &= same
                    print(f"{'ok  ' if same else 'DIFF'} {folder}/{ref_table.name} {name}: equal={same}")
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("save-bandai").add_argument("out", type=Path)
    sub.add_parser("compare-bandai").add_argument("reference", type=Path)
    runs = sub.add_parser("compare-runs")
    runs.add_argument("reference", type=Path)
    runs.add_argument("new", type=Path)
    args = parser.parse_args()
    if args.command == "save-bandai":
        np.savez(args.out, **lift_bandai_test_split())
        return
    if args.command == "compare-runs":
        sys.exit(0 if compare_runs(args.reference, args.new) else 1)
    reference = np.load(args.reference)
    current = lift_bandai_test_split()
    same_input = np.array_equal(reference["keypoints"], current["keypoints"])
    pose = float(np.abs(reference["pose"] - current["pose"]).max())
    root = float(np.abs(reference["root"] - current["root"]).max())
    print(f"Bandai test_seen: {len(current['pose'])} poses; identical 2D input: {same_input}")
    print(f"  max |difference|: joints {pose:.3g} m, root {root:.3g} m (tolerance {TOLERANCE_M:g} m)")
    sys.exit(0 if same_input and max(pose, root) <= TOLERANCE_M else 1)


if __name__ == "__main__":
    main()
