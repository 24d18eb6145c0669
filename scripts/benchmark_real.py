"""Score runs and the 3-sigma rule against the flare catalogs on the labelled real light
curves, per population: ``flaredetect-benchmark`` (:mod:`flaredetect.benchmark`), kept under
its old name for the README's older commands.

    python scripts/benchmark_real.py --ckpt outputs/real_cv/0 outputs/real_cv/1 outputs/real_cv/2 --heads cadence
"""
from flaredetect.benchmark import main

if __name__ == "__main__":
    raise SystemExit(main())
