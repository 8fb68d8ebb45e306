"""Files in and out: Parquet contracts, atomic writes, video decoding, overlays, COCO, BVH mocap, H36M files."""
