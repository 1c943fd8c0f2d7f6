"""The ancillary-layers port: a named ancillary layer (DEM, reference land-cover map, ...) on a product grid.

`Ancillary` (`hrlc.ancillary.service`) implements it: registry, retrieval, cache in the lake, metadata in the
database. The composition root (`hrlc.backends`) builds it and hands it to processors in their `Context`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from odc.geo.geobox import GeoBox

    from hrlc.ancillary.service import Layer


class AncillaryLayers(Protocol):
    def get(self, name: str, *, geobox: GeoBox) -> Layer:
        """Layer `name` of the registry (`hrlc.ancillary.registry`) on `geobox`, retrieved and cached on first
        use. Raises `AncillaryError` (`hrlc.ancillary.errors`) with one line when it cannot be had."""
        ...
