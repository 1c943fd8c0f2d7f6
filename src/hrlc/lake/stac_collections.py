"""The STAC collections of the lake's product families: which collection holds the items of each family.

One collection per group of families (composites and their masks, class maps and their accuracy reports...),
as the static catalogue (`metadata/stac/{collection}/`) and pgstac hold them. The collection id is a field of
a STAC Item's lake key (`hrlc.lake.layout.item_key_of`); families not listed (STAC Items themselves, logs)
have no items.
"""

from __future__ import annotations

# Product family -> collection id.
COLLECTIONS: dict[str, str] = {
    "raw-sentinel2": "hrlc-raw",
    "raw-landsat": "hrlc-raw",
    "raw-sentinel1": "hrlc-raw",
    "optical-composite": "hrlc-optical-composites",
    "optical-cloudmask": "hrlc-optical-composites",
    "sar-composite": "hrlc-sar-composites",
    "sar-feature": "hrlc-sar-composites",
    "coreg-params": "hrlc-coregistration",
    "coreg-composite": "hrlc-coregistration",
    "features": "hrlc-feature-stacks",
    "model-checkpoint": "hrlc-models",
    "model-metadata": "hrlc-models",
    "class-probabilities": "hrlc-class-probabilities",
    "class-map": "hrlc-class-maps",
    "accuracy-report": "hrlc-class-maps",
    "fused-class-map": "hrlc-fused-maps",
    "fused-class-map-region": "hrlc-fused-maps",
    "change-map": "hrlc-change-maps",
    "harmonization-lookup": "hrlc-harmonized-maps",
    "harmonized-class-map": "hrlc-harmonized-maps",
    "graph-result": "hrlc-results",
    "ancillary-layer": "hrlc-ancillary",
    "ancillary-source": "hrlc-ancillary",
}

# Collection id -> its title (and description) in the catalogue.
COLLECTION_TITLES: dict[str, str] = {
    "hrlc-raw": "Raw input scenes copied into the Data Lake",
    "hrlc-optical-composites": "Cloud-free optical composites (Sentinel-2 monthly, Landsat seasonal) and masks",
    "hrlc-sar-composites": "Sentinel-1 monthly backscatter composites and derived layers",
    "hrlc-coregistration": "Optical-SAR co-registration parameters and co-registered composites",
    "hrlc-feature-stacks": "Per-year feature stacks for time-series classification",
    "hrlc-models": "Trained classification models and their metadata",
    "hrlc-class-probabilities": "Per-class probability maps",
    "hrlc-class-maps": "Land-cover class maps in the HRLC legend and their accuracy reports",
    "hrlc-fused-maps": "Decision-fused land-cover maps",
    "hrlc-change-maps": "Land-cover change maps",
    "hrlc-harmonized-maps": "Class maps harmonised to the post-2020 class definitions",
    "hrlc-results": "Results of openEO process graphs (save_result)",
    "hrlc-ancillary": "Ancillary layers (DEM, reference land-cover maps...) clipped to product grids, and uploads",
}
