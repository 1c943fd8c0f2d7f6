"""A job as a DAG of tasks: each task names a processor and its params; edges say what must finish first.

The same DAG is run by the in-process runner (embedded default) or, later, by the planner that publishes
ready tasks to RabbitMQ. `land_cover_dag` builds the optical land-cover chain of spec §3.2.1 from a
`LandCoverRequest` (`hrlc.jobs.request`): optical preprocessing and features per tile of the product grid
(`hrlc.lake.grid`) -> one classification training the model from every tile's samples -> one prediction per
tile -> the mosaic of the AOI.
"""

from __future__ import annotations

import graphlib
from dataclasses import dataclass, field
from typing import Any

from hrlc.errors import ProcessorError
from hrlc.jobs.request import LandCoverRequest
from hrlc.lake.grid import windows
from hrlc.lake.identity import ProductId


@dataclass(frozen=True)
class Task:
    id: str
    processor: str
    params: dict[str, Any]
    depends_on: tuple[str, ...] = ()


@dataclass
class Dag:
    tasks: list[Task] = field(default_factory=list)

    def add(self, task: Task) -> Task:
        if any(t.id == task.id for t in self.tasks):
            raise ValueError(f"duplicate task id {task.id}")
        self.tasks.append(task)
        return task

    def order(self) -> list[Task]:
        """Tasks in an order where every task comes after the tasks it depends on."""
        by_id = {t.id: t for t in self.tasks}
        for t in self.tasks:
            missing = set(t.depends_on) - set(by_id)
            if missing:
                raise ValueError(f"task {t.id} depends on unknown tasks {sorted(missing)}")
        sorter = graphlib.TopologicalSorter({t.id: set(t.depends_on) for t in self.tasks})
        return [by_id[i] for i in sorter.static_order()]


def default_sensor(year: int) -> str:
    """The optical sensor of a year in the spec's chain: Landsat before 2020, Sentinel-2 from 2020."""
    return "sentinel2" if year >= 2020 else "landsat"


class NoScenes(ValueError):
    """The source holds no scene of the year over the AOI, of any optical sensor (the message says what it holds)."""


def choose_sensor(request: LandCoverRequest) -> LandCoverRequest:
    """The request with its sensor: the one it names, else the first of the spec's order for its year
    (`default_sensor`, then the other) of which the source holds a scene over the AOI in the year. One search of
    one item per sensor (cheap, before anything heavy). Raises `NoScenes` naming what the source holds when it holds
    no scene of the year over the AOI, `hrlc.catalog.sources.SourceError` when the source cannot be searched."""
    from pyproj import Transformer

    from hrlc.catalog.sources import search

    if request.sensor is not None:
        return request
    year = request.year
    order = [default_sensor(year), *(s for s in ("sentinel2", "landsat") if s != default_sensor(year))]
    w, s, e, n = request.spatial_extent.bounds
    to_ll = Transformer.from_crs(request.spatial_extent.crs, "EPSG:4326", always_xy=True)
    lon0, lat0, lon1, lat1 = to_ll.transform_bounds(w, s, e, n, densify_pts=21)
    bbox = (lon0, lat0, lon1, lat1)
    for sensor in order:
        if search(request.source, sensor=sensor, bbox=bbox, datetime=f"{year}-01-01/{year}-12-31", limit=1):
            return request.model_copy(update={"sensor": sensor})
    held = []
    for sensor in order:
        items = search(request.source, sensor=sensor, bbox=bbox, datetime="1970-01-01/2100-12-31", limit=200)
        years = sorted({i.datetime.year for i in items if i.datetime is not None})
        if years:
            held.append(f"{sensor} in {', '.join(str(y) for y in years)}")
    holds = (
        f"it holds {'; '.join(held)}"
        if held
        else "it holds no Sentinel-2 or Landsat scene over the AOI at all"
    )
    raise NoScenes(f"{request.source} holds no Sentinel-2 or Landsat scene over the AOI in {year}: {holds}")


def sensor_for(request: LandCoverRequest) -> LandCoverRequest:
    """`choose_sensor` where the source can be searched; where it cannot (unreachable now, or not a STAC source)
    the request as it is (the spec's default sensor): its optical preprocessing says what is wrong with the
    source. A source that holds no scene of the year over the AOI is `NoScenes`."""
    from hrlc.catalog.sources import SourceError

    try:
        return choose_sensor(request)
    except NoScenes:
        raise
    except SourceError:
        return request


#: the processors of the land-cover chain's tasks: what a platform runs workers of (`hrlc worker --processor`)
LAND_COVER_PROCESSORS = ("optical-preprocessing", "features", "classification", "prediction", "mosaic")

MAX_TILES = 4096  # tiles of one job: 4096 Sentinel-2-sized tiles are 49 million km²; split larger areas


def land_cover_dag(request: LandCoverRequest, *, tiled: bool = True) -> Dag:
    """The optical land-cover chain of a request (one AOI and year): each of its fields goes to the params of
    the processors that use it (`composite` is the optical processor's `method`, `dilate` its `dilate_px`,
    `classifier` the classification's `method`; a training-set selection its `training_query`).

    Tiled (the default): the AOI's grid is cut by the product grid (`hrlc.lake.grid`, tiles of
    `request.tile_size` metres in the AOI's UTM zone); every tile it touches gets an optical-preprocessing and a
    features task of its own (the whole tile: tiles are shared between jobs); one classification task trains
    the model from the samples in the AOI (read from the tiles' stacks), a prediction task per tile maps the
    tile with it, and the mosaic copies the AOI out of the tiles' maps (clipped to the AOI there only).
    `tiled=False`: the chain on the AOI's own grid, one task per step (products of that grid only: the
    reference a tiled run is checked against).

    Each task's params name the identity (`hrlc.lake.identity`) of the products it reads, computed here by the
    processor that makes them, so every key of the chain says where and how its product was made; task ids
    carry the product's space (a tile id) and config. Raises ProcessorError (a ValueError's sibling) for an
    AOI that makes no grid or too many tiles, ValidationError for bad params."""
    from hrlc.processors.classification import Classification, model_id
    from hrlc.processors.classification import identity as classification_identity
    from hrlc.processors.features import Features
    from hrlc.processors.optical_preprocessing import OpticalPreprocessing, target_grid

    year, training = request.year, request.training
    sensor = request.sensor or default_sensor(year)
    dag = Dag()
    pixels = {
        "year": year,
        "sensor": sensor,
        "source": request.source,
        "method": request.composite,
        "dilate_px": request.dilate,
        "mask_snow": request.mask_snow,
    }
    aoi_params = {
        "bbox": list(request.spatial_extent.bounds),
        "bbox_crs": request.spatial_extent.crs,
        "crs": request.crs,
        "resolution": request.resolution,
        **pixels,
    }
    pre_proc, feat_proc = OpticalPreprocessing(), Features()
    aoi = pre_proc.parse_params(aoi_params)
    if tiled:
        grid = target_grid(aoi)
        tile_px = request.tile_size / aoi.pixel_size
        if (
            grid.height * grid.width / tile_px**2 > MAX_TILES
        ):  # refused before the tiles are listed: bounded work
            raise ProcessorError(
                f"the AOI touches about {grid.height * grid.width / tile_px**2:.0f} tiles of {request.tile_size} m, "
                f"more than {MAX_TILES}: split it or use larger tiles"
            )
        try:
            tiles = [w.tile for w in windows(grid, request.tile_size)]
        except ValueError as e:
            raise ProcessorError(f"the AOI cannot be cut into tiles of {request.tile_size} m: {e}") from None
        if len(tiles) > MAX_TILES:
            raise ProcessorError(
                f"the AOI touches {len(tiles)} tiles of {request.tile_size} m, more than {MAX_TILES}: split it"
            )
        pieces = [{**pixels, "tile": t.id, "resolution": aoi.pixel_size} for t in tiles]
    else:
        pieces = [aoi_params]
    stacks: list[ProductId] = []
    feat_ids: list[str] = []
    for pre_params in pieces:
        composites = pre_proc.identity(pre_proc.parse_params(pre_params))
        pre = dag.add(Task(_task_id(pre_proc.name, sensor, year, composites), pre_proc.name, pre_params))
        feat_params = {
            "year": year,
            "sensor": sensor,
            "space": composites.space,
            "composites": composites.config,
        }
        stack = feat_proc.identity(feat_proc.parse_params(feat_params))
        assert stack is not None
        stacks.append(stack)
        feat = Task(_task_id(feat_proc.name, sensor, year, stack), feat_proc.name, feat_params, (pre.id,))
        feat_ids.append(dag.add(feat).id)
    where: dict[str, Any] = (
        {
            "grid": {
                "crs": str(grid.crs),
                "transform": list(grid.transform)[:6],
                "shape": [grid.height, grid.width],
            },
            "tile_size": request.tile_size,
        }
        if tiled
        else {"space": stacks[0].space}
    )
    cls_params = {
        "year": year,
        "sensor": sensor,
        **(
            {"training": training}
            if isinstance(training, str)
            else {"training_query": training.model_dump(mode="json", exclude_unset=True)}
        ),
        "method": request.classifier,
        "seed": request.seed,
        # the validation design, where it is not the default (the task params of earlier jobs stay as they were)
        **request.model_dump(
            include={"holdout", "validation_block_m", "group_column"}, exclude_defaults=True
        ),
        **where,
        "features": stacks[0].config,
    }
    if tiled:
        cls_params["predict"] = False  # the tiles are mapped by prediction tasks, the AOI by the mosaic
    cls_proc = Classification()
    parsed = cls_proc.parse_params(cls_params)
    products = classification_identity(parsed)
    assert products is not None
    cls_id = _task_id(cls_proc.name, sensor, year, products)
    dag.add(Task(cls_id, cls_proc.name, cls_params, tuple(feat_ids)))
    if tiled:
        _map_tiles(dag, cls_id, model_id(parsed), products, cls_params, stacks, feat_ids)
    return dag


def _map_tiles(
    dag: Dag,
    cls_id: str,
    model: str,
    products: ProductId,
    cls_params: dict[str, Any],
    stacks: list[ProductId],
    feat_ids: list[str],
) -> None:
    """The fan-out and fan-in after a tiled job's training: one prediction per tile (its stack and the model),
    then the mosaic of the AOI from the tiles' maps."""
    from hrlc.processors.mosaic import Mosaic
    from hrlc.processors.prediction import Prediction

    year, sensor = cls_params["year"], cls_params["sensor"]
    pred_proc = Prediction()
    pred_ids: list[str] = []
    maps: ProductId | None = None
    for stack, feat_id in zip(stacks, feat_ids, strict=True):
        params = {
            "year": year,
            "sensor": sensor,
            "tile": stack.space,
            "features": stack.config,
            "model_id": model,
        }
        maps = pred_proc.identity(pred_proc.parse_params(params))
        task = Task(_task_id(pred_proc.name, sensor, year, maps), pred_proc.name, params, (cls_id, feat_id))
        pred_ids.append(dag.add(task).id)
    assert maps is not None
    mosaic_params = {
        "year": year,
        "sensor": sensor,
        "grid": cls_params["grid"],
        "tile_size": cls_params["tile_size"],
        "predictions": maps.config,
        "classification": products.config,
        "model_id": model,
    }
    dag.add(Task(_task_id(Mosaic.name, sensor, year, products), Mosaic.name, mosaic_params, tuple(pred_ids)))


def target_pixels(dag: Dag) -> float:
    """Pixels of the target grids of a land-cover DAG (0 for other DAGs): what a job's budget counts. The grids
    are those the optical preprocessing will make (`target_grid`: every tile the AOI touches, whole), so the
    budget counts what will be computed. ProcessorError if a grid cannot be made."""
    from hrlc.processors.optical_preprocessing import OpticalPreprocessing, target_grid

    proc = OpticalPreprocessing()
    pixels = 0.0
    for task in dag.tasks:
        if task.processor == OpticalPreprocessing.name:
            height, width = target_grid(proc.parse_params(task.params)).shape
            pixels += float(height) * float(width)
    return pixels


def _task_id(processor: str, sensor: str, year: int, ident: ProductId) -> str:
    return f"{processor}:{sensor}:{year}:{ident.space}:{ident.config[:8]}"


def output_keys(dag: Dag) -> list[str]:
    """Every lake key the DAG's tasks write, in task order (each processor's `outputs`)."""
    from hrlc.processors.base import registry

    procs = registry()
    keys: list[str] = []
    for task in dag.order():
        proc = procs[task.processor]()
        keys += proc.outputs(proc.parse_params(task.params))
    return keys


def product_key(dag: Dag, family: str) -> str:
    """The key of the one final product of `family` (`hrlc.lake.layout`) the DAG writes, e.g. the AOI's class
    map: of the tasks writing that family, the one no other such task depends on (a tiled job's mosaic, not the
    tiles' maps it copies)."""
    from hrlc.lake import layout
    from hrlc.processors.base import registry

    procs = registry()
    writes: dict[str, list[str]] = {}
    for task in dag.tasks:
        proc = procs[task.processor]()
        keys = [k for k in proc.outputs(proc.parse_params(task.params)) if layout.parse(k).family == family]
        if keys:
            writes[task.id] = keys
    by_id = {t.id: t for t in dag.tasks}

    def upstream(task_id: str) -> set[str]:
        seen: set[str] = set()
        todo = list(by_id[task_id].depends_on)
        while todo:
            t = todo.pop()
            if t not in seen:
                seen.add(t)
                todo += by_id[t].depends_on
        return seen

    feeding = set().union(*(upstream(t) for t in writes)) if writes else set()
    found = [k for t, keys in writes.items() if t not in feeding for k in keys]
    if len(found) != 1:
        raise KeyError(f"the DAG writes {len(found)} final products of {family!r}, not one")
    return found[0]
