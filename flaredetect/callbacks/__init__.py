from flaredetect.callbacks.attention_maps import AttentionMaps
from flaredetect.callbacks.history import TrainingHistory
from flaredetect.callbacks.resume_state import ResumeState

__all__ = ["AttentionMaps", "ResumeState", "TrainingHistory"]
