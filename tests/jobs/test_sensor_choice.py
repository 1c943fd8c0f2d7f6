"""The sensor of a request that names none is the one the source holds over the AOI in the year (issue 14: for
2019 the spec's default, Landsat, was chosen although the source held only Sentinel-2 scenes of it, and the run
failed after starting); a year the source holds nothing of is refused naming what it holds; the CLI and the
planner both decide so."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from hrlc import sample
from hrlc.cli import app
from hrlc.jobs.dag import NoScenes, choose_sensor, land_cover_dag, sensor_for
from hrlc.jobs.planner import PlanError, plan
from hrlc.jobs.request import BoundingBox, LandCoverRequest


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> sample.SampleRepository:
    """Sentinel-2 scenes of 2019, Landsat scenes of 2017, over one small area."""
    return sample.generate(
        tmp_path_factory.mktemp("external"), size=64, year=2019, landsat_year=2017, every=6
    )


def _request(repo: sample.SampleRepository, year: int, **over: object) -> LandCoverRequest:
    w, s, e, n = repo.bbox
    return LandCoverRequest.model_validate(
        {
            "spatial_extent": BoundingBox.of((w, s, e, n)),
            "year": year,
            "source": str(repo.catalog),
            "training": str(repo.training_points),
            **over,
        }
    )


def test_the_sensor_the_source_holds_for_the_year(repo: sample.SampleRepository) -> None:
    assert choose_sensor(_request(repo, 2019)).sensor == "sentinel2"  # the spec's default for 2019 is Landsat
    assert choose_sensor(_request(repo, 2017)).sensor == "landsat"
    assert choose_sensor(_request(repo, 2019, sensor="landsat")).sensor == "landsat"  # named: as it is
    with pytest.raises(NoScenes, match=r"in 2016: it holds landsat in 2017; sentinel2 in 2019"):
        choose_sensor(_request(repo, 2016))
    far = _request(repo, 2019, spatial_extent=BoundingBox.of((100.0, 10.0, 100.1, 10.1)))
    with pytest.raises(NoScenes, match="no Sentinel-2 or Landsat scene over the AOI at all"):
        choose_sensor(far)
    # a source that cannot be searched now: the planner keeps the default, the task will say what is wrong
    gone = _request(repo, 2019, source=str(repo.catalog.parent / "no-such-catalog.json"))
    assert sensor_for(gone).sensor is None and land_cover_dag(sensor_for(gone)) is not None


def test_the_planner_and_the_cli_choose_alike(repo: sample.SampleRepository, tmp_path: Path) -> None:
    w, s, e, n = repo.bbox
    args = {
        "spatial_extent": {"west": w, "south": s, "east": e, "north": n},
        "year": 2016,
        "source": str(repo.catalog),
        "training": str(repo.training_points),
    }
    graph = {"process_graph": {"lc": {"process_id": "hrlc_land_cover", "arguments": args, "result": True}}}
    with pytest.raises(PlanError, match="it holds landsat in 2017; sentinel2 in 2019"):
        plan(graph)
    args["year"] = 2019
    assert {t.params.get("sensor") for t in plan(graph).tasks} >= {"sentinel2"}

    cli = ["run", "--aoi", f"{w},{s},{e},{n}", "--year", "2016", "--source", str(repo.catalog)]
    cli += ["--training", str(repo.training_points), "--workdir", str(tmp_path / "w")]
    result = CliRunner().invoke(app, cli)
    assert result.exit_code == 2, result.output
    [error] = [ln for ln in result.output.splitlines() if ln.startswith("error:")]
    assert (
        "holds no Sentinel-2 or Landsat scene over the AOI in 2016: it holds landsat in 2017; sentinel2 in 2019"
        in error
    )
