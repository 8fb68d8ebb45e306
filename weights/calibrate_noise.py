"""Reproduce weights/noise_calibration.json: YOLO11n-pose's 2D errors against real COCO annotations.

python weights/calibrate_noise.py [../shared/data/coco/test_coco.json]
"""

import sys
from pathlib import Path

from camerapose_cli.detect.pose2d import PoseDetector
from camerapose_cli.io.resources import default_pose_model
from camerapose_cli.training.noise import calibrate_detector

here = Path(__file__).resolve().parent
coco = Path(sys.argv[1]) if len(sys.argv) > 1 else here.parents[1] / "shared" / "data" / "coco" / "test_coco.json"
detector = PoseDetector(default_pose_model(), imgsz=640, device="cpu", conf=0.1)
calibration = calibrate_detector(coco, detector)
calibration.save(here / "noise_calibration.json")
print((here / "noise_calibration.json").read_text())
