"""Early validation of a composed config, with messages that name the keys.

Runs before any data is generated or model built, so a bad override fails in a second
instead of after minutes of data preparation.
"""
from __future__ import annotations

from omegaconf import DictConfig

from flaredetect.data.features import FEATURE_SETS
from flaredetect.models.transformer import check_transformer_sizes


class ConfigError(ValueError):
    """An invalid configuration value."""


def check_train_config(cfg: DictConfig) -> None:
    problems: list[str] = []
    model = cfg.get("model") or {}
    target = str(model.get("_target_", ""))
    if target.endswith("FlareTransformer"):
        try:
            check_transformer_sizes(model.d_model, model.num_heads, model.num_layers, model.d_ff, model.dropout,
                                    model.seq_len)
        except ValueError as err:
            problems.append(str(err))
    if "input_dim" in model and model.input_dim not in FEATURE_SETS:
        problems.append(f"model.input_dim={model.input_dim} has no feature set; choose one of {sorted(FEATURE_SETS)} "
                        "(3: flux, gradient, quality; 4: + significance)")
    window_length = _window_length(cfg)
    if "seq_len" in model and window_length is not None and model.seq_len != window_length:
        problems.append(f"model.seq_len={model.seq_len} differs from the window length {window_length} "
                        f"(data.sources.*.window.length)")
    from flaredetect.inference.candidates import SignificanceGate
    from flaredetect.inference.events import EventParams

    for key, factory in (("events", EventParams), ("candidates", SignificanceGate)):
        try:  # the run's own predict settings: a misspelt key or value fails before any training
            factory.from_settings(cfg.get(key) or {})
        except (TypeError, ValueError) as err:
            problems.append(f"{key}: {err}" if not str(err).startswith(f"{key}.") else str(err))
    data = cfg.get("data") or {}
    if data.get("batch_size", 1) < 1:
        problems.append(f"data.batch_size={data.batch_size} must be >= 1")
    if data.get("num_workers", 0) < 0:
        problems.append(f"data.num_workers={data.num_workers} must be >= 0")
    loss = cfg.get("loss") or {}
    for key in ("flare_weight", "non_flare_weight"):
        if key in loss and loss[key] <= 0:
            problems.append(f"loss.{key}={loss[key]} must be > 0")
    trainer = cfg.get("trainer") or {}
    if cfg.get("train", True) and trainer.get("max_epochs") == 0 and (trainer.get("max_steps") or -1) < 0:
        problems.append("trainer.max_epochs=0 trains nothing (to test a trained checkpoint: train=false "
                        "ckpt_path=<file>)")
    if cfg.get("threads") is not None and int(cfg.threads) < 1:
        problems.append(f"threads={cfg.threads} must be >= 1 (or null: torch's default)")
    cadence = cfg.get("cadence_s")
    if cadence is not None and not (isinstance(cadence, (int, float)) and not isinstance(cadence, bool) and cadence > 0):
        problems.append(f"cadence_s={cadence} must be a positive number of seconds (TESS: 20, 120, 200, 600, 1800)")
    if cadence is not None and "tess" in (data.get("sources") or {}) and cadence > 0 and abs(cadence - 120) > 6:
        problems.append(f"cadence_s={cadence} but data.sources.tess holds prepared 2-minute windows "
                        f"(flaredetect-prepare): use data=injected, which bins light curves to cadence_s")
    opt = cfg.get("optimizer") or {}
    if "lr" in opt and opt.lr <= 0:
        problems.append(f"optimizer.lr={opt.lr} must be > 0")
    if problems:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(problems))


def _window_length(cfg: DictConfig) -> int | None:
    sources = (cfg.get("data") or {}).get("sources") or {}
    for source in sources.values():
        window = source.get("window") if source is not None else None
        if window is not None and "length" in window:
            return int(window.length)
    return None


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_predict_config(cfg: DictConfig) -> None:
    """Every flaredetect-predict setting, before the checkpoint or any file is read."""
    from flaredetect.data.cleaning import resolve_bitmask
    from flaredetect.inference.candidates import SignificanceGate
    from flaredetect.inference.events import EventParams
    from flaredetect.inference.scoring import HEADS, REDUCTIONS

    problems: list[str] = []
    stride, batch = cfg.get("stride"), cfg.get("batch_size", 1024)
    if stride is not None and not (_is_int(stride) and stride >= 1):
        problems.append(f"stride={stride} must be an integer >= 1 (or null: half a window)")
    if not (_is_int(batch) and batch >= 1):
        problems.append(f"batch_size={batch} must be an integer >= 1")
    refine = cfg.get("refine")
    if refine is not None:
        above, n_sigma = refine.get("above"), refine.get("n_sigma", 1.5)
        if not (isinstance(above, (int, float)) and 0 <= above <= 1):
            problems.append(f"refine.above={above} must be a probability in [0, 1] (or refine=null: every window)")
        if not (isinstance(n_sigma, (int, float)) and n_sigma > 0):
            problems.append(f"refine.n_sigma={n_sigma} must be > 0")
        unknown = set(refine) - {"above", "n_sigma"}
        if unknown:
            problems.append(f"refine has unknown keys {sorted(unknown)} (known: above, n_sigma)")
    if cfg.get("head") is not None and cfg.head not in HEADS:
        problems.append(f"head={cfg.head} must be one of {list(HEADS)} (or null: what the checkpoint has)")
    if cfg.get("reduce", "mean") not in REDUCTIONS:
        problems.append(f"reduce={cfg.reduce} must be one of {list(REDUCTIONS)}")
    from flaredetect.inference.manifest import check_shard

    try:
        check_shard(cfg.get("shard", 0), cfg.get("num_shards", 1))
    except ValueError as err:
        problems.append(str(err))
    for key in ("threads", "tic", "sector", "workers", "processes"):
        value = cfg.get(key)
        if value is not None and not (_is_int(value) and value >= (1 if key == "threads" else 0)):
            problems.append(f"{key}={value} must be a non-negative integer{' >= 1' if key == 'threads' else ''} "
                            f"(or null)")
    lc_batch = cfg.get("lc_batch")
    if lc_batch is not None and not (_is_int(lc_batch) and lc_batch >= 1):
        problems.append(f"lc_batch={lc_batch} must be an integer >= 1 (inputs whose windows share the network's "
                        f"batches; null: 1 on the CPU, 32 on a GPU)")
    from flaredetect.inference.pipeline import resolve_device

    try:
        resolve_device(cfg.get("device", "auto"))
    except ValueError as err:
        problems.append(str(err))
    vet_threshold = cfg.get("vet_threshold")
    if vet_threshold is not None:
        if not (isinstance(vet_threshold, (int, float)) and 0 < vet_threshold < 1):
            problems.append(f"vet_threshold={vet_threshold} must lie strictly between 0 and 1 (or null: the vetter's own)")
        elif not cfg.get("vetter"):
            problems.append(f"vet_threshold={vet_threshold} needs vetter=<a directory of flaredetect-benchmark "
                            f"--save-vetters>: without a vetter there is no vet_prob to threshold")
    for key in ("luminosity_erg_s", "low_sigma"):
        value = cfg.get(key)
        if value is not None and not (isinstance(value, (int, float)) and value > 0):
            problems.append(f"{key}={value} must be > 0 (or null)")
    try:
        resolve_bitmask(cfg.get("quality_bitmask", "default"))
    except (TypeError, ValueError) as err:
        problems.append(f"quality_bitmask: {err}")
    for key, factory in (("events", EventParams), ("candidates", SignificanceGate)):
        section = cfg.get(key)
        if section is None:
            continue
        try:
            factory.from_settings(section)
        except (TypeError, ValueError) as err:  # the dataclasses name their keys
            problems.append(f"{key}: {err}" if not str(err).startswith(f"{key}.") else str(err))
    from flaredetect.data.periodic import PeriodicBackground

    try:
        PeriodicBackground.from_settings(cfg.get("periodic"))
    except ValueError as err:
        problems.append(str(err))
    if problems:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(problems))

