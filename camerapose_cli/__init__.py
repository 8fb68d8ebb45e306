"""CameraPose: video archives to tracked 2D and 3D human-pose tables."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("camerapose")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"
