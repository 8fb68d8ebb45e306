"""Link per-frame detections into person tracks with Ultralytics' own ByteTrack or BoT-SORT."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from camerapose_cli.config import Tracker
from camerapose_cli.detect.pose2d import FrameDetections


def make_tracker(kind: Tracker):
    """A fresh tracker configured from Ultralytics' shipped YAML (one per video)."""
    import ultralytics
    from ultralytics.trackers.track import TRACKER_MAP
    from ultralytics.utils import YAML, IterableSimpleNamespace

    cfg_path = Path(ultralytics.__file__).parent / "cfg" / "trackers" / f"{kind}.yaml"
    cfg = IterableSimpleNamespace(**YAML.load(cfg_path))
    if kind == "botsort":
        cfg.with_reid = False  # appearance ReID would load a second network from the hub
    return TRACKER_MAP[kind](args=cfg)


def assign_tracks(
    tracker, detections: FrameDetections, frame: np.ndarray, scale: float
) -> tuple[np.ndarray, np.ndarray]:
    """Update `tracker` with one frame; return (detection indices, track ids) of the confirmed tracks.

    The tracker sees boxes scaled by `scale` so that they match `frame` (the detector-sized image BoT-SORT's
    motion compensation looks at); IoU association does not depend on that scale.
    """
    from ultralytics.engine.results import Boxes

    height, width = frame.shape[:2]
    data = np.concatenate(
        [
            detections.boxes * scale,
            detections.scores[:, None],
            np.zeros((len(detections), 1), np.float32),  # class 0: person
        ],
        axis=1,
    )
    tracks = tracker.update(Boxes(data, (height, width)), frame[..., ::-1])
    if len(tracks) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return tracks[:, -1].astype(np.int64), tracks[:, 4].astype(np.int64)
