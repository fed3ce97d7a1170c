"""The one training engine: a skorch ``NeuralNet`` whose step runs a model's phases.

A *model* is a ``torch.nn.Module`` that declares its training phases::

    class Model(nn.Module):
        phases = ("recon", "disc", "gen")          # run in this order on every batch

        def phase_parameters(self, phase): ...     # what that phase's optimizer updates
        def phase_loss(self, phase, batch): ...    # a scalar tensor
        def phase_optimizer_kwargs(self, phase):   # optional, e.g. {"betas": (0.5, 0.999)}
            ...
        def phase_lr_scales(self, phase):          # optional, [(some of its parameters, 0.5)]
            ...
        def end_step(self): ...                    # optional, after each step (averaging)
        def begin_epoch(self, epoch): ...          # optional, before each epoch (schedules)
        def end_epoch(self, dataset): ...          # optional, after each epoch: {history key: value}
        def end_fit(self): ...                     # optional, when a fit ends, however it ends

Each phase owns one optimizer (``net.optimizer_<phase>_``, created in
``initialize_optimizer`` so skorch moves, pickles and exposes it). One step of training is, for
every phase in order: zero its gradients, compute its loss on the batch, back-propagate, step
its optimizer. This is the alternating update of adversarial training (a summed loss stepped by
every optimizer at once, skorch's default, would be wrong there); a model with one phase is
ordinary training.

``lr_schedule="linear"`` scales every phase's learning rate per epoch by :func:`lr_factor`:
constant for the first half of the epochs of each ``fit_loop`` (each ``fit``, or each stage of
a staged fit), then decreasing linearly towards 0. It sets the rate at the start of every
epoch, so it takes the place of a learning-rate callback such as skorch's ``LRScheduler``
(which works with the default ``"constant"``; with ``"linear"`` one is refused at ``fit``).

On a CUDA device (``cuda_graphs=True``, the default), each training step is recorded once as
a CUDA graph and then replayed, batch after batch: a small network's step is bound by the
launch of its hundreds of kernels, and a replay launches them all at once (8.6x faster for the
Improved-GAN MNIST epoch on an H200). For each batch shape and set of active phases, the first
three steps run as usual (on a side stream: ``graph_warmup_steps`` warm-up steps, then the one
that is recorded); the step is recorded again when an optimizer's hyperparameters or the model's
scalar settings change (a per-epoch learning-rate schedule, a callback that sets a loss weight),
and a fit whose hyperparameters change every few steps goes on without graphs, as do batches of
a fifth shape. Python code in the step runs only while it
is recorded, so the models keep any per-step state in tensors (see
:class:`~skae.modules.ParameterAverage`).

Each phase's loss is recorded in the history per batch and per epoch as ``"<phase>_loss"``;
``"train_loss"`` is the first phase's loss, so skorch's callbacks (``EarlyStopping(monitor=
"train_loss")``, ``PrintLog``, ``ProgressBar``) work unchanged. Losses stay on the device during
an epoch and are read back once at its end (no per-batch synchronization); a non-finite loss
stops training with :class:`DivergenceError` naming the phase.
"""

import inspect
import warnings

import numpy as np
import torch
from skorch import NeuralNet
from skorch.callbacks import LRScheduler
from torch.utils.data import Dataset

__all__ = [
    "DivergenceError", "PhasedModel", "TensorBatchDataset", "SemiSupervisedDataset", "TrainingNet",
]


class DivergenceError(FloatingPointError):
    """Raised when a training loss becomes NaN or infinite."""


def _no_op():
    pass


def _pass_through(batch):
    # collate_fn for datasets that return whole batches (module level: picklable)
    return batch


def _to_device(indices, device):
    """Batch indices as a tensor on ``device``, without waiting for the device's queue.

    ``torch.as_tensor(indices, device="cuda")`` synchronizes the stream on every batch; a
    non-blocking copy from host memory does not (CUDA stages the source at once, so it may be
    freed), and the GPU keeps working while the next step is launched.
    """
    idx = torch.as_tensor(indices)
    return idx if idx.device == torch.device(device) else idx.to(device, non_blocking=True)


class TensorBatchDataset(Dataset):
    """Tensors indexed a whole batch at a time (``__getitems__``), no per-row collation."""

    def __init__(self, *tensors):
        self.tensors = tensors

    def __len__(self):
        return len(self.tensors[0])

    def __getitem__(self, i):
        return tuple(t[i] for t in self.tensors)

    def __getitems__(self, indices):
        idx = _to_device(indices, self.tensors[0].device)
        return tuple(t[idx] for t in self.tensors)


class SemiSupervisedDataset(Dataset):
    """Batches of ``(x, x_labeled, y_labeled)``: all rows, plus a labeled minibatch per batch.

    An epoch is one pass over all rows ``X``. Each batch also carries ``labeled_batch_size`` rows
    drawn from the labeled set by cycling through random permutations of it, so 100 labels
    among 60,000 rows are revisited on every step rather than starved.
    """

    def __init__(self, X, X_labeled, y_labeled, labeled_batch_size, seed=0):
        self.X = X
        self.X_labeled = X_labeled
        self.y_labeled = y_labeled
        self.labeled_batch_size = int(labeled_batch_size)
        self.generator = torch.Generator().manual_seed(int(seed))
        self._order = torch.empty(0, dtype=torch.long)

    def __len__(self):
        return len(self.X)

    def _next_labeled(self):
        n = len(self.y_labeled)
        while len(self._order) < self.labeled_batch_size:
            self._order = torch.cat([self._order, torch.randperm(n, generator=self.generator)])
        n_batch = self.labeled_batch_size
        idx, self._order = self._order[:n_batch], self._order[n_batch:]
        return _to_device(idx, self.y_labeled.device)

    def __getitem__(self, i):
        return self.__getitems__([i])

    def __getitems__(self, indices):
        idx = _to_device(indices, self.X.device)
        j = self._next_labeled()
        return self.X[idx], self.X_labeled[j], self.y_labeled[j]


class PhaseOptimizers(torch.optim.Optimizer):
    """The optimizers of several phases seen as one, for learning-rate schedulers.

    Its ``param_groups`` are the phase optimizers' own group dicts, so what a scheduler writes
    there (``lr``, ``initial_lr``) reaches every phase. ``step`` and ``zero_grad`` do nothing:
    the training step steps each phase's optimizer itself.
    """

    def __init__(self, optimizers):  # no super().__init__: it would copy the groups
        self.optimizers = list(optimizers)
        self.param_groups = [g for opt in self.optimizers for g in opt.param_groups]
        self.defaults = dict(self.optimizers[0].defaults)
        self.state = {}
        self._opt_called = True  # the phases' optimizers have stepped (a scheduler checks)

    def step(self, closure=None):
        return None

    def zero_grad(self, set_to_none=True):
        return None

    def __repr__(self):
        return f"PhaseOptimizers({len(self.optimizers)} optimizers)"


def _accepts(optimizer, name):
    try:
        return name in inspect.signature(optimizer).parameters
    except (TypeError, ValueError):
        return False


def _scaled_groups(groups, scales, lr):
    """``groups`` (an optimizer's parameter groups) with the parameters named in ``scales``
    (pairs ``(parameters, scale)``) moved to groups of their own at ``scale`` times their
    group's learning rate (``lr`` where the group sets none)."""
    scale_of = {id(p): float(scale) for params, scale in scales for p in params}
    out = []
    for group in groups:
        by_scale = {}
        for p in group["params"]:
            by_scale.setdefault(scale_of.get(id(p), 1.0), []).append(p)
        for scale, params in by_scale.items():
            part = {**group, "params": params}
            if scale != 1.0:
                part["lr"] = group.get("lr", lr) * scale
            out.append(part)
    return out


#: the learning-rate schedules of :class:`TrainingNet` (``lr_schedule``)
LR_SCHEDULES = ("constant", "linear")


def lr_factor(schedule, epoch, epochs):
    """The factor of the learning rate in ``epoch`` (1-based) of a fit of ``epochs`` epochs.

    ``"constant"``: 1. ``"linear"``: ``min(1, (epochs - epoch + 1) / d)`` with
    ``d = epochs - epochs // 2``: 1 up to epoch ``epochs // 2 + 1``, then lower by ``1 / d``
    each epoch, down to ``1 / d`` in the last.
    """
    if schedule == "constant":
        return 1.0
    if schedule == "linear":
        decaying = epochs - epochs // 2
        return min(1.0, (epochs - epoch + 1) / decaying)
    raise ValueError(f"lr_schedule must be one of {LR_SCHEDULES}; got {schedule!r}")


class TrainingNet(NeuralNet):
    """skorch net that trains a multi-phase model (see the module docstring).

    Built by the estimators of :mod:`skae.base`; its defaults differ from ``NeuralNet``'s where
    those are wrong for us: no validation split, shuffled batches fetched whole.
    """

    # `module` is the model instance itself (== module_): pickle it with module_, device-aware
    cuda_dependent_attributes_ = ["module"]

    #: eager steps of a batch shape before its step is recorded as a CUDA graph
    graph_warmup_steps = 2

    def __init__(self, module, *args, criterion=torch.nn.Identity, train_split=None,
                 weight_decay=0.0, cuda_graphs=True, lr_schedule="constant",
                 iterator_train__shuffle=True,
                 iterator_train__collate_fn=_pass_through,
                 iterator_valid__collate_fn=_pass_through, **kwargs):
        self.weight_decay = weight_decay
        self.cuda_graphs = cuda_graphs
        self.lr_schedule = lr_schedule
        super().__init__(
            module, *args, criterion=criterion, train_split=train_split,
            iterator_train__shuffle=iterator_train__shuffle,
            iterator_train__collate_fn=iterator_train__collate_fn,
            iterator_valid__collate_fn=iterator_valid__collate_fn, **kwargs,
        )

    # --- optimizers: one per phase --------------------------------------------------------
    def initialize_optimizer(self, triggered_directly=None):
        module = self.module_
        for phase in module.phases:
            params = ((f"{phase}.{i}", p) for i, p in enumerate(module.phase_parameters(phase))
                      if p.requires_grad)  # frozen ones (e.g. fixed scales) are not stepped
            args, kwargs = self.get_params_for_optimizer("optimizer", params)
            if self.weight_decay:
                kwargs["weight_decay"] = self.weight_decay
            extra = getattr(module, "phase_optimizer_kwargs", lambda _: {})(phase)
            for key, value in extra.items():
                if key not in kwargs and _accepts(self.optimizer, key):
                    kwargs[key] = value
            if "lr_scale" in extra:
                kwargs["lr"] = kwargs["lr"] * extra["lr_scale"]
            scales = getattr(module, "phase_lr_scales", lambda _: ())(phase)
            if scales:
                args = (_scaled_groups(args[0], scales, kwargs["lr"]), *args[1:])
            if "fused" not in kwargs and _accepts(self.optimizer, "fused"):
                kwargs["fused"] = torch.device(self.device).type in ("cpu", "cuda")
            if self._graphs_enabled() and _accepts(self.optimizer, "capturable"):
                kwargs.setdefault("capturable", True)  # its step counts stay on the device
            optimizer = self.optimizer(*args, **kwargs)
            for group in optimizer.param_groups:  # what ``lr_schedule`` scales
                group["base_lr"] = group["lr"]
            setattr(self, f"optimizer_{phase}_", optimizer)
        return self

    @property
    def optimizer_(self):
        """The optimizer that skorch's callbacks (e.g. ``LRScheduler``) adjust.

        A one-phase model's optimizer itself; for several phases, a :class:`PhaseOptimizers`
        view whose ``param_groups`` are those of every phase's optimizer, so a learning-rate
        schedule applies to all phases alike.
        """
        module = self.__dict__.get("module_")
        phases = tuple(getattr(module, "phases", ()))
        optimizers = [self.__dict__.get(f"optimizer_{p}_") for p in phases]
        if not optimizers or any(o is None for o in optimizers):
            raise AttributeError("the net is not initialized: it has no optimizers yet")
        return optimizers[0] if len(optimizers) == 1 else PhaseOptimizers(optimizers)

    def phase_optimizers(self):
        return {phase: getattr(self, f"optimizer_{phase}_") for phase in self.module_.phases}

    # --- the step ------------------------------------------------------------------------
    def train_step(self, batch, **fit_params):
        if fit_params or not self._graphs_enabled():
            return self._step(batch)
        return self._graph_step(batch)

    def _step(self, batch):
        module = self.module_
        module.train()
        losses = {}
        for phase in module.active_phases:
            optimizer = getattr(self, f"optimizer_{phase}_")
            optimizer.zero_grad(set_to_none=True)
            loss = module.phase_loss(phase, batch)
            loss.backward()
            optimizer.step()
            losses[phase] = loss.detach()
        getattr(module, "end_step", _no_op)()
        first = next(iter(losses.values()))
        return {"loss": first, "y_pred": None, "phase_losses": losses}

    # --- CUDA graphs ------------------------------------------------------------------------
    def _graphs_enabled(self):
        return bool(self.cuda_graphs) and torch.device(self.device).type == "cuda"

    def _hyperparameters(self):
        """What a recorded step holds as constants: the optimizers' scalar settings and the
        model's own (its public attributes that are numbers, strings or booleans, such as a
        loss weight that a callback changes between epochs)."""
        optimizers = tuple(
            (key, value)
            for optimizer in self.phase_optimizers().values()
            for group in optimizer.param_groups
            for key, value in group.items()
            if isinstance(value, (bool, int, float, str, tuple))
        )
        model = tuple(
            (key, value) for key, value in vars(self.module_).items()
            if not key.startswith("_") and isinstance(value, (bool, int, float, str))
        )
        return optimizers + model

    def _graph_step(self, batch):
        """One training step through a recorded CUDA graph (module docstring)."""
        # recording and replaying use the current device's streams: make it the net's one
        with torch.cuda.device(torch.device(self.device)):
            return self._graph_step_on_device(batch)

    def _graph_step_on_device(self, batch):
        graphs = self.__dict__.setdefault("_cuda_graph_steps", {})
        if graphs is None:  # recording failed in this fit: train eagerly
            return self._step(batch)
        key = (tuple(self.module_.active_phases),
               tuple((tuple(t.shape), t.dtype) for t in batch))
        entry = graphs.get(key)
        if entry is None:
            if len(graphs) >= 4:  # many shapes: not what graphs are for
                return self._step(batch)
            entry = graphs[key] = {"seen": 0, "graph": None}
        hyper = self._hyperparameters()
        if entry["graph"] is not None and entry["hyper"] != hyper:
            if entry["replays"] < 10:  # they change about every step (a per-batch schedule)
                self.__dict__["_cuda_graph_steps"] = None
                return self._step(batch)
            entry.update(graph=None, seen=self.graph_warmup_steps)  # re-record, no warm-up
        if entry["graph"] is None:
            entry["seen"] += 1
            step = self._side_stream_step(batch)
            if entry["seen"] > self.graph_warmup_steps:
                self._record(entry, batch, hyper)
            return step
        for static, tensor in zip(entry["inputs"], batch):
            static.copy_(tensor)
        entry["graph"].replay()
        entry["replays"] += 1
        out = entry["outputs"]
        losses = {phase: loss.clone() for phase, loss in out["phase_losses"].items()}
        return {"loss": next(iter(losses.values())), "y_pred": None, "phase_losses": losses}

    def _side_stream_step(self, batch):
        # warm-up steps run on a side stream, as torch.cuda.graph requires
        stream = torch.cuda.Stream(self.device)
        current = torch.cuda.current_stream(self.device)
        stream.wait_stream(current)
        with torch.cuda.stream(stream):
            step = self._step(batch)
        current.wait_stream(stream)
        return step

    def _record(self, entry, batch, hyper):
        """Record one step on ``batch``'s shapes (not run: the batch was trained eagerly)."""
        inputs = tuple(t.clone() for t in batch)
        for optimizer in self.phase_optimizers().values():
            optimizer.zero_grad(set_to_none=True)  # gradients live in the graph's memory
        graph = torch.cuda.CUDAGraph()
        try:
            with torch.cuda.graph(graph):
                outputs = self._step(inputs)
        except Exception as exc:  # e.g. an optimizer that cannot step inside a graph
            self.__dict__["_cuda_graph_steps"] = None
            warnings.warn(
                f"could not record the training step as a CUDA graph ({exc}); training "
                "without graphs (set cuda_graphs=False to skip trying)", RuntimeWarning,
                stacklevel=2,
            )
            return
        entry.update(graph=graph, inputs=inputs, outputs=outputs, hyper=hyper, replays=0)

    def initialize_callbacks(self):
        super().initialize_callbacks()
        if self.lr_schedule != "constant":
            clashing = [name for name, cb in self.callbacks_ if isinstance(cb, LRScheduler)]
            if clashing:
                raise ValueError(
                    f"lr_schedule={self.lr_schedule!r} sets the learning rate at every epoch, "
                    f"so the callback {clashing[0]!r} (an LRScheduler) would be overridden; "
                    "pass lr_schedule='constant' to schedule the rate with a callback"
                )
        return self

    def on_epoch_begin(self, net, **kwargs):
        super().on_epoch_begin(net, **kwargs)  # opens the epoch's history row
        # the model's own schedules first: the user's callbacks, notified next, may override
        begin_epoch = getattr(self.module_, "begin_epoch", None)
        if begin_epoch is not None:
            begin_epoch(len(self.history))
        if self.lr_schedule != "constant":
            start, epochs = self._fit_span
            factor = lr_factor(self.lr_schedule, len(self.history) - start, epochs)
            for optimizer in self.phase_optimizers().values():
                for group in optimizer.param_groups:
                    group["lr"] = group["base_lr"] * factor

    def on_epoch_end(self, net, dataset_train=None, **kwargs):
        super().on_epoch_end(net, dataset_train=dataset_train, **kwargs)
        # before the user's callbacks (notified next), so that PrintLog shows what it records
        end_epoch = getattr(self.module_, "end_epoch", None)
        if end_epoch is not None and dataset_train is not None:
            for key, value in (end_epoch(dataset_train) or {}).items():
                self.history.record(key, value)

    def fit_loop(self, X, y=None, epochs=None, **fit_params):
        # the epochs of this call, that ``lr_schedule`` spans
        self._fit_span = (len(self.history), self.max_epochs if epochs is None else epochs)
        try:
            return super().fit_loop(X, y, epochs=epochs, **fit_params)
        finally:
            # graphs hold device memory and cannot be copied or pickled: one fit's only
            self.__dict__.pop("_cuda_graph_steps", None)
            end_fit = getattr(self.module_, "end_fit", None)
            if end_fit is not None:
                end_fit()

    def run_single_epoch(self, iterator, training, prefix, step_fn, **fit_params):
        if iterator is None:
            return
        steps, sizes = [], []
        for batch in iterator:
            self.notify("on_batch_begin", batch=batch, training=training)
            step = step_fn(batch, **fit_params)
            steps.append(step["phase_losses"])
            sizes.append(len(batch[0]))
            self.notify("on_batch_end", batch=batch, training=training, **step)
        if not steps:
            return
        phases = list(steps[0])
        # one device->host transfer per epoch
        values = torch.stack([torch.stack([s[p] for p in phases]) for s in steps]).float().cpu()
        values = values.numpy()
        # on_batch_begin opened one history entry per batch; fill each with its own losses
        entries = self.history[-1]["batches"][-len(steps):]
        for entry, row, size in zip(entries, values, sizes):
            entry[prefix + "_loss"] = float(row[0])
            entry[prefix + "_batch_size"] = size
            for phase, value in zip(phases, row):
                entry[f"{phase}_loss"] = float(value)
        weights = np.asarray(sizes, dtype=float)
        for phase, column in zip(phases, values.T):
            if not np.all(np.isfinite(column)):
                bad = int(np.argmin(np.isfinite(column)))
                raise DivergenceError(
                    f"training diverged: the {phase!r} loss became {column[bad]} in epoch "
                    f"{len(self.history)} (batch {bad + 1}); lower `lr`, scale the input "
                    "(e.g. StandardScaler or MinMaxScaler), or check the data"
                )
            self.history.record(f"{phase}_loss", float(np.average(column, weights=weights)))
        self.history.record(prefix + "_batch_count", len(steps))


class PhasedModel(torch.nn.Module):
    """Base of the models trained by :class:`TrainingNet`.

    Subclasses set ``phases`` and define ``loss_<phase>(batch)`` and ``phase_parameters``.
    ``active_phases`` (default: all) is what a training step runs; a staged model such as
    pretrain-then-fine-tune switches it between ``fit`` calls.
    """

    phases = ()

    def __init__(self):
        super().__init__()
        self.active_phases = tuple(self.phases)

    def phase_parameters(self, phase):
        raise NotImplementedError

    def phase_loss(self, phase, batch):
        return getattr(self, f"loss_{phase}")(batch)

    def phase_optimizer_kwargs(self, phase):
        return {}

    def end_step(self):
        """Called after every training step (all active phases): e.g. average the weights."""

    def begin_epoch(self, epoch):
        """Called at the start of every training epoch, ``epoch`` counting from 1 over all
        (warm-started) fits, before the net's callbacks: e.g. set a setting that changes over
        the epochs."""

    def end_epoch(self, dataset):
        """Called at the end of every training epoch with the training dataset, before the
        net's callbacks; returns a dict of values to record in the epoch's history row (or
        None): e.g. check the epoch's training on the rows."""

    def end_fit(self):
        """Called when a fit ends, however it ends (its last epoch done, an error, an
        interrupt): e.g. drop what was kept for the epoch under way."""
