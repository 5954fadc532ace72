"""The monitor's pure core: ground truth, performance, drift and the retraining decision (no servers)."""
