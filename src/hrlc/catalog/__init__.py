"""STAC metadata of hrlc: items for every product, catalogue back ends, and sources of input scenes."""
