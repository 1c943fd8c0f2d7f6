"""Per-pixel surface reflectance of the synthetic landscape on a given date (clear sky, no atmosphere).

Why: `phenology` gives the spectrum of a unit on a day; a real image also varies inside a class. This module
adds, per pixel and fixed over the years: phenology timing (per-field sowing jitter, a smooth regional shift,
later seasons uphill), vegetation vigour, illumination/brightness (roof materials in towns), soil brightness,
water turbidity, a small spectral offset per band, and mixed pixels at patch edges; and per date: snow from
a simple daily snow-pack model (lowland snow spells in winter, a seasonal snow line in the mountains).

Reflectance arrays are float32 (bands, pixels) in S2_BANDS order, pixels flattened row-major.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hrlc.sample import _kernels
from hrlc.sample._kernels import mix_kernel, surface_kernel
from hrlc.sample._noise import TAG_PIXEL, TAG_SNOW, rng, smooth_field
from hrlc.sample.landscape import CROP, Landscape, boundary_pairs
from hrlc.sample.phenology import (
    DAYS,
    ENDMEMBERS,
    SNOW_SUSCEPTIBILITY,
    Endmember,
    Unit,
    fraction_table,
)

assert (_kernels.GREEN, _kernels.SOIL, _kernels.ROCK, _kernels.WATER, _kernels.TURBID, _kernels.SNOW) == (
    Endmember.GREEN, Endmember.SOIL, Endmember.ROCK, Endmember.WATER, Endmember.TURBID, Endmember.SNOW
)  # fmt: skip


@dataclass(frozen=True)
class PixelTraits:
    """Fixed per-pixel variability of a landscape (independent of the year), flattened row-major."""

    shift: np.ndarray  # int16 days added to the phenology calendar (later season > 0)
    vigor: np.ndarray  # float32 multiplier of the green-vegetation fraction
    bright: np.ndarray  # float32 multiplier of the whole spectrum
    soil: np.ndarray  # float32 multiplier of soil / rock reflectance
    turbidity: np.ndarray  # float32 share of clear water seen as turbid
    offset: np.ndarray  # float32 (bands, pixels) additive spectral offset
    patchiness: np.ndarray  # float32 snow patchiness (drifts, melt) in [0, 1]
    mix_p: np.ndarray  # int64 flat index of mixed edge pixels
    mix_q: np.ndarray  # int64 flat index of the neighbour each one mixes with
    mix_w: np.ndarray  # float32 weight of the neighbour


def pixel_traits(ls: Landscape) -> PixelTraits:
    """Draw the fixed per-pixel variability of landscape `ls` (seeded by its seed)."""
    n = ls.size
    shape = (n, n)
    g = rng(ls.seed, TAG_PIXEL)
    white = lambda: g.standard_normal(shape, dtype=np.float32)  # noqa: E731
    field = ls.field
    n_fields = int(field.max()) + 1
    in_field = field > 0

    # Phenology timing: regional smooth shift, uphill delay, per-field sowing jitter.
    shift = (
        5.0 * smooth_field(g, shape, max(n / 8, 16.0), octaves=2)
        + 30.0 * (ls.elevation - 0.5)
        + 1.5 * white()
    )
    field_shift = g.uniform(-9.0, 9.0, size=n_fields).astype(np.float32)
    shift = np.where(in_field, field_shift[field] + 1.5 * white(), shift)

    field_vigor = g.uniform(0.8, 1.1, size=n_fields).astype(np.float32)
    vigor = 1.0 + 0.12 * smooth_field(g, shape, 12.0, octaves=2) + 0.07 * white()
    vigor = np.where(in_field, vigor * field_vigor[field], vigor)

    bright = np.exp(0.08 * smooth_field(g, shape, 20.0, octaves=2) + 0.05 * white())
    built = ls.unit == Unit.BUILT
    roofs = np.exp(0.18 * smooth_field(g, shape, 2.5) + 0.08 * white())
    bright = np.where(built, roofs, bright)

    soil = 1.0 + 0.12 * smooth_field(g, shape, max(n / 10, 20.0), octaves=3)
    turbidity = np.clip(0.12 + 0.1 * smooth_field(g, shape, 30.0, octaves=2), 0.0, 0.4)
    offset = 0.006 * g.standard_normal((len(ENDMEMBERS[0]), n * n), dtype=np.float32)
    patchiness = np.clip(0.8 + 0.3 * smooth_field(g, shape, 15.0, octaves=3), 0.0, 1.0)

    patch = ls.unit.astype(np.int64) * 2**24 + ls.field
    mix_p, mix_q, mix_w = boundary_pairs(patch, ls.seed)

    def flat(a: np.ndarray, dtype: type = np.float32) -> np.ndarray:
        return np.ascontiguousarray(a, dtype=dtype).ravel()

    return PixelTraits(
        shift=flat(np.rint(shift), np.int16),
        vigor=flat(vigor),
        bright=flat(bright),
        soil=flat(soil),
        turbidity=flat(turbidity),
        offset=offset,
        patchiness=flat(patchiness),
        mix_p=mix_p,
        mix_q=mix_q,
        mix_w=mix_w,
    )


def snow_depth(seed: int, year: int) -> np.ndarray:
    """Daily lowland snow depth (cm) of `year`, index doy-1: snow spells Dec-Mar, melting in between."""
    g = rng(seed, TAG_SNOW, year)
    depth = np.zeros(DAYS, dtype=np.float32)
    d = float(g.uniform(0.0, 8.0))
    # Spin up over the previous December so 1 January carries the snow of the season.
    days = [*range(335, DAYS + 1), *range(1, DAYS + 1)]
    for i, doy in enumerate(days):
        winter = doy <= 75 or doy >= 335
        if winter and g.random() < 0.07:
            d += float(g.uniform(2.0, 15.0))
        d = max(0.0, d - float(g.uniform(0.8, 3.5) if winter else g.uniform(2.0, 5.0)))
        if i >= DAYS + 1 - 335:
            depth[doy - 1] = d
    return depth


def _mountain_season(doy: int) -> float:
    """Seasonal snow cover of the mountains: 1 in winter, 0 in summer."""
    return float(np.interp(doy, [1, 75, 120, 165, 290, 320, 350, 366], [1, 1, 0.5, 0, 0, 0.4, 1, 1]))


class SurfaceModel:
    """Surface reflectance of landscape `ls` in `year` on any day (clear sky)."""

    def __init__(self, ls: Landscape, year: int, traits: PixelTraits | None = None) -> None:
        self.landscape = ls
        self.year = year
        self.traits = traits if traits is not None else pixel_traits(ls)
        units = ls.units(year)
        self.unit = units.ravel()
        self._base = self.unit.astype(np.int32) * DAYS
        self._table = fraction_table()  # (K, U*365)
        susc = np.zeros(256, dtype=np.float32)
        for u, s in SNOW_SUSCEPTIBILITY.items():
            susc[u] = s
        self._susceptibility = susc[self.unit]
        self._elevation = ls.elevation.ravel()
        self._snow_depth = snow_depth(ls.seed, year)
        self._scratch: dict[str, np.ndarray] = {}
        self._fresh: set[str] = set()
        assert not (units == CROP).any()

    def snow_fraction(self, doy: int) -> np.ndarray | None:
        """Visible snow cover fraction per pixel on `doy` (None when there is no snow outside the glacier)."""
        lowland = min(1.0, float(self._snow_depth[(doy - 1) % DAYS]) / 8.0)
        season = _mountain_season(doy)
        snowline = 1.0 - 0.17 * season
        if lowland <= 0.0 and snowline >= 0.99:
            return None
        mountain = np.clip((self._elevation - snowline) / 0.03, 0.0, 1.0)
        cover = np.maximum(lowland * self.traits.patchiness, mountain)
        return cover * self._susceptibility

    def scratch(self, name: str, shape: tuple[int, ...], dtype: type = np.float32) -> np.ndarray:
        """A reusable work buffer owned by the model (not thread-safe: one rendering at a time per model)."""
        buf = self._scratch.get(name)
        if buf is None or buf.shape != shape or buf.dtype != dtype:
            buf = self._scratch[name] = np.empty(shape, dtype=dtype)
            self._fresh.add(name)
        return buf

    def scratch_new(self, name: str) -> bool:
        """True the first time it is asked after buffer `name` was allocated (to fill it once)."""
        if name in self._fresh:
            self._fresh.discard(name)
            return True
        return False

    def reflectance(
        self, doy: int, bands: list[int] | None = None, *, snow: bool = True, out: np.ndarray | None = None
    ) -> np.ndarray:
        """Clear-sky surface reflectance (len(bands), pixels) float32 on day of year `doy` (no sensor noise).

        Per pixel: fractions of the unit on day `doy - shift`; green fraction times vigour (<= 0.98) with
        the others rescaled; soil and rock brightness; water turbidity; snow; `fractions @ ENDMEMBERS`
        times brightness plus the spectral offset; finally edge pixels mix with their neighbour.
        """
        t = self.traits
        npx = self.unit.size
        band_idx = np.arange(ENDMEMBERS.shape[1]) if bands is None else np.asarray(bands, dtype=np.int64)
        if out is None:
            out = np.empty((band_idx.size, npx), dtype=np.float32)
        s = self.snow_fraction(doy) if snow else None
        surface_kernel(
            self._table,
            self._base,
            t.shift,
            int(doy) - 1,
            t.vigor,
            t.soil,
            t.turbidity,
            s.astype(np.float32) if s is not None else np.zeros(0, dtype=np.float32),
            np.ascontiguousarray(ENDMEMBERS[:, band_idx]),
            t.bright,
            t.offset,
            band_idx.astype(np.int64),
            out,
        )
        mix_kernel(out, t.mix_p, t.mix_q, t.mix_w)
        return out
