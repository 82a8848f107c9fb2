import pytest
import torch

import bench.methods  # noqa: F401  (fills the registry)


@pytest.fixture(autouse=True)
def _seeded() -> None:
    torch.manual_seed(0)
