import os

import pytest
import torch

# One thread: steadier timings and no oversubscription on CI's 2 cores (see PERFORMANCE.md).
torch.set_num_threads(1)


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def mnist_dir():
    """The shared MNIST folder, or skip."""
    here = os.path.dirname(__file__)
    path = os.environ.get("SKAE_MNIST_DIR", os.path.join(here, "..", "..", "shared", "data", "mnist"))
    if not os.path.exists(os.path.join(path, "t10k-images-idx3-ubyte.gz")):
        pytest.skip("MNIST files not found (set SKAE_MNIST_DIR)")
    return path
