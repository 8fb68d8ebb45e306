"""Letterbox geometry against Ultralytics' own LetterBox."""

from __future__ import annotations

import numpy as np
import pytest

from camerapose_cli.detect.pose2d import letterbox_geometry


@pytest.mark.parametrize("size", [(1080, 1920), (1920, 1080), (960, 540), (333, 517), (640, 640)])
@pytest.mark.parametrize("imgsz", [640, 480])
def test_letterbox_geometry_matches_ultralytics(size, imgsz):
    from ultralytics.data.augment import LetterBox

    width, height = size
    image = np.zeros((height, width, 3), np.uint8)
    theirs = LetterBox(new_shape=(imgsz, imgsz), auto=True, stride=32)(image=image)
    geometry = letterbox_geometry(width, height, imgsz)
    assert theirs.shape[:2] == (geometry.padded[1], geometry.padded[0])
    # The padding band Ultralytics fills with grey sits exactly where ours says.
    left, top = geometry.pad
    assert (theirs[top : top + geometry.resized[1], left : left + geometry.resized[0]] == 0).all()


def test_letterbox_maps_network_pixels_back_to_the_frame():
    geometry = letterbox_geometry(1080, 1920, 640)
    corners = np.array(
        [
            [geometry.pad[0], geometry.pad[1]],
            [geometry.pad[0] + geometry.resized[0], geometry.pad[1] + geometry.resized[1]],
        ],
        np.float32,
    )
    np.testing.assert_allclose(geometry.to_source(corners), [[0, 0], [1080, 1920]], atol=1e-3)
