"""Training: configuration, optimiser and schedule, the epoch loop, and multi-GPU plumbing."""

from edgeseg.training.config import TrainConfig, load_config

__all__ = ["TrainConfig", "load_config"]
