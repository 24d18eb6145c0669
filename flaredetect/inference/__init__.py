"""Find flares in whole light curves: sliding-window scoring, events, writers."""
from flaredetect.inference.candidates import SignificanceGate
from flaredetect.inference.events import EVENT_COLUMNS, EventParams, event_mask, event_spans, extract_events
from flaredetect.inference.loading import CheckpointError, load_net, resolve_checkpoint, window_geometry
from flaredetect.inference.pipeline import Predictor, iter_targets, parse_tic, run_prediction
from flaredetect.inference.scoring import build_windows, score_light_curve, window_starts

__all__ = [
    "SignificanceGate",
    "EVENT_COLUMNS", "EventParams", "event_mask", "event_spans", "extract_events",
    "CheckpointError", "load_net", "resolve_checkpoint", "window_geometry",
    "Predictor", "iter_targets", "parse_tic", "run_prediction",
    "build_windows", "score_light_curve", "window_starts",
]
