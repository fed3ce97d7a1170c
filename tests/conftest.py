import os

import pytest
import torch
from skorch.callbacks import Callback

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


class SeeLr(Callback):
    """Records each phase's learning rate at every epoch's start: ``seen[epoch][phase]``."""

    def initialize(self):
        self.seen = []
        return self

    def on_epoch_begin(self, net, **kwargs):
        self.seen.append({p: o.param_groups[0]["lr"] for p, o in net.phase_optimizers().items()})


@pytest.fixture
def see_lr():
    """A callback recording the learning rate of every phase at each epoch's start."""
    return SeeLr()


class WeightsPerEpoch(Callback):
    """Copies of the module's state before training (``states[0]``) and after each epoch
    (``states[e]``); ``part(e, name)`` flattens one submodule's entries, e.g. ``"decoder"``."""

    def on_train_begin(self, net, **kwargs):
        self.states = [self._copy(net)]

    def on_epoch_end(self, net, **kwargs):
        self.states.append(self._copy(net))

    @staticmethod
    def _copy(net):
        return {k: v.detach().clone() for k, v in net.module_.state_dict().items()}

    def part(self, epoch, name):
        return torch.cat([v.flatten() for k, v in self.states[epoch].items()
                          if k.startswith(name + ".")])


@pytest.fixture
def weights_per_epoch():
    """A callback copying the module's state before training and after each epoch (estimators
    clone their callbacks at each fit: read the fitted net's copy, ``callbacks_``)."""
    return WeightsPerEpoch()
