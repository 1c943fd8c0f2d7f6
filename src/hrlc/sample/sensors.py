"""The two synthetic sensors: acquisition calendars, band specifications, and rendering of one acquisition.

Why: turns the clear-sky surface of `surface.SurfaceModel` into what a user downloads from Earth Search
(Sentinel-2 L2A: uint16 reflectance x 10000 and the SCL scene classification) or from the Planetary
Computer (Landsat Collection 2 Level-2: uint16 DN with scale 2.75e-5 and offset -0.2, and the QA_PIXEL
bit flags), with per-date atmospheric residuals, sensor noise and clouds.

Simplifications, stated once: every Sentinel-2 band (including the 20 m bands B05-B07, B8A, B11, B12 and
SCL) is written on the 10 m grid; the S2 digital numbers carry no BOA offset (processing baseline < 04.00,
so reflectance = DN * 1e-4); Landsat 7 ETM+ scenes have SLC-off gaps (fill) and no cirrus detection,
as the real ones do.

An acquisition is drawn whole when its renderer (`S2Scene`, `LandsatScene`) is made, and rendered by rows:
the repository writes a tile strip by strip; `render_s2` / `render_landsat` give a whole small scene.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from hrlc.sample._kernels import observe_kernel
from hrlc.sample._noise import TAG_CLOUDS, TAG_SCENE, Field, rng
from hrlc.sample.clouds import CloudLayer, Clouds
from hrlc.sample.phenology import LANDSAT_BANDS, LANDSAT_FROM_S2, S2_BANDS, landsat_response
from hrlc.sample.surface import SurfaceModel

S2_DAYS_STEP = 5
LANDSAT_DAYS_STEP = 8
S2_SCALE = 1e-4
LANDSAT_SCALE = 2.75e-5
LANDSAT_OFFSET = -0.2

# Sentinel-2 L2A scene classification (SCL) codes.
SCL_NODATA, SCL_SATURATED, SCL_DARK, SCL_SHADOW, SCL_VEGETATION, SCL_NOT_VEGETATED = 0, 1, 2, 3, 4, 5
SCL_WATER, SCL_UNCLASSIFIED, SCL_CLOUD_MEDIUM, SCL_CLOUD_HIGH, SCL_CIRRUS, SCL_SNOW = 6, 7, 8, 9, 10, 11
SCL_CODES = tuple(range(12))

# Landsat C2 QA_PIXEL bits.
QA_FILL, QA_DILATED, QA_CIRRUS, QA_CLOUD, QA_SHADOW, QA_SNOW, QA_CLEAR, QA_WATER = (1 << b for b in range(8))
QA_CLOUD_CONF, QA_SHADOW_CONF, QA_SNOW_CONF, QA_CIRRUS_CONF = (
    8,
    10,
    12,
    14,
)  # 2-bit fields: low 1, med 2, high 3


@dataclass(frozen=True)
class S2Band:
    key: str  # STAC asset key (Earth Search v1)
    file: str  # file name (B02.tif)
    band: str  # MSI band id
    title: str
    common_name: str
    wavelength: float
    fwhm: float
    native_gsd: int


S2_SPECS: tuple[S2Band, ...] = (
    S2Band("blue", "B02.tif", "B02", "Blue (band 2)", "blue", 0.49, 0.098, 10),
    S2Band("green", "B03.tif", "B03", "Green (band 3)", "green", 0.56, 0.045, 10),
    S2Band("red", "B04.tif", "B04", "Red (band 4)", "red", 0.665, 0.038, 10),
    S2Band("rededge1", "B05.tif", "B05", "Red edge 1 (band 5)", "rededge", 0.704, 0.019, 20),
    S2Band("rededge2", "B06.tif", "B06", "Red edge 2 (band 6)", "rededge", 0.74, 0.018, 20),
    S2Band("rededge3", "B07.tif", "B07", "Red edge 3 (band 7)", "rededge", 0.783, 0.028, 20),
    S2Band("nir", "B08.tif", "B08", "NIR 1 (band 8)", "nir", 0.842, 0.145, 10),
    S2Band("nir08", "B8A.tif", "B8A", "NIR 2 (band 8A)", "nir08", 0.865, 0.033, 20),
    S2Band("swir16", "B11.tif", "B11", "SWIR 1 (band 11)", "swir16", 1.61, 0.143, 20),
    S2Band("swir22", "B12.tif", "B12", "SWIR 2 (band 12)", "swir22", 2.19, 0.242, 20),
)
assert tuple(b.band for b in S2_SPECS) == S2_BANDS


@dataclass(frozen=True)
class LandsatBand:
    key: str
    suffix: str  # file suffix (SR_B2)
    title: str
    description: str
    wavelength: dict[str, float]  # instrument -> centre wavelength (um)
    fwhm: dict[str, float]
    name: dict[str, str]  # instrument -> band name (OLI_B2, ETM_B1)


LANDSAT_SPECS: tuple[LandsatBand, ...] = (
    LandsatBand("blue", "SR_B{blue}", "Blue Band", "Visible blue",
                {"oli": 0.48, "etm": 0.48}, {"oli": 0.06, "etm": 0.07}, {"oli": "OLI_B2", "etm": "ETM_B1"}),
    LandsatBand("green", "SR_B{green}", "Green Band", "Visible green",
                {"oli": 0.56, "etm": 0.56}, {"oli": 0.06, "etm": 0.08}, {"oli": "OLI_B3", "etm": "ETM_B2"}),
    LandsatBand("red", "SR_B{red}", "Red Band", "Visible red",
                {"oli": 0.65, "etm": 0.66}, {"oli": 0.04, "etm": 0.06}, {"oli": "OLI_B4", "etm": "ETM_B3"}),
    LandsatBand("nir08", "SR_B{nir08}", "Near Infrared Band 0.8", "Near infrared",
                {"oli": 0.87, "etm": 0.84}, {"oli": 0.03, "etm": 0.13}, {"oli": "OLI_B5", "etm": "ETM_B4"}),
    LandsatBand("swir16", "SR_B{swir16}", "Short-wave Infrared Band 1.6", "Short-wave infrared",
                {"oli": 1.61, "etm": 1.65}, {"oli": 0.09, "etm": 0.2}, {"oli": "OLI_B6", "etm": "ETM_B5"}),
    LandsatBand("swir22", "SR_B{swir22}", "Short-wave Infrared Band 2.2", "Short-wave infrared",
                {"oli": 2.2, "etm": 2.22}, {"oli": 0.19, "etm": 0.26}, {"oli": "OLI_B7", "etm": "ETM_B7"}),
)  # fmt: skip
assert tuple(b.key for b in LANDSAT_SPECS) == LANDSAT_BANDS
LANDSAT_BAND_NUMBER = {
    "oli": {"blue": 2, "green": 3, "red": 4, "nir08": 5, "swir16": 6, "swir22": 7},
    "etm": {"blue": 1, "green": 2, "red": 3, "nir08": 4, "swir16": 5, "swir22": 7},
}

# Spectra of clouds and cirrus (S2 bands) and the share of light left in cloud shadows (diffuse sky light).
CLOUD_SPECTRUM = np.array([0.78, 0.77, 0.76, 0.75, 0.74, 0.73, 0.72, 0.72, 0.52, 0.36], dtype=np.float32)
CIRRUS_SPECTRUM = np.array([1.0, 1.0, 0.95, 0.9, 0.85, 0.8, 0.8, 0.8, 0.5, 0.3], dtype=np.float32)
SHADOW_TRANSMISSION = np.array([0.5, 0.45, 0.42, 0.4, 0.38, 0.36, 0.35, 0.35, 0.3, 0.3], dtype=np.float32)
HAZE_SPECTRUM = np.array([1.0, 0.8, 0.6, 0.45, 0.35, 0.3, 0.25, 0.25, 0.1, 0.05], dtype=np.float32)


@dataclass(frozen=True)
class Acquisition:
    """One synthetic acquisition (a STAC item)."""

    collection: str  # "sentinel-2-l2a" | "landsat-c2-l2"
    platform: str  # sentinel-2a | sentinel-2b | landsat-8 | landsat-7
    datetime: dt.datetime  # UTC
    item_id: str
    index: int  # position in the year's calendar

    @property
    def doy(self) -> int:
        return self.datetime.timetuple().tm_yday

    @property
    def instrument(self) -> str:
        return {"landsat-8": "oli", "landsat-7": "etm"}.get(self.platform, "msi")


MGRS_TILE = "33TVM"
WRS_PATH, WRS_ROW = 190, 28


def s2_acquisitions(year: int) -> list[Acquisition]:
    """Sentinel-2 acquisitions of `year`: every 5 days from 1 January (73), S2A and S2B alternating."""
    out = []
    start = dt.datetime(year, 1, 1, 10, 7, 29, tzinfo=dt.UTC)
    for i in range(73):
        t = start + dt.timedelta(days=S2_DAYS_STEP * i, seconds=7 * (i % 3))
        if t.year != year:
            break
        sat = "A" if i % 2 == 0 else "B"
        out.append(Acquisition("sentinel-2-l2a", f"sentinel-2{sat.lower()}", t,
                               f"S2{sat}_{MGRS_TILE}_{t:%Y%m%d}_0_L2A", i))  # fmt: skip
    return out


def landsat_acquisitions(year: int) -> list[Acquisition]:
    """Landsat acquisitions of `year`: every 8 days from 1 January, Landsat 8 and Landsat 7 alternating."""
    out = []
    for i in range(366 // LANDSAT_DAYS_STEP + 1):
        l8 = i % 2 == 0
        day = dt.datetime(year, 1, 1, tzinfo=dt.UTC) + dt.timedelta(days=LANDSAT_DAYS_STEP * i)
        if day.year != year:
            break
        t = day + (
            dt.timedelta(hours=9, minutes=52, seconds=11)
            if l8
            else dt.timedelta(hours=9, minutes=31, seconds=47)
        )
        prefix = "LC08" if l8 else "LE07"
        out.append(Acquisition("landsat-c2-l2", "landsat-8" if l8 else "landsat-7", t,
                               f"{prefix}_L2SP_{WRS_PATH:03d}{WRS_ROW:03d}_{t:%Y%m%d}_02_T1", i))  # fmt: skip
    return out


def cloud_fraction(seed: int, acq: Acquisition, cloud_cover: tuple[float, float]) -> float:
    """The cloud fraction of an acquisition, uniform in `cloud_cover` (seeded per acquisition)."""
    lo, hi = cloud_cover
    return float(rng(seed, TAG_CLOUDS, _sensor_tag(acq), acq.datetime.year, acq.doy).uniform(lo, hi))


def _sensor_tag(acq: Acquisition) -> int:
    return 1 if acq.collection == "sentinel-2-l2a" else 2


@dataclass
class Scene:
    """A whole rendered acquisition: digital numbers, quality layer, cloud cover, statistics for the item."""

    acquisition: Acquisition
    data: np.ndarray  # uint16 (bands, h, w)
    quality: np.ndarray  # uint8 SCL (S2) or uint16 QA_PIXEL (Landsat), (h, w)
    cover: float  # fraction of pixels flagged cloudy (cloud or cirrus)
    stats: dict[str, float]


def sun_angles(acq: Acquisition, lat: float = 46.4) -> tuple[float, float]:
    """Approximate (azimuth, elevation) of the sun in degrees at the acquisition (for item metadata)."""
    decl = 23.44 * math.sin(math.radians(360 * (284 + acq.doy) / 365))
    hour_angle = 15.0 * (acq.datetime.hour + acq.datetime.minute / 60 + 1.0 - 12.0)  # ~15 deg E
    la, de, ha = map(math.radians, (lat, decl, hour_angle))
    sin_el = math.sin(la) * math.sin(de) + math.cos(la) * math.cos(de) * math.cos(ha)
    el = math.asin(sin_el)
    cos_az = (math.sin(de) - math.sin(el) * math.sin(la)) / (math.cos(el) * math.cos(la))
    az = math.degrees(math.acos(max(-1.0, min(1.0, cos_az))))
    if ha > 0:
        az = 360 - az
    return az, math.degrees(el)


BANK_PIXELS = 1 << 22
"""Noise values per band in the noise bank (168 MB for 10 bands): a larger grid reads it round again."""


def noise_bank(seed: int, shape: tuple[int, int]) -> np.ndarray:
    """Standard normal noise (bands, pixels) drawn once per grid; each date reads it at random offsets.

    One value per pixel and band up to BANK_PIXELS pixels; on larger grids pixel i reads value
    i mod BANK_PIXELS (shifted per date and band, so no two dates share their noise).
    """
    return rng(seed, TAG_SCENE, 0, *shape).standard_normal(
        (len(S2_BANDS), min(shape[0] * shape[1], BANK_PIXELS)), dtype=np.float32
    )


class _Observation:
    """What the sky and the sensor add on one date, drawn now and applied to any rows of the surface.

    Per date: band gains 1 + N(0, 0.01), a smooth aerosol haze (up to 0.012 in blue), sensor noise of
    0.003 + 3 % of the signal (read from the noise bank at a random offset per band), then cloud shadows,
    cirrus and clouds (`clouds.apply_clouds`).
    """

    def __init__(
        self, gen: np.random.Generator, shape: tuple[int, int], pixel: float, cover: float, n_bands: int
    ) -> None:
        self.shape = shape
        self.gain = np.asarray(1.0 + 0.01 * gen.standard_normal(n_bands), dtype=np.float32)
        self.aot = float(gen.uniform(0.0, 0.012))
        self.haze = Field(gen, shape, 3000.0 / pixel, octaves=2)
        self.shifts = np.asarray(gen.integers(0, shape[0] * shape[1], size=n_bands), dtype=np.int64)
        self.clouds = Clouds(gen, shape, pixel, cover)

    def observe(
        self,
        refl: np.ndarray,
        rows: tuple[int, int],
        bank: np.ndarray,
        bands: list[int],
        dn_gain: float,
        dn_bias: float,
    ) -> tuple[np.ndarray, np.ndarray, CloudLayer]:
        """Observe the clear-sky surface `refl` (bands, pixels) of `rows` and encode it to uint16.

        `bands` are the S2 band indices of the rows of `refl`. Returns (dn (bands, pixels) uint16, surface
        class per pixel (SCL 4/5/6/11 of the clear sky), the clouds of the rows).
        """
        r0, r1 = rows
        w = self.shape[1]
        haze = self.haze.rows(r0, r1).ravel()
        haze *= 0.5 * self.aot
        haze += self.aot
        layer = self.clouds.rows(r0, r1)
        nb, npx = refl.shape
        dn = np.empty((nb, npx), dtype=np.uint16)
        surface = np.empty(npx, dtype=np.uint8)
        where = {b: i for i, b in enumerate(bands)}
        observe_kernel(
            refl, bank, self.shifts, r0 * w, self.gain, haze.astype(np.float32), HAZE_SPECTRUM[bands],
            layer.alpha.ravel(), layer.shadow_alpha.ravel(), SHADOW_TRANSMISSION[bands],
            layer.cirrus_strength.ravel(), CIRRUS_SPECTRUM[bands], CLOUD_SPECTRUM[bands],
            dn_gain, dn_bias, np.array([where[1], where[2], where.get(6, where[7]), where[8]], dtype=np.int64),
            dn, surface,
        )  # fmt: skip
        return dn, surface.reshape(r1 - r0, w), layer


def surface_classes(refl: np.ndarray, green: int, red: int, nir: int, swir: int) -> np.ndarray:
    """Sen2Cor-like labels of clear pixels from reflectance (bands, pixels): 11 snow, 6 water, 4 veg, 5 other.

    (The numpy twin of the rule inside `_kernels.observe_kernel`.)
    """
    g, r, n, s = refl[green], refl[red], refl[nir], refl[swir]
    ndvi = (n - r) / np.maximum(n + r, 1e-6)
    ndsi = (g - s) / np.maximum(g + s, 1e-6)
    ndwi = (g - n) / np.maximum(g + n, 1e-6)
    out = np.where(ndvi > 0.4, SCL_VEGETATION, SCL_NOT_VEGETATED).astype(np.uint8)
    out[(ndwi > 0.05) & (n < 0.1)] = SCL_WATER
    out[(ndsi > 0.4) & (g > 0.2)] = SCL_SNOW
    return out


class S2Scene:
    """A Sentinel-2 L2A acquisition rendered by rows: uint16 reflectance x 10000 (nodata 0) and SCL.

    Render every row once (in any order of strips): `stats` and `cover` count what was rendered.
    """

    def __init__(
        self,
        model: SurfaceModel,
        acq: Acquisition,
        seed: int,
        cloud_cover: tuple[float, float],
        bank: np.ndarray | None = None,
    ) -> None:
        n = model.landscape.size
        self.model, self.acquisition, self.shape = model, acq, (n, n)
        self._bank = noise_bank(seed, self.shape) if bank is None else bank
        gen = rng(seed, TAG_SCENE, 1, acq.datetime.year, acq.doy)
        self._obs = _Observation(gen, self.shape, 10.0, cloud_fraction(seed, acq, cloud_cover), len(S2_BANDS))
        self._counts = np.zeros(12, dtype=np.int64)
        self._rows = 0

    def rows(self, r0: int, r1: int) -> tuple[np.ndarray, np.ndarray]:
        """(DN uint16 (bands, r1 - r0, n), SCL uint8 (r1 - r0, n)) of rows [r0, r1)."""
        nb = len(S2_BANDS)
        refl = self.model.reflectance(self.acquisition.doy, rows=(r0, r1))
        dn, scl, layer = self._obs.observe(refl, (r0, r1), self._bank, list(range(nb)), 1.0 / S2_SCALE, 0.0)
        scl[layer.haze] = SCL_UNCLASSIFIED
        scl[layer.shadow] = SCL_SHADOW
        scl[layer.cirrus] = SCL_CIRRUS
        scl[layer.cloud] = SCL_CLOUD_MEDIUM
        scl[layer.cloud & layer.thick] = SCL_CLOUD_HIGH
        self._counts += np.bincount(scl.ravel(), minlength=12)
        self._rows += r1 - r0
        return dn.reshape(nb, r1 - r0, self.shape[1]), scl

    @property
    def cover(self) -> float:
        """Fraction of pixels flagged cloudy (cloud or cirrus)."""
        self._check_complete()
        return float(self._counts[[SCL_CLOUD_MEDIUM, SCL_CLOUD_HIGH, SCL_CIRRUS]].sum() / self._counts.sum())

    @property
    def stats(self) -> dict[str, float]:
        """Scene statistics of the STAC item (percentages of SCL classes)."""
        self._check_complete()
        counts = self._counts / self._counts.sum() * 100.0
        stats = {
            "eo:cloud_cover": float(counts[SCL_CLOUD_MEDIUM] + counts[SCL_CLOUD_HIGH] + counts[SCL_CIRRUS]),
            "s2:nodata_pixel_percentage": 0.0,
            "s2:saturated_defective_pixel_percentage": 0.0,
            "s2:dark_features_percentage": float(counts[SCL_DARK]),
            "s2:cloud_shadow_percentage": float(counts[SCL_SHADOW]),
            "s2:vegetation_percentage": float(counts[SCL_VEGETATION]),
            "s2:not_vegetated_percentage": float(counts[SCL_NOT_VEGETATED]),
            "s2:water_percentage": float(counts[SCL_WATER]),
            "s2:unclassified_percentage": float(counts[SCL_UNCLASSIFIED]),
            "s2:medium_proba_clouds_percentage": float(counts[SCL_CLOUD_MEDIUM]),
            "s2:high_proba_clouds_percentage": float(counts[SCL_CLOUD_HIGH]),
            "s2:thin_cirrus_percentage": float(counts[SCL_CIRRUS]),
            "s2:snow_ice_percentage": float(counts[SCL_SNOW]),
        }
        return {k: round(v, 6) for k, v in stats.items()}

    def _check_complete(self) -> None:
        if self._rows != self.shape[0]:
            raise RuntimeError(f"{self._rows} of {self.shape[0]} rows rendered, each must be rendered once")


def render_s2(model: SurfaceModel, acq: Acquisition, seed: int, cloud_cover: tuple[float, float]) -> Scene:
    """Render a whole Sentinel-2 L2A acquisition: uint16 (10, n, n) reflectance x 10000 and SCL."""
    scene = S2Scene(model, acq, seed, cloud_cover)
    data, scl = scene.rows(0, scene.shape[0])
    return Scene(acq, data, scl, scene.cover, scene.stats)


def landsat_shape(size: int) -> tuple[int, int]:
    """The 30 m Landsat grid over a size x size 10 m grid (same origin, ceil(size / 3) pixels)."""
    m = -(-size // 3)
    return (m, m)


def block_average(img: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Average 10 m reflectance (bands, h, w) over 3 x 3 blocks to (bands, shape[0] * shape[1]) 30 m pixels
    (the last rows and columns replicated where the 10 m rows and columns run out)."""
    nb, h, w = img.shape
    ph, pw = 3 * shape[0] - h, 3 * shape[1] - w
    if ph or pw:
        img = np.pad(img, ((0, 0), (0, ph), (0, pw)), mode="edge")
    rows = img[:, 0::3, :] + img[:, 1::3, :]
    rows += img[:, 2::3, :]
    out = rows[:, :, 0::3] + rows[:, :, 1::3]
    out += rows[:, :, 2::3]
    out *= np.float32(1.0 / 9.0)
    return out.reshape(nb, shape[0] * shape[1])


def slc_off_gaps(shape: tuple[int, int], acq: Acquisition, rows: tuple[int, int] | None = None) -> np.ndarray:
    """Landsat 7 SLC-off gaps (True = fill) of `rows` (default all): slanted stripes, wider to the east."""
    h, w = shape
    r0, r1 = rows if rows is not None else (0, h)
    rr, cols = np.mgrid[r0:r1, 0:w].astype(np.float32)
    width = 2.5 + 2.0 * cols / max(w - 1, 1)
    phase = (acq.index * 5.3) % 16
    return ((rr + 0.07 * cols + phase) % 16.0) < width


class LandsatScene:
    """A Landsat C2 L2 acquisition rendered by rows of its 30 m grid: uint16 (6 bands) DN (scale 2.75e-5,
    offset -0.2) and QA_PIXEL. Render every row once: `stats` and `cover` count what was rendered."""

    def __init__(
        self,
        model: SurfaceModel,
        acq: Acquisition,
        seed: int,
        cloud_cover: tuple[float, float],
        bank: np.ndarray | None = None,
    ) -> None:
        self.model, self.acquisition = model, acq
        self.shape = landsat_shape(model.landscape.size)
        self._idx = list(LANDSAT_FROM_S2)
        self._bank = noise_bank(seed, self.shape)[self._idx] if bank is None else bank
        gen = rng(seed, TAG_SCENE, 2, acq.datetime.year, acq.doy)
        self._obs = _Observation(
            gen, self.shape, 30.0, cloud_fraction(seed, acq, cloud_cover), len(self._idx)
        )
        self._tally = np.zeros(5, dtype=np.int64)  # pixels, cloud or cirrus, valid, flagged and valid, fill
        self._rows = 0

    def rows(self, r0: int, r1: int) -> tuple[np.ndarray, np.ndarray]:
        """(DN uint16 (6, r1 - r0, m), QA_PIXEL uint16 (r1 - r0, m)) of 30 m rows [r0, r1)."""
        acq, m = self.acquisition, self.shape[1]
        n = self.model.landscape.size
        a, b = 3 * r0, min(3 * r1, n)
        s2 = block_average(
            self.model.reflectance(acq.doy, self._idx, rows=(a, b)).reshape(len(self._idx), b - a, n),
            (r1 - r0, m),
        )
        refl = np.ascontiguousarray(landsat_response(s2, acq.instrument), dtype=np.float32)
        dn, surface, layer = self._obs.observe(
            refl, (r0, r1), self._bank, self._idx, 1.0 / LANDSAT_SCALE, -LANDSAT_OFFSET / LANDSAT_SCALE
        )

        cloud = layer.cloud
        h0, h1 = max(r0 - 2, 0), min(r1 + 2, self.shape[0])  # the dilation reaches 2 pixels
        dilated = ndimage.binary_dilation(self._obs.clouds.cloud(h0, h1), iterations=2)[r0 - h0 : r1 - h0]
        dilated &= ~cloud
        oli = acq.instrument == "oli"
        shape = (r1 - r0, m)
        qa = np.zeros(shape, dtype=np.uint16)
        qa |= np.where(cloud, QA_CLOUD, 0).astype(np.uint16)
        qa |= np.where(dilated, QA_DILATED, 0).astype(np.uint16)
        qa |= np.where(~cloud & ~dilated, QA_CLEAR, 0).astype(np.uint16)
        conf = np.where(cloud, 3, np.where(layer.alpha >= 0.04, 2, 1)).astype(np.uint16)
        qa |= conf << QA_CLOUD_CONF
        qa |= np.where(layer.shadow, QA_SHADOW | (3 << QA_SHADOW_CONF), 1 << QA_SHADOW_CONF).astype(np.uint16)
        snow = (surface == SCL_SNOW) & ~cloud
        qa |= np.where(snow, QA_SNOW | (3 << QA_SNOW_CONF), 1 << QA_SNOW_CONF).astype(np.uint16)
        qa |= np.where((surface == SCL_WATER) & ~cloud & ~snow, QA_WATER, 0).astype(np.uint16)
        if oli:
            qa |= np.where(layer.cirrus, QA_CIRRUS | (3 << QA_CIRRUS_CONF), 1 << QA_CIRRUS_CONF).astype(
                np.uint16
            )

        data = dn.reshape(len(LANDSAT_BANDS), *shape)
        fill = np.zeros(shape, dtype=bool)
        if acq.platform == "landsat-7":
            fill = slc_off_gaps(self.shape, acq, (r0, r1))
            data[:, fill] = 0
            qa[fill] = QA_FILL
        valid = ~fill
        flagged = cloud | layer.cirrus if oli else cloud
        self._tally += np.array(
            [
                cloud.size,
                *(np.count_nonzero(m) for m in (cloud | layer.cirrus, valid, flagged & valid, fill)),
            ],
            dtype=np.int64,
        )
        self._rows += r1 - r0
        return data, qa

    @property
    def cover(self) -> float:
        """Fraction of pixels flagged cloudy (cloud or cirrus; fill included)."""
        self._check_complete()
        return float(self._tally[1] / self._tally[0])

    @property
    def stats(self) -> dict[str, float]:
        """Scene statistics of the STAC item (cloud cover of the valid pixels, fill percentage)."""
        self._check_complete()
        pixels, _, valid, flagged, fill = (int(v) for v in self._tally)
        cover_pct = float(flagged / max(valid, 1)) * 100.0
        return {"eo:cloud_cover": round(cover_pct, 2), "landsat:cloud_cover_land": round(cover_pct, 2),
                "fill_percentage": round(float(fill / pixels) * 100.0, 2)}  # fmt: skip

    def _check_complete(self) -> None:
        if self._rows != self.shape[0]:
            raise RuntimeError(f"{self._rows} of {self.shape[0]} rows rendered, each must be rendered once")


def render_landsat(
    model: SurfaceModel, acq: Acquisition, seed: int, cloud_cover: tuple[float, float]
) -> Scene:
    """Render a whole Landsat C2 L2 acquisition: uint16 (6, m, m) DN and QA_PIXEL."""
    scene = LandsatScene(model, acq, seed, cloud_cover)
    data, qa = scene.rows(0, scene.shape[0])
    return Scene(acq, data, qa, scene.cover, scene.stats)
