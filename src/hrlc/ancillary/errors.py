"""The error of the ancillary data component, apart from the service so that a caller of the
`AncillaryLayers` port (`hrlc.ancillary.port`), such as the features processor, names it without the
database driver."""

from __future__ import annotations


class AncillaryError(Exception):
    """A request the registry cannot serve: unknown dataset, nothing uploaded yet, AOI outside the data, bad
    AOI or grid, unreachable source (one line a user can act on)."""
