"""Per-pixel surface reflectance of the synthetic landscape on a given date (clear sky, no atmosphere).

Why: `phenology` gives the spectrum of a unit on a day; a real image also varies inside a class. This module
adds, per pixel and fixed over the years: phenology timing (per-field sowing jitter, a smooth regional shift,
later seasons uphill), vegetation vigour, illumination/brightness (roof materials in towns), soil brightness,
water turbidity, a small spectral offset per band, and mixed pixels at patch edges; and per date: snow from
a simple daily snow-pack model (lowland snow spells in winter, a seasonal snow line in the mountains).

Reflectance arrays are float32 (bands, pixels) in S2_BANDS order, pixels flattened row-major. Everything is
computed for a strip of rows at a time: the traits once, into a `TraitStore` (62 bytes a pixel, in raw
files for a large grid), then the reflectance of any rows on any day from them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hrlc.sample import _kernels
from hrlc.sample._kernels import mix_kernel, surface_kernel
from hrlc.sample._noise import TAG_PIXEL, TAG_SNOW, Field, rng
from hrlc.sample._strips import strips
from hrlc.sample.landscape import Landscape, boundary_pairs
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

N_BANDS = ENDMEMBERS.shape[1]


@dataclass(frozen=True)
class PixelTraits:
    """Fixed per-pixel variability of some rows of a landscape (independent of the year): (rows, width)."""

    shift: np.ndarray  # int16 days added to the phenology calendar (later season > 0)
    vigor: np.ndarray  # float32 multiplier of the green-vegetation fraction
    bright: np.ndarray  # float32 multiplier of the whole spectrum
    soil: np.ndarray  # float32 multiplier of soil / rock reflectance
    turbidity: np.ndarray  # float32 share of clear water seen as turbid
    offset: np.ndarray  # float32 (bands, rows, width) additive spectral offset
    patchiness: np.ndarray  # float32 snow patchiness (drifts, melt) in [0, 1]


_DTYPES: dict[str, type] = {
    "shift": np.int16,
    "vigor": np.float32,
    "bright": np.float32,
    "soil": np.float32,
    "turbidity": np.float32,
    "offset": np.float32,
    "patchiness": np.float32,
    "shift_days": np.float32,  # the shift before the parcels' own jitter (while the traits are drawn)
}


class TraitStore:
    """The traits of every pixel of a size x size grid and its mixed edge pixels, written once, read by rows.

    In memory, or in raw files under `folder` (one per trait, row-major; `offset` band after band) so that
    a tile's 62 bytes a pixel stay on disk. Edge pairs are kept sorted by pixel with an index per row.
    """

    def __init__(self, size: int, folder: Path | None = None) -> None:
        self.size = size
        self._folder = folder
        self._arrays: dict[str, np.ndarray] = {}
        self._edge_rows = np.zeros(size + 1, dtype=np.int64)
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)

    @classmethod
    def of(
        cls, traits: PixelTraits, edges: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
    ) -> TraitStore:
        """A store in memory holding `traits` of a whole grid (and `edges`, default none)."""
        store = cls(traits.shift.shape[0])
        for name in ("shift", "vigor", "bright", "soil", "turbidity", "patchiness"):
            store.write(name, 0, getattr(traits, name))
        for b in range(N_BANDS):
            store.write("offset", 0, traits.offset[b], band=b)
        none = np.zeros(0, dtype=np.int64)
        store.set_edges(*(edges if edges is not None else (none, none, np.zeros(0, dtype=np.float32))))
        return store

    def _path(self, name: str) -> Path:
        assert self._folder is not None
        return self._folder / f"{name}.bin"

    def write(self, name: str, r0: int, values: np.ndarray, band: int = 0) -> None:
        """Write rows r0... of trait `name` (band `band` of `offset`)."""
        dtype = _DTYPES[name]
        n = self.size
        values = np.ascontiguousarray(values, dtype=dtype)
        if self._folder is None:
            whole = self._arrays.get(name)
            if whole is None:
                whole = self._arrays[name] = np.zeros(((N_BANDS if name == "offset" else 1), n, n), dtype)
            whole[band, r0 : r0 + values.shape[0]] = values
            return
        path = self._path(name)
        with open(path, "r+b" if path.exists() else "w+b") as f:
            f.seek((band * n + r0) * n * values.itemsize)
            values.tofile(f)

    def read(self, name: str, r0: int, r1: int, band: int = 0) -> np.ndarray:
        """Rows [r0, r1) of trait `name` (band `band` of `offset`): (r1 - r0, size)."""
        n = self.size
        if self._folder is None:
            return self._arrays[name][band, r0:r1]
        dtype = np.dtype(_DTYPES[name])
        count = (r1 - r0) * n
        values = np.fromfile(
            self._path(name), dtype=dtype, count=count, offset=(band * n + r0) * n * dtype.itemsize
        )
        return values.reshape(r1 - r0, n)

    def drop(self, name: str) -> None:
        if self._folder is None:
            self._arrays.pop(name, None)
        else:
            self._path(name).unlink(missing_ok=True)

    def rows(self, r0: int, r1: int) -> PixelTraits:
        """The traits of rows [r0, r1) (views of the arrays when the store is in memory)."""
        if self._folder is None:
            offset = self._arrays["offset"][:, r0:r1]
        else:
            offset = np.empty((N_BANDS, r1 - r0, self.size), dtype=np.float32)
            for b in range(N_BANDS):
                offset[b] = self.read("offset", r0, r1, band=b)
        return PixelTraits(
            shift=self.read("shift", r0, r1),
            vigor=self.read("vigor", r0, r1),
            bright=self.read("bright", r0, r1),
            soil=self.read("soil", r0, r1),
            turbidity=self.read("turbidity", r0, r1),
            offset=offset,
            patchiness=self.read("patchiness", r0, r1),
        )

    def set_edges(self, p: np.ndarray, q: np.ndarray, w: np.ndarray) -> None:
        """Mixed edge pixels: flat index `p` (sorted), its neighbour `q`, the neighbour's weight `w`."""
        n = self.size
        self._edge_rows = np.searchsorted(p, np.arange(n + 1, dtype=np.int64) * n)
        if self._folder is None:
            self._edges = (p, q, w)
            return
        for name, a in (("edge_p", p), ("edge_q", q), ("edge_w", w)):
            a.tofile(self._path(name))

    def edges(self, r0: int, r1: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The mixed edge pixels of rows [r0, r1): (pixel, neighbour, weight), flat indices of the grid."""
        a, b = int(self._edge_rows[r0]), int(self._edge_rows[r1])
        if self._folder is None:
            p, q, w = self._edges
            return p[a:b], q[a:b], w[a:b]
        return (
            np.fromfile(self._path("edge_p"), dtype=np.int64, count=b - a, offset=8 * a),
            np.fromfile(self._path("edge_q"), dtype=np.int64, count=b - a, offset=8 * a),
            np.fromfile(self._path("edge_w"), dtype=np.float32, count=b - a, offset=4 * a),
        )


def pixel_traits(ls: Landscape, folder: Path | None = None) -> TraitStore:
    """Draw the fixed per-pixel variability of landscape `ls` (seeded by its seed) into a store.

    Trait after trait, each a pass over row strips that reads its white noise straight from the one
    generator, so the numbers drawn are those of the same fields drawn whole.
    """
    n = ls.size
    shape = (n, n)
    parts = strips(n, n)
    store = TraitStore(n, folder)
    g = rng(ls.seed, TAG_PIXEL)

    def white(r0: int, r1: int) -> np.ndarray:
        return g.standard_normal((r1 - r0, n), dtype=np.float32)

    field = ls.field
    n_fields = ls.n_fields

    # Phenology timing: regional smooth shift, uphill delay, per-field sowing jitter.
    regional = Field(g, shape, max(n / 8, 16.0), octaves=2)
    for r0, r1 in parts:
        shift = 5.0 * regional.rows(r0, r1) + 30.0 * (ls.elevation[r0:r1] - 0.5) + 1.5 * white(r0, r1)
        store.write("shift_days", r0, shift)
    field_shift = g.uniform(-9.0, 9.0, size=n_fields).astype(np.float32)
    for r0, r1 in parts:
        f = field[r0:r1]
        shift = np.where(f > 0, field_shift[f] + 1.5 * white(r0, r1), store.read("shift_days", r0, r1))
        store.write("shift", r0, np.rint(shift))
    store.drop("shift_days")

    field_vigor = g.uniform(0.8, 1.1, size=n_fields).astype(np.float32)
    vigor_noise = Field(g, shape, 12.0, octaves=2)
    for r0, r1 in parts:
        f = field[r0:r1]
        vigor = 1.0 + 0.12 * vigor_noise.rows(r0, r1) + 0.07 * white(r0, r1)
        store.write("vigor", r0, np.where(f > 0, vigor * field_vigor[f], vigor))

    bright_noise = Field(g, shape, 20.0, octaves=2)
    for r0, r1 in parts:
        store.write("bright", r0, np.exp(0.08 * bright_noise.rows(r0, r1) + 0.05 * white(r0, r1)))
    roof_noise = Field(g, shape, 2.5)
    for r0, r1 in parts:
        roofs = np.exp(0.18 * roof_noise.rows(r0, r1) + 0.08 * white(r0, r1))
        built = ls.unit[r0:r1] == Unit.BUILT
        store.write("bright", r0, np.where(built, roofs, store.read("bright", r0, r1)))

    soil_noise = Field(g, shape, max(n / 10, 20.0), octaves=3)
    turbidity_noise = Field(g, shape, 30.0, octaves=2)
    for b in range(N_BANDS):
        for r0, r1 in parts:
            store.write("offset", r0, 0.006 * white(r0, r1), band=b)
    patch_noise = Field(g, shape, 15.0, octaves=3)
    for r0, r1 in parts:
        store.write("soil", r0, 1.0 + 0.12 * soil_noise.rows(r0, r1))
        store.write("turbidity", r0, np.clip(0.12 + 0.1 * turbidity_noise.rows(r0, r1), 0.0, 0.4))
        store.write("patchiness", r0, np.clip(0.8 + 0.3 * patch_noise.rows(r0, r1), 0.0, 1.0))

    store.set_edges(*boundary_pairs(ls))
    return store


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
    """Surface reflectance of landscape `ls` in `year` on any day (clear sky), for any rows."""

    def __init__(self, ls: Landscape, year: int, traits: TraitStore | None = None) -> None:
        self.landscape = ls
        self.year = year
        self.traits = traits if traits is not None else pixel_traits(ls)
        self._crops = ls.crop_types(year)
        self._table = fraction_table()  # (K, U*365)
        susc = np.zeros(256, dtype=np.float32)
        for u, s in SNOW_SUSCEPTIBILITY.items():
            susc[u] = s
        self._susceptibility = susc
        self._snow_depth = snow_depth(ls.seed, year)
        self._units: tuple[tuple[int, int], np.ndarray] | None = None

    def units(self, r0: int, r1: int) -> np.ndarray:
        """Surface units of rows [r0, r1) in the model's year (uint8, crop types resolved; read-only)."""
        if self._units is None or self._units[0] != (r0, r1):  # every date asks for the same strips
            self._units = ((r0, r1), self.landscape.units(self.year, r0, r1, crops=self._crops))
        return self._units[1]

    def snow_fraction(
        self, doy: int, unit: np.ndarray, elevation: np.ndarray, patchiness: np.ndarray
    ) -> np.ndarray | None:
        """Visible snow cover fraction of pixels on `doy` (None when there is no snow outside the glacier)."""
        lowland = min(1.0, float(self._snow_depth[(doy - 1) % DAYS]) / 8.0)
        season = _mountain_season(doy)
        snowline = 1.0 - 0.17 * season
        if lowland <= 0.0 and snowline >= 0.99:
            return None
        mountain = np.clip((elevation - snowline) / 0.03, 0.0, 1.0)
        cover = np.maximum(lowland * patchiness, mountain)
        return cover * self._susceptibility[unit]

    def reflectance(
        self,
        doy: int,
        bands: list[int] | None = None,
        *,
        snow: bool = True,
        rows: tuple[int, int] | None = None,
    ) -> np.ndarray:
        """Clear-sky surface reflectance (len(bands), pixels) float32 of rows `rows` (default: all) on day
        of year `doy` (no sensor noise).

        Per pixel: fractions of the unit on day `doy - shift`; green fraction times vigour (<= 0.98) with
        the others rescaled; soil and rock brightness; water turbidity; snow; `fractions @ ENDMEMBERS`
        times brightness plus the spectral offset; finally edge pixels mix with their neighbour (so one row
        more is computed on each side).
        """
        n = self.landscape.size
        r0, r1 = rows if rows is not None else (0, n)
        a, b = max(r0 - 1, 0), min(r1 + 1, n)
        t = self.traits.rows(a, b)
        unit = self.units(a, b).ravel()
        band_idx = np.arange(ENDMEMBERS.shape[1]) if bands is None else np.asarray(bands, dtype=np.int64)
        out = np.empty((band_idx.size, unit.size), dtype=np.float32)
        s = None
        if snow:
            s = self.snow_fraction(doy, unit, self.landscape.elevation[a:b].ravel(), t.patchiness.ravel())
        surface_kernel(
            self._table,
            unit.astype(np.int32) * DAYS,
            t.shift.ravel(),
            int(doy) - 1,
            t.vigor.ravel(),
            t.soil.ravel(),
            t.turbidity.ravel(),
            s.astype(np.float32) if s is not None else np.zeros(0, dtype=np.float32),
            np.ascontiguousarray(ENDMEMBERS[:, band_idx]),
            t.bright.ravel(),
            t.offset.reshape(N_BANDS, -1),
            band_idx.astype(np.int64),
            out,
        )
        p, q, w = self.traits.edges(r0, r1)
        mix_kernel(out, p - a * n, q - a * n, w)
        if (a, b) == (r0, r1):
            return out
        return np.ascontiguousarray(out[:, (r0 - a) * n : (r1 - a) * n])
