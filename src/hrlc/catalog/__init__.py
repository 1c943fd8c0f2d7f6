"""STAC metadata of hrlc: items for every product, catalogue back ends, and sources of input scenes."""

from hrlc.catalog.factory import open_catalog

__all__ = ["open_catalog"]
