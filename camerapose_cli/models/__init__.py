"""Neural networks: the 2D-to-3D lifter with its camera branch, and the 2D refiner."""
