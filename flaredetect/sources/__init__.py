"""Light-curve sources behind one interface.

A source is any object with ``iter_light_curves()`` yielding
``(target_id, LightCurve | Exception)``: a failing target gives a one-line reason and
the run goes on. :class:`LocalSource` reads files, :class:`MastSource` downloads from
MAST; :func:`read_light_curve` reads one file.
"""
from __future__ import annotations

from typing import Iterator, Protocol, runtime_checkable

from flaredetect.data.lightcurve import LightCurve
from flaredetect.sources.local import (
    LightCurveReadError,
    LocalSource,
    find_light_curve_files,
    raw_from_lightkurve,
    read_light_curve,
    read_raw_light_curve,
)
from flaredetect.sources.mast import MastError, MastSource, with_retries


@runtime_checkable
class LightCurveSource(Protocol):
    """Anything that yields ``(target_id, LightCurve | Exception)``."""

    def iter_light_curves(self) -> Iterator[tuple[str, LightCurve | Exception]]: ...


__all__ = [
    "LightCurveSource",
    "LightCurveReadError",
    "LocalSource",
    "MastError",
    "MastSource",
    "find_light_curve_files",
    "raw_from_lightkurve",
    "read_light_curve",
    "read_raw_light_curve",
    "with_retries",
]
