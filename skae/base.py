"""The shared glue of every skae estimator.

One place for: parameter constraints, input validation (tables, DataFrames and images), the
device, seeding, batching, building and running the skorch net (``net_``), batched inference,
and the ``y == -1`` convention of the semi-supervised classifiers. Models add only their torch
modules (:mod:`skae.modules`) and losses (:mod:`skae.losses`).
"""

import json
import math
import warnings
from contextlib import contextmanager
from functools import partial
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import (
    BaseEstimator,
    ClassifierMixin,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
    clone,
)
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import (
    check_array,
    check_consistent_length,
    check_is_fitted,
    column_or_1d,
    validate_data,
)
from skorch.exceptions import DeviceWarning
from skorch.history import History

from ._training import LR_SCHEDULES, SemiSupervisedDataset, TensorBatchDataset, TrainingNet
from .metrics import labeled_accuracy_score, unlabeled_mask

__all__ = ["CodeTransformerMixin", "NetEstimator", "SemiSupervisedClassifierMixin"]

_OPTIMIZERS = {
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    # as scikit-learn's MLPClassifier(solver="sgd"): Nesterov momentum 0.9
    "sgd": partial(torch.optim.SGD, momentum=0.9, nesterov=True),
    "rmsprop": torch.optim.RMSprop,
}

#: Inference runs in chunks of exactly this many rows (the last one zero-padded), so that every
#: row goes through the same kernels whatever the number of rows passed: a row's prediction
#: never depends on which other rows share the call.
_INFERENCE_BATCH = 512


def forward_in_batches(model, device, fn, X, *, dtype=torch.float32):
    """``fn(model, batch)`` over the rows of X, in eval mode, without gradients.

    Batches of exactly ``_INFERENCE_BATCH`` rows (the last zero-padded), so that a row's output
    never depends on the other rows. ``fn`` returns a tensor or a tuple of tensors; the result
    is a numpy array (or a tuple of them).
    """
    model.eval()
    outs = []
    with torch.inference_mode():
        for start in range(0, max(len(X), 1), _INFERENCE_BATCH):
            rows = torch.tensor(np.ascontiguousarray(X[start:start + _INFERENCE_BATCH]),
                                dtype=dtype)
            batch = rows.new_zeros((_INFERENCE_BATCH, *rows.shape[1:]))
            batch[: len(rows)] = rows
            out = fn(model, batch.to(device))
            out = out if isinstance(out, tuple) else (out,)
            outs.append(tuple(o[: len(rows)] for o in out))
    cols = [torch.cat(col).float().cpu().numpy() for col in zip(*outs)]
    return cols[0] if len(cols) == 1 else tuple(cols)


def _check_hidden(hidden_layer_sizes, backbone):
    sizes = tuple(np.atleast_1d(np.asarray(hidden_layer_sizes)).tolist())
    if not all(isinstance(s, Integral) and s > 0 for s in sizes):
        raise ValueError(
            f"hidden_layer_sizes must be positive integers, got {hidden_layer_sizes!r}"
        )
    if backbone == "conv" and not sizes:
        raise ValueError("backbone='conv' needs at least one entry in hidden_layer_sizes")
    return sizes


def _json_value(value):
    # numpy scalars and arrays in a skorch history, as JSON
    if isinstance(value, (np.generic, np.ndarray)):
        return value.tolist()
    raise TypeError(f"cannot store {type(value).__name__} in the history")


def _check_device(device):
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device={device!r} is not a torch device ('cpu', 'cuda', 'cuda:1')") from exc
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device={device!r} but CUDA is not available on this machine")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(
                f"device={device!r} but only {torch.cuda.device_count()} CUDA device(s) exist"
            )
    return dev


def _flushes_denormals():
    """Whether torch flushes denormal floats to zero on the CPU (torch has no getter)."""
    tiny = torch.tensor([1e-39], dtype=torch.float32)  # a float32 denormal
    return bool((tiny * 1.0).item() == 0.0)


#: parameter constraints of the classifiers that shift images (``max_shift``, and the weight of
#: their consistency loss)
SHIFT_CONSTRAINTS = {
    "max_shift": [Interval(Real, 0, None, closed="left")],
    "max_rotation": [Interval(Real, 0, 180, closed="both")],
    "max_warp": [Interval(Real, 0, None, closed="left")],
    "consistency_weight": [Interval(Real, 0, None, closed="left")],
}


class NetEstimator(BaseEstimator):
    """Base class: a scikit-learn estimator owning a configured skorch net (``net_``).

    Subclasses define ``__init__`` (storing their parameters unchanged) and ``_build_model``,
    and call :meth:`_validate_X`, :meth:`_fit_net` and :meth:`_forward` from their public
    methods. Not a public estimator by itself.
    """

    _parameter_constraints = {
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left"), None],
        "activation": [StrOptions({"relu", "leaky_relu", "tanh", "logistic", "identity"})],
        "backbone": [StrOptions({"auto", "mlp", "conv"})],
        "max_epochs": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "lr": [Interval(Real, 0, None, closed="neither")],
        "lr_schedule": [StrOptions(set(LR_SCHEDULES))],
        "optimizer": [StrOptions(set(_OPTIMIZERS)), type],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "device": [str, torch.device],
        "cuda_graphs": ["boolean"],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "callbacks": [list, None],
        "warm_start": ["boolean"],
    }

    # --- input ------------------------------------------------------------------------------
    def _validate_X(self, X, *, reset):
        """Validate X; returns a C-contiguous float32/float64 array ``(n, *input_shape_)``.

        ``reset=True`` (in ``fit``) records the input's shape and features, unless the fit is
        warm-started: then X must match them as at prediction time.
        """
        # torch cannot wrap arrays with negative strides (e.g. X[::-1])
        return np.ascontiguousarray(self._check_X(X, reset=reset))

    def _check_X(self, X, *, reset):
        dtype = (np.float64, np.float32)  # float32 kept; other types to float64, as sklearn
        if reset and not self._warm_starting():
            X = validate_data(self, X, reset=True, allow_nd=True, dtype=dtype)
            self.input_shape_ = tuple(X.shape[1:])
            if X.ndim > 2:
                self.n_features_in_ = math.prod(self.input_shape_)
            return X
        check_is_fitted(self)
        if len(self.input_shape_) == 1:
            return validate_data(self, X, reset=False, dtype=dtype)
        X = check_array(X, allow_nd=True, dtype=dtype)
        if X.ndim == 2 and X.shape[1] == self.n_features_in_:
            X = X.reshape(-1, *self.input_shape_)
        if X.shape[1:] != self.input_shape_:
            raise ValueError(
                f"X has samples of shape {X.shape[1:]}, but {type(self).__name__} was fitted "
                f"on samples of shape {self.input_shape_}"
            )
        return X

    def _check_max_shift(self):
        """For estimators with ``max_shift``, ``max_rotation`` and ``max_warp``
        (:data:`SHIFT_CONSTRAINTS`): any > 0 moves images, so X of rows is a ValueError that
        says so."""
        if len(self.input_shape_) in (2, 3):
            return
        verbs = {"max_shift": "shifts", "max_rotation": "rotates", "max_warp": "warps"}
        for name, verb in verbs.items():
            value = getattr(self, name)
            if value:
                raise ValueError(
                    f"{name}={value} {verb} images, but X has rows of "
                    f"{self.n_features_in_} features: pass images of shape (n_samples, H, W) "
                    f"or (n_samples, C, H, W), or set {name}=0"
                )

    def _backbone(self):
        """``"mlp"`` or ``"conv"``, resolved against the fitted input shape."""
        backbone = self.backbone
        if backbone == "auto":
            backbone = "conv" if len(self.input_shape_) in (2, 3) else "mlp"
        elif backbone == "conv" and len(self.input_shape_) not in (2, 3):
            raise ValueError(
                "backbone='conv' needs images of shape (n, H, W) or (n, C, H, W); got X of "
                f"shape (n, {', '.join(map(str, self.input_shape_))})"
            )
        return backbone

    #: hidden sizes used for ``hidden_layer_sizes=None``, per backbone
    _default_hidden_layer_sizes = {"mlp": (256, 128), "conv": (32, 64)}

    def _hidden_layer_sizes(self, backbone, sizes="default"):
        sizes = self.hidden_layer_sizes if sizes == "default" else sizes
        if sizes is None:
            return self._default_hidden_layer_sizes[backbone]
        return _check_hidden(sizes, backbone)

    # --- training -------------------------------------------------------------------------
    @contextmanager
    def _torch_context(self, seed, device):
        """Seed torch for this fit only (global RNG state restored), flush denormals.

        Both the RNG state and the flush-denormal mode are restored afterwards.
        """
        devices = [device] if device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            flushing = _flushes_denormals()
            torch.set_flush_denormal(True)
            try:
                yield
            finally:
                torch.set_flush_denormal(flushing)

    def _seeds(self, epochs_done=0):
        """Seeds of torch, the batch order and the dataset's draws for one ``fit``.

        A warm-started fit mixes in the epochs already run, so that it does not replay the
        noise and batch order of the first fit.
        """
        high = np.iinfo(np.int32).max
        seeds = check_random_state(self.random_state).randint(high, size=3)
        if epochs_done:
            seeds = np.random.default_rng([*seeds.tolist(), epochs_done]).integers(high, size=3)
        return seeds

    def _warm_starting(self):
        """Whether this ``fit`` goes on training the fitted network (``warm_start=True``)."""
        return bool(getattr(self, "warm_start", False)) and hasattr(self, "net_")

    def _tensor(self, X, device, dtype=torch.float32):
        return torch.tensor(np.asarray(X), dtype=dtype, device=device)

    def _make_net(self, model, device, seed):
        optimizer = _OPTIMIZERS.get(self.optimizer, self.optimizer)
        callbacks = [clone(cb, safe=False) for cb in self.callbacks] if self.callbacks else None
        return TrainingNet(
            module=model,
            optimizer=optimizer,
            lr=self.lr,
            max_epochs=self.max_epochs,
            batch_size=self.batch_size,
            callbacks=callbacks,
            verbose=int(self.verbose),
            device=str(device),
            weight_decay=self.weight_decay,
            cuda_graphs=self.cuda_graphs,
            lr_schedule=self.lr_schedule,
            iterator_train__generator=torch.Generator().manual_seed(int(seed)),
        )

    def _fit_net(self, make_dataset, *, stages=None):
        """Build the model (``self._build_model()``) and the net, and train.

        ``_build_model`` returns a :class:`~skae._training.PhasedModel` and must depend only on
        the parameters and fitted attributes: loading a saved estimator calls it again.
        ``make_dataset(device, seed)`` returns the training dataset. ``stages`` is an optional
        list of ``(active_phases, epochs)`` run one after another (pretrain, then fine-tune);
        by default all phases run for ``max_epochs``.
        """
        device = _check_device(self.device)
        warm = self._warm_starting()
        history = self.net_.history if warm else None
        seeds = self._seeds(len(history) if warm else 0)
        seed, loader_seed, data_seed = (int(s) for s in seeds)
        with self._torch_context(seed, device):
            model = self._build_model()
            if warm:  # the current parameters (noise, loss...), the fitted weights
                self._load_weights(model, self.net_.module_.state_dict(),
                                  "warm_start=True, but the fitted weights")
            dataset = make_dataset(device, data_seed)
            self.net_ = self._make_net(model, device, loader_seed)
            self.net_.initialize()
            if warm:
                self.net_.history = history
                for optimizer in self.net_.phase_optimizers().values():
                    for group in optimizer.param_groups:  # lets an LRScheduler resume
                        group.setdefault("initial_lr", group["lr"])
            if stages is None:
                stages = [(model.phases, self.max_epochs)]
            for phases, epochs in stages:
                model.active_phases = tuple(phases)
                if epochs > 0:
                    self.net_.partial_fit(dataset, None, epochs=epochs)
            model.active_phases = tuple(model.phases)
        model.eval()
        self.n_iter_ = len(self.net_.history)
        return self

    # --- inference ------------------------------------------------------------------------
    def _forward(self, fn, X, *, dtype=torch.float32):
        """``fn(model, batch)`` over X in batches, in eval mode, without gradients.

        ``fn`` returns a tensor or a tuple of tensors; the result is a numpy array (or tuple).
        """
        return forward_in_batches(self.net_.module_, self.net_.device, fn, X, dtype=dtype)

    # --- persistence ------------------------------------------------------------------------
    # A fitted estimator is stored without torch objects: its parameters, its fitted
    # attributes, and ``_net_state`` = the net's device, the model's weights as numpy arrays and
    # the history as JSON. Loading rebuilds the model with ``_build_model()`` (from the
    # parameters and fitted attributes) and loads the weights. pickle and skops see the same
    # state, so a skops file holds only numpy arrays, strings and numbers (nothing that runs
    # code on load), and a GPU-trained model loads on a CPU-only machine. The optimizers'
    # state is not kept: every ``fit``, a warm-started one too, builds new optimizers.
    def __getstate__(self):
        state = dict(super().__getstate__())  # a copy: object.__getstate__ returns __dict__
        net = state.pop("net_", None)
        if net is not None:
            state["_net_state"] = {
                "device": str(net.device),
                "weights": {
                    name: tensor.detach().cpu().numpy()
                    for name, tensor in net.module_.state_dict().items()
                },
                "history": json.dumps(net.history.to_list(), default=_json_value),
            }
        return state

    def __setstate__(self, state):
        state = dict(state)
        state.setdefault("cuda_graphs", True)  # saved before these parameters existed
        state.setdefault("lr_schedule", "constant")
        net_state = state.pop("_net_state", None)
        super().__setstate__(state)
        if net_state is not None:
            self.net_ = self._restore_net(net_state)

    def _restore_net(self, net_state):
        device = torch.device(net_state["device"])
        if device.type == "cuda" and not torch.cuda.is_available():
            warnings.warn(
                f"{type(self).__name__} was trained on {device} but no CUDA devices are "
                "available: loading it on the CPU (set device='cpu' before refitting)",
                DeviceWarning, stacklevel=3,
            )
            device = torch.device("cpu")
        with torch.random.fork_rng(devices=[]):  # building the model draws initial weights
            model = self._build_model()
        weights = {name: torch.from_numpy(np.array(value, copy=True))
                   for name, value in net_state["weights"].items()}
        self._load_weights(model, weights, "the stored weights")
        net = self._make_net(model, device, seed=0)
        net.initialize()
        net.history = History(json.loads(net_state["history"]))
        model.active_phases = tuple(model.phases)
        model.eval()
        return net

    def _load_weights(self, model, weights, what):
        try:
            model.load_state_dict(weights)
        except RuntimeError as exc:
            raise ValueError(
                f"{what} do not fit the {type(self).__name__} that its parameters describe "
                f"(were they changed with set_params after fit?): {exc}"
            ) from None

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        return tags


class CodeTransformerMixin(ClassNamePrefixFeaturesOutMixin, TransformerMixin):
    """A transformer to ``n_components`` codes named ``<classname>0, <classname>1, ...``.

    Output dtype follows the input's (float32 or float64).
    """

    @property
    def _n_features_out(self):
        check_is_fitted(self)
        return self.n_components

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags


class SemiSupervisedClassifierMixin(ClassifierMixin):
    """The ``y == -1`` convention of :mod:`sklearn.semi_supervised`, shared by skae's classifiers.

    ``classes_`` holds the labels other than -1; ``score`` skips unlabeled rows. Subclasses
    implement ``_class_logits(model, batch)``.
    """

    def _validate_y(self, X, y):
        """Returns ``(y_encoded, labeled_mask)``: class indices for labeled rows, -1 elsewhere."""
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y is None "
                "(give class labels, with -1 for unlabeled rows)"
            )
        y = check_array(y, ensure_2d=False, dtype=None, input_name="y")
        y = column_or_1d(y, warn=True)
        check_consistent_length(X, y)
        unlabeled = unlabeled_mask(y)
        labeled = ~unlabeled
        if not labeled.any():
            raise ValueError(
                "y has no labeled rows: every entry is -1. At least one labeled row per class "
                "is needed."
            )
        check_classification_targets(y[labeled])
        present = np.unique(y[labeled])
        if self.classes is None:
            classes = present
        else:
            classes = np.unique(np.asarray(self.classes))
            unknown = np.setdiff1d(present, classes)
            if unknown.size:
                raise ValueError(f"y has labels {unknown.tolist()} not in classes={self.classes!r}")
            missing = np.setdiff1d(classes, present)
            if missing.size:
                raise ValueError(
                    f"classes {missing.tolist()} have no labeled row in y; every class needs "
                    "at least one labeled example"
                )
        if len(classes) < 2:
            raise ValueError(
                f"{type(self).__name__} needs labeled rows of at least 2 classes, but they "
                f"contain only one class: {classes.tolist()}"
            )
        if self._warm_starting() and not np.array_equal(classes, self.classes_):
            raise ValueError(
                "warm_start can only be used where y has the same classes as in the previous "
                f"call to fit. Previous classes: {self.classes_.tolist()}, current: "
                f"{classes.tolist()}"
            )
        self.classes_ = classes
        y_enc = np.full(len(y), -1, dtype=np.int64)
        y_enc[labeled] = np.searchsorted(self.classes_, y[labeled])
        return y_enc, labeled

    def _semi_supervised_dataset(self, X, y_enc, labeled, device, seed):
        X_t = self._tensor(X, device)
        lab = torch.as_tensor(np.flatnonzero(labeled), device=device)
        y_lab = torch.as_tensor(y_enc[labeled], device=device)
        return SemiSupervisedDataset(X_t, X_t[lab], y_lab, self.batch_size, seed)

    def _fit_semi_supervised(self, X, y_enc, labeled, *, stages=None):
        """Train on all rows (labeled minibatches cycled), then check the fit did not collapse.

        A model that gives every labeled training row the same class (they span at least two)
        learned nothing from them: it collapsed (e.g. the adversarial phases overpowered the
        supervised one early) or stopped too early. That is warned about, not returned
        silently.
        """
        self._fit_net(
            lambda device, seed: self._semi_supervised_dataset(X, y_enc, labeled, device, seed),
            stages=stages,
        )
        pred = self._forward(self._class_logits, X[labeled]).argmax(axis=1)
        if np.all(pred == pred[0]):
            label = self.classes_[int(pred[0]):int(pred[0]) + 1].tolist()[0]
            warnings.warn(
                f"{type(self).__name__} did not learn its labeled rows: it predicts class "
                f"{label!r} for all {len(pred)} of them, which span "
                f"{np.unique(y_enc[labeled]).size} classes (training collapsed, or stopped "
                "too early). Try more epochs, a lower `lr` or activation='leaky_relu'.",
                ConvergenceWarning,
            )
        return self

    def predict_proba(self, X):
        """Class probabilities of X, shape ``(n_samples, n_classes)``."""
        X = self._validate_X(X, reset=False)
        logits = self._forward(self._class_logits, X)
        logits = logits.astype(np.float64)
        logits -= logits.max(axis=1, keepdims=True)
        proba = np.exp(logits)
        return proba / proba.sum(axis=1, keepdims=True)

    def predict_log_proba(self, X):
        """Logarithm of :meth:`predict_proba`."""
        return np.log(self.predict_proba(X))

    def predict(self, X):
        """The most probable class of each row of X."""
        check_is_fitted(self)
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]

    def score(self, X, y, sample_weight=None):
        """Accuracy on the labeled rows (``y != -1``); unlabeled rows are ignored."""
        return labeled_accuracy_score(y, self.predict(X), sample_weight=sample_weight)
