"""The STAC Collection documents of hrlc's product collections, as built in (no catalogue needed).

One collection per family group of `hrlc.lake.stac_collections.COLLECTIONS`, with its title, the product
families it holds (`summaries`) and the media type of their `data` asset (`item_assets`). pgstac is seeded
with these documents (its extents are then recomputed from the items); the static catalogue serves them as
they are.
"""

from __future__ import annotations

from typing import Any

import pystac

from hrlc.lake.stac_collections import COLLECTION_TITLES, COLLECTIONS

STAC_VERSION = pystac.get_stac_version()

# Media type of the `data` asset of each family (for the collections' item_assets).
_FAMILY_MEDIA: dict[str, str] = {
    "features": "application/netcdf",
    "model-checkpoint": "application/octet-stream",
    "model-metadata": "application/json",
    "accuracy-report": "application/json",
    "coreg-params": "application/json",
    "harmonization-lookup": "application/json",
}
_COG = pystac.MediaType.COG.value


def collection_ids() -> list[str]:
    """Every product collection id, in a stable order."""
    return sorted(set(COLLECTIONS.values()))


def collection_document(cid: str) -> dict[str, Any]:
    """The STAC Collection of one product collection (extent is a placeholder until items arrive)."""
    families = sorted(f for f, c in COLLECTIONS.items() if c == cid)
    media = sorted({_FAMILY_MEDIA.get(f, _COG) for f in families})
    data_asset: dict[str, Any] = {"title": "Product file", "roles": ["data"]}
    if len(media) == 1:
        data_asset["type"] = media[0]
    title = COLLECTION_TITLES.get(cid, cid)
    return {
        "type": "Collection",
        "stac_version": STAC_VERSION,
        "stac_extensions": [],
        "id": cid,
        "title": title,
        "description": f"{title}. Products of the ESA CCI High Resolution Land Cover processing chain (hrlc).",
        "keywords": ["land cover", "ESA CCI", "HRLC", *families],
        "license": "CC-BY-4.0",
        "providers": [{"name": "hrlc", "roles": ["processor", "producer", "host"]}],
        "extent": {
            "spatial": {"bbox": [[-180.0, -90.0, 180.0, 90.0]]},
            "temporal": {"interval": [[None, None]]},
        },
        "summaries": {"hrlc:product": families},
        "item_assets": {"data": data_asset},
        "links": [],
    }
