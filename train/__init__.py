"""Training: configuration, optimiser and schedule, the epoch loop, and multi-GPU plumbing."""

from edgeseg.train.config import TrainConfig, load_config

__all__ = ["TrainConfig", "load_config"]
