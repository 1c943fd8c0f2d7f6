"""The DEM in the classification features: `FeaturesParams(ancillary=["dem"])` adds `elevation` and `slope` on
the stack's grid, equal to the known plane of the test DEM, and changes nothing else; the default adds nothing.
The processor gets the DEM only through `ctx.ancillary`: without that port it refuses in one line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hrlc.ancillary import Ancillary, product_grid
from hrlc.catalog.items import raster_item
from hrlc.catalog.sources import CANONICAL_LANDSAT
from hrlc.catalog.static import StaticCatalog
from hrlc.chain.features import to_matrix
from hrlc.lake import layout
from hrlc.lake.store import LocalStore
from hrlc.periods import period_range, periods_of
from hrlc.processors.base import Context, ProcessorError
from hrlc.processors.features import Features, FeaturesParams
from hrlc.products.cog import write_cog
from hrlc.products.netcdf import read_feature_stack
from hrlc.settings import Settings

from .conftest import AOI, DEM_SLOPE_DEG, StacServer, dem_truth

YEAR = 2021


def _composites(store: LocalStore, catalog: StaticCatalog) -> tuple[int, int]:
    gbox = product_grid(AOI, resolution=30)
    ny, nx = gbox.shape
    rng = np.random.default_rng(7)
    for season in periods_of("landsat"):
        key = layout.key("optical-composite", sensor="landsat", year=YEAR, period=season)
        dn = rng.integers(300, 4000, (len(CANONICAL_LANDSAT), ny, nx)).astype(np.uint16)
        dn[:, :3, :3] = 0  # a gap, filled along the year
        write_cog(
            store,
            key,
            dn,
            crs=str(gbox.crs),
            transform=gbox.affine,
            nodata=0,
            band_names=list(CANONICAL_LANDSAT),
            scales=[1e-4] * len(CANONICAL_LANDSAT),
            offsets=[0.0] * len(CANONICAL_LANDSAT),
        )
        start, end = period_range(YEAR, season)
        catalog.add(
            raster_item(
                store, key, start=start, end=end, processor="optical-preprocessing", processor_version="t"
            )
        )
    return int(ny), int(nx)


def test_dem_features_equal_the_truth_and_leave_the_rest_alone(
    env: Settings, stac_server: StacServer
) -> None:
    store = LocalStore(env.store)
    catalog = StaticCatalog(store)
    _composites(store, catalog)
    ctx = Context(store=store, catalog=catalog, ancillary=Ancillary(env, store=store, catalog=catalog))
    key = layout.key("features", stack="optical_landsat", year=YEAR)

    assert FeaturesParams(year=YEAR, sensor="landsat").ancillary == []
    Features().run(FeaturesParams(year=YEAR, sensor="landsat"), ctx)
    with store.reading(key) as path:
        plain = read_feature_stack(path).load()
    assert "elevation" not in plain and "slope" not in plain
    assert stac_server.requests == []  # the default asks nobody for a DEM

    [href] = Features().run(FeaturesParams(year=YEAR, sensor="landsat", ancillary=["dem"]), ctx)
    with store.reading(key) as path:
        stack = read_feature_stack(path).load()
    assert set(stack.data_vars) - set(plain.data_vars) == {"elevation", "slope"}
    for name in plain.data_vars:
        np.testing.assert_array_equal(stack[name].values, plain[name].values, err_msg=str(name))
    assert stack["elevation"].attrs["units"] == "m" and stack["slope"].attrs["units"] == "degree"

    e, n = np.meshgrid(stack.x.values, stack.y.values)
    elev = stack["elevation"].values
    assert np.abs(elev - dem_truth(e, n)).max() < 0.1
    assert np.abs(stack["slope"].values - DEM_SLOPE_DEG).max() < 0.02
    matrix, names = to_matrix(stack)
    assert {"elevation", "slope"} <= set(names) and matrix.shape[0] == len(names)

    item = catalog.get_href(href)
    assert {"elevation", "slope"} <= set(item.properties["hrlc:features"])
    dem_inputs = [i for i in item.properties["hrlc:inputs"] if i.startswith("copernicus-dem_static_")]
    assert len(dem_inputs) == 1  # lineage: the cached DEM layer's item

    stac_server.reset()  # again: the DEM comes from the lake cache
    Features().run(FeaturesParams(year=YEAR, sensor="landsat", ancillary=["dem"]), ctx)
    assert stac_server.requests == []


def test_dem_without_the_ancillary_port_is_one_line(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "lake")
    catalog = StaticCatalog(store)
    _composites(store, catalog)
    with pytest.raises(ProcessorError) as info:  # a Context without `ancillary`: no database, no request
        Features().run(
            FeaturesParams(year=YEAR, sensor="landsat", ancillary=["dem"]),
            Context(store=store, catalog=catalog),
        )
    message = str(info.value)
    assert "\n" not in message and message.startswith("ancillary DEM: no ancillary data"), message
    assert not store.exists(layout.key("features", stack="optical_landsat", year=YEAR))
