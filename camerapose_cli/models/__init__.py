"""The networks (lifter with its camera branch, refiner) and their checkpoints."""
