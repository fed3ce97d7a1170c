"""The multi-phase training engine (:mod:`skae._training`) and skorch integration."""

import warnings

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from skorch.callbacks import Callback, EarlyStopping, LRScheduler
from torch import nn
from torch.utils.data import DataLoader

from skae import AAEClassifier, AutoEncoder, DivergenceError
from skae._training import (
    LR_SCHEDULES,
    PhasedModel,
    SemiSupervisedDataset,
    TensorBatchDataset,
    TrainingNet,
    _pass_through,
    lr_factor,
)


class TwoPhases(PhasedModel):
    """Two phases with disjoint parameters, each loss depending on both."""

    phases = ("a", "b")

    def __init__(self, diverge=None):
        super().__init__()
        self.wa = nn.Parameter(torch.tensor([0.5, -1.0, 2.0]))
        self.wb = nn.Parameter(torch.tensor([1.0, 0.3, -0.7]))
        self.diverge = diverge
        self.weight_a = 1.0  # a scalar setting of the model, read by phase ``a``

    def phase_parameters(self, phase):
        return [self.wa] if phase == "a" else [self.wb]

    def loss_a(self, batch):
        x = batch[0]
        return self.weight_a * ((x @ self.wa) - 0.5 * (x @ self.wb)).square().mean()

    def loss_b(self, batch):
        x = batch[0]
        loss = ((x @ self.wb) + self.wa.sum()).square().mean()
        return loss / 0.0 if self.diverge == "b" else loss


def _data(n=10):
    return torch.randn(n, 3, generator=torch.Generator().manual_seed(0))


def _net(model, net_cls=TrainingNet, **kwargs):
    kwargs = {"optimizer": torch.optim.SGD, "lr": 0.1, "max_epochs": 1, "batch_size": 10,
              "iterator_train__shuffle": False, "verbose": 0, **kwargs}
    return net_cls(model, **kwargs)


def test_each_phase_optimizer_holds_only_its_parameters():
    model = TwoPhases()
    net = _net(model).initialize()
    optimizers = net.phase_optimizers()
    assert list(optimizers) == ["a", "b"]
    assert [p for g in optimizers["a"].param_groups for p in g["params"]] == [model.wa]
    assert [p for g in optimizers["b"].param_groups for p in g["params"]] == [model.wb]


def test_step_runs_phases_in_order_each_on_its_own_loss_and_parameters():
    x = _data()
    model = TwoPhases()
    wa0, wb0 = model.wa.detach().clone(), model.wb.detach().clone()
    _net(model).fit(TensorBatchDataset(x), None)  # one epoch, one batch, plain SGD

    # expected: phase a steps wa on loss_a; then phase b steps wb on loss_b at the new wa
    wa, wb = wa0.clone().requires_grad_(), wb0.clone().requires_grad_()
    ref = TwoPhases()
    ref.wa, ref.wb = nn.Parameter(wa), nn.Parameter(wb)
    (grad_a,) = torch.autograd.grad(ref.loss_a((x,)), ref.wa)
    wa1 = wa0 - 0.1 * grad_a
    ref.wa = nn.Parameter(wa1.clone())
    (grad_b,) = torch.autograd.grad(ref.loss_b((x,)), ref.wb)
    wb1 = wb0 - 0.1 * grad_b

    torch.testing.assert_close(model.wa.detach(), wa1)
    torch.testing.assert_close(model.wb.detach(), wb1)


def test_inactive_phase_leaves_its_parameters_untouched():
    model = TwoPhases()
    model.active_phases = ("a",)
    wb0 = model.wb.detach().clone()
    wa0 = model.wa.detach().clone()
    _net(model, max_epochs=2).fit(TensorBatchDataset(_data()), None)
    assert torch.equal(model.wb.detach(), wb0)  # loss_a depends on wb, yet wb is not stepped
    assert not torch.equal(model.wa.detach(), wa0)


def test_history_has_phase_losses_per_epoch():
    net = _net(TwoPhases(), max_epochs=3, batch_size=4).fit(TensorBatchDataset(_data()), None)
    h = net.history
    assert len(h) == 3
    for key in ("a_loss", "b_loss", "train_loss"):
        assert len(h[:, key]) == 3
        assert np.all(np.isfinite(h[:, key]))
    assert h[:, "train_batch_count"] == [3, 3, 3]


def test_history_has_phase_losses_per_batch():
    net = _net(TwoPhases(), max_epochs=2, batch_size=4).fit(TensorBatchDataset(_data()), None)
    for epoch in net.history:
        batches = epoch["batches"]
        assert len(batches) == 3  # 10 rows by 4
        assert [b["train_batch_size"] for b in batches] == [4, 4, 2]
        for b in batches:
            assert {"a_loss", "b_loss", "train_loss"} <= set(b)
            assert b["train_loss"] == b["a_loss"]
        # the epoch value is the row-weighted mean of the batch values
        a = [b["a_loss"] for b in batches]
        assert epoch["a_loss"] == pytest.approx(np.average(a, weights=[4, 4, 2]))


def test_train_loss_is_the_first_phase_loss_per_epoch():
    net = _net(TwoPhases(), max_epochs=3, batch_size=4).fit(TensorBatchDataset(_data()), None)
    assert net.history[:, "train_loss"] == pytest.approx(net.history[:, "a_loss"])


def test_divergence_error_names_the_phase():
    with pytest.raises(DivergenceError, match=r"the 'b' loss became (inf|nan) in epoch 1"):
        _net(TwoPhases(diverge="b")).fit(TensorBatchDataset(_data()), None)
    assert issubclass(DivergenceError, FloatingPointError)


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X / 16.0, y


def test_autoencoder_divergence_on_huge_values_is_reported(digits):
    X, _ = digits
    with pytest.raises(DivergenceError, match=r"'recon' loss became inf.*lower `lr`, scale"):
        AutoEncoder(2, hidden_layer_sizes=(8,), max_epochs=2, random_state=0).fit(X * 1e25)


def test_autoencoder_divergence_on_huge_learning_rate_is_reported(digits):
    X, _ = digits
    with pytest.raises(DivergenceError, match="'recon' loss"):
        AutoEncoder(2, hidden_layer_sizes=(8,), lr=1e10, max_epochs=3, random_state=0).fit(X)


# --- datasets --------------------------------------------------------------------------------
def test_semi_supervised_dataset_cycles_all_labeled_rows():
    n, batch = 50, 8
    X = torch.arange(n, dtype=torch.float32)[:, None]
    lab = torch.tensor([3, 7, 11, 20, 21, 33, 40])
    y_lab = torch.arange(len(lab))  # the position of each labeled row
    ds = SemiSupervisedDataset(X, X[lab], y_lab, labeled_batch_size=batch, seed=0)
    assert len(ds) == n
    loader = DataLoader(ds, batch_size=batch, shuffle=True, collate_fn=_pass_through)
    seen_x, seen_y = [], []
    for _ in range(3):  # epochs
        for x, x_lab, y in loader:
            assert len(x_lab) == len(y) == batch
            assert torch.equal(x_lab, X[lab][y])  # rows and labels stay paired
            seen_x.append(x)
            seen_y.append(y)
        # one epoch = every row once
        epoch = torch.cat(seen_x[-len(loader):])
        assert sorted(epoch[:, 0].tolist()) == list(range(n))
    draws = torch.cat(seen_y)
    k = len(lab)
    for start in range(0, len(draws) - k + 1, k):  # every labeled row once per cycle
        assert sorted(draws[start:start + k].tolist()) == list(range(k))


def test_semi_supervised_dataset_is_seeded():
    X = torch.randn(30, 2)

    def draws(seed):
        ds = SemiSupervisedDataset(X, X[:6], torch.arange(6), 4, seed=seed)
        return torch.cat([ds.__getitems__([0])[2] for _ in range(6)])

    assert torch.equal(draws(1), draws(1))
    assert not torch.equal(draws(1), draws(2))


def test_tensor_batch_dataset_fetches_whole_batches():
    a, b = torch.arange(10), torch.arange(10) * 2
    ds = TensorBatchDataset(a, b)
    assert len(ds) == 10
    xa, xb = ds.__getitems__([4, 1, 7])
    assert xa.tolist() == [4, 1, 7] and xb.tolist() == [8, 2, 14]


# --- skorch callbacks ------------------------------------------------------------------------
class EpochCounter(Callback):
    def __init__(self, tag="x"):
        self.tag = tag

    def initialize(self):
        self.epochs_ = 0
        return self

    def on_epoch_end(self, net, **kwargs):
        self.epochs_ += 1


def test_early_stopping_on_train_loss_stops_early(digits):
    X, _ = digits
    stopper = EarlyStopping(monitor="train_loss", patience=2, threshold=0.5, sink=lambda *a: None)
    ae = AutoEncoder(2, hidden_layer_sizes=(8,), max_epochs=40, random_state=0,
                     callbacks=[stopper]).fit(X)
    assert 3 <= ae.n_iter_ < 40
    assert len(ae.net_.history) == ae.n_iter_
    assert stopper.misses_ == 0  # the user's instance was cloned, not used


def test_user_callbacks_are_cloned_not_mutated(digits):
    X, _ = digits
    counter = EpochCounter(tag="mine")
    ae = AutoEncoder(2, hidden_layer_sizes=(8,), max_epochs=3, random_state=0,
                     callbacks=[counter])
    ae.fit(X[:200])
    assert not hasattr(counter, "epochs_")
    assert ae.callbacks[0] is counter  # the parameter itself is left alone
    used = [cb for _, cb in ae.net_.callbacks_ if isinstance(cb, EpochCounter)]
    assert len(used) == 1 and used[0] is not counter
    assert used[0].epochs_ == 3 and used[0].tag == "mine"
    ae.fit(X[:200])  # a second fit starts from a fresh clone
    used = [cb for _, cb in ae.net_.callbacks_ if isinstance(cb, EpochCounter)]
    assert used[0].epochs_ == 3


def test_lr_scheduler_callback_schedules_the_learning_rate(digits):
    X, _ = digits
    ae = AutoEncoder(2, hidden_layer_sizes=(8,), lr=1e-2, max_epochs=3, random_state=0,
                     callbacks=[LRScheduler(policy="StepLR", step_size=1, gamma=0.5)])
    ae.fit(X[:200])
    lr = ae.net_.optimizer_recon_.param_groups[0]["lr"]
    assert lr == pytest.approx(1e-2 * 0.5**3)
    assert ae.net_.optimizer_ is ae.net_.optimizer_recon_


def test_lr_scheduler_schedules_every_phase_of_a_multi_phase_net():
    net = _net(TwoPhases(), max_epochs=3, lr=0.1,
               callbacks=[LRScheduler(policy="StepLR", step_size=1, gamma=0.5)])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "lr_scheduler.step() before optimizer.step()"
        net.fit(TensorBatchDataset(_data()), None)
    for optimizer in net.phase_optimizers().values():
        assert optimizer.param_groups[0]["lr"] == pytest.approx(0.1 * 0.5**3)
    assert [g["lr"] for g in net.optimizer_.param_groups] == pytest.approx([0.0125, 0.0125])


def test_lr_factor_is_constant_then_decays_linearly_over_the_second_half():
    assert [lr_factor("constant", e, 4) for e in range(1, 5)] == [1.0] * 4
    assert [lr_factor("linear", e, 4) for e in range(1, 5)] == [1.0, 1.0, 1.0, 0.5]
    assert [lr_factor("linear", e, 5) for e in range(1, 6)] == pytest.approx(
        [1.0, 1.0, 1.0, 2 / 3, 1 / 3])
    assert [lr_factor("linear", e, 20) for e in range(1, 21)] == pytest.approx(
        [1.0] * 11 + [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1])
    assert lr_factor("linear", 1, 1) == 1.0
    assert LR_SCHEDULES == ("constant", "linear")
    with pytest.raises(ValueError, match="lr_schedule must be one of"):
        lr_factor("cosine", 1, 4)


def test_linear_lr_schedule_decays_each_fit_of_every_phase(see_lr):
    net = _net(TwoPhases(), max_epochs=4, lr=0.1, lr_schedule="linear", callbacks=[see_lr])
    net.fit(TensorBatchDataset(_data()), None)
    net.partial_fit(TensorBatchDataset(_data()), None, epochs=5)  # its own schedule: 5 epochs
    seen = [lrs["a"] for lrs in see_lr.seen]
    assert all(lrs["b"] == lrs["a"] for lrs in see_lr.seen)
    np.testing.assert_allclose(seen, [0.1, 0.1, 0.1, 0.05, 0.1, 0.1, 0.1, 0.2 / 3, 0.1 / 3])


def test_linear_lr_schedule_scales_each_phase_from_its_own_rate(see_lr):
    class Scaled(TwoPhases):
        def phase_optimizer_kwargs(self, phase):
            return {"lr_scale": 0.5} if phase == "b" else {}

    net = _net(Scaled(), max_epochs=5, lr=0.1, lr_schedule="linear", callbacks=[see_lr])
    net.fit(TensorBatchDataset(_data()), None)
    np.testing.assert_allclose([[lrs["a"], lrs["b"]] for lrs in see_lr.seen],
                               [[0.1, 0.05]] * 3 + [[0.2 / 3, 0.1 / 3], [0.1 / 3, 0.05 / 3]])


def test_phase_lr_scales_puts_some_parameters_of_a_phase_in_a_group_of_their_own(see_lr):
    class OneScaled(TwoPhases):
        phases = ("ab", "b")

        def phase_parameters(self, phase):
            return [self.wa, self.wb] if phase == "ab" else [self.wb]

        def phase_optimizer_kwargs(self, phase):
            return {"lr_scale": 0.5} if phase == "ab" else {}

        def phase_lr_scales(self, phase):
            return [([self.wa], 0.1)] if phase == "ab" else ()

        def loss_ab(self, batch):
            return self.loss_a(batch)

    model = OneScaled()
    net = _net(model, max_epochs=5, lr=0.1, lr_schedule="linear", callbacks=[see_lr])
    net.fit(TensorBatchDataset(_data()), None)
    groups = net.optimizer_ab_.param_groups
    assert [g["params"] for g in groups] == [[model.wa], [model.wb]]
    # the phase's own scale, then the parameter's, and the schedule scales both groups alike
    assert [g["base_lr"] for g in groups] == pytest.approx([0.005, 0.05])
    np.testing.assert_allclose([lrs["ab"] for lrs in see_lr.seen],  # the first group's, wa
                               [0.005] * 3 + [0.01 / 3, 0.005 / 3])
    assert groups[0]["lr"] / groups[1]["lr"] == pytest.approx(0.1)
    assert [g["params"] for g in net.optimizer_b_.param_groups] == [[model.wb]]


def test_linear_lr_schedule_refuses_an_lr_scheduler_callback(digits):
    scheduler = LRScheduler(torch.optim.lr_scheduler.StepLR, step_size=1)
    net = _net(TwoPhases(), max_epochs=2, lr=0.1, lr_schedule="linear", callbacks=[scheduler])
    with pytest.raises(ValueError, match="lr_schedule='linear' sets the learning rate.*"
                       "LRScheduler.*lr_schedule='constant'"):
        net.fit(TensorBatchDataset(_data()), None)
    X, y = digits  # an estimator whose default is "linear" says the same
    with pytest.raises(ValueError, match="pass lr_schedule='constant'"):
        AAEClassifier(hidden_layer_sizes=(8,), discriminator_hidden_sizes=(8,), max_epochs=1,
                      callbacks=[scheduler]).fit(X[:100], y[:100])
    constant = _net(TwoPhases(), max_epochs=2, lr=0.1, callbacks=[scheduler])
    constant.fit(TensorBatchDataset(_data()), None)  # the callback's own schedule
    assert constant.optimizer_a_.param_groups[0]["lr"] == pytest.approx(0.1 * 0.1 ** 2)


def test_lr_schedule_parameter_schedules_an_estimator(digits, see_lr):
    X, _ = digits
    kwargs = {"hidden_layer_sizes": (8,), "lr": 1e-2, "max_epochs": 4, "random_state": 0,
              "callbacks": [see_lr]}
    ae = AutoEncoder(2, lr_schedule="linear", **kwargs).fit(X[:200])
    seen = [lrs["recon"] for lrs in dict(ae.net_.callbacks_)["SeeLr"].seen]
    assert seen == pytest.approx([1e-2, 1e-2, 1e-2, 5e-3])
    constant = AutoEncoder(2, **kwargs).fit(X[:200])
    assert [lrs["recon"] for lrs in dict(constant.net_.callbacks_)["SeeLr"].seen] == [1e-2] * 4
    # the same first half, then smaller steps: a different network
    assert not np.allclose(ae.transform(X[:20]), constant.transform(X[:20]))


class _EpochSchedule(TwoPhases):
    """Sets ``weight_a`` at each epoch's start: 1 for the first two epochs, then 0.5."""

    def begin_epoch(self, epoch):
        self.epochs_begun = [*getattr(self, "epochs_begun", []), epoch]
        self.weight_a = 1.0 if epoch <= 2 else 0.5


class _SeeWeight(Callback):
    def initialize(self):
        self.seen = []
        return self

    def on_epoch_begin(self, net, **kwargs):
        self.seen.append((len(net.history), net.module_.weight_a))


def test_the_model_begins_each_epoch_before_the_callbacks():
    model = _EpochSchedule()
    net = _net(model, max_epochs=3, callbacks=[_SeeWeight()])
    net.fit(TensorBatchDataset(_data()), None)
    net.partial_fit(TensorBatchDataset(_data()), None, epochs=1)  # goes on counting
    assert model.epochs_begun == [1, 2, 3, 4]
    seen = dict(net.callbacks_)["_SeeWeight"].seen
    assert seen == [(1, 1.0), (2, 1.0), (3, 0.5), (4, 0.5)]
    net.fit(TensorBatchDataset(_data()), None)  # a new fit: a new history, from epoch 1
    assert model.epochs_begun[4:] == [1, 2, 3]


class _EpochCheck(TwoPhases):
    """Ends each epoch with a look at the training rows: their count and the epoch's ``wa``."""

    def end_epoch(self, dataset):
        self.seen = [*getattr(self, "seen", []), len(dataset)]
        return {"rows_checked": len(dataset), "wa_sum": float(self.wa.sum())}


class _SeeRecord(Callback):
    def initialize(self):
        self.seen = []
        return self

    def on_epoch_end(self, net, **kwargs):
        self.seen.append(net.history[-1, "rows_checked"])


def test_the_model_ends_each_epoch_on_the_training_rows_before_the_callbacks():
    model = _EpochCheck()
    net = _net(model, max_epochs=3, callbacks=[_SeeRecord()])
    net.fit(TensorBatchDataset(_data(12)), None)
    assert model.seen == [12, 12, 12]
    assert net.history[:, "rows_checked"] == [12, 12, 12]
    assert net.history[-1, "wa_sum"] == pytest.approx(float(model.wa.sum()))
    assert dict(net.callbacks_)["_SeeRecord"].seen == [12, 12, 12]
    # a model without the hook records nothing more
    plain = _net(TwoPhases(), max_epochs=2)
    plain.fit(TensorBatchDataset(_data(12)), None)
    assert "rows_checked" not in plain.history[-1]


class _FitEnd(TwoPhases):
    """Counts the fits ended; ``fail_at_epoch``: raise at the start of that epoch."""

    fail_at_epoch = None

    def begin_epoch(self, epoch):
        if epoch == self.fail_at_epoch:
            raise RuntimeError("failed on purpose")

    def end_fit(self):
        self.fits_ended = getattr(self, "fits_ended", 0) + 1


def test_the_model_ends_every_fit_however_it_ends():
    model = _FitEnd()
    net = _net(model, max_epochs=2)
    net.fit(TensorBatchDataset(_data()), None)
    net.partial_fit(TensorBatchDataset(_data()), None, epochs=1)
    assert model.fits_ended == 2
    model.fail_at_epoch = 4
    with pytest.raises(RuntimeError, match="on purpose"):
        net.partial_fit(TensorBatchDataset(_data()), None, epochs=1)
    assert model.fits_ended == 3


def test_an_uninitialized_net_has_no_optimizer():
    with pytest.raises(AttributeError, match="not initialized"):
        _net(TwoPhases()).optimizer_


def test_cuda_graphs_are_ignored_on_the_cpu(digits):
    X, _ = digits
    codes = []
    for cuda_graphs in (True, False):
        ae = AutoEncoder(2, hidden_layer_sizes=(8,), max_epochs=2, random_state=0,
                         cuda_graphs=cuda_graphs).fit(X[:200])
        assert not ae.net_.optimizer_recon_.defaults["capturable"]
        assert "_cuda_graph_steps" not in ae.net_.__dict__
        codes.append(ae.transform(X[:50]))
    np.testing.assert_array_equal(*codes)


def test_hyperparameters_are_the_optimizers_scalar_settings():
    net = _net(TwoPhases()).initialize()
    before = net._hyperparameters()
    assert ("lr", 0.1) in before and not any(key == "params" for key, _ in before)
    net.optimizer_a_.param_groups[0]["lr"] = 0.05
    assert net._hyperparameters() != before


# --- CUDA-graph bookkeeping, on the CPU: torch.cuda's graph API replaced by a stand-in whose
# "recording" runs nothing and whose replay runs the recorded step on the static inputs, writing
# its losses into the recorded outputs (what a real graph does). A net must then train exactly
# as without graphs: the same steps, each once.
class _FakeGraph:
    recording = None

    def replay(self):
        result = TrainingNet._step(self.net, self.inputs)
        for phase, loss in result["phase_losses"].items():
            self.outputs[phase].copy_(loss)


class _FakeGraphNet(TrainingNet):
    def _graphs_enabled(self):
        return True

    def _step(self, batch):
        graph = _FakeGraph.recording
        if graph is None:
            self.eager_steps = getattr(self, "eager_steps", 0) + 1
            return super()._step(batch)
        graph.net, graph.inputs = self, batch
        graph.outputs = {p: torch.zeros(()) for p in self.module_.active_phases}
        self.recordings = getattr(self, "recordings", 0) + 1
        return {"loss": None, "y_pred": None, "phase_losses": graph.outputs}


@pytest.fixture
def fake_cuda_graphs(monkeypatch):
    from contextlib import contextmanager, nullcontext

    @contextmanager
    def graph(g):
        _FakeGraph.recording = g
        try:
            yield
        finally:
            _FakeGraph.recording = None

    class Stream:
        def __init__(self, *args):
            pass

        def wait_stream(self, other):
            pass

    monkeypatch.setattr(torch.cuda, "CUDAGraph", _FakeGraph)
    monkeypatch.setattr(torch.cuda, "graph", graph)
    monkeypatch.setattr(torch.cuda, "Stream", Stream)
    monkeypatch.setattr(torch.cuda, "current_stream", lambda *a: Stream())
    monkeypatch.setattr(torch.cuda, "stream", lambda s: nullcontext())
    monkeypatch.setattr(torch.cuda, "device", lambda d: nullcontext())


class _SetLr(Callback):
    """Sets every phase's learning rate from ``schedule(step)`` before each batch."""

    def __init__(self, schedule):
        self.schedule = schedule

    def initialize(self):
        self.step = 0
        return self

    def on_batch_begin(self, net, **kwargs):
        for optimizer in net.phase_optimizers().values():
            optimizer.param_groups[0]["lr"] = self.schedule(self.step)
        self.step += 1


def _fit_both(n=40, schedule=None, **kwargs):
    """The same training with the stand-in graphs and without; both nets."""
    nets = []
    for cls in (_FakeGraphNet, TrainingNet):
        torch.manual_seed(0)
        callbacks = [_SetLr(schedule)] if schedule else None
        net = _net(TwoPhases(), net_cls=cls, callbacks=callbacks, **kwargs)
        nets.append(net.fit(TensorBatchDataset(_data(n)), None))
    return nets


def _same_weights(a, b):
    for (name, x), y in zip(a.module_.state_dict().items(), b.module_.state_dict().values()):
        assert torch.equal(x, y), name


def test_graph_steps_are_the_same_steps_each_once(fake_cuda_graphs):
    graphed, eager = _fit_both(max_epochs=3, batch_size=10)  # 12 steps of one shape
    _same_weights(graphed, eager)
    assert graphed.recordings == 1 and graphed.eager_steps == 3  # 2 warm-up + the recorded one
    assert "_cuda_graph_steps" not in graphed.__dict__  # one fit's only
    losses = [b["a_loss"] for e in graphed.history for b in e["batches"]]
    assert losses == [b["a_loss"] for e in eager.history for b in e["batches"]]


def test_a_new_batch_shape_is_recorded_on_its_own(fake_cuda_graphs):
    graphed, eager = _fit_both(n=45, max_epochs=4, batch_size=10)  # 4 x 10 rows, then 5
    _same_weights(graphed, eager)
    # the full batches' step in the first epoch, the last batch's (one an epoch) in the third
    assert graphed.recordings == 2 and graphed.eager_steps == 3 + 3


def test_a_changed_learning_rate_is_recorded_again(fake_cuda_graphs):
    graphed, eager = _fit_both(n=200, max_epochs=1, batch_size=10,
                               schedule=lambda step: 0.1 if step < 14 else 0.01)
    _same_weights(graphed, eager)
    assert graphed.recordings == 2


class _SetWeight(Callback):
    """Sets the model's ``weight_a`` (a scalar its phase ``a`` reads) at each epoch's start."""

    def on_epoch_begin(self, net, **kwargs):
        net.module_.weight_a = 1.0 if len(net.history) == 1 else 0.25


def test_a_changed_model_setting_is_recorded_again(fake_cuda_graphs):
    nets = []
    for cls in (_FakeGraphNet, TrainingNet):
        torch.manual_seed(0)
        net = _net(TwoPhases(), net_cls=cls, callbacks=[_SetWeight()], max_epochs=2, batch_size=10)
        nets.append(net.fit(TensorBatchDataset(_data(200)), None))
    graphed, eager = nets
    _same_weights(graphed, eager)  # the second epoch's replays used the new weight
    assert graphed.recordings == 2
    assert ("weight_a", 0.25) in graphed._hyperparameters()


def test_a_learning_rate_changed_every_step_ends_the_graphs(fake_cuda_graphs):
    graphed, eager = _fit_both(n=200, max_epochs=1, batch_size=10,
                               schedule=lambda step: 0.1 / (1 + step))
    _same_weights(graphed, eager)
    assert graphed.recordings == 1 and graphed.eager_steps == 20  # replayed none
