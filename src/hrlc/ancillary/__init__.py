"""Ancillary data (spec §3.4.1): the registry of DEM, reference land-cover maps and other layers, their
retrieval (STAC/S3, or uploads of manually retrieved files) onto product grids, cached in the Data Lake, with
metadata in the database.

    from hrlc.ancillary import Ancillary
    from hrlc.backends import Backends
    from hrlc.settings import Settings

    backends = Backends.from_settings(Settings())  # HRLC_* read once: the lake, the catalogue
    anc = Ancillary(backends.settings, store=backends.store, catalog=backends.catalog)
    dem = anc.get("copernicus-dem", aoi=(14.50, 45.85, 14.60, 45.90), resolution=30)
    dem.read()                      # xarray.DataArray on the UTM 30 m grid of the AOI
    anc.put("glc-fcs30d", "GLC_FCS30D_2020_E10N50.tif", year=2020)
    report = anc.agreement("classified_map_optical_2021_annual.tif", reference="esa-worldcover")

See `docs/ancillary.md`.
"""

from typing import TYPE_CHECKING, Any

from hrlc.ancillary.errors import AncillaryError
from hrlc.ancillary.registry import DATASETS, Dataset, StacAccess, UnknownDataset, dataset, register

if TYPE_CHECKING:
    from hrlc.ancillary.service import Ancillary, Layer, Upload, grid_id, product_grid

# The service needs the database (the platform extra): it is imported on first use, so that the registry and
# `hrlc ancillary --help` work in a core install.
_SERVICE = {"Ancillary", "Layer", "Upload", "grid_id", "product_grid"}


def __getattr__(name: str) -> Any:
    if name in _SERVICE:
        from hrlc.ancillary import service

        return getattr(service, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "DATASETS",
    "Ancillary",
    "AncillaryError",
    "Dataset",
    "Layer",
    "StacAccess",
    "UnknownDataset",
    "Upload",
    "dataset",
    "grid_id",
    "product_grid",
    "register",
]
