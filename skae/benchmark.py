"""The semi-supervised benchmark: skae's classifiers beside sklearn's baselines.

Used by ``python -m skae benchmark`` and ``benchmarks/semi_supervised.py``. Each model is fitted
on the training images with all but ``n_labeled`` labels (a class-balanced draw per seed) set
to -1, and scored on the held-out test set.
"""

import time
from collections import Counter
from itertools import product
from numbers import Integral
from pathlib import Path

import numpy as np
from skorch.callbacks import Callback

from .base import forward_in_batches

__all__ = ["PUBLISHED", "MODELS", "TestError", "load_split", "make_model", "takes_images",
           "run_semi_supervised", "summarize", "format_table"]

#: Published test errors (%) on MNIST, by (model, number of labels).
PUBLISHED = {
    ("AAEClassifier", 100): (1.90, "Makhzani et al. 2015, table 2"),
    ("AAEClassifier", 1000): (1.60, "Makhzani et al. 2015, table 2"),
    ("GANClassifier", 100): (0.93, "Salimans et al. 2016, table 1"),
}

#: Every model the benchmark knows, skae's first.
MODELS = (
    "AAEClassifier",
    "GANClassifier",
    "AutoEncoderClassifier",
    "LabelSpreading",
    "SelfTrainingClassifier",
    "MLPClassifier(labeled only)",
)


def load_split(dataset="mnist", data_dir=None, *, flatten=True):
    """``(X_train, y_train, X_test, y_test)``, float32 in [0, 1].

    ``"mnist"``: the 60,000 / 10,000 split of the original files in ``data_dir``.
    ``"digits"``: sklearn's embedded 8x8 digits, a stratified 70 / 30 split.
    ``flatten=False`` gives images ``(n, H, W)`` instead of rows of pixels.
    """
    if dataset == "mnist":
        from .datasets import load_mnist

        return load_mnist(data_dir, return_X_y=True, flatten=flatten)
    if dataset == "digits":
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split

        X, y = load_digits(return_X_y=True)
        X = (X / 16.0).astype(np.float32)
        X_train, X_test, y_train, y_test = train_test_split(
            X if flatten else X.reshape(-1, 8, 8), y, test_size=0.3, stratify=y, random_state=0
        )
        return X_train, y_train, X_test, y_test
    raise ValueError(f"unknown dataset {dataset!r}: choose 'mnist' or 'digits'")


def make_model(name, *, dataset="mnist", device="cpu", random_state=0, max_epochs=None,
               verbose=0, cuda_graphs=True):
    """The benchmark's configuration of model ``name`` (documented defaults, not per-seed tuning).

    ``max_epochs`` overrides the deep models' epochs (for short CPU runs); ``cuda_graphs`` is
    the deep models' parameter (False: time the step without CUDA graphs).
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier
    from sklearn.semi_supervised import LabelSpreading, SelfTrainingClassifier

    from . import AAEClassifier, AutoEncoderClassifier, GANClassifier

    small = dataset == "digits"
    common = {"device": device, "random_state": random_state, "verbose": verbose,
              "cuda_graphs": cuda_graphs}
    if name == "AAEClassifier":
        if small:
            params = {"hidden_layer_sizes": (256, 256), "discriminator_hidden_sizes": (128,),
                      "max_epochs": 100}
        else:  # MNIST: the estimator's defaults (50 epochs), and shifts of its images
            params = {"max_shift": 2.0}
        # the paper's MLP, on rows of pixels or on images alike
        return AAEClassifier(loss="bce", backbone="mlp",
                             **{**params, **common, **_epochs(max_epochs)})
    if name == "GANClassifier":
        if small:
            params = {"max_epochs": 100}
        else:  # MNIST: shifts of its images, 50 epochs (the authors' 300 until 2026-12-02:
            # at the constant rate the shifted model drifts back up after about 60 epochs), and
            # the guard of the average (since 2026-12-07: it kept one draw's late swing out)
            params = {"max_epochs": 50, "max_shift": 2.0, "ema_guard": 0.02}
        # the paper's MLP, on rows of pixels or on images alike
        return GANClassifier(backbone="mlp", **{**params, **common, **_epochs(max_epochs)})
    if name == "AutoEncoderClassifier":
        pretrain = 20 if max_epochs is None else max(1, max_epochs // 2)
        return AutoEncoderClassifier(loss="bce", pretrain_epochs=pretrain,
                                     **{**common, **_epochs(max_epochs)})
    if name == "LabelSpreading":
        return LabelSpreading(kernel="knn", n_neighbors=10, max_iter=100)
    if name == "SelfTrainingClassifier":
        return SelfTrainingClassifier(LogisticRegression(max_iter=200), threshold=0.9,
                                      max_iter=10)
    if name == "MLPClassifier(labeled only)":
        return MLPClassifier(hidden_layer_sizes=(256,), max_iter=1000, random_state=random_state)
    raise ValueError(f"unknown model {name!r}; choose from {', '.join(MODELS)}")


def takes_images(model):
    """Whether the configured ``model`` fits images ``(n, H, W)`` rather than rows of pixels:
    a convolutional backbone (``backbone="conv"``), or shifts, turns or warps of images
    (``max_shift``, ``max_rotation`` or ``max_warp`` > 0). sklearn's models take rows."""
    return getattr(model, "backbone", None) == "conv" or any(
        bool(getattr(model, name, 0)) for name in ("max_shift", "max_rotation", "max_warp"))


def _epochs(max_epochs):
    return {} if max_epochs is None else {"max_epochs": int(max_epochs)}


def run_semi_supervised(*, dataset="mnist", data_dir=None, n_labeled=100, seeds=1,
                        device="cpu", models=None, max_epochs=None, quiet=False,
                        callback=None, first_seed=0, eval_every=None,
                        checkpoint_dir=None, cuda_graphs=True, params=None):
    """Fit every model on every seed's labeled draw; returns one dict per (labels, model, seed).

    ``n_labeled`` is a number of labeled training rows or a list of them (the data is read
    once). The seeds are ``first_seed, ..., first_seed + seeds - 1``; each seeds both the
    labeled draw and the models.

    Each row holds ``model, n_labeled, seed, test_error`` (%), ``fit_seconds``,
    ``published`` (the paper's error, or None) and ``confusions``: the most frequent errors
    on the test set, ``(true class, predicted class, count)``, at most three, most frequent
    first (what an error is made of: e.g. 4s read as 9s). ``callback(row)`` is called after
    each fit.

    ``eval_every=N`` also scores skae's models on the test set every N epochs of the same
    training run (a callback; the timing then includes those evaluations): their rows get
    ``curve``, a list of ``(epoch, test_error)``, and ``curve_seconds``, the training time (s)
    up to each of those epochs without the evaluations (the sum of the epochs' ``dur``), and
    the epoch table of ``quiet=False`` shows a ``test_error`` column.

    ``checkpoint_dir`` makes long runs resumable: skae's models then train in chunks of
    ``eval_every`` epochs (``warm_start=True``; the optimizers restart at each chunk), and
    after each chunk the model, its test error curve and its fit time so far are saved there
    with joblib. Called again with the same arguments, it goes on from the saved chunk (and a
    finished run is only scored again).

    ``cuda_graphs=False`` trains skae's models without CUDA graphs (see ``make_model``).

    A model that takes images (``takes_images``: a convolutional backbone, or shifts of images
    with ``max_shift > 0``) is fitted and scored on images ``(n, H, W)``, the others on rows
    of pixels.

    ``params`` (a dict) sets parameters of the benchmark's configuration, each on every model
    that has it (e.g. ``{"lr_schedule": "constant"}`` for skae's models); a name that none of
    ``models`` has is a ``ValueError``.
    """
    from .datasets import make_semi_supervised

    if eval_every is not None and not (isinstance(eval_every, Integral) and eval_every >= 1):
        raise ValueError(f"eval_every must be a positive integer or None, got {eval_every!r}")
    models = MODELS if models is None else models
    params = dict(params or {})
    known = {name: set(make_model(name, dataset=dataset).get_params(deep=False))
             for name in models}
    unknown = [key for key in params if not any(key in names for names in known.values())]
    if unknown:
        raise ValueError(f"no model among {list(models)} has the parameters {unknown}")
    # images for the models that take them (takes_images), rows of pixels for the others
    images_train, y_train, images_test, y_test = load_split(dataset, data_dir, flatten=False)
    rows_train = images_train.reshape(len(images_train), -1)
    rows_test = images_test.reshape(len(images_test), -1)
    rows = []
    for n_labeled, seed in product(np.atleast_1d(n_labeled).tolist(),
                                   range(first_seed, first_seed + seeds)):
        y_semi = make_semi_supervised(y_train, n_labeled, random_state=seed)
        labeled = y_semi != -1
        for name in models:
            model = make_model(name, dataset=dataset, device=device, random_state=seed,
                               max_epochs=max_epochs, verbose=0 if quiet else 1,
                               cuda_graphs=cuda_graphs)
            model.set_params(**{k: v for k, v in params.items() if k in known[name]})
            deep = hasattr(model, "_class_logits")
            if takes_images(model):
                X_train, X_test = images_train, images_test
            else:
                X_train, X_test = rows_train, rows_test
            curve = curve_seconds = None
            if deep and checkpoint_dir is not None:
                path = Path(checkpoint_dir, f"{name}_{dataset}_{n_labeled}_{seed}.joblib")
                model, seconds, curve, curve_seconds = _fit_in_chunks(
                    model, X_train, y_semi, X_test, y_test, eval_every, path)
            else:
                if deep and eval_every:
                    model.set_params(callbacks=[TestError.for_fit(model, y_semi, X_test, y_test,
                                                                  eval_every)])
                start = time.perf_counter()
                if name == "MLPClassifier(labeled only)":
                    model.fit(X_train[labeled], y_semi[labeled])
                else:
                    model.fit(X_train, y_semi)
                seconds = time.perf_counter() - start
                if deep and eval_every:
                    curve = TestError.curve(model.net_)
                    curve_seconds = TestError.seconds(model.net_)
            predicted = model.predict(X_test)
            error = _test_error(y_test, predicted)
            published = PUBLISHED.get((name, n_labeled)) if dataset == "mnist" else None
            row = {
                "model": name, "dataset": dataset, "n_labeled": n_labeled, "seed": seed,
                "test_error": error, "fit_seconds": seconds,
                "epochs": getattr(model, "n_iter_", None),
                "published": published[0] if published else None,
                "confusions": top_confusions(y_test, predicted),
            }
            if curve is not None:
                row["curve"] = curve
                if curve_seconds is not None:
                    row["curve_seconds"] = curve_seconds
            rows.append(row)
            if callback is not None:
                callback(row)
    return rows


def top_confusions(y_true, y_pred, n=3):
    """The ``n`` most frequent errors as ``(true, predicted, count)``, most frequent first.

    Ties come in the order of their first occurrence; labels are Python scalars.

    Examples
    --------
    >>> top_confusions([4, 4, 4, 9, 3], [9, 9, 4, 4, 3])
    [(4, 9, 2), (9, 4, 1)]
    """
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    wrong = y_true != y_pred
    counts = Counter(zip(y_true[wrong].tolist(), y_pred[wrong].tolist()))
    return [(true, pred, count) for (true, pred), count in counts.most_common(n)]


def _test_error(y_test, predicted):
    """Test error (%) of the predictions ``predicted``."""
    return 100.0 * float(np.mean(predicted != y_test))


def _fit_in_chunks(model, X, y, X_test, y_test, chunk, path):
    """Train ``model`` for its ``max_epochs`` in chunks, saved to ``path`` after each one.

    Returns ``(model, fit_seconds, curve, curve_seconds)`` (the fit time summed up to each
    chunk); resumes from ``path`` when it exists.
    """
    import joblib

    total = model.max_epochs
    chunk = min(int(chunk or total), total)
    if path.exists():
        state = joblib.load(path)
        if state["total_epochs"] != total:
            raise ValueError(f"{path} is a run of {state['total_epochs']} epochs, not {total}: "
                             "remove it or use another checkpoint folder")
        state["model"].set_params(verbose=model.verbose)
        state.setdefault("curve_seconds", None)  # saved before it was kept: left out
    else:
        state = {"model": model, "total_epochs": total, "epochs": 0, "seconds": 0.0,
                 "curve": [], "curve_seconds": []}
    model = state["model"].set_params(warm_start=True)
    while state["epochs"] < total:
        epochs = min(chunk, total - state["epochs"])
        start = time.perf_counter()
        model.set_params(max_epochs=epochs).fit(X, y)
        state["seconds"] += time.perf_counter() - start
        state["epochs"] += epochs
        state["curve"].append((state["epochs"], _test_error(y_test, model.predict(X_test))))
        if state["curve_seconds"] is not None:
            state["curve_seconds"].append(state["seconds"])
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".partial")
        joblib.dump(state, partial)
        partial.replace(path)  # a run stopped while saving keeps the previous chunk
    return model, state["seconds"], state["curve"], state["curve_seconds"]


class TestError(Callback):
    """Record the test error (%) in the net's history every ``every`` epochs.

    ``y_index`` are the test labels as indices into the classifier's ``classes_``;
    ``class_logits(module, x)`` is the estimator's ``_class_logits``.
    """

    def __init__(self, X, y_index, class_logits, every=1):
        self.X = X
        self.y_index = y_index
        self.class_logits = class_logits
        self.every = every

    @classmethod
    def for_fit(cls, model, y_semi, X_test, y_test, every=1):
        """The callback for classifier ``model`` fitted on ``y_semi`` (-1: unlabeled)."""
        classes = np.unique(y_semi[y_semi != -1])
        return cls(X_test, np.searchsorted(classes, y_test), type(model)._class_logits, every)

    @staticmethod
    def curve(net):
        """``[(epoch, test error)]``: what the callback recorded in ``net.history``."""
        return [(e["epoch"], e["test_error"]) for e in net.history if "test_error" in e]

    @staticmethod
    def seconds(net):
        """The training time (s) up to each epoch of ``curve``: the sum of the epochs' ``dur``
        (skorch's epoch timer stops before the callback scores, so the scoring is left out)."""
        total, out = 0.0, []
        for epoch in net.history:
            total += epoch.get("dur", 0.0)
            if "test_error" in epoch:
                out.append(total)
        return out

    def on_epoch_end(self, net, **kwargs):
        if len(net.history) % self.every:
            return
        # the estimators' own inference path: the same batches as ``predict``
        pred = forward_in_batches(net.module_, net.device, self.class_logits, self.X).argmax(1)
        net.module_.train()
        net.history.record("test_error", 100.0 * float(np.mean(pred != self.y_index)))


def summarize(rows):
    """One dict per (model, labels): test error mean and std over seeds, fit time, published."""
    out = []
    for model, n in dict.fromkeys((r["model"], r["n_labeled"]) for r in rows):
        group = [r for r in rows if r["model"] == model and r["n_labeled"] == n]
        err = np.array([r["test_error"] for r in group])
        out.append({
            "model": model, "n_labeled": n, "seeds": len(group),
            "test_error": float(err.mean()),
            "test_error_std": float(err.std(ddof=1)) if len(err) > 1 else None,
            "published": group[0]["published"],
            "fit_seconds": float(np.mean([r["fit_seconds"] for r in group])),
        })
    return out


def format_table(rows):
    """A Markdown table of :func:`summarize`: test error (mean ± std over seeds) per model."""
    lines = ["| model | labels | seeds | test error (%) | published (%) | fit time (s) |",
             "|---|---|---|---|---|---|"]
    for r in summarize(rows):
        spread = "" if r["test_error_std"] is None else f" ± {r['test_error_std']:.2f}"
        published = "" if r["published"] is None else f"{r['published']:.2f}"
        lines.append(f"| {r['model']} | {r['n_labeled']} | {r['seeds']} | "
                     f"{r['test_error']:.2f}{spread} | {published} | {r['fit_seconds']:.0f} |")
    return "\n".join(lines)
