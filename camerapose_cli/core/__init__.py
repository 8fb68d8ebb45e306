"""Pure building blocks with no I/O: joint tables, body frames, camera geometry, metrics."""
