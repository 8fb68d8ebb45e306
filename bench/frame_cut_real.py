"""People cut by the frame on real video: how much the 3D of what stays in view changes when the legs leave it.

    python bench/frame_cut_real.py [--single weights/lifter.pt ...] [--cut 0.5 0.8] [--temporal] [--edge side|top]
                                   [--crop] [--pipeline default other.toml ...]

Real video with a person cut by the frame, with the uncut truth beside it, from the shared courtyard and treadmill
clips: a copy of each has everything below a horizontal edge painted black (ffmpeg drawbox; the frame keeps its
size, so the camera's intrinsics stay the same). The edge sits `--cut` of the way from the person's hips down to
their ankles (medians over the whole clip's largest person; in the copy, the track whose shoulders sit closest):
0.5 cuts at about the knees, 0.8 through the shins.
Both are extracted (YOLO11n-pose) and lifted single-frame (with --temporal, also by the shipped temporal lifter
on top). No 3D truth is needed: the whole clip's lift is the reference for the cut one. Printed per clip, cut and
lifter: the share of the whole clip's confident knees and ankles that the edge hides, how far the detector's own
upper-body keypoints moved (median px: the detector's part of any change), then the mean change of
the upper body (9 joints from the thorax up, relative to the thorax) and of the knees and ankles (relative to the
pelvis), mm. A lifter that keeps the upper body when the legs leave the frame shows a small first figure.
With `--edge side` the frame's right part is painted instead, from `--cut` of the way across the person's width
(medians of their keypoints' leftmost and rightmost x); the two figures are then the mean change of the limb
joints whose keypoints stay in view and of those the edge hides (each frame's own, from the whole clip's 2D),
relative to the pelvis.
With `--edge top` everything above an edge `--cut` of the way from the person's highest keypoint (the face) down to
their hips is painted; the two figures are then the mean change of the knees and ankles and of the head, neck,
thorax and shoulders, both relative to the pelvis.
With `--crop` the copy ends at the edge instead (ffmpeg crop, the origin kept): the person is cut by the frame's
own border, where the detector puts what lies beyond it (and `lift`'s assumed principal point, the image centre,
moves with the crop, so the figures differ from the painted ones by a turn of the whole body). `--pipeline`: the
lift of each preset (e.g. with another `[refine] border_margin`), side by side.
"""

from __future__ import annotations

import argparse
import itertools
import subprocess
import tempfile
from pathlib import Path

import imageio_ffmpeg
import numpy as np

import camerapose_cli
from camerapose_cli.core.skeleton import COCO17_JOINTS, COCO_FROM_BODY, H36M17_JOINTS, LIMB_JOINTS

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
CLIPS = (SHARED / "videos" / "courtyard_dribble_40f.mp4", SHARED / "robustness" / "treadmill_vp9_100f.mp4")
JOINT = {name: i for i, name in enumerate(H36M17_JOINTS)}
UPPER = [JOINT[n] for n in ("thorax", "neck_nose", "head", "l_shoulder", "l_elbow", "l_wrist")] + [
    JOINT[n] for n in ("r_shoulder", "r_elbow", "r_wrist")
]
LEGS = [JOINT[n] for n in ("l_knee", "l_ankle", "r_knee", "r_ankle")]
HEAD_AND_SHOULDERS = [JOINT[n] for n in ("thorax", "neck_nose", "head", "l_shoulder", "r_shoulder")]
COCO_LEGS = [COCO17_JOINTS.index(n) for n in ("left_knee", "right_knee", "left_ankle", "right_ankle")]
COCO_UPPER = list(range(COCO17_JOINTS.index("left_hip")))  # the face, shoulders, elbows and wrists
COCO_FACE = list(range(COCO17_JOINTS.index("left_shoulder")))  # nose, eyes and ears
COCO_SHOULDERS = [COCO17_JOINTS.index(n) for n in ("left_shoulder", "right_shoulder")]
COCO_HIPS = [COCO17_JOINTS.index(n) for n in ("left_hip", "right_hip")]
COCO_ANKLES = [COCO17_JOINTS.index(n) for n in ("left_ankle", "right_ankle")]
COCO_OF_LIMB = [COCO_FROM_BODY.index(j) for j in LIMB_JOINTS]  # each limb joint's COCO keypoint
CONFIDENT = 0.5  # a keypoint of the whole clip counts as seen above this confidence


def copy_filtered(src: Path, dst: Path, video_filter: str) -> None:
    """A copy of `src` through one ffmpeg video filter."""
    ffmpeg = [imageio_ffmpeg.get_ffmpeg_exe(), "-loglevel", "error", "-y", "-i", str(src), "-vf", video_filter]
    subprocess.run([*ffmpeg, "-c:v", "libx264", "-crf", "18", str(dst)], check=True)


def paint_beyond(src: Path, dst: Path, edge_px: int, edge: str) -> None:
    """A copy of `src` with everything below row `edge_px` (edge "bottom"), above it ("top") or right of column
    `edge_px` ("side") black."""
    box = {
        "bottom": f"x=0:y={edge_px}:w=iw:h=ih-{edge_px}",
        "top": f"x=0:y=0:w=iw:h={edge_px}",
        "side": f"x={edge_px}:y=0:w=iw-{edge_px}:h=ih",
    }[edge]
    copy_filtered(src, dst, f"drawbox={box}:color=black:t=fill")


def crop_at(src: Path, dst: Path, edge_px: int, edge: str) -> None:
    """A copy of `src` that ends at row `edge_px` (edge "bottom"), starts at it ("top": the rows above removed, so
    its y runs from the edge) or ends at column `edge_px` ("side": its right part removed)."""
    crop = {"bottom": f"iw:{edge_px}:0:0", "top": f"iw:ih-{edge_px}:0:{edge_px}", "side": f"{edge_px}:ih:0:0"}[edge]
    copy_filtered(src, dst, f"crop={crop}")


def track_rows(table, video: str, track: int):
    rows = table[(table.video == video) & (table.track_id == track)]
    return rows.set_index("frame").sort_index()


def subject_track(table, video: str) -> int:
    """The largest person of a video (median box area): the one the edge is placed for."""
    rows = table[table.video == video]
    area = rows.bbox.map(lambda b: (b[2] - b[0]) * (b[3] - b[1]))
    return int(area.groupby(rows.track_id).median().idxmax())


def matching_track(table, video: str, reference, joints: list[int], y_shift: float = 0.0) -> int:
    """The track of `video` whose `joints` sit closest to the reference rows' (medians over frames), the reference
    moved `y_shift` px down the image (a copy cropped at the top)."""

    def place(rows):
        return np.median(np.stack([np.stack(rows.kp_x.to_numpy()), np.stack(rows.kp_y.to_numpy())], -1)[:, joints], 0)

    rows = table[table.video == video]
    target = place(reference) + [0.0, y_shift]
    return int(min(rows.track_id.unique(), key=lambda t: np.abs(place(rows[rows.track_id == t]) - target).sum()))


def joints3d(rows) -> np.ndarray:
    return np.stack([np.stack(rows[c].to_numpy()) for c in ("kp3d_x", "kp3d_y", "kp3d_z")], -1)


def change_mm(whole: np.ndarray, cut: np.ndarray, joints: list[int], origin: int) -> float:
    rel = lambda p: p[:, joints] - p[:, [origin]]  # noqa: E731
    return float(np.linalg.norm(rel(whole) - rel(cut), axis=-1).mean() * 1000)


def side_change_mm(whole: np.ndarray, cut: np.ndarray, x: np.ndarray, edge: int) -> tuple[float, float, float]:
    """The share of the limb keypoints `x` (frames, 17) beyond the edge, and the mean change of the limb joints
    (relative to the pelvis) whose keypoints stay left of it, and of those beyond it."""
    pelvis = JOINT["pelvis"]
    change = np.linalg.norm(
        (whole[:, LIMB_JOINTS] - whole[:, [pelvis]]) - (cut[:, LIMB_JOINTS] - cut[:, [pelvis]]), axis=-1
    )
    hidden = x[:, COCO_OF_LIMB] > edge
    lost = float(change[hidden].mean() * 1000) if hidden.any() else float("nan")
    return float(hidden.mean()), float(change[~hidden].mean() * 1000), lost


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--single", type=Path, nargs="*", default=[Path("weights/lifter.pt")])
    parser.add_argument(
        "--cut",
        type=float,
        nargs="*",
        default=[0.5, 0.8],
        help="edge from hips (0) to ankles (1); top: face (0) to hips (1)",
    )
    parser.add_argument(
        "--edge", choices=("bottom", "side", "top"), default="bottom", help="side: the right part painted"
    )
    parser.add_argument("--temporal", action="store_true", help="also the shipped temporal lifter on top")
    parser.add_argument("--crop", action="store_true", help="end the frame at the edge instead of painting beyond it")
    parser.add_argument("--pipeline", nargs="*", default=["default"], help="presets to lift with, side by side")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        whole_videos, cut_videos = Path(tmp) / "whole", Path(tmp) / "cut"
        whole_videos.mkdir()
        cut_videos.mkdir()
        for clip in CLIPS:
            (whole_videos / clip.name).symlink_to(clip)
        whole_run, cut_run = Path(tmp) / "whole_run", Path(tmp) / "cut_run"
        camerapose_cli.extract(whole_videos, whole_run)
        whole2d = camerapose_cli.read_keypoints2d(whole_run)
        edges, subjects = {}, {clip.name: subject_track(whole2d, clip.name) for clip in CLIPS}
        for clip in CLIPS:
            rows = track_rows(whole2d, clip.name, subjects[clip.name])
            x, y = np.stack(rows.kp_x.to_numpy()), np.stack(rows.kp_y.to_numpy())
            start, end = np.median(y[:, COCO_HIPS]), np.median(y[:, COCO_ANKLES])
            if args.edge == "side":
                start, end = np.median(x.min(1)), np.median(x.max(1))
            elif args.edge == "top":
                start, end = np.median(y.min(1)), np.median(y[:, COCO_HIPS])
            for cut in args.cut:
                name = f"{clip.stem}_cut{round(cut * 100)}.mp4"
                edges[name] = (clip.name, int(start + cut * (end - start)))
                (crop_at if args.crop else paint_beyond)(clip, cut_videos / name, edges[name][1], args.edge)
        camerapose_cli.extract(cut_videos, cut_run)
        cut2d = camerapose_cli.read_keypoints2d(cut_run)
        # The shoulders place the person in the copy, or the hips where the top edge may take the shoulders.
        anchor = COCO_HIPS if args.edge == "top" else COCO_SHOULDERS
        shift = {name: -edge if args.edge == "top" and args.crop else 0.0 for name, (_, edge) in edges.items()}
        cut_tracks = {
            name: matching_track(cut2d, name, track_rows(whole2d, source, subjects[source]), anchor, shift[name])
            for name, (source, _) in edges.items()
        }
        modes = [False, True] if args.temporal else [False]
        measured = {
            "bottom": "upper body / knees and ankles",
            "side": "limb joints in view / hidden",
            "top": "knees and ankles / head, neck, thorax and shoulders",
        }[args.edge]
        print(f"change of the 3D when the frame cuts the person (mm): {measured}")
        for weights, temporal, preset in itertools.product(args.single, modes, args.pipeline):
            lifted = {}
            for label, run in (("whole", whole_run), ("cut", cut_run)):
                out = Path(tmp) / f"{label}-{weights.parent.name}-{temporal}-{Path(preset).stem}"
                camerapose_cli.lift(run, out, weights=weights, temporal=temporal, preset=preset)
                lifted[label] = camerapose_cli.read_keypoints3d(out)
            for name, (source, edge) in edges.items():
                whole = track_rows(lifted["whole"], source, subjects[source])
                cut = track_rows(lifted["cut"], name, cut_tracks[name])
                frames = whole.index.intersection(cut.index)
                seen = track_rows(whole2d, source, subjects[source]).loc[frames]
                a, b = joints3d(whole.loc[frames]), joints3d(cut.loc[frames])
                pelvis = JOINT["pelvis"]
                if args.edge == "side":
                    share, kept, lost = side_change_mm(a, b, np.stack(seen.kp_x.to_numpy()), edge)
                    figures = f"{share:.0%} of the limb keypoints hidden: {kept:.1f} / {lost:.1f}"
                elif args.edge == "top":
                    face = np.stack(seen.kp_y.to_numpy())[:, COCO_FACE]
                    figures = (
                        f"{np.mean(face < edge):.0%} of the face keypoints hidden: "
                        f"{change_mm(a, b, LEGS, pelvis):.1f} / {change_mm(a, b, HEAD_AND_SHOULDERS, pelvis):.1f}"
                    )
                else:
                    y = np.stack(seen.kp_y.to_numpy())[:, COCO_LEGS]
                    confident = np.stack(seen.kp_conf.to_numpy())[:, COCO_LEGS] > CONFIDENT
                    hidden = float(((y > edge) & confident).sum() / max(confident.sum(), 1))
                    seen_cut = track_rows(cut2d, name, cut_tracks[name]).loc[frames]
                    moved_2d = np.median(np.hypot(*(np.stack(seen_cut[c].to_numpy())[:, COCO_UPPER]
                                                   - np.stack(seen[c].to_numpy())[:, COCO_UPPER]
                                                   for c in ("kp_x", "kp_y"))))  # fmt: skip
                    figures = (
                        f"{hidden:.0%} of the knees and ankles hidden, upper body's 2D moved {moved_2d:.0f} px: "
                        f"{change_mm(a, b, UPPER, JOINT['thorax']):.1f} / {change_mm(a, b, LEGS, pelvis):.1f}"
                    )
                print(
                    f"{weights} {'temporal' if temporal else 'single'} {preset} {name}: {len(frames)} frames, {figures}"
                )


if __name__ == "__main__":
    main()
