"""`hrlc demo`: the whole optical land-cover chain on a synthetic repository with a known answer.

Generates the synthetic external repository (Sentinel-2 L2A-like scenes every 5 days with 30-50 % clouds,
a truth map, training points), runs optical preprocessing -> features -> classification with the in-process
runner into a Data Lake, compares the class map with the truth pixel by pixel (the map's true accuracy), and
sets beside it the two estimates a user without a truth map gets: the chain's own (area-weighted, from held-out
spatial blocks of the training samples) and an independent one (`hrlc assess`: a stratified random sample of
the truth map). Writes a quicklook PNG of map and truth and `demo-report.json`.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import rasterio
from rich.console import Console

from hrlc import sample
from hrlc.assess import assess_map
from hrlc.backends import Backends
from hrlc.chain.classification import accuracy_report
from hrlc.jobs.dag import land_cover_dag, product_key
from hrlc.jobs.request import MIN_TILE_M, BoundingBox, LandCoverRequest
from hrlc.jobs.runner import InProcessRunner
from hrlc.lake.store import LocalStore, Store, open_store
from hrlc.products.quicklook import write_quicklook
from hrlc.settings import Settings

#: map pixels per class of the demo's independent assessment against the truth map (`hrlc assess`)
ASSESS_PER_CLASS = 100


def lake_for(workdir: Path, settings: Settings) -> Store:
    """The Data Lake of a run: `HRLC_STORE` when the settings set it, else `DIR/lake`."""
    if "store" in settings.model_fields_set and settings.store:
        return open_store(settings.store, settings)
    return LocalStore(workdir / "lake", settings)


def run_demo(
    workdir: Path,
    *,
    size: int = 1024,
    year: int = 2021,
    seed: int = 42,
    classifier: str = LandCoverRequest.model_fields["classifier"].default,
    console: Console | None = None,
    settings: Settings,
) -> dict[str, Any]:
    """Run the demo in `workdir` on the back ends of `settings` (`Backends.from_settings`; the lake is
    `HRLC_STORE`, else `workdir/lake`). Its DAG reads the training samples from a file and asks for no
    ancillary layer, so the demo needs no database (a core install)."""
    console = console or Console(stderr=True)
    t0 = time.perf_counter()
    workdir = workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    # a misconfigured lake or catalogue fails now, not after generating
    backends = Backends.from_settings(settings, store=lake_for(workdir, settings))
    try:
        return _run(workdir, backends, size, year, seed, classifier, console, t0)
    finally:
        backends.close()


def demo_tile_size(repo: sample.SampleRepository) -> int:
    """Tiles of half the repository's side (metres, a whole number of pixels): the demo's AOI is 2 x 2 tiles of
    the product grid (exactly, for sizes that divide 12 288 px: `hrlc.sample.grid`), so it runs the tiled chain
    and its mosaic."""
    pixel = int(repo.transform.a)
    return max(-(-MIN_TILE_M // pixel), -(-repo.size // 2)) * pixel


def _run(
    workdir: Path,
    backends: Backends,
    size: int,
    year: int,
    seed: int,
    classifier: str,
    console: Console,
    t0: float,
) -> dict[str, Any]:
    store = backends.store

    with console.status(f"generating the synthetic repository ({size}x{size} px, {year})"):
        repo = sample.generate(workdir / "external", size=size, year=year, seed=seed)
    t_sample = time.perf_counter() - t0
    console.log(f"synthetic repository ready in {t_sample:.1f} s: {repo.catalog}")

    left = repo.transform.c
    top = repo.transform.f
    res = repo.transform.a
    bbox = (left, top - res * repo.size, left + res * repo.size, top)
    request = LandCoverRequest.model_validate(
        {
            "spatial_extent": BoundingBox.of(bbox, f"EPSG:{repo.epsg}"),
            "crs": f"EPSG:{repo.epsg}",
            "resolution": res,
            "year": year,
            "source": str(repo.catalog),
            "training": str(repo.training_points),
            "sensor": "sentinel2",
            "classifier": classifier,
            "seed": seed,
            "tile_size": demo_tile_size(repo),
        }
    )
    dag = land_cover_dag(request)
    runner = InProcessRunner(
        store, backends.catalog, training=backends.training, ancillary=backends.ancillary, console=console
    )
    result = runner.run(dag)

    map_key, acc_key = product_key(dag, "class-map"), product_key(dag, "accuracy-report")
    assessed_key = product_key(dag, "map-accuracy")
    with store.reading(map_key) as path, rasterio.open(path) as src:  # /vsis3/ range reads on S3
        predicted = src.read(1)
    with rasterio.open(repo.truth_map) as src:
        truth = src.read(1)
    valid = (predicted != 0) & (truth != 0)
    report = accuracy_report(truth[valid], predicted[valid])
    heldout = json.loads(store.read_bytes(acc_key))
    estimated = json.loads(store.read_bytes(assessed_key))
    with store.reading(map_key) as path:  # an independent probability sample of the truth, as a user would
        sampled = assess_map(path, repo.truth_map, n_per_class=ASSESS_PER_CLASS, seed=seed)

    quicklook = write_quicklook(
        workdir / "quicklook.png",
        [predicted, truth],
        [f"hrlc class map {year} (OA {report['overall_accuracy']:.3f})", "truth"],
        suptitle="hrlc demo: synthetic Sentinel-2 year, monthly median composites, " + classifier,
    )
    out = {
        "class_map": store.href(map_key),
        "truth_map": str(repo.truth_map),
        "quicklook": str(quicklook),
        "overall_accuracy": report["overall_accuracy"],
        "kappa": report["kappa"],
        "per_class_f1": report["per_class_f1"],
        "confusion_matrix": report["confusion_matrix"],
        "labels": report["labels"],
        "valid_fraction": float(valid.mean()),
        "estimated_accuracy": {
            "from": "held-out training samples, " + estimated["validation"]["summary"],
            **estimated["overall_accuracy"],
            "report": store.href(assessed_key),
        },
        "assessed_accuracy": {
            "from": f"stratified random sample of the truth map, {ASSESS_PER_CLASS} per map class",
            **sampled["overall_accuracy"],
            "n_samples": sampled["n_samples"],
        },
        "heldout_sample_accuracy": heldout["overall_accuracy"],
        "heldout_kappa": heldout["kappa"],
        "items": result.items,
        "size": size,
        "year": year,
        "seed": seed,
        "classifier": classifier,
        "tasks": {t.task_id: {"seconds": round(t.seconds, 2), "skipped": t.skipped} for t in result.tasks},
        "sample_seconds": round(t_sample, 2),
        "elapsed_s": round(time.perf_counter() - t0, 2),
    }
    (workdir / "demo-report.json").write_text(json.dumps(out, indent=1))
    return out
