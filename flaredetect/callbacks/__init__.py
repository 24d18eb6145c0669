from flaredetect.callbacks.attention_maps import AttentionMaps
from flaredetect.callbacks.history import TrainingHistory

__all__ = ["AttentionMaps", "TrainingHistory"]
