"""The export stage's world frame, BVH round trip and foot skate, measured on mocap filmed by tilted cameras.

    python bench/export_world.py [--clips 40] [--png docs/images/export_side_view.png]

Each clip (Bandai test_seen and test_unseen, the CC validation set; at most 300 frames each) is filmed by one
static camera 4-6 m away, tilted down 0, 10, 20 or 30 degrees and rolled 0, 5 or 10 degrees (drawn per clip,
seeded), 1920x1080 with a 60-degree field of view. Two inputs to export.world:
- "exact 3D": the true joints in camera coordinates (what the world frame can do on perfect 3D);
- "lifted": exact 2D lifted by the shipped lifters as `lift` does (stages.lift.lift_tracks), the real chain.
Printed: gravity error (degrees), camera height error (mm; the true floor is `[export] ankle_height_m` below the
clip's median lowest ankle, since mocap sets put their floors at different heights), which method found gravity,
the BVH round trip (forward kinematics of the written file against the fitted skeleton and against the lifted
joints, mm), foot skate (mm per frame while a foot is on the floor) of the lifted tracks, with `--pin-feet`'s
correction and for the truth, and the error of the pelvis' horizontal speed with and without the correction.
"""

from __future__ import annotations

import argparse
import tempfile
from collections import Counter
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch

from camerapose_cli.config import load_preset
from camerapose_cli.core.geometry import focal_from_fov, project_to_image
from camerapose_cli.core.skeleton import COCO_FROM_BODY, H36M17_BONES, H36M17_JOINTS, NUM_H36M_JOINTS
from camerapose_cli.export.contact import foot_skate_mm_per_frame, pin_planted_feet
from camerapose_cli.export.evaluate import film_tilted, gravity_error_deg, true_world
from camerapose_cli.export.formats import write_bvh
from camerapose_cli.export.rig import RIG, fitted_joints
from camerapose_cli.export.world import estimate_world_frame
from camerapose_cli.io.bvh import parse_bvh
from camerapose_cli.models.checkpoints import default_weights, load_lifter, load_temporal
from camerapose_cli.stages.lift import lift_tracks
from camerapose_cli.training.evaluate import clip_table, mocap_eval_clips

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
SETS = (
    ("Bandai test_seen", SHARED / "mocap" / "bandai_motion.tar.xz", "test_seen"),
    ("Bandai test_unseen", SHARED / "mocap" / "bandai_motion.tar.xz", "test_unseen"),
    ("CC validation", SHARED / "mocap" / "cmu_cc_validation.tar.xz", "all"),
)
IMAGE = (1920, 1080)
FOV_DEG = 60.0
TILTS, ROLLS = (0.0, 10.0, 20.0, 30.0), (0.0, 5.0, 10.0)
MAX_FRAMES = 300


def lift_view(camera_points: np.ndarray, fps: float, single, temporal, lift_cfg) -> np.ndarray:
    """Project a filmed clip (T, 21, 3) and lift it as `lift` does: camera-frame joints (T, 17, 3)."""
    t = len(camera_points)
    focal = focal_from_fov(torch.tensor([float(IMAGE[0])]), torch.tensor([float(IMAGE[1])]), torch.tensor([FOV_DEG]))
    principal = torch.tensor([IMAGE[0] / 2, IMAGE[1] / 2])
    cam = torch.from_numpy(camera_points[:, list(COCO_FROM_BODY)]).float()
    coco = project_to_image(cam, focal.expand(t), principal.expand(t, 2))
    keypoints = torch.cat([coco, torch.ones(t, 17, 1)], -1).numpy()
    table = clip_table(keypoints, np.ones(t, bool), torch.tensor(IMAGE), fps)
    intrinsics = (np.full(t, float(focal), np.float32), np.repeat(principal.numpy()[None], t, 0))
    result, _ = lift_tracks(table, single, temporal, lift_cfg, intrinsics)
    return result.pose + result.root_cam[:, None]


def bvh_round_trip(world: np.ndarray, times: np.ndarray) -> tuple[float, float]:
    """Median distance (mm) of the written BVH's forward kinematics to the fitted skeleton and to the joints."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp, "track.bvh")
        lengths = write_bvh(path, world, times)
        motion = parse_bvh(path.read_text())
    positions = motion.forward_kinematics()[0] / 100.0
    names = [j.name for j in RIG]
    at = [H36M17_JOINTS.index(j.at) for j in RIG]
    fk = positions[:, [motion.names.index(n) for n in names]]
    fitted = fitted_joints(world, lengths)[:, at]
    return (
        float(np.median(np.linalg.norm(fk - fitted, axis=-1)) * 1000),
        float(np.median(np.linalg.norm(fk - world[:, at], axis=-1)) * 1000),
    )


def root_speed_error_mm(world: np.ndarray, truth: np.ndarray) -> float:
    """Mean difference of the pelvis' horizontal speed (mm per frame): how well the trajectory travels."""
    speed = [np.linalg.norm(np.diff(w[:, 0][:, [0, 2]], axis=0), axis=-1) for w in (world, truth)]
    return float(np.abs(speed[0] - speed[1]).mean() * 1000)


def side_view_png(world: np.ndarray, times: np.ndarray, path: Path, tilt: float, roll: float) -> None:
    """A side view (x: world z, y: height) of every 10th frame of a track, shifted along by time, with the floor."""
    fig, ax = plt.subplots(figsize=(11, 3.2))
    shift = np.linspace(0, 8, len(world))
    for i in range(0, len(world), 10):
        pose = world[i]
        colour = plt.cm.viridis(i / max(len(world) - 1, 1))
        for parent, child in H36M17_BONES:
            xs = [pose[parent, 2] + shift[i], pose[child, 2] + shift[i]]
            ax.plot(xs, [pose[parent, 1], pose[child, 1]], color=colour, lw=1.5)
    ax.axhline(0.0, color="k", lw=1)
    ax.set_aspect("equal")
    ax.set_xlabel(f"world z (m) + time offset ({times[-1] - times[0]:.1f} s over the strip)")
    ax.set_ylabel("height (m)")
    ax.set_title(
        f"an exported track in the world frame (lifted from exact 2D, camera tilted {tilt:.0f}°, rolled {roll:.0f}°)"
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=40, help="clips per set (evenly spaced)")
    parser.add_argument("--png", type=Path, default=None, help="also draw one exported track's side view")
    args = parser.parse_args()
    preset = load_preset("default")
    single = load_lifter(default_weights("lifter"))
    temporal = load_temporal(default_weights("temporal")).use_base(single)
    rng = np.random.default_rng(0)
    ankle = preset.export.ankle_height_m
    print("world frame from one static camera; gravity error (deg) and camera height error (mm): median / p90")
    head = f"{'gravity':>13s} {'height':>13s}  methods"
    print(f"{'set':20s} {'clips':>5s}   exact 3D: {head}   |   lifted: {head}")
    drawn = False
    for label, path, split in SETS:
        clips = mocap_eval_clips(path, split, preset.mocap, MAX_FRAMES)
        clips = [clips[i] for i in np.linspace(0, len(clips) - 1, min(args.clips, len(clips))).astype(int)]
        rows = {"exact": [], "lifted": []}
        trips, skates = [], []
        for clip in clips:
            tilt, roll = float(rng.choice(TILTS)), float(rng.choice(ROLLS))
            view = film_tilted(clip.points, tilt, roll, float(rng.uniform(4, 6)), float(rng.uniform(0, 360)), ankle)
            lifted = lift_view(view.camera_joints, clip.fps, single, temporal, preset.lift)
            times = np.arange(len(lifted)) / clip.fps
            for kind, joints in (("exact", view.camera_joints[:, :NUM_H36M_JOINTS]), ("lifted", lifted)):
                frame = estimate_world_frame(joints.astype(np.float64), preset.export)
                height_mm = (frame.camera_height_m - view.camera_height_m) * 1000
                rows[kind].append((gravity_error_deg(frame, view), height_mm, frame.method))
                if kind == "lifted":
                    world = frame.to_world(joints.astype(np.float64))
                    trips.append(bvh_round_trip(world, times))
                    truth = true_world(view)[:, :NUM_H36M_JOINTS]
                    pinned = pin_planted_feet(world, preset.export, clip.fps)
                    skates.append(
                        (
                            foot_skate_mm_per_frame(world, preset.export, clip.fps),
                            foot_skate_mm_per_frame(pinned, preset.export, clip.fps),
                            foot_skate_mm_per_frame(truth, preset.export, clip.fps),
                            root_speed_error_mm(world, truth),
                            root_speed_error_mm(pinned, truth),
                        )
                    )
                    if args.png is not None and not drawn and tilt == 20.0 and len(world) >= 200:
                        side_view_png(world, times, args.png, tilt, roll)
                        drawn = True
        cells = []
        for kind in ("exact", "lifted"):
            g = np.array([r[0] for r in rows[kind]])
            h = np.abs([r[1] for r in rows[kind]])
            methods = Counter(r[2] for r in rows[kind])
            summary = ",".join(f"{m.split()[0]}:{n}" for m, n in sorted(methods.items()))
            cells.append(
                f"{np.median(g):5.1f} / {np.percentile(g, 90):5.1f} {np.median(h):5.0f} / {np.percentile(h, 90):5.0f}"
                f"  {summary}"
            )
        print(f"{label:20s} {len(clips):5d}   exact 3D: {cells[0]}   |   lifted: {cells[1]}")
        trip = np.array(trips)
        skate = np.array(skates, dtype=float)
        print(
            f"{'':20s}   BVH round trip (lifted): FK vs fitted skeleton {np.median(trip[:, 0]):.2f} mm, vs the lifted"
            f" joints {np.median(trip[:, 1]):.1f} mm"
        )
        print(
            f"{'':20s}   foot skate (mm/frame, median): lifted {np.nanmedian(skate[:, 0]):.1f}, --pin-feet"
            f" {np.nanmedian(skate[:, 1]):.1f}, truth {np.nanmedian(skate[:, 2]):.1f}; pelvis speed error (mm/frame):"
            f" lifted {np.median(skate[:, 3]):.1f}, --pin-feet {np.median(skate[:, 4]):.1f}"
        )
    if args.png is not None:
        print(f"side view: {args.png}" if drawn else "no clip of 200+ frames filmed at 20 degrees: no PNG")


if __name__ == "__main__":
    main()
