"""The ancillary data of the spec (§3.4.1.1): what each layer is, what it is for, its licence and how to get it.

One `Dataset` per entry of the spec's list, in the spec's order. The registry is code (reviewed, versioned
with hrlc) and is upserted into the database table `ancillary.datasets` on every use, so the metadata the
spec wants "stored in the Database" is always the registry of the running version.

Access (§3.4.1.2): a dataset is either retrieved machine-to-machine (M2M) — from a STAC collection on a public
STAC API (`StacAccess`; the API URL is overridable with `HRLC_ANCILLARY_STAC_API`), or from one raster on
S3/HTTP (`s3_href`, a COG or VRT href template with `{year}`) — or it is *manual*: downloaded once by a person,
according to its licence, and uploaded to the shared S3 (the Data Lake) with `hrlc ancillary put`.

Where the spec is vague (it says "provisionally summarised", and the data organisation is TBD) the choice
made here is written in `notes` and in `docs/ancillary.md`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from hrlc import legend

Role = Literal["training", "inference", "comparison", "post-processing"]
ROLES: tuple[str, ...] = ("training", "inference", "comparison", "post-processing")


@dataclass(frozen=True)
class StacAccess:
    """A STAC collection on a STAC API: the items over the AOI (and year) are mosaicked onto the grid."""

    api: str
    collection: str
    asset: str
    sign: Literal["planetary-computer"] | None = None  # hrefs that need a SAS token before reading


PC = "https://planetarycomputer.microsoft.com/api/stac/v1"


@dataclass(frozen=True)
class Dataset:
    """One ancillary layer of the registry."""

    name: str  # slug used on the command line, in lake keys and in the database
    title: str
    kind: Literal["raster", "vector"]
    roles: tuple[Role, ...]  # what the spec says it is used for
    possible_roles: tuple[Role, ...]  # "possibly ..." in the spec
    licence: str
    homepage: str
    values: Literal["continuous", "categorical"] = "categorical"
    stac: StacAccess | None = None
    s3_href: str | None = None  # M2M from one raster: COG/VRT href template ({year})
    years: tuple[int, ...] = ()  # editions; empty = one static edition
    temporal: tuple[str, str] = ("", "")  # time span of a static edition (ISO dates)
    native_resolution_m: float | None = None
    dtype: str = "uint8"
    nodata: float | None = 0
    units: str = ""
    resampling: str = "nearest"  # "nearest" for categorical maps (mode when coarsening, see `resampling_for`)
    crosswalk: dict[int, int] = field(default_factory=dict)  # class value -> HRLC code (categorical maps)
    label_field: str | None = None  # vector: the attribute holding the class label
    notes: str = ""

    @property
    def access(self) -> Literal["stac", "s3", "manual"]:
        if self.stac is not None:
            return "stac"
        if self.s3_href is not None:
            return "s3"
        return "manual"

    @property
    def m2m(self) -> bool:
        return self.access != "manual"

    @property
    def static(self) -> bool:
        """One edition only (no `--year`)."""
        return not self.years

    def edition(self, year: int | None) -> str:
        """The edition a request names: the year (default: the latest), or "static"; ValueError if none."""
        if self.static:
            if year is not None:
                raise ValueError(f"{self.name} has one edition only; leave out the year")
            return "static"
        if year is None:
            return str(max(self.years))
        if year not in self.years:
            raise ValueError(f"{self.name} has no {year} edition; editions: {_years_text(self.years)}")
        return str(year)

    def resampling_for(self, resolution_m: float | None) -> str:
        """Resampling onto a grid of `resolution_m`: the dataset's method; categorical maps coarsened by more
        than 1.5x their native resolution take the mode (majority) instead of the nearest pixel."""
        if (
            self.values == "categorical"
            and resolution_m is not None
            and self.native_resolution_m is not None
            and resolution_m > 1.5 * self.native_resolution_m
        ):
            return "mode"
        return self.resampling

    def to_json(self) -> dict[str, Any]:
        """The registry entry as JSON (the `definition` column of `ancillary.datasets`)."""
        d = asdict(self)
        d["access"] = self.access
        d["crosswalk"] = {str(k): v for k, v in self.crosswalk.items()}
        return d


def _years_text(years: tuple[int, ...]) -> str:
    ys = sorted(years)
    if len(ys) > 4 and ys == list(range(ys[0], ys[-1] + 1)):
        return f"{ys[0]}-{ys[-1]}"
    return ", ".join(map(str, ys))


DATASETS: dict[str, Dataset] = {
    d.name: d
    for d in [
        # --- Digital Elevation Models
        Dataset(
            name="copernicus-dem",
            title="Copernicus DEM GLO-30 (30 m digital surface model)",
            kind="raster",
            roles=("training", "inference"),
            possible_roles=(),
            licence="Copernicus DEM licence (GLO-30: free for any use, with attribution: © DLR e.V. 2010-2014 "
            "and © Airbus Defence and Space GmbH 2014-2018 provided under COPERNICUS by the EU and ESA)",
            homepage="https://spacedata.copernicus.eu/collections/copernicus-digital-elevation-model",
            values="continuous",
            stac=StacAccess(PC, "cop-dem-glo-30", "data", sign="planetary-computer"),
            temporal=("2011-01-01", "2015-12-31"),
            native_resolution_m=30.0,
            dtype="float32",
            nodata=float("nan"),
            units="m",
            resampling="bilinear",
            notes="heights above the EGM2008 geoid; also on AWS Open Data (s3://copernicus-dem-30m, 1-degree "
            "tiles). Feeds the `elevation` and `slope` features.",
        ),
        # --- Land cover
        Dataset(
            name="esa-worldcover",
            title="ESA WorldCover 10 m",
            kind="raster",
            roles=("comparison", "post-processing"),
            possible_roles=("training",),
            licence="CC-BY-4.0 (© ESA WorldCover project / contains modified Copernicus Sentinel data)",
            homepage="https://esa-worldcover.org",
            stac=StacAccess(PC, "esa-worldcover", "map", sign="planetary-computer"),
            years=(2020, 2021),
            native_resolution_m=10.0,
            crosswalk=dict(legend.WORLDCOVER_TO_HRLC),
            notes="2020 = v100, 2021 = v200 (different algorithms: not a change product).",
        ),
        Dataset(
            name="glc-fcs30d",
            title="GLC_FCS30D: global 30 m land cover with a fine classification system, 1985-2022",
            kind="raster",
            roles=("comparison",),
            possible_roles=(),
            licence="CC-BY-4.0 (Liu et al., Earth System Science Data, 2023)",
            homepage="",
            years=(1985, 1990, 1995, *range(2000, 2023)),
            native_resolution_m=30.0,
            crosswalk=dict(legend.GLC_FCS30_TO_HRLC),
            notes="the spec writes 'GLC_FDS'; read here as GLC_FCS30D (no STAC API: Zenodo/CASEarth "
            "downloads of 5x5-degree tiles, so manual).",
        ),
        Dataset(
            name="mapbiomas-amazonia",
            title="MapBiomas Amazonía (RAISG) annual land cover, 30 m",
            kind="raster",
            roles=("comparison", "post-processing"),
            possible_roles=("training",),
            licence="CC-BY-SA-4.0 (MapBiomas terms of use; cite the collection)",
            homepage="https://amazonia.mapbiomas.org",
            years=tuple(range(1985, 2024)),
            native_resolution_m=30.0,
            notes="published as Earth Engine assets and GCS downloads, no STAC API: manual. Its legend has no "
            "cross-walk to HRLC yet (TBD with the Amazonia region team).",
        ),
        Dataset(
            name="cci-circumarctic",
            title="Circumarctic land cover units (ESA CCI+ Permafrost / GlobPermafrost, Sentinel-1/2)",
            kind="raster",
            roles=("comparison", "post-processing"),
            possible_roles=("training",),
            licence="CC-BY-4.0 (PANGAEA; Bartsch et al.)",
            homepage="https://www.pangaea.de",
            temporal=("2015-01-01", "2018-12-31"),
            native_resolution_m=10.0,
            notes="which product the spec means by 'CCI Circumarctic' is not said; taken as the circumarctic "
            "land cover units of Bartsch et al. (PANGAEA). Manual; legend cross-walk TBD (Siberia region).",
        ),
        Dataset(
            name="globpermafrost",
            title="ESA DUE GlobPermafrost land cover (regional Arctic maps)",
            kind="raster",
            roles=("comparison", "post-processing"),
            possible_roles=("training",),
            licence="CC-BY-4.0 (PANGAEA)",
            homepage="https://www.globpermafrost.info",
            temporal=("2016-01-01", "2018-12-31"),
            native_resolution_m=20.0,
            notes="regional products; manual. Legend cross-walk TBD (Siberia region).",
        ),
        Dataset(
            name="cci-land-cover",
            title="ESA CCI Land Cover / C3S annual global land cover, 300 m, 1992-2020",
            kind="raster",
            roles=("comparison",),
            possible_roles=("training",),
            licence="ESA CCI Land Cover licence (1992-2015) and Licence to use Copernicus Products (C3S, "
            "2016-): free, with attribution",
            homepage="https://climate.esa.int/en/projects/land-cover/",
            stac=StacAccess(PC, "esa-cci-lc", "lccs_class", sign="planetary-computer"),
            years=tuple(range(1992, 2021)),
            native_resolution_m=300.0,
            crosswalk=dict(legend.CCI_LC_TO_HRLC),
        ),
        Dataset(
            name="clms-dynamic-land-cover",
            title="CLMS (CGLS) Dynamic Land Cover 100 m, collection 3, 2015-2019",
            kind="raster",
            roles=("comparison",),
            possible_roles=("training",),
            licence="Copernicus Land Monitoring Service: free and open, with attribution (CC-BY-4.0 on Zenodo)",
            homepage="https://land.copernicus.eu/en/products/global-dynamic-land-cover",
            years=(2015, 2016, 2017, 2018, 2019),
            native_resolution_m=100.0,
            crosswalk=dict(legend.CGLS_LC100_TO_HRLC),
            notes="discrete classification layer; Zenodo/CLMS downloads (no public STAC API we rely on): manual.",
        ),
        # --- Other
        Dataset(
            name="global-surface-water",
            title="JRC Global Surface Water (occurrence 1984-2021)",
            kind="raster",
            roles=("post-processing",),
            possible_roles=(),
            licence="free, with attribution (EC JRC / Google; Pekel et al., Nature, 2016)",
            homepage="https://global-surface-water.appspot.com",
            values="continuous",
            stac=StacAccess(PC, "jrc-gsw", "occurrence", sign="planetary-computer"),
            temporal=("1984-03-16", "2021-12-31"),
            native_resolution_m=30.0,
            nodata=255,
            units="%",
            resampling="bilinear",
            notes="water occurrence in percent of valid observations (0-100), nodata 255 in the source.",
        ),
        Dataset(
            name="global-human-settlement",
            title="GHSL built-up surface (GHS-BUILT-S R2023A)",
            kind="raster",
            roles=("comparison", "post-processing"),
            possible_roles=(),
            licence="CC-BY-4.0 (EC JRC)",
            homepage="https://human-settlement.emergency.copernicus.eu",
            values="continuous",
            years=(1975, 1980, 1985, 1990, 1995, 2000, 2005, 2010, 2015, 2020, 2025, 2030),
            native_resolution_m=100.0,
            dtype="float32",
            nodata=float("nan"),
            units="m2",
            resampling="average",
            notes="built-up surface per cell; JRC open-data FTP downloads (no STAC API): manual.",
        ),
        Dataset(
            name="land-cover-agreement",
            title="Map of Land Cover Agreement",
            kind="raster",
            roles=("training", "comparison"),
            possible_roles=(),
            licence="TBD (depends on the product chosen)",
            homepage="",
            notes="the spec names no product. Expected: the class on which several global maps agree "
            "(0 = no agreement), in HRLC codes, used to draw map-agreement training samples (§3.4.2.1 "
            "source 'map-agreement'). Manual; its values are taken as HRLC codes.",
            crosswalk={c: c for c in legend.CODES},
        ),
        Dataset(
            name="glance",
            title="GLanCE global land cover training data, 1984-2020 (vector)",
            kind="vector",
            roles=("training",),
            possible_roles=(),
            licence="CC-BY-4.0 (Stanimirova et al., Scientific Data, 2023)",
            homepage="https://measures-glance.github.io/glance-grids/",
            label_field="Glance_Class_ID_level1",
            crosswalk=dict(legend.GLANCE_TO_HRLC),
            notes="points with a level-1 class (1 water ... 7 herbaceous; attribute name of the v1 release, "
            "TBD); manual (a GeoPackage/GeoJSON/zipped Shapefile upload).",
        ),
    ]
}


class UnknownDataset(KeyError):
    """A name that is not in the registry."""

    def __str__(self) -> str:
        return str(self.args[0])


def dataset(name: str) -> Dataset:
    """The registry entry of `name`; UnknownDataset (one line, naming the known ones) otherwise."""
    try:
        return DATASETS[name]
    except KeyError:
        raise UnknownDataset(f"unknown ancillary dataset {name!r}; known: {', '.join(DATASETS)}") from None


def register(ds: Dataset) -> Dataset:
    """Add (or replace) a dataset at run time, e.g. from a notebook: a layer the spec's list lacks."""
    if not ds.name or not ds.name.replace("-", "").isalnum() or ds.name != ds.name.lower():
        raise ValueError(f"dataset name {ds.name!r}: lower-case letters, digits and '-' only")
    DATASETS[ds.name] = ds
    return ds
