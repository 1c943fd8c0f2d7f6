"""One small synthetic repository shared by the tests of `hrlc.sample` (generated once per session)."""

from __future__ import annotations

import pytest

from hrlc import sample

SIZE, SEED, YEAR, LANDSAT_YEAR = 128, 42, 2021, 2018  # test_sample.py relies on these values


@pytest.fixture(scope="session")
def repo(tmp_path_factory: pytest.TempPathFactory) -> sample.SampleRepository:
    return sample.generate(
        tmp_path_factory.mktemp("sample"), size=SIZE, year=YEAR, landsat_year=LANDSAT_YEAR, seed=SEED
    )
