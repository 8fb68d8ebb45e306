"""The local executor against the Ray executor (a local Ray instance), side by side in one run.

    python bench/executors.py [--loops 10] [--repeats 1]

Two input sets: "one long": the shared videos plus the courtyard clip looped `--loops` times (the issue's
set: one input holds most frames); "balanced": the shared videos plus four clips of `--loops * 10` frames.
Each executor runs `camerapose extract` and then `camerapose lift` as a user would, in a fresh process (so
Ray's start-up and each worker's model loading count): local (one process, two torch threads), Ray with two
one-thread workers, Ray with one two-thread worker, and local with one thread. Prints wall time, frames per
second, each against local, where Ray's time goes (start-up, the longest input), and whether the outputs are
equal: bitwise against the one-thread local run (the thread count of each Ray worker), within float32
rounding against the default local run. Not a test: the machine is noisy, compare the ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

SHARED_VIDEOS = Path(__file__).resolve().parents[1].parent / "shared/data/videos"


def camerapose(*args: str, env: dict[str, str] | None = None) -> tuple[float, dict]:
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "camerapose_cli", *args, "--json", "--quiet"],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
    )
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit(f"camerapose {' '.join(args)} failed:\n{result.stderr}")
    return seconds, json.loads(result.stdout)


def make_inputs(folder: Path, loops: int, pieces: int) -> Path:
    """The shared videos and the courtyard clip looped `loops` times, cut into `pieces` clips."""
    import imageio_ffmpeg

    folder.mkdir()
    for video in SHARED_VIDEOS.glob("*.mp4"):
        (folder / video.name).symlink_to(video)
    courtyard = SHARED_VIDEOS / "courtyard_dribble_40f.mp4"
    ffmpeg = [imageio_ffmpeg.get_ffmpeg_exe(), "-loglevel", "error", "-y"]
    for piece in range(pieces):
        looped = ["-stream_loop", str(loops // pieces - 1), "-i", str(courtyard), "-c", "copy"]
        subprocess.run([*ffmpeg, *looped, str(folder / f"long{piece}.mp4")], check=True)
    return folder


# (label, executor flags, torch threads of the local process: 0 = the preset's, every core)
EXECUTORS = [
    ("local", [], 0),
    ("ray 2 workers x 1 thread", ["--executor", "ray", "--workers", "2", "--cpus-per-worker", "1"], 0),
    ("ray 1 worker x 2 threads", ["--executor", "ray", "--workers", "1", "--cpus-per-worker", "2"], 0),
    ("local, 1 thread", [], 1),
]


def run_executor(flags: list[str], threads: int, videos: Path, out: Path, preset: Path) -> dict[str, float]:
    env = {"OMP_NUM_THREADS": "1"} if threads == 1 else {}
    pipeline = ["-p", str(preset)] if threads == 1 else []
    extract_s, summary = camerapose("extract", str(videos), "--out", str(out), *flags, *pipeline, env=env)
    lift_s, _ = camerapose("lift", str(out), *flags, env=env)
    longest = max(r["seconds"] for r in summary["results"])
    return {"extract": extract_s, "lift": lift_s, "frames": summary["frames"], "longest": longest}


def compare(out: Path, reference: Path) -> tuple[bool, float]:
    """(every table bitwise equal, largest float difference) over keypoints2d and keypoints3d."""
    equal, largest = True, 0.0
    for folder in ("keypoints2d", "keypoints3d"):
        for path in sorted((reference / folder).glob("*.parquet")):
            a, b = pq.read_table(path), pq.read_table(out / folder / path.name)
            if a.equals(b):
                continue
            equal = False
            for column in a.column_names:
                if a.column(column).equals(b.column(column)):
                    continue
                x, y = np.asarray(a.column(column).to_pylist()), np.asarray(b.column(column).to_pylist())
                if x.dtype.kind not in "fiu" or x.shape != y.shape:
                    return False, float("inf")  # rows or tracks differ, not just rounding
                largest = max(largest, float(np.nanmax(np.abs(x.astype(float) - y.astype(float)))))
    return equal, largest


def ray_start_up(workers: int) -> float:
    """Seconds from nothing to `workers` extract workers with the detector loaded (what every Ray run pays)."""
    import ray

    from camerapose_cli.config import load_preset
    from camerapose_cli.io.resources import default_pose_model
    from camerapose_cli.stages.base import StageSpec
    from camerapose_cli.stages.extract import ExtractStage
    from camerapose_cli.stages.ray_executor import StageWorker, connect

    preset = load_preset("default")
    started = time.perf_counter()
    connect(ray, preset.ray)
    spec = StageSpec(ExtractStage, (preset.extract, preset.overlay, default_pose_model(), preset.name))
    worker = ray.remote(StageWorker).options(num_cpus=1)
    actors = [worker.remote(spec, Path(tempfile.mkdtemp()), 1) for _ in range(workers)]
    ray.get([a.setup.remote() for a in actors])
    seconds = time.perf_counter() - started
    ray.shutdown()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--loops", type=int, default=10, help="the long clip: the 40-frame courtyard clip this often")
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    if not SHARED_VIDEOS.is_dir():
        sys.exit(f"shared videos not found at {SHARED_VIDEOS}")
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    start_up = ray_start_up(2)
    print(f"Ray start-up (a local instance + 2 workers with the detector loaded): {start_up:.1f} s")

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        preset = tmp / "one_thread.toml"
        preset.write_text("[extract]\nthreads = 1\n")
        for label, pieces in (("one long", 1), ("balanced", 4)):
            videos = make_inputs(tmp / label.replace(" ", "_"), args.loops, pieces)
            runs: dict[str, list[dict[str, float]]] = {name: [] for name, _, _ in EXECUTORS}
            for repeat in range(args.repeats):
                order = EXECUTORS if repeat % 2 == 0 else EXECUTORS[::-1]
                for name, flags, threads in order:
                    out = tmp / f"{label}-{name}-{repeat}".replace(" ", "_")
                    runs[name].append(run_executor(flags, threads, videos, out, preset))
            best = {name: min(rs, key=lambda r: r["extract"] + r["lift"]) for name, rs in runs.items()}
            local = best["local"]["extract"] + best["local"]["lift"]
            frames = int(best["local"]["frames"])
            print(
                f"\n{label}: {len(list(videos.iterdir()))} videos, {frames} frames, largest {40 * args.loops // pieces}"
            )
            print("| executor | extract s | frames/s | lift s | extract+lift s | vs local | longest input s |")
            print("| --- | --- | --- | --- | --- | --- | --- |")
            for name, r in best.items():
                total = r["extract"] + r["lift"]
                print(
                    f"| {name} | {r['extract']:.1f} | {r['frames'] / r['extract']:.1f} | {r['lift']:.1f} | "
                    f"{total:.1f} | {total / local:.2f}x | {r['longest']:.1f} |"
                )
            out = {name: tmp / f"{label}-{name}-0".replace(" ", "_") for name, _, _ in EXECUTORS}
            equal, _ = compare(out["ray 2 workers x 1 thread"], out["local, 1 thread"])
            same_default, largest = compare(out["ray 2 workers x 1 thread"], out["local"])
            print(f"outputs, Ray 2x1 vs local with 1 thread: {'bitwise equal' if equal else 'DIFFERENT'}")
            verdict = "bitwise equal" if same_default else f"same rows and tracks, floats within {largest:.2g}"
            print(f"outputs, Ray 2x1 vs local with 2 threads: {verdict}")


if __name__ == "__main__":
    main()
