"""The Data Lake layout of the spec (Table 3-1) and its file names (§3.2): the ONLY place that builds keys.

A key is a relative POSIX path under the lake root (the spec's `/data/`). Every product family is one
`Pattern`: a folder template and a file template with named fields. `key(...)` builds a key from fields and
`parse(key)` gives the family and fields back, so a file found in the lake (by the ingest watcher, or a
user) tells what it is from its name alone.

Periods (the `month`, `season` and `period` fields) are the labels of `hrlc.periods`: `01`..`12` for monthly
(Sentinel-2) composites, `season1`..`season4` for seasonal (Landsat) ones, `annual` for yearly products.

STAC Items are lake files too (`metadata/stac/{collection}/{item_id}.json`): `item_id` names a product's item,
`item_key` gives its key; the collection of each family is `hrlc.lake.stac_collections.COLLECTIONS`. The task
log records are `logs/task_<task id>.json` (`log_key`).

Product identity (`hrlc.lake.identity`): the chain's products (families with `identity=True`) live one
`{space}/{config}/` level below the spec's folder, with the spec's file name unchanged, e.g.
`classification/2021/final/aoi-3f0c5e1d2a9b/8d1f0c2b7e4a9c31/classified_map_optical_2021_annual.tif`. The
same family without the two levels (the spec's exact key) still parses: that is how a product made elsewhere
and dropped into the lake is named. `space` is the grid a product was made on (a tile id of the product grid, or
`aoi-<hash>` of an AOI grid), `config` the hash of what changes its pixels.

The product grid (`hrlc.lake.grid`): fixed tiles per UTM zone, anchored at easting 0 / northing 0, of 109 800 m
by default (the Sentinel-2 tile size, not the overlapping MGRS layout). **Decision (issue 13): the tile id is
the `{space}` folder level** of the keys of the products made per tile (composites, cloud masks, feature
stacks), e.g. `preprocessed/optical/sentinel2/2021/07/utm33n-109800-4-46/5c1d.../optical_sentinel2_2021_07.tif`
(zone, hemisphere, tile size, column, row); the spec's folders and file names do not change, so `parse()` stays
exact and gives the tile back through `hrlc.lake.grid.parse_tile(fields["space"])`. Products of an AOI (the
class map, the mosaic of its tiles) keep the AOI grid's `aoi-<hash>` space. A tile's product is shared by every
job whose AOI touches the tile with the same config: a rerun, or a neighbouring AOI, skips it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePosixPath
from string import Formatter

from hrlc import periods
from hrlc.lake.identity import CONFIG_REGEX, SPACE_REGEX
from hrlc.lake.stac_collections import COLLECTIONS

SENSORS_OPTICAL = ("sentinel2", "landsat")
SENSORS_SAR = ("sentinel1",)

# Table 3-1, in the spec's order (without the leading /data/). `{x}` marks a field.
FOLDERS: tuple[str, ...] = (
    "raw/",
    "raw/sentinel2/{year}/{month}/",
    "raw/landsat/{year}/{season}/",
    "raw/sentinel1/{year}/{month}/",
    "preprocessed/",
    "preprocessed/optical/{sensor}/{year}/{period}/",
    "preprocessed/sar/{year}/{month}/",
    "coregistration/{year}/{month}/",
    "features/{year}/",
    "models/",
    "models/checkpoints/",
    "models/metadata/",
    "classification/{year}/",
    "classification/{year}/probabilities/",
    "classification/{year}/final/",
    "fusion/{year}/",
    "changedetection/{year}/",
    "harmonization/",
    "harmonization/{pastYear}/",
    "metadata/",
    "metadata/stac/",
    "logs/",
)

# Families hrlc adds to Table 3-1 (their folders are not the spec's).
EXTENSIONS = frozenset({"graph-result", "ancillary-layer", "ancillary-source"})

_FIELD_REGEX = {
    "year": r"\d{4}",
    "pastYear": r"\d{4}",
    "refYear": r"\d{4}",
    "year1": r"\d{4}",
    "year2": r"\d{4}",
    "month": "|".join(periods.MONTHS),
    "season": "|".join(periods.SEASONS),
    "period": "|".join(periods.LABELS),
    "sensor": r"[a-z0-9]+",
    "kind": r"optical_sar|optical|sar",
    "feature": r"[a-z0-9]+",
    "stack": r"optical_landsat|optical_sentinel2|optical_sar",
    "region": r"[A-Za-z0-9]+",
    "model_id": r"[A-Za-z0-9][A-Za-z0-9._-]*",
    "ext": r"pt|h5|joblib|txt|onnx",
    "name": r"[^/]+",
    "collection": r"[A-Za-z0-9._-]+",
    "item_id": r"[A-Za-z0-9._-]+",
    "graph_id": r"[0-9a-f]{16}",
    "label": r"[A-Za-z0-9._-]+",
    "suffix": r"tif|nc|json",
    "dataset": r"[a-z0-9][a-z0-9-]*",
    "edition": r"\d{4}|static",
    "grid": r"[a-z0-9][a-z0-9.-]*",
    "fmt": r"tif|gpkg",
    "checksum": r"[0-9a-f]{16}",
    "space": SPACE_REGEX,
    "config": CONFIG_REGEX,
}
IDENTITY_FOLDER = "{space}/{config}/"
IDENTITY_FIELDS = ("space", "config")


@dataclass(frozen=True)
class Pattern:
    """One product family: where it lives and how its files are named."""

    family: str
    folder: str
    file: str
    description: str
    identity: bool = False  # made by the chain: keys carry `{space}/{config}/` below the folder

    @property
    def template(self) -> str:
        """The key template of the chain's products (with identity), else the spec's."""
        return self.folder + (IDENTITY_FOLDER if self.identity else "") + self.file

    @property
    def spec_template(self) -> str:
        """The spec's key template (Table 3-1 folder and §3.2 file name, no identity levels)."""
        return self.folder + self.file

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(f for _, f, _, _ in Formatter().parse(self.template) if f))

    def regex(self) -> re.Pattern[str]:
        """Matches the keys of the family: with the identity levels (when it has them) or without."""
        out = _regex(self.folder)
        if self.identity:
            out += "(?:" + _regex(IDENTITY_FOLDER) + ")?"
        return re.compile(out + _regex(self.file, _fields(self.folder)) + r"\Z")


def _fields(template: str) -> set[str]:
    return {f for _, f, _, _ in Formatter().parse(template) if f}


def _regex(template: str, seen: set[str] | None = None) -> str:
    out, seen = [], set(seen or ())
    for literal, field, _, _ in Formatter().parse(template):
        out.append(re.escape(literal))
        if field:
            if field in seen:
                out.append(f"(?P={field})")
            else:
                out.append(f"(?P<{field}>{_FIELD_REGEX[field]})")
                seen.add(field)
    return "".join(out)


PATTERNS: dict[str, Pattern] = {
    p.family: p
    for p in [
        Pattern("raw-sentinel2", "raw/sentinel2/{year}/{month}/", "{name}", "raw Sentinel-2 scene file"),
        Pattern("raw-landsat", "raw/landsat/{year}/{season}/", "{name}", "raw Landsat scene file"),
        Pattern("raw-sentinel1", "raw/sentinel1/{year}/{month}/", "{name}", "raw Sentinel-1 scene file"),
        Pattern(
            "optical-cloudmask",
            "preprocessed/optical/{sensor}/{year}/{period}/",
            "optical_{sensor}_{year}_{period}_cloudmask.tif",
            "valid-observation count and quality of an optical composite",
            identity=True,
        ),
        Pattern(
            "optical-composite",
            "preprocessed/optical/{sensor}/{year}/{period}/",
            "optical_{sensor}_{year}_{period}.tif",
            "cloud-free optical reflectance composite",
            identity=True,
        ),
        Pattern(
            "sar-feature",
            "preprocessed/sar/{year}/{month}/",
            "sar_{sensor}_{year}_{month}_{feature}.tif",
            "SAR derived layer (coherence, texture)",
            identity=True,
        ),
        Pattern(
            "sar-composite",
            "preprocessed/sar/{year}/{month}/",
            "sar_{sensor}_{year}_{month}.tif",
            "monthly SAR backscatter composite",
            identity=True,
        ),
        Pattern(
            "coreg-params",
            "coregistration/{year}/{month}/",
            "coreg_params_{year}_{month}.json",
            "optical-SAR co-registration parameters",
            identity=True,
        ),
        Pattern(
            "coreg-composite",
            "coregistration/{year}/{month}/",
            "coreg_optical_sar_{year}_{month}.tif",
            "co-registered optical + SAR composite",
            identity=True,
        ),
        Pattern(
            "features",
            "features/{year}/",
            "features_{stack}_{year}.nc",
            "per-year feature stack for classification",
            identity=True,
        ),
        Pattern("model-checkpoint", "models/checkpoints/", "{model_id}.{ext}", "trained model"),
        Pattern("model-metadata", "models/metadata/", "{model_id}.json", "model version and training record"),
        Pattern(
            "class-probabilities",
            "classification/{year}/probabilities/",
            "class_probs_{year}_{period}.tif",
            "per-class probabilities",
            identity=True,
        ),
        Pattern(
            "class-map",
            "classification/{year}/final/",
            "classified_map_{kind}_{year}_{period}.tif",
            "final land-cover class map",
            identity=True,
        ),
        Pattern(
            "accuracy-report",
            "classification/{year}/",
            "accuracy_{kind}_{year}_{period}.json",
            "validation of a class map's model on held-out training samples",
            identity=True,
        ),
        Pattern(
            "class-confidence",
            "classification/{year}/probabilities/",
            "class_confidence_{year}_{period}.tif",
            "confidence of a class map: the probability of its class, percent",
            identity=True,
        ),
        Pattern(
            "class-map-categories",
            "classification/{year}/final/",
            "classified_map_{kind}_{year}_{period}.tif.aux.xml",
            "category names and attribute table of a class map (GDAL PAM side-car)",
            identity=True,
        ),
        Pattern(
            "class-map-thumbnail",
            "classification/{year}/final/",
            "classified_map_{kind}_{year}_{period}_thumbnail.png",
            "thumbnail of a class map in the legend's colours (PNG, at most 512 px)",
            identity=True,
        ),
        Pattern(
            "class-map-qml",
            "classification/{year}/final/",
            "classified_map_{kind}_{year}_{period}.qml",
            "QGIS style of a class map",
            identity=True,
        ),
        Pattern(
            "class-map-sld",
            "classification/{year}/final/",
            "classified_map_{kind}_{year}_{period}.sld",
            "OGC SLD style of a class map",
            identity=True,
        ),
        Pattern(
            "map-accuracy",
            "classification/{year}/final/",
            "map_accuracy_{kind}_{year}_{period}.json",
            "area-weighted accuracy and class areas of a class map, with confidence intervals",
            identity=True,
        ),
        Pattern(
            "map-accuracy-plot",
            "classification/{year}/final/",
            "map_accuracy_{kind}_{year}_{period}.png",
            "error matrix and per-class accuracy of a class map (PNG)",
            identity=True,
        ),
        Pattern(
            "fused-class-map-region",
            "fusion/{year}/",
            "fused_class_map_{year}_{region}.tif",
            "decision-fused class map of a region",
            identity=True,
        ),
        Pattern(
            "fused-class-map",
            "fusion/{year}/",
            "fused_class_map_{year}.tif",
            "decision-fused class map",
            identity=True,
        ),
        Pattern(
            "change-map",
            "changedetection/{year2}/",
            "final_change_map_{year1}_{year2}.tif",
            "land-cover change map",
            identity=True,
        ),
        Pattern(
            "harmonization-lookup",
            "harmonization/{pastYear}/",
            "harmonization_lookup_{pastYear}_to_{refYear}.json",
            "class relations of a past year to the reference year",
        ),
        Pattern(
            "harmonized-class-map",
            "harmonization/{year}/",
            "harmonized_class_map_{year}.tif",
            "class map harmonised to the post-2020 definitions",
            identity=True,
        ),
        Pattern("stac-item", "metadata/stac/{collection}/", "{item_id}.json", "STAC Item of a product"),
        Pattern(
            "graph-result",
            "results/{graph_id}/",
            "result_{graph_id}_{label}.{suffix}",
            "a file written by save_result of an openEO process graph (hrlc extension, not in Table 3-1)",
        ),
        Pattern(
            "ancillary-layer",
            "ancillary/{dataset}/{edition}/",
            "{dataset}_{edition}_{grid}.{fmt}",
            "an ancillary layer clipped and reprojected to a product grid (hrlc extension: the spec leaves "
            "the organisation of ancillary data TBD)",
        ),
        Pattern(
            "ancillary-source",
            "ancillary/{dataset}/source/{checksum}/",
            "{name}",
            "a manually retrieved ancillary file as uploaded by `hrlc ancillary put` (hrlc extension)",
        ),
        Pattern("log", "logs/", "{name}", "processing log"),
    ]
}


class LayoutError(ValueError):
    """A key that does not follow the layout, or fields that do not fit a pattern."""


@dataclass(frozen=True)
class ParsedKey:
    family: str
    fields: dict[str, str]

    def __getitem__(self, field: str) -> str:
        return self.fields[field]


def _check_field(field: str, value: str) -> None:
    if not re.fullmatch(_FIELD_REGEX[field], value):
        raise LayoutError(f"{field}={value!r} does not match {_FIELD_REGEX[field]!r}")


def key(family: str, **fields: object) -> str:
    """The key of a product of `family` with the given fields, e.g.
    `key("optical-composite", sensor="sentinel2", year=2021, period="01")`."""
    try:
        pattern = PATTERNS[family]
    except KeyError:
        raise LayoutError(f"unknown product family {family!r}; known: {sorted(PATTERNS)}") from None
    values = {f: _format(f, v) for f, v in fields.items() if v is not None}
    template = pattern.template
    if pattern.identity and not set(IDENTITY_FIELDS) & set(values):
        template = pattern.spec_template  # a product named as the spec names it (made elsewhere)
    needed = [f for _, f, _, _ in Formatter().parse(template) if f]
    missing = set(needed) - set(values)
    if missing:
        raise LayoutError(f"{family} needs fields {sorted(missing)}")
    for f in needed:
        _check_field(f, values[f])
    return template.format(**values)


def _format(field: str, value: object) -> str:
    if field in {"month"} and isinstance(value, int):
        return f"{value:02d}"
    if field == "period" and isinstance(value, int):
        return f"{value:02d}"
    return str(value)


def parse(k: str) -> ParsedKey:
    """The family and fields of a key (a leading `data/` or `/` is accepted). LayoutError if none fits."""
    k = k.lstrip("/")
    if k.startswith("data/"):
        k = k[5:]
    for pattern in PATTERNS.values():
        m = pattern.regex().match(k)
        if m:
            return ParsedKey(pattern.family, {f: v for f, v in m.groupdict().items() if v is not None})
    raise LayoutError(f"{k!r} is not a key of the hrlc Data Lake layout")


def check_key(k: str) -> str:
    """Refuse keys that could escape the lake: absolute, `..`, backslashes, empty parts."""
    if not k or k.startswith("/") or "\\" in k or any(p in ("", ".", "..") for p in k.split("/")):
        raise LayoutError(f"refused key {k!r}: keys are relative paths without '..', '.' or empty parts")
    return k


def item_id(product_key: str) -> str:
    """The STAC item id of a product key: its file stem, followed by `_{space}_{config}` when the key carries
    the product's identity (`hrlc.lake.identity`), so items of two AOIs or parameter sets never share an id."""
    stem = PurePosixPath(product_key).stem
    try:
        fields = parse(product_key).fields
    except LayoutError:
        return stem
    if "space" in fields and "config" in fields:
        return f"{stem}_{fields['space']}_{fields['config']}"
    return stem


def item_key(product_key: str) -> str:
    """The key of the STAC Item of a product key. LayoutError for families without items (STAC Items, logs)."""
    family = parse(product_key).family
    if family not in COLLECTIONS:
        raise LayoutError(f"{family} files have no STAC Item")
    return key("stac-item", collection=COLLECTIONS[family], item_id=item_id(product_key))


def item_key_of(product_key: str) -> str | None:
    """The key of the STAC Item of a product key, None for families without items (STAC Items, logs)."""
    return item_key(product_key) if parse(product_key).family in COLLECTIONS else None


def log_key(task_id: str) -> str:
    """The key of a task's log record (`logs/task_<task id>.json`, one per task, replaced on a rerun)."""
    return key("log", name="task_" + re.sub(r"[^A-Za-z0-9._-]+", "_", task_id) + ".json")
