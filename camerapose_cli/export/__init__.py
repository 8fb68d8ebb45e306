"""Export lifted tracks in a world frame: BVH, TRC, C3D and CSV files (the export stage's parts)."""
