"""CameraPose: video archives to tracked 2D and 3D human-pose tables.

The stages as Python functions (camerapose_cli.api): `extract`, `refine`, `lift`, `export`, `train`, `evaluate`,
`evaluate_tracks`, `demo` over folders; `read_keypoints2d`, `read_keypoints3d` to read a run; `extract_frames`,
`refine_keypoints`, `lift_arrays` on in-memory arrays of one clip.
"""

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("camerapose")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

API = (
    "extract",
    "refine",
    "lift",
    "export",
    "train",
    "evaluate",
    "evaluate_tracks",
    "demo",
    "read_keypoints2d",
    "read_keypoints3d",
    "extract_frames",
    "refine_keypoints",
    "lift_arrays",
)
__all__ = ["__version__", *API]


def __getattr__(name: str):
    # Lazy: `import camerapose_cli` (and `camerapose --version`) stays fast; torch and Ultralytics load on first use.
    if name in API:
        return getattr(import_module("camerapose_cli.api"), name)
    raise AttributeError(f"module 'camerapose_cli' has no attribute {name!r}")
