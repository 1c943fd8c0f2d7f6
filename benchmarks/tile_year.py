"""Benchmark of one tile-year against openEO (issue 13): hrlc's chain and openeo-processes-dask evaluating the
equivalent openEO process graph, on the same inputs, in the same run.

Why: HRLC's chain must map a Sentinel-2 tile-year at least 5 times faster than a generic openEO back end would
run the same science. This script generates the synthetic repository of `--size`² px (`--every` 3: 25 of the
73 Sentinel-2 dates; kept in `--workdir` and reused), then, each in a child process of its own (wall time, CPU
time and peak RSS read with `wait4`):

- hrlc: the optical land-cover chain of `hrlc run` (`run_chain` of benchmarks/scale.py) with one tile, the
  whole repository: cloud mask and monthly median composites, gap-filled features, LightGBM trained (the
  training counts in hrlc's time only) and mapped;
- openEO: the same year as an openEO process graph built with the openeo Python client (load_collection of
  the 10 bands and SCL → SCL cloud/shadow/cirrus/no-data mask → aggregate_temporal_period(month, median) →
  ndvi, ndwi, mndwi, ndbi, nbr, ndre per month → their annual min, max, median, amplitude), evaluated by
  openeo-processes-dask through openeo-pg-parser-networkx; `load_collection` as a back end makes it (odc-stac,
  dask chunks of 1024 px, reflectance × 1e-4, nodata → NaN), and a back-end process `predict_hrlc_model`
  applies THE model the hrlc run trained (its checkpoint in the lake) to the features per pixel, in hrlc's
  feature order; `save_result` computes the class map into a GeoTIFF.

It prints one JSON line per side (wall, CPU, peak RSS, Mpx/s of the tile-year) and a summary: the throughput
ratio hrlc / openEO (goal ≥ 5), both peak RSS, and the agreement of the two class maps (fraction of equal
pixels: not 1, hrlc gap-fills the months without a clear observation before the indices and statistics,
the graph does not: openeo-processes-dask's `array_interpolate_linear` in `apply_dimension` computes the cube
eagerly, refuses more than 50 million values and interpolates pixel by pixel in Python) and of each with the
repository's truth map. The CPU time ratio is given too: it is steadier than wall time on a shared machine.

    .venv/bin/python benchmarks/tile_year.py [--size 1024] [--every 3] [--workdir /tmp/hrlc-tile-year] \
        [--skip-openeo]

Each run starts from an empty lake; the graph (graph-*.json) and the openEO class map are left in `--workdir`.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path
from typing import Any

from _child import measured
from scale import run_chain

#: openEO band names of the sentinel-2-l2a collection -> hrlc's canonical band names (the catalogue's asset keys)
S2_BANDS: dict[str, str] = {
    "B02": "blue",
    "B03": "green",
    "B04": "red",
    "B05": "rededge1",
    "B06": "rededge2",
    "B07": "rededge3",
    "B08": "nir",
    "B8A": "nir08",
    "B11": "swir16",
    "B12": "swir22",
}
CHUNK_PX = 1024  # load_collection's dask chunks
REFLECTANCE_SCALE = 1e-4


# ------------------------------------------------------------------------------------------------ hrlc side


def run_hrlc(repo_root: Path, lake: Path) -> None:
    """The child: the chain on the repository as one tile; prints the model checkpoint and class map it made."""
    from hrlc import sample

    run_chain(repo_root, lake, sample.SampleRepository.open(repo_root).size)
    (model,) = lake.rglob("models/checkpoints/*.joblib")
    space, config = model.stem.split("_")[-2:]  # the model id ends with its products' identity
    (class_map,) = lake.rglob(f"classification/*/final/{space}/{config}/classified_map_optical_*_annual.tif")
    tiles = len(list(lake.rglob("features/**/features_optical_*.nc")))
    print(json.dumps({"model": str(model), "class_map": str(class_map), "feature_stacks": tiles}), flush=True)


# ---------------------------------------------------------------------------------------------- openEO side


def openeo_graph(repo: Any, model: str) -> dict[str, Any]:
    """The tile-year as a user of the openeo Python client writes it (flat graph, `{node id: node}`), with hrlc's
    SCL classes, indices and statistics; the last steps are the back end's `predict_hrlc_model` with the
    checkpoint `model`, and `save_result` as GTiff."""
    import functools
    import operator

    from openeo.processes import clip, normalized_difference
    from openeo.rest.datacube import DataCube

    from hrlc.chain.features import INDICES, STATS
    from hrlc.chain.optical import SCL_CLOUD, SCL_NODATA, SCL_SHADOW

    t = repo.transform
    extent = {"west": t.c, "south": t.f - t.a * repo.size, "east": t.c + t.a * repo.size, "north": t.f,
              "crs": repo.epsg}  # fmt: skip
    cube = DataCube.load_collection(
        "sentinel-2-l2a",
        connection=None,
        spatial_extent=extent,
        temporal_extent=[f"{repo.year}-01-01", f"{repo.year + 1}-01-01"],
        bands=[*S2_BANDS, "SCL"],
    )
    scl = cube.band("SCL")
    invalid = functools.reduce(operator.or_, [scl == c for c in SCL_NODATA + SCL_SHADOW + SCL_CLOUD])
    monthly = cube.filter_bands(list(S2_BANDS)).mask(invalid).aggregate_temporal_period("month", "median")
    named = monthly.rename_labels("bands", target=list(S2_BANDS.values()), source=list(S2_BANDS))

    def index(a: str, b: str) -> Any:  # the client reads the callback's parameter names: `data` only
        return lambda data: clip(
            normalized_difference(data.array_element(label=a), data.array_element(label=b)), -1, 1
        )

    indices = None
    for name, (a, b) in INDICES.items():
        nd = named.reduce_dimension(dimension="bands", reducer=index(a, b)).add_dimension(
            "bands", name, "bands"
        )
        indices = nd if indices is None else indices.merge_cubes(nd)
    assert indices is not None
    stats = None
    for stat in STATS:
        reducer: Any = stat if stat != "amplitude" else (lambda data: data.max() - data.min())
        s = indices.reduce_dimension(dimension="t", reducer=reducer).rename_labels(
            "bands", target=[f"{n}_{stat}" for n in INDICES], source=list(INDICES)
        )
        stats = s if stats is None else stats.merge_cubes(s)
    features = named.merge_cubes(indices)
    classes = features.process("predict_hrlc_model", data=features, statistics=stats, model=model)
    return classes.save_result(format="GTiff").flat_graph()


def _registry(catalog: Path, out: Path) -> Any:
    """openeo-processes-dask's processes (as its README wires them) plus a back end's `load_collection` over the
    static catalogue, `save_result` into `out` and `predict_hrlc_model`."""
    import inspect
    import logging

    logging.getLogger("openeo_processes_dask.process_implementations").setLevel(logging.ERROR)  # no ML extra
    import openeo_processes_dask.process_implementations as impls
    import openeo_processes_dask.specs as specs
    from openeo_pg_parser_networkx import ProcessRegistry
    from openeo_pg_parser_networkx.process_registry import Process
    from openeo_processes_dask.process_implementations.core import process

    registry = ProcessRegistry(wrap_funcs=[process])
    for name, func in inspect.getmembers(impls, inspect.isfunction):
        spec = getattr(specs, name, None)
        if isinstance(spec, dict):
            registry[name.removeprefix("_")] = Process(spec=spec, implementation=func)
    state: dict[str, Any] = {}

    def load_collection(id: str, spatial_extent: Any, temporal_extent: Any = None, bands: Any = None,
                        properties: Any = None, **_: Any) -> Any:  # fmt: skip
        import numpy as np
        import odc.stac
        import pandas as pd
        import pystac
        import xarray as xr
        from odc.geo.geobox import GeoBox
        from odc.geo.geom import box

        ext = spatial_extent.model_dump() if hasattr(spatial_extent, "model_dump") else dict(spatial_extent)
        crs = ext.get("crs") or 4326
        area = box(
            ext["west"], ext["south"], ext["east"], ext["north"], f"EPSG:{crs}" if str(crs).isdigit() else crs
        )
        start, end = (
            pd.Timestamp(str(getattr(v, "root", v))).tz_localize(None) for v in temporal_extent.root
        )
        lon_w, lat_s, lon_e, lat_n = area.to_crs("EPSG:4326").boundingbox
        items = [
            i
            for i in pystac.Catalog.from_file(str(catalog)).get_child(id).get_items()  # type: ignore[union-attr]
            if start <= pd.Timestamp(i.datetime).tz_localize(None) < end
            and i.bbox[0] < lon_e and i.bbox[2] > lon_w and i.bbox[1] < lat_n and i.bbox[3] > lat_s
        ]  # fmt: skip
        names = list(bands or [*S2_BANDS, "SCL"])
        keys = [S2_BANDS.get(b, b.lower()) for b in names]
        resolution = abs(items[0].assets[keys[0]].extra_fields["proj:transform"][0])
        geobox = GeoBox.from_bbox(area.boundingbox, area.crs, resolution=resolution)
        state["geobox"] = geobox
        ds = odc.stac.load(items, bands=keys, geobox=geobox, chunks={"x": CHUNK_PX, "y": CHUNK_PX},
                           groupby="solar_day")  # fmt: skip
        layers = {}
        for name, key in zip(names, keys, strict=True):
            v = ds[key]
            if name in S2_BANDS:  # reflectance, no data as NaN
                nodata = v.attrs.get("nodata", 0)
                layers[name] = (v.astype(np.float32) * np.float32(REFLECTANCE_SCALE)).where(v != nodata)
            else:  # SCL: class codes (0 is SCL's own "no data" class)
                layers[name] = v.astype(np.float32)
        cube = xr.Dataset(layers).to_dataarray(dim="bands").rename({"time": "t"})
        return cube.transpose("t", "bands", "y", "x")

    def predict_hrlc_model(data: Any, statistics: Any, model: str, **_: Any) -> Any:
        """The class codes of the model at `model` (an hrlc checkpoint; its metadata, with the feature order,
        beside it) on the features: the temporal cube `data` (`{band}_{MM}`) and the 2-D `statistics`."""
        import os

        import dask.array as da
        import joblib
        import numpy as np
        import pandas as pd
        import xarray as xr

        path = Path(model)
        est = joblib.load(path)
        if "n_jobs" in est.get_params():
            est.set_params(n_jobs=os.cpu_count())  # a back end predicts on all its cores
        names = json.loads((path.parent.parent / "metadata" / f"{path.stem}.json").read_text())["features"]
        temporal = data.transpose("t", "bands", "y", "x")
        stats = statistics.transpose("bands", "y", "x")
        where: dict[str, Any] = {}
        for i, t in enumerate(temporal["t"].values):
            for j, b in enumerate(temporal["bands"].values):
                where[f"{b}_{pd.Timestamp(t).month:02d}"] = temporal.data[i, j]
        for j, b in enumerate(stats["bands"].values):
            where[str(b)] = stats.data[j]
        shape, chunks = temporal.shape[2:], temporal.data.chunks[2:]
        missing = da.full(shape, np.nan, dtype=np.float32, chunks=chunks)
        x = da.stack([where.get(n, missing).astype(np.float32) for n in names]).rechunk({0: -1})

        def predict(block: np.ndarray) -> np.ndarray:
            flat = block.reshape(block.shape[0], -1).T
            ok = ~np.isnan(flat).all(axis=1)
            codes = np.zeros(flat.shape[0], dtype=np.uint8)
            if ok.any():
                codes[ok] = est.predict(np.ascontiguousarray(flat[ok])).astype(np.uint8)
            return codes.reshape(block.shape[1:])

        codes = da.map_blocks(predict, x, drop_axis=0, dtype=np.uint8)
        return xr.DataArray(codes, dims=("y", "x"), coords={"y": temporal["y"], "x": temporal["x"]})

    def save_result(data: Any, format: str, options: Any = None, **_: Any) -> bool:
        import rasterio

        geobox = state["geobox"]
        values = data.transpose("y", "x").values  # computes the whole graph
        profile = {"driver": "GTiff", "height": values.shape[0], "width": values.shape[1], "count": 1,
                   "dtype": values.dtype.name, "crs": str(geobox.crs), "transform": geobox.transform,
                   "nodata": 0, "tiled": True, "blockxsize": 512, "blockysize": 512, "compress": "deflate"}  # fmt: skip
        with rasterio.open(out, "w", **profile) as dst:
            dst.write(values, 1)
        return True

    for name, func in [("load_collection", load_collection), ("save_result", save_result),
                       ("predict_hrlc_model", predict_hrlc_model)]:  # fmt: skip
        registry[name] = Process(spec={"id": name}, implementation=func)
    return registry


def run_openeo(catalog: Path, graph_file: Path, out: Path) -> None:
    """The child: the graph evaluated by openeo-processes-dask; the class map into `out`."""
    import warnings

    from openeo_pg_parser_networkx import OpenEOProcessGraph

    # all-NaN medians and statistics: pixels without a clear observation in a month
    warnings.filterwarnings("ignore", category=RuntimeWarning)
    graph = json.loads(graph_file.read_text())
    parsed = OpenEOProcessGraph(pg_data={"process_graph": graph})
    parsed.to_callable(process_registry=_registry(catalog, out))()
    print(json.dumps({"class_map": str(out)}), flush=True)


# ------------------------------------------------------------------------------------------------- parent


def _agreement(a: Path, b: Path) -> float:
    """Fraction of the pixels where the two class rasters are equal."""
    import numpy as np
    import rasterio

    with rasterio.open(a) as ra, rasterio.open(b) as rb:
        va, vb = ra.read(1), rb.read(1)
    if va.shape != vb.shape:
        raise SystemExit(f"{a} and {b} differ in shape: {va.shape} {vb.shape}")
    return float(np.mean(va == vb))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=1024, help="side of the repository (one tile), pixels")
    ap.add_argument("--every", type=int, default=3, help="keep every n-th date of the synthetic year (3: 25)")
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/hrlc-tile-year"))
    ap.add_argument(
        "--skip-openeo", action="store_true", help="run the hrlc side only (e.g. for the full tile)"
    )
    ap.add_argument("--hrlc", nargs=2, metavar=("REPO", "LAKE"), help=argparse.SUPPRESS)  # the child
    ap.add_argument("--openeo", nargs=3, metavar=("CATALOG", "GRAPH", "OUT"), help=argparse.SUPPRESS)
    ap.add_argument("--generate", nargs=2, metavar=("ROOT", "SIZE"), help=argparse.SUPPRESS)  # the child
    a = ap.parse_args()
    if a.hrlc:
        run_hrlc(Path(a.hrlc[0]), Path(a.hrlc[1]))
        return
    if a.openeo:
        run_openeo(*(Path(p) for p in a.openeo))
        return
    if a.generate:
        from hrlc import sample

        sample.generate(Path(a.generate[0]), size=int(a.generate[1]), every=a.every)
        return

    from hrlc import sample

    suffix = f"{a.size}-e{a.every}"
    root, lake = a.workdir / f"repo-{suffix}", a.workdir / f"lake-{suffix}"
    if not (root / "sample.json").exists():  # generation is deterministic: a kept repository is reused
        gen = measured(__file__, ["--generate", str(root), str(a.size), "--every", str(a.every)])
        print(
            json.dumps(
                {"generate_s": round(gen.wall_s, 1), "generate_peak_rss_gb": round(gen.peak_rss_gb, 2)}
            )
        )
    repo = sample.SampleRepository.open(root)
    dates = json.loads((root / "sample.json").read_text())["items"]["sentinel-2-l2a"]
    mpx = repo.size**2 / 1e6

    def row(side: str, m: Any) -> dict[str, Any]:
        r = {"side": side, "size": repo.size, "s2_dates": dates, "wall_s": round(m.wall_s, 1),
             "cpu_s": round(m.cpu_s, 1), "peak_rss_gb": round(m.peak_rss_gb, 2),
             "mpx_per_s": round(mpx / m.wall_s, 4)}  # fmt: skip
        print(json.dumps(r), flush=True)
        return r

    shutil.rmtree(lake, ignore_errors=True)
    h = measured(__file__, ["--hrlc", str(root), str(lake)])
    hrlc_row = row("hrlc", h)
    hrlc_map = Path(h.out["class_map"])
    summary: dict[str, Any] = {
        "benchmark": "tile_year",
        "size": repo.size,
        "hrlc_feature_stacks": h.out["feature_stacks"],
        "hrlc_peak_rss_gb": hrlc_row["peak_rss_gb"],
        "hrlc_truth_agreement": round(_agreement(hrlc_map, repo.truth_map), 4),
    }
    if not a.skip_openeo:
        graph_file, out = a.workdir / f"graph-{suffix}.json", a.workdir / f"openeo-{suffix}.tif"
        graph_file.write_text(json.dumps(openeo_graph(repo, h.out["model"]), indent=1))
        out.unlink(missing_ok=True)
        o = measured(__file__, ["--openeo", str(repo.catalog), str(graph_file), str(out)])
        openeo_row = row("openeo", o)
        ratio = o.wall_s / h.wall_s
        summary.update(
            {
                "throughput_ratio_hrlc_to_openeo": round(ratio, 2),
                "cpu_ratio_openeo_to_hrlc": round(o.cpu_s / h.cpu_s, 2),
                "goal_ratio_ge_5": ratio >= 5,
                "openeo_peak_rss_gb": openeo_row["peak_rss_gb"],
                "class_map_agreement": round(_agreement(hrlc_map, out), 4),
                "openeo_truth_agreement": round(_agreement(out, repo.truth_map), 4),
            }
        )
    print(json.dumps(summary), flush=True)
    shutil.rmtree(lake, ignore_errors=True)


if __name__ == "__main__":
    main()
