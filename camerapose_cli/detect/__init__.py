"""2D pose: batched YOLO person and keypoint detection, and Ultralytics tracking."""
