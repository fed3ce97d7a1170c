"""Figures of fitted skae estimators (matplotlib, the ``plot`` extra: ``pip install skae[plot]``).

Every function takes a fitted estimator (and data where it needs some) and returns a
:class:`matplotlib.figure.Figure`, created with :mod:`matplotlib.pyplot` so that notebooks show
it and scripts can ``fig.savefig(...)`` it; close it with ``plt.close(fig)`` when done.

- :func:`plot_reconstructions`: inputs above their reconstructions;
- :func:`plot_samples`: generated samples; for :class:`~skae.AAEClassifier`, every class drawn in
  shared styles (the content/style split);
- :func:`plot_codes`: the codes in 2-D, coloured by label;
- :func:`plot_training_curves`: every training loss of the net's history, per epoch.

Rows are drawn as images when the estimator was fitted on images ``(n, H, W)`` or
``(n, C, H, W)``, or when their number of features is a square (64 for 8x8 digits, 784 for
28x28 MNIST); otherwise as line profiles of their features. Pass ``image_shape`` to choose.
"""

import inspect
import math

import numpy as np

try:
    import matplotlib.pyplot as plt
except ImportError as exc:  # pragma: no cover - exercised only without matplotlib
    raise ImportError(
        "skae.plotting needs matplotlib: pip install 'skae[plot]' (or pip install matplotlib)"
    ) from exc

from sklearn.utils import check_random_state
from sklearn.utils.validation import check_array, check_is_fitted

__all__ = ["plot_codes", "plot_reconstructions", "plot_samples", "plot_training_curves"]

#: readable names of the losses recorded by skae's nets (``"<phase>_loss"``)
LOSS_NAMES = {
    "recon_loss": "reconstruction",
    "elbo_loss": "negative ELBO",
    "disc_loss": "discriminator",
    "gen_loss": "generator",
    "sup_loss": "supervised",
    "valid_loss": "validation",
}


# --- helpers ----------------------------------------------------------------------------------
def _image_shape(estimator, n_features, image_shape):
    """``(H, W)`` or ``(H, W, C)`` to draw a row as, or None to draw it as a line profile."""
    if image_shape is not None:
        shape = tuple(int(s) for s in image_shape)
        if math.prod(shape) != n_features:
            raise ValueError(
                f"image_shape={image_shape!r} holds {math.prod(shape)} values, but the rows "
                f"have {n_features}"
            )
        return shape
    input_shape = tuple(getattr(estimator, "input_shape_", ()))
    if len(input_shape) == 2:
        return input_shape
    if len(input_shape) == 3:
        c, h, w = input_shape
        return (h, w) if c == 1 else (c, h, w)
    side = math.isqrt(n_features)
    return (side, side) if side > 1 and side * side == n_features else None


def _as_image(row, shape):
    img = np.asarray(row, dtype=float).reshape(shape)
    if img.ndim == 3:  # (C, H, W): RGB if 3 channels, else the first channel
        img = np.moveaxis(img, 0, -1) if img.shape[0] == 3 else img[0]
    return img


def _draw(ax, row, shape, vmin, vmax, cmap):
    """Draw one row in ``ax``: an image, or a line profile of its features."""
    if shape is None:
        ax.plot(np.ravel(row), linewidth=0.8)
        ax.set_ylim(vmin, vmax)
        ax.set_xticks([])
        ax.tick_params(labelsize="x-small")
        return
    img = _as_image(row, shape)
    if img.ndim == 3:
        ax.imshow(np.clip((img - vmin) / max(vmax - vmin, 1e-12), 0, 1))
    else:
        ax.imshow(img, cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])


def _range(*arrays):
    lo = min(float(np.min(a)) for a in arrays)
    hi = max(float(np.max(a)) for a in arrays)
    return lo, hi if hi > lo else lo + 1.0


def _grid(n_rows, n_cols, cell=1.0, **kwargs):
    fig, axes = plt.subplots(
        n_rows, n_cols, figsize=(max(n_cols * cell, 3.0), n_rows * cell + 0.6),
        squeeze=False, **kwargs,
    )
    return fig, axes


def _needs(estimator, methods, function):
    missing = [m for m in methods if not hasattr(estimator, m)]
    if missing:
        raise TypeError(
            f"{function} needs an estimator with {' and '.join(methods)} (such as AutoEncoder, "
            f"VAE, AAEClassifier or PCA); {type(estimator).__name__} has no "
            f"{' or '.join(missing)}"
        )


# --- reconstructions --------------------------------------------------------------------------
def plot_reconstructions(estimator, X, *, n_samples=10, image_shape=None, cmap="gray_r"):
    """Inputs (top row) above their reconstructions (bottom row).

    The reconstruction is ``inverse_transform(transform(X))``. For a classifier whose
    ``inverse_transform`` takes the class (:class:`~skae.AAEClassifier`), the predicted class is
    used, so a wrong reconstruction also shows a wrong prediction.

    Parameters
    ----------
    estimator : fitted estimator
        With ``transform`` and ``inverse_transform``: :class:`~skae.AutoEncoder`,
        :class:`~skae.VAE`, :class:`~skae.AAEClassifier`, or e.g.
        :class:`sklearn.decomposition.PCA` for comparison.
    X : array-like of shape (n_samples, ...)
        Rows to reconstruct; the first ``n_samples`` are drawn.
    n_samples : int, default=10
        Number of rows (columns of the figure).
    image_shape : tuple of int, default=None
        Shape to draw each row as, e.g. ``(8, 8)``; None infers it (see the module docstring).
    cmap : str, default="gray_r"
        Colormap of grey-level images.

    Returns
    -------
    fig : matplotlib.figure.Figure
        Two rows of ``n_samples`` axes.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skae import AutoEncoder
    >>> from skae.plotting import plot_reconstructions
    >>> X = load_digits().data / 16.0
    >>> ae = AutoEncoder(n_components=8, max_epochs=2, random_state=0).fit(X)
    >>> fig = plot_reconstructions(ae, X, n_samples=6)
    >>> len(fig.axes)
    12
    """
    _needs(estimator, ("transform", "inverse_transform"), "plot_reconstructions")
    check_is_fitted(estimator)
    X = np.asarray(X)[:n_samples]
    codes = estimator.transform(X)
    params = inspect.signature(estimator.inverse_transform).parameters
    if "y" in params and hasattr(estimator, "predict"):
        X_rec = estimator.inverse_transform(codes, y=estimator.predict(X))
    else:
        X_rec = estimator.inverse_transform(codes)
    X_flat = X.reshape(len(X), -1).astype(float)
    X_rec = np.asarray(X_rec).reshape(len(X), -1)
    shape = _image_shape(estimator, X_flat.shape[1], image_shape)
    vmin, vmax = _range(X_flat, X_rec) if shape is None else _range(X_flat)
    fig, axes = _grid(2, len(X_flat), sharey=shape is None)
    for j in range(len(X_flat)):
        _draw(axes[0, j], X_flat[j], shape, vmin, vmax, cmap)
        _draw(axes[1, j], X_rec[j], shape, vmin, vmax, cmap)
    axes[0, 0].set_ylabel("input", fontsize="small")
    axes[1, 0].set_ylabel("reconstruction", fontsize="small")
    fig.suptitle(f"{type(estimator).__name__}: inputs and reconstructions", fontsize="medium")
    return fig


# --- samples ----------------------------------------------------------------------------------
def plot_samples(estimator, n_samples=16, *, n_styles=5, n_cols=None, random_state=None,
                 image_shape=None, cmap="gray_r"):
    """Samples generated by ``estimator.sample``.

    For a generator of any class (:class:`~skae.VAE`, :class:`~skae.GANClassifier`), a grid of
    ``n_samples`` draws. For a model with a separate style code (:class:`~skae.AAEClassifier`),
    ``n_styles`` rows: each row is one style ``z ~ N(0, I)`` rendered in every class, so that
    a column holds one class in different styles and a row one style across classes.

    Parameters
    ----------
    estimator : fitted estimator
        With a ``sample`` method.
    n_samples : int, default=16
        Number of samples of a generator without a style code.
    n_styles : int, default=5
        Number of styles (rows) of a model with a style code.
    n_cols : int, default=None
        Columns of the grid of samples; None makes it roughly square. Ignored with a style
        code (one column per class).
    random_state : int, RandomState instance or None, default=None
        Seeds the draws.
    image_shape : tuple of int, default=None
        Shape to draw each sample as; None infers it.
    cmap : str, default="gray_r"
        Colormap of grey-level images.

    Returns
    -------
    fig : matplotlib.figure.Figure
        ``n_samples`` axes (grid cells left empty are removed), or ``n_styles * n_classes``.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skae import VAE
    >>> from skae.plotting import plot_samples
    >>> X = load_digits().data / 16.0
    >>> vae = VAE(n_components=4, max_epochs=2, random_state=0).fit(X)
    >>> len(plot_samples(vae, n_samples=8, random_state=0).axes)
    8
    """
    _needs(estimator, ("sample",), "plot_samples")
    check_is_fitted(estimator)
    name = type(estimator).__name__
    if "style" in inspect.signature(estimator.sample).parameters and hasattr(estimator, "classes_"):
        classes = estimator.classes_
        rng = check_random_state(random_state)
        styles = rng.standard_normal((n_styles, estimator.n_components))
        rows = [estimator.sample(len(classes), y=classes, style=s)[0] for s in styles]
        samples = np.concatenate(rows).reshape(n_styles * len(classes), -1)
        shape = _image_shape(estimator, samples.shape[1], image_shape)
        vmin, vmax = _range(samples)
        fig, axes = _grid(n_styles, len(classes), sharey=shape is None)
        for i in range(n_styles):
            for j, label in enumerate(classes):
                _draw(axes[i, j], samples[i * len(classes) + j], shape, vmin, vmax, cmap)
                if i == 0:
                    axes[i, j].set_title(str(label), fontsize="small")
            axes[i, 0].set_ylabel(f"style {i + 1}", fontsize="small")
        fig.suptitle(f"{name}: each row one style, each column one class", fontsize="medium")
        return fig

    out = estimator.sample(n_samples, random_state=random_state)
    samples = out[0] if isinstance(out, tuple) else out
    samples = np.asarray(samples).reshape(n_samples, -1)
    shape = _image_shape(estimator, samples.shape[1], image_shape)
    n_cols = n_cols or math.ceil(math.sqrt(n_samples))
    n_rows = math.ceil(n_samples / n_cols)
    vmin, vmax = _range(samples)
    fig, axes = _grid(n_rows, n_cols, sharey=shape is None)
    for k, ax in enumerate(axes.flat):
        if k < n_samples:
            _draw(ax, samples[k], shape, vmin, vmax, cmap)
        else:
            ax.remove()
    fig.suptitle(f"{name}: {n_samples} samples", fontsize="medium")
    return fig


# --- codes ------------------------------------------------------------------------------------
def plot_codes(estimator, X, y=None, *, max_points=5000, random_state=0):
    """The codes ``transform(X)`` in 2-D, coloured by label.

    Codes with more than two dimensions are projected on their first two principal components
    (the axes say so). Rows with ``y == -1`` (unlabeled) are grey.

    Parameters
    ----------
    estimator : fitted estimator
        With ``transform``: :class:`~skae.AutoEncoder`, :class:`~skae.VAE` (posterior means),
        :class:`~skae.AAEClassifier` (style codes), or any scikit-learn transformer.
    X : array-like of shape (n_samples, ...)
        Rows to encode.
    y : array-like of shape (n_samples,), default=None
        Labels to colour by (up to 20 distinct values get a legend); -1 marks unlabeled rows.
    max_points : int, default=5000
        Draw at most this many rows (a random subset).
    random_state : int, default=0
        Seeds the subset and the projection.

    Returns
    -------
    fig : matplotlib.figure.Figure
        One axes.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sklearn.decomposition import PCA
    >>> from skae.plotting import plot_codes
    >>> X, y = load_digits(return_X_y=True)
    >>> fig = plot_codes(PCA(n_components=2).fit(X), X, y)
    >>> len(fig.axes)
    1
    """
    _needs(estimator, ("transform",), "plot_codes")
    check_is_fitted(estimator)
    X = np.asarray(X)
    rng = np.random.RandomState(random_state)
    keep = np.sort(rng.permutation(len(X))[:max_points]) if len(X) > max_points else slice(None)
    codes = check_array(estimator.transform(X[keep]), dtype=float)
    labels = None if y is None else np.asarray(y)[keep]
    name = type(estimator).__name__
    if codes.shape[1] > 2:
        from sklearn.decomposition import PCA

        codes = PCA(n_components=2, random_state=random_state).fit_transform(codes)
        xlabel, ylabel = "code PC 1", "code PC 2"
        title = f"{name}: codes ({estimator.transform(X[:1]).shape[1]}-D) projected on 2 PCs"
    elif codes.shape[1] == 2:
        xlabel, ylabel, title = "code 1", "code 2", f"{name}: codes"
    else:
        codes = np.column_stack([codes[:, 0], rng.uniform(-0.5, 0.5, len(codes))])
        xlabel, ylabel, title = "code 1", "(jitter)", f"{name}: codes"

    fig, ax = plt.subplots(figsize=(6, 5))
    if labels is None:
        ax.scatter(codes[:, 0], codes[:, 1], s=6, alpha=0.7)
    else:
        unlabeled = labels.astype(str) == "-1"
        if unlabeled.any():
            ax.scatter(codes[unlabeled, 0], codes[unlabeled, 1], s=4, c="lightgrey",
                       label="unlabeled")
        values = np.unique(labels[~unlabeled])
        cmap = plt.get_cmap("tab10" if len(values) <= 10 else "tab20")
        if len(values) <= 20:
            for k, value in enumerate(values):
                rows = ~unlabeled & (labels == value)
                ax.scatter(codes[rows, 0], codes[rows, 1], s=6, color=cmap(k % cmap.N),
                           label=str(value))
            ax.legend(markerscale=2, fontsize="small", loc="best",
                      ncols=2 if len(values) > 10 else 1)
        else:
            ax.scatter(codes[~unlabeled, 0], codes[~unlabeled, 1], s=6,
                       c=labels[~unlabeled].astype(float), cmap="viridis")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize="medium")
    fig.tight_layout()
    return fig


# --- training curves --------------------------------------------------------------------------
def _history(estimator):
    history = getattr(estimator, "history", None)
    if history is None:
        net = getattr(estimator, "net_", None)
        if net is None:
            raise TypeError(
                "plot_training_curves needs a fitted skae estimator (with a net_) or a skorch "
                f"net; got {type(estimator).__name__}"
            )
        history = net.history
    return history


def plot_training_curves(estimator, *, losses=None, log_scale=False):
    """One panel per training loss of the net's history, against the epoch.

    skae's nets record each phase's loss per epoch as ``"<phase>_loss"``: reconstruction
    (``recon_loss``), negative ELBO (``elbo_loss``), discriminator (``disc_loss``), generator
    (``gen_loss``), supervised (``sup_loss``). ``train_loss`` repeats the first phase's and is
    left out. A loss recorded in some epochs only (the stages of
    :class:`~skae.AutoEncoderClassifier`) is drawn over those epochs.

    Parameters
    ----------
    estimator : fitted skae estimator or skorch net
        Its ``net_.history`` (or ``history``) is read.
    losses : list of str, default=None
        History keys to draw; None draws every ``*_loss`` key but ``train_loss``.
    log_scale : bool, default=False
        Logarithmic y axes (for losses that stay positive).

    Returns
    -------
    fig : matplotlib.figure.Figure
        One axes per loss.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skae import AutoEncoder
    >>> from skae.plotting import plot_training_curves
    >>> X = load_digits().data / 16.0
    >>> ae = AutoEncoder(max_epochs=3, random_state=0).fit(X)
    >>> fig = plot_training_curves(ae)
    >>> [ax.get_title() for ax in fig.axes]
    ['reconstruction (recon_loss)']
    """
    history = _history(estimator)
    rows = list(history)
    if not rows:
        raise ValueError("the history is empty: fit the estimator first")
    if losses is None:
        seen = []
        for row in rows:
            seen += [k for k in row if k.endswith("_loss") and k != "train_loss" and k not in seen]
        losses = seen or ["train_loss"]
    else:
        losses = list(losses)
        unknown = [k for k in losses if not any(k in row for row in rows)]
        if unknown:
            raise ValueError(f"losses {unknown} are not in the history")
    n_cols = 2 if len(losses) == 4 else min(len(losses), 3)
    n_rows = math.ceil(len(losses) / n_cols)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(3.4 * n_cols, 2.8 * n_rows),
                             squeeze=False)
    for ax, key in zip(axes.flat, losses):
        epochs = [row.get("epoch", i + 1) for i, row in enumerate(rows) if key in row]
        values = [row[key] for row in rows if key in row]
        ax.plot(epochs, values, marker="." if len(values) < 30 else None)
        ax.set_title(f"{LOSS_NAMES.get(key, key)} ({key})", fontsize="medium")
        ax.set_xlabel("epoch")
        if log_scale:
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
    for ax in axes.flat[len(losses):]:
        ax.remove()
    fig.suptitle(f"{type(estimator).__name__}: training losses per epoch", fontsize="medium")
    fig.tight_layout()
    return fig
