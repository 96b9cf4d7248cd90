import os

import pytest
import torch

# Several test processes may share two cores; one thread each keeps runs predictable.
torch.set_num_threads(1)
os.environ.setdefault("MPLBACKEND", "Agg")

DATA_DIR = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data")


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield


def cuda_available() -> bool:
    return torch.cuda.is_available()
