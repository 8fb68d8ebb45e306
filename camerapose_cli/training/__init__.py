"""Training: synthetic data and the detector noise model, weak supervision, losses, the loop, evaluation."""
