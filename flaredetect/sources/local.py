"""Light curves from local files: SPOC and TESS-SPOC ``*_lc.fits`` (20 s, 2 min, FFI),
QLP FFI light curves, lightkurve ``to_fits()`` files,
``(3, N)`` ``.npy`` arrays and CSV tables (``.csv``/``.csv.gz`` with time, flux, flux_err,
quality columns).

Every reader returns the same normalised :class:`~flaredetect.data.lightcurve.LightCurve`
(via :func:`flaredetect.data.cleaning.clean`), so downstream code never cares which
format a star came from. Plain TESS FITS tables are read with astropy directly; anything
else is left to ``lightkurve.read``. We pick the flux column deliberately (PDCSAP for SPOC
files, FLUX for ``to_fits()`` files) and read the identifiers.
"""
from __future__ import annotations

import contextlib
import glob
import logging
import re
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np

from flaredetect.data.cleaning import RawLightCurve, clean
from flaredetect.data.lightcurve import SECONDS_PER_DAY, LightCurve

LIGHT_CURVE_SUFFIXES = (".fits", ".fits.gz", ".fit", ".npy", ".csv", ".csv.gz")
# FITS flux columns, first present wins: SPOC / TESS-SPOC (2-min, 20-s and FFI) PDCSAP,
# lightkurve to_fits() FLUX, QLP FFI light curves (DET_FLUX from sector 56, KSPSAP_FLUX
# before), raw aperture flux last
FITS_FLUX_COLUMNS = ("PDCSAP_FLUX", "FLUX", "DET_FLUX", "KSPSAP_FLUX", "SAP_FLUX")
# CSV column names, first match wins (case-insensitive)
CSV_COLUMNS = {"time": ("time", "time_btjd", "btjd"), "flux": ("pdcsap_flux", "flux", "sap_flux"),
               "flux_err": ("pdcsap_flux_err", "flux_err", "sap_flux_err"), "quality": ("quality",)}

# tic002760232_s02.npy, TIC_123456_sector5.npy, 441420236_s01.npy (bare ids need >= 3 digits)
_NPY_NAME = re.compile(r"(?:^|[^0-9a-z])(?:tic[_-]?0*(\d+)|0*(\d{3,}))[_-]s(?:ector)?[_-]?0*(\d{1,3})(?![0-9])",
                       re.IGNORECASE)
_NPY_MAGIC = b"\x93NUMPY"
_SPOC_NAME = re.compile(r"-s(\d{4})-(\d{16})-")


class LightCurveReadError(ValueError):
    """A light-curve file could not be turned into a LightCurve; the message is one line
    and names the file."""


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _fail(path: Path | str, reason: str) -> LightCurveReadError:
    return LightCurveReadError(_one_line(f"{path}: {reason}"))


def _ids_from_name(path: Path) -> tuple[int | None, int | None]:
    match = _SPOC_NAME.search(path.name)
    if match:
        return int(match.group(2)), int(match.group(1))
    match = _NPY_NAME.search(path.name)
    if match:
        return int(match.group(1) or match.group(2)), int(match.group(3))
    return None, None


def _tic_from_meta(meta) -> int | None:
    for key in ("TICID", "TARGETID", "OBJECT", "LABEL"):
        value = meta.get(key)
        if value is None:
            continue
        digits = re.search(r"(\d+)", str(value))
        if digits:
            return int(digits.group(1))
    return None


def raw_from_lightkurve(lk_lc, source: str = "", tic: int | None = None,
                        sector: int | None = None) -> RawLightCurve:
    """Convert a ``lightkurve.LightCurve`` (flux column already chosen) to a RawLightCurve.

    TIC comes from ``TICID`` then ``OBJECT`` ('TIC 358108509' or '358108509'); sector
    from ``SECTOR``; explicit arguments win; None where none of these knows it (the light
    curve can still be scored; building training windows needs both). The cadence is the
    header's ``TIMEDEL`` (days; SPOC, TESS-SPOC and QLP files declare it), else measured
    from the times later. Masked values become NaN.
    """
    meta = lk_lc.meta
    tic = tic if tic is not None else _tic_from_meta(meta)
    sector = sector if sector is not None else meta.get("SECTOR")

    def values(column) -> np.ndarray:
        data = getattr(column, "value", column)
        data = np.ma.filled(np.ma.asarray(data, dtype=np.float64), np.nan)
        return np.asarray(data, dtype=np.float64)

    time = values(lk_lc.time.value)
    flux = values(lk_lc.flux)
    flux_err = values(lk_lc.flux_err) if "flux_err" in lk_lc.colnames else np.full_like(flux, np.nan)
    if "quality" in lk_lc.colnames:
        quality = np.ma.filled(np.ma.asarray(getattr(lk_lc["quality"], "value", lk_lc["quality"])), 0)
        quality = np.asarray(quality).astype(np.int64)
    else:
        quality = np.zeros(len(time), dtype=np.int64)
    cadenceno = None
    if "cadenceno" in lk_lc.colnames:
        numbers = np.ma.asarray(getattr(lk_lc["cadenceno"], "value", lk_lc["cadenceno"]))
        cadenceno = None if np.ma.is_masked(numbers) else np.asarray(numbers).astype(np.int64)
    return RawLightCurve(None if tic is None else int(tic), None if sector is None else int(sector), time, flux,
                         flux_err, quality, source=source, cadenceno=cadenceno, cadence_s=declared_cadence_s(meta))


def declared_cadence_s(meta) -> float | None:
    """The cadence a FITS header declares, in seconds: ``TIMEDEL`` (days), None when absent
    or not a positive number (lightkurve ``to_fits()`` files do not write it)."""
    try:
        value = float(meta.get("TIMEDEL"))
    except (TypeError, ValueError):
        return None
    return value * SECONDS_PER_DAY if np.isfinite(value) and value > 0 else None


@contextlib.contextmanager
def _quiet_lightkurve():
    """lightkurve logs an INFO line per file read ("0% of the cadences will be ignored due
    to the quality mask"), twice under Hydra; masking is the cleaner's job, so mute it."""
    logger = logging.getLogger("lightkurve")
    level = logger.level
    logger.setLevel(max(level, logging.WARNING))
    try:
        yield
    finally:
        logger.setLevel(level)


def _flux_column_of(path: Path, hdul) -> str:
    if len(hdul) < 2 or not hasattr(hdul[1], "columns"):
        raise _fail(path, "no LIGHTCURVE binary table in extension 1")
    names = {name.upper() for name in hdul[1].columns.names}
    for name in FITS_FLUX_COLUMNS:
        if name in names:
            return name
    raise _fail(path, f"no flux column of {list(FITS_FLUX_COLUMNS)} (columns: {sorted(names)})")


class _Headers:
    """``get`` from the first header holding a key (copying whole headers into a dict costs
    more than reading the table)."""

    def __init__(self, *headers) -> None:
        self.headers = headers

    def get(self, key: str, default=None):
        return next((h[key] for h in self.headers if key in h), default)


def _tess_table(path: Path, hdul, flux_column: str, tic, sector) -> RawLightCurve | None:
    """The light curve straight from the FITS table when lightkurve would read it as a TESS
    light curve (its ``detect_filetype``; times in BTJD) with no integer null values, as
    ``lightkurve.read`` would give it (rows with a NaN time dropped, its choice of flux and
    error columns, the primary header over the table's); None for anything else (lightkurve then reads it).
    Five to ten times faster than building lightkurve's objects: at catalog scale the reader
    was a fifth of the time per light curve."""
    from lightkurve.io.detect import detect_filetype

    if detect_filetype(hdul) != "TessLightCurve":
        return None
    hdu = hdul[1]
    columns = {c.name.upper(): c for c in hdu.columns}
    if "TIME" not in columns:
        return None
    if any(c.null is not None for name, c in columns.items() if name in ("QUALITY", "CADENCENO")):
        return None
    data = hdu.data
    time = np.asarray(data[columns["TIME"].name], dtype=np.float64)
    keep = ~np.isnan(time)

    def column(name: str, dtype):
        return np.asarray(data[columns[name].name], dtype=dtype)[keep] if name in columns else None

    # lightkurve's rule: a FLUX / FLUX_ERR column, when the file has one, wins over the one asked for
    flux = column("FLUX" if "FLUX" in columns else flux_column, np.float64)
    flux_err = column("FLUX_ERR" if "FLUX_ERR" in columns else f"{flux_column}_ERR", np.float64)
    quality = column("QUALITY", np.int64)
    meta = _Headers(hdul[0].header, hdu.header)
    tic, sector = _identifiers(path, meta, tic, sector)
    return RawLightCurve(None if tic is None else int(tic), None if sector is None else int(sector), time[keep], flux,
                         np.full_like(flux, np.nan) if flux_err is None else flux_err,
                         np.zeros(len(flux), dtype=np.int64) if quality is None else quality, source=str(path),
                         cadenceno=column("CADENCENO", np.int64), cadence_s=declared_cadence_s(meta))


def _identifiers(path: Path, meta, tic, sector) -> tuple:
    """TIC and sector: the arguments, else the header, else the file name (None: unknown)."""
    name_tic, name_sector = _ids_from_name(path)
    tic = next((v for v in (tic, _tic_from_meta(meta), name_tic) if v is not None), None)
    sector = next((v for v in (sector, meta.get("SECTOR"), name_sector) if v is not None), None)
    return tic, sector


def read_raw_fits(path: str | Path, tic: int | None = None, sector: int | None = None,
                  direct: bool = True) -> RawLightCurve:
    """Un-normalised light curve from a SPOC or lightkurve ``to_fits()`` FITS file.

    All cadences are returned (``quality_bitmask='none'``); masking is the cleaner's job.
    TIC and sector: ``tic``/``sector`` if given, else the header, else the file name.
    Plain TESS tables are read directly (:func:`_tess_table`), anything else (and everything
    with ``direct=False``, the reference the direct reader is tested against) by ``lightkurve.read``.
    """
    from astropy.io import fits

    path = Path(path)
    try:
        with fits.open(path, memmap=False) as hdul:
            flux_column = _flux_column_of(path, hdul)
            raw = _tess_table(path, hdul, flux_column, tic, sector) if direct else None
        if raw is not None:
            return raw
        import lightkurve as lk

        with _quiet_lightkurve():
            lk_lc = lk.read(str(path), quality_bitmask="none", flux_column=flux_column.lower())
    except LightCurveReadError:
        raise
    except Exception as exc:  # astropy/lightkurve raise many types for damaged files
        raise _fail(path, f"corrupted or unreadable FITS ({type(exc).__name__}: {exc})") from exc
    tic, sector = _identifiers(path, lk_lc.meta, tic, sector)
    try:
        return raw_from_lightkurve(lk_lc, source=str(path), tic=tic, sector=sector)
    except ValueError as exc:
        raise LightCurveReadError(_one_line(str(exc))) from exc


def read_raw_npy(path: str | Path, tic: int | None = None, sector: int | None = None) -> RawLightCurve:
    """Un-normalised light curve from a ``(3, N)`` array: time (BTJD), flux, flux error.

    TIC and sector come from ``tic``/``sector`` if given, else from a name like
    ``tic002760232_s02.npy`` or ``441420236_s01.npy``, else are None (unknown). There is
    no QUALITY column, so quality is 0 (unknown) everywhere. Values are read in float64
    whatever the file's dtype.
    """
    path = Path(path)
    with open(path, "rb") as f:
        magic = f.read(len(_NPY_MAGIC))
    if magic != _NPY_MAGIC:  # checked first: numpy's own error for a text file suggests allow_pickle=True
        raise _fail(path, "not a .npy array (no NumPy header; text or another format?)")
    try:
        array = np.load(path, allow_pickle=False)
    except Exception as exc:
        raise _fail(path, f"not a readable .npy array ({type(exc).__name__}: {exc})") from exc
    if array.ndim != 2 or array.shape[0] != 3:
        raise _fail(path, f"expected a (3, N) array of time, flux, flux_err; got shape {array.shape}")
    if array.shape[1] == 0:
        raise _fail(path, "empty array (N = 0 cadences)")
    name_tic, name_sector = _ids_from_name(path)
    tic = tic if tic is not None else name_tic
    sector = sector if sector is not None else name_sector
    if array.dtype.kind not in "biuf":
        raise _fail(path, f"array is not numeric (dtype {array.dtype})")
    array = array.astype(np.float64)
    return RawLightCurve(None if tic is None else int(tic), None if sector is None else int(sector),
                         array[0], array[1], array[2],
                         np.zeros(array.shape[1], dtype=np.int64), source=str(path))


# TIC_18310799_44_2_data.csv.gz (tess20s: TIC, sector, orbit)
_CSV_NAME = re.compile(r"tic[_-]?0*(\d+)[_-]0*(\d{1,3})[_-]", re.IGNORECASE)


def read_csv_table(path: str | Path):
    """The CSV file (gzip allowed) as a pandas DataFrame; one-line error naming the file."""
    import pandas as pd

    try:
        return pd.read_csv(path)
    except Exception as exc:
        raise _fail(path, f"not a readable CSV table ({type(exc).__name__}: {exc})") from exc


def read_raw_csv(path: str | Path, tic: int | None = None, sector: int | None = None, table=None) -> RawLightCurve:
    """Un-normalised light curve from a CSV table (gzip allowed) with a time column in BTJD
    and a flux column (names in :data:`CSV_COLUMNS`); ``flux_err`` and ``quality`` are
    optional (unknown: NaN and 0). TIC and sector: arguments, else a name like
    ``TIC_18310799_44_2_data.csv.gz`` or ``tic123_s05.csv``. The cadence is measured.
    ``table``: the file already read (:func:`read_csv_table`)."""
    import pandas as pd

    path = Path(path)
    table = read_csv_table(path) if table is None else table
    lower = {str(c).strip().lower(): c for c in table.columns}

    def column(kind: str):
        name = next((lower[n] for n in CSV_COLUMNS[kind] if n in lower), None)
        return None if name is None else pd.to_numeric(table[name], errors="coerce").to_numpy(np.float64)

    time, flux = column("time"), column("flux")
    if time is None or flux is None:
        raise _fail(path, f"a CSV light curve needs a time and a flux column ({CSV_COLUMNS['time']} / "
                          f"{CSV_COLUMNS['flux']}); columns are {list(table.columns)}")
    if len(time) == 0:
        raise _fail(path, "empty table (0 cadences)")
    flux_err = column("flux_err")
    quality = column("quality")
    match = _CSV_NAME.search(path.name)
    name_tic, name_sector = (int(match.group(1)), int(match.group(2))) if match else _ids_from_name(path)
    tic = tic if tic is not None else name_tic
    sector = sector if sector is not None else name_sector
    return RawLightCurve(None if tic is None else int(tic), None if sector is None else int(sector), time, flux,
                         np.full(len(time), np.nan) if flux_err is None else flux_err,
                         np.zeros(len(time), np.int64) if quality is None else np.nan_to_num(quality).astype(np.int64),
                         source=str(path))


def read_raw_light_curve(path: str | Path, **kwargs) -> RawLightCurve:
    """Dispatch on the suffix: ``.npy`` -> :func:`read_raw_npy`, ``.csv``/``.csv.gz`` ->
    :func:`read_raw_csv`, else :func:`read_raw_fits`."""
    path = Path(path)
    if not path.is_file():
        raise _fail(path, "no such file")
    if path.suffix.lower() == ".npy":
        return read_raw_npy(path, **kwargs)
    if path.name.lower().endswith((".csv", ".csv.gz")):
        return read_raw_csv(path, **kwargs)
    return read_raw_fits(path, **kwargs)


def read_light_curve(path: str | Path, quality_bitmask: str | int | None = "default", *,
                     low_sigma: float | None = 5.0, **kwargs) -> LightCurve:
    """Read one file and return the cleaned, normalised LightCurve.

    Parameters
    ----------
    path
        SPOC ``*_lc.fits``, lightkurve ``to_fits()`` FITS, ``(3, N)`` ``.npy`` or CSV.
    quality_bitmask
        Name or int, see :func:`flaredetect.data.cleaning.resolve_bitmask`.
    low_sigma
        One-sided low-outlier clip in robust sigma (None disables).
    **kwargs
        ``tic``/``sector`` overrides (else header, else file name, else None).

    Raises
    ------
    LightCurveReadError
        One line naming the file and the problem (missing, corrupted, wrong shape, no
        finite flux, ...).
    """
    raw = read_raw_light_curve(path, **kwargs)
    try:
        return clean(raw, quality_bitmask, low_sigma=low_sigma)
    except ValueError as exc:
        raise LightCurveReadError(_one_line(str(exc))) from exc


def find_light_curve_files(paths: str | Path | Iterable[str | Path]) -> list[Path]:
    """Expand directories (their light-curve files, :data:`LIGHT_CURVE_SUFFIXES`, not recursive),
    glob patterns and plain paths into a sorted, de-duplicated file list."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    found: list[Path] = []
    for item in paths:
        item_str = str(item)
        path = Path(item_str)
        if path.is_dir():
            found.extend(p for p in path.iterdir()
                         if p.is_file() and p.name.lower().endswith(LIGHT_CURVE_SUFFIXES))
        elif any(ch in item_str for ch in "*?["):
            found.extend(Path(p) for p in glob.glob(item_str) if Path(p).is_file())
        else:
            found.append(path)
    return sorted(set(found))


class LocalSource:
    """Light curves from files on disk.

    ``iter_light_curves()`` yields ``(target_id, LightCurve | Exception)`` per file, so
    one damaged file gives a one-line reason and the run goes on. ``target_id`` is the
    file name.
    """

    def __init__(self, paths: str | Path | Sequence[str | Path],
                 quality_bitmask: str | int | None = "default", low_sigma: float | None = 5.0):
        self.files = find_light_curve_files(paths)
        self.quality_bitmask = quality_bitmask
        self.low_sigma = low_sigma

    def __len__(self) -> int:
        return len(self.files)

    def iter_light_curves(self) -> Iterator[tuple[str, LightCurve | Exception]]:
        for path in self.files:
            try:
                yield path.name, read_light_curve(path, self.quality_bitmask, low_sigma=self.low_sigma)
            except Exception as exc:  # one bad file must not stop a long run
                yield path.name, exc
