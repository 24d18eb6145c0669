"""Light curves downloaded from MAST with lightkurve, cached on disk.

The thesis spent ~5 days fetching data under MAST rate limits, so downloads go to a
persistent ``cache_dir`` (lightkurve skips files already there), transient failures are
retried with exponential backoff, and a target that still fails yields a one-line error
instead of stopping the run.
"""
from __future__ import annotations

import time as _time
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

from flaredetect.data.cleaning import clean, stitch
from flaredetect.data.lightcurve import LightCurve
from flaredetect.sources.local import _one_line, raw_from_lightkurve


class MastError(RuntimeError):
    """A target could not be fetched from MAST; the message is one line."""


def with_retries(func: Callable[[], object], attempts: int = 3, backoff_s: float = 2.0,
                 sleep: Callable[[float], None] = _time.sleep, what: str = "request"):
    """Call ``func()``; on an exception wait ``backoff_s * 2**k`` seconds and retry, up to
    ``attempts`` calls in all. Re-raises the last exception as :class:`MastError`."""
    attempts = max(1, int(attempts))
    for k in range(attempts):
        try:
            return func()
        except Exception as exc:  # network errors come in many types (HTTP, timeouts, astroquery)
            if k == attempts - 1:
                raise MastError(_one_line(
                    f"{what} failed after {attempts} attempt(s): {type(exc).__name__}: {exc}")) from exc
            sleep(backoff_s * 2 ** k)
    raise AssertionError("unreachable")


class MastSource:
    """Download SPOC 2-minute light curves per TIC with ``lightkurve``.

    Parameters
    ----------
    tics
        TIC ids to fetch.
    cache_dir
        Persistent download directory (re-runs reuse files already there).
    sectors
        Restrict to these sectors (None: all available).
    author, exptime
        MAST product filter; SPOC and 120 s match the labelled catalogs.
    attempts, backoff_s
        Retries with exponential backoff for search and download, each.
    quality_bitmask, low_sigma
        Passed to :func:`flaredetect.data.cleaning.clean`.
    stitch_sectors
        Yield one stitched LightCurve per star instead of one per sector.
    sleep
        Injected for tests (no real waiting).
    """

    def __init__(self, tics: Iterable[int], cache_dir: str | Path, sectors: Sequence[int] | int | None = None,
                 author: str = "SPOC", exptime: int = 120, attempts: int = 3, backoff_s: float = 2.0,
                 quality_bitmask: str | int | None = "default", low_sigma: float | None = 5.0,
                 stitch_sectors: bool = False, sleep: Callable[[float], None] = _time.sleep):
        self.tics = [int(t) for t in tics]
        self.cache_dir = Path(cache_dir)
        self.sectors = sectors
        self.author = author
        self.exptime = exptime
        self.attempts = attempts
        self.backoff_s = backoff_s
        self.quality_bitmask = quality_bitmask
        self.low_sigma = low_sigma
        self.stitch_sectors = stitch_sectors
        self.sleep = sleep

    def fetch(self, tic: int) -> list[LightCurve]:
        """All cleaned sectors of one star, in time order. Raises MastError (one line)."""
        import lightkurve as lk  # looked up at call time so tests can monkeypatch it

        target = f"TIC {tic}"
        result = with_retries(
            lambda: lk.search_lightcurve(target, mission="TESS", author=self.author,
                                         exptime=self.exptime, sector=self.sectors),
            self.attempts, self.backoff_s, self.sleep, what=f"{target}: MAST search")
        if result is None or len(result) == 0:
            raise MastError(f"{target}: no {self.author} {self.exptime} s light curve on MAST"
                            + (f" for sector(s) {self.sectors}" if self.sectors is not None else ""))
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        collection = with_retries(
            lambda: result.download_all(quality_bitmask="none", download_dir=str(self.cache_dir),
                                        flux_column="pdcsap_flux"),
            self.attempts, self.backoff_s, self.sleep, what=f"{target}: download")
        if collection is None or len(collection) == 0:
            raise MastError(f"{target}: download returned no light curves")
        out = []
        for lk_lc in collection:
            sector = lk_lc.meta.get("SECTOR")
            label = f"{target} sector {sector}"
            try:
                raw = raw_from_lightkurve(lk_lc, source=label, tic=tic)
                out.append(clean(raw, self.quality_bitmask, low_sigma=self.low_sigma))
            except Exception as exc:
                raise MastError(_one_line(f"{label}: {exc}")) from exc
        out.sort(key=lambda lc: float(lc.time_btjd[0]))
        return out

    def iter_light_curves(self) -> Iterator[tuple[str, LightCurve | Exception]]:
        """Yield ``(target_id, LightCurve | Exception)``; ``target_id`` is 'TIC n sector s'
        (or 'TIC n' for a failure or a stitched star)."""
        for tic in self.tics:
            try:
                lcs = self.fetch(tic)
            except Exception as exc:
                yield f"TIC {tic}", exc if isinstance(exc, MastError) else MastError(_one_line(f"TIC {tic}: {exc}"))
                continue
            if self.stitch_sectors:
                yield f"TIC {tic}", stitch(lcs)
            else:
                for lc in lcs:
                    yield f"TIC {tic} sector {lc.sector}", lc
