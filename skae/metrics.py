"""Metrics for semi-supervised targets.

Semi-supervised estimators follow the :mod:`sklearn.semi_supervised`
convention: a target ``y`` marks each unlabeled sample with ``-1``. The
functions in this module score predictions on the labeled samples only.
"""

import numbers

import numpy as np
from sklearn.metrics import accuracy_score, log_loss
from sklearn.utils.validation import check_consistent_length, column_or_1d

__all__ = [
    "labeled_accuracy_score",
    "labeled_log_loss",
    "unlabeled_mask",
]

UNLABELED = -1


def _as_1d_target(y):
    """Return `y` as a 1d ndarray, without losing a ``-1`` among strings.

    ``np.asarray(["cat", -1])`` silently turns ``-1`` into the string
    ``"-1"``; a Python sequence is therefore converted with ``dtype=object``
    when NumPy would otherwise infer a string dtype.
    """
    if not hasattr(y, "dtype") and not hasattr(y, "__array__"):
        y_arr = np.asarray(y)
        if y_arr.ndim == 1 and y_arr.dtype.kind in "USO":
            y_arr = np.empty(len(y), dtype=object)
            y_arr[:] = list(y)
        y = y_arr
    return column_or_1d(y, dtype=None, warn=True)


def _is_unlabeled_value(value):
    # `value == -1` is only trusted for real numbers: strings never mark an
    # unlabeled sample, and `pd.NA == -1` or an array would not give a bool.
    return (
        isinstance(value, numbers.Real)
        and not isinstance(value, (bool, np.bool_))
        and value == UNLABELED
    )


def unlabeled_mask(y):
    """Boolean mask of the unlabeled samples of a semi-supervised target.

    A sample is unlabeled when its target is ``-1``, the convention of
    :mod:`sklearn.semi_supervised`.

    Parameters
    ----------
    y : array-like of shape (n_samples,)
        Target values. Integer and floating point targets mark unlabeled
        samples with ``-1``. Targets holding strings must have ``dtype=object``
        to hold ``-1`` at all: an array of a NumPy string dtype has no
        unlabeled sample (its ``"-1"`` is a class name). Object targets are
        compared element by element, and only real numbers equal to ``-1``
        count as unlabeled. Boolean, datetime and timedelta targets have no
        unlabeled sample. A Python list mixing strings and ``-1`` is read as
        an object array.

    Returns
    -------
    mask : ndarray of shape (n_samples,), dtype=bool
        ``True`` where the sample is unlabeled.

    See Also
    --------
    labeled_accuracy_score : Accuracy on the labeled samples.
    labeled_log_loss : Log loss on the labeled samples.

    Examples
    --------
    >>> import numpy as np
    >>> from skae.metrics import unlabeled_mask
    >>> unlabeled_mask([0, -1, 2, -1])
    array([False,  True, False,  True])
    >>> unlabeled_mask(np.array(["cat", -1, "dog"], dtype=object))
    array([False,  True, False])
    >>> unlabeled_mask(np.array(["cat", "-1"]))
    array([False, False])
    """
    y = _as_1d_target(y)
    kind = y.dtype.kind
    if kind in "iufc":
        return np.asarray(y == UNLABELED, dtype=bool)
    if kind == "O":
        return np.fromiter(
            (_is_unlabeled_value(value) for value in y), dtype=bool, count=y.shape[0]
        )
    # bool, strings, bytes, datetime64, timedelta64, void: never -1.
    return np.zeros(y.shape[0], dtype=bool)


def _labeled_rows(y_true):
    """Validate `y_true` and return it with the mask of its labeled rows."""
    y_true = _as_1d_target(y_true)
    labeled = ~unlabeled_mask(y_true)
    if not labeled.any():
        raise ValueError(
            "y_true has no labeled sample: every target is -1 (unlabeled). "
            "The metric is only defined on labeled samples."
        )
    return y_true, labeled


def labeled_accuracy_score(y_true, y_pred, *, sample_weight=None):
    """Accuracy classification score on the labeled samples only.

    Samples whose true target is ``-1`` (unlabeled, see
    :func:`unlabeled_mask`) are left out, and
    :func:`sklearn.metrics.accuracy_score` is computed on the others.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        Ground truth labels, ``-1`` for the unlabeled samples.

    y_pred : array-like of shape (n_samples,)
        Predicted labels, as returned by a classifier's ``predict``.

    sample_weight : array-like of shape (n_samples,), default=None
        Sample weights. The weights of the unlabeled samples are ignored.

    Returns
    -------
    score : float
        The fraction of correctly classified labeled samples (weighted by
        `sample_weight` if given).

    Raises
    ------
    ValueError
        If `y_true` has no labeled sample.

    See Also
    --------
    sklearn.metrics.accuracy_score : Accuracy on all the samples.
    labeled_log_loss : Log loss on the labeled samples.
    unlabeled_mask : Mask of the unlabeled samples.

    Examples
    --------
    >>> from skae.metrics import labeled_accuracy_score
    >>> y_true = [0, -1, 1, 1, -1]
    >>> y_pred = [0, 1, 1, 0, 0]
    >>> labeled_accuracy_score(y_true, y_pred)
    0.666...
    """
    y_true, labeled = _labeled_rows(y_true)
    y_pred = _as_1d_target(y_pred)
    check_consistent_length(y_true, y_pred, sample_weight)
    if sample_weight is not None:
        sample_weight = column_or_1d(sample_weight)[labeled]
    return float(
        accuracy_score(y_true[labeled], y_pred[labeled], sample_weight=sample_weight)
    )


def labeled_log_loss(y_true, y_proba, *, labels=None, sample_weight=None):
    """Log loss (cross-entropy) on the labeled samples only.

    Samples whose true target is ``-1`` (unlabeled, see
    :func:`unlabeled_mask`) are left out, and
    :func:`sklearn.metrics.log_loss` is computed on the others.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        Ground truth labels, ``-1`` for the unlabeled samples.

    y_proba : array-like of shape (n_samples, n_classes) or (n_samples,)
        Predicted probabilities, as returned by a classifier's
        ``predict_proba``. A 1d array is the probability of the positive
        class of a binary problem.

    labels : array-like of shape (n_classes,), default=None
        The labels of the columns of `y_proba`, usually the classifier's
        ``classes_``. If None, they are inferred from the labeled samples of
        `y_true`, which fails when a class has no labeled sample in `y_true`:
        pass `labels` whenever `y_true` may miss a class.

    sample_weight : array-like of shape (n_samples,), default=None
        Sample weights. The weights of the unlabeled samples are ignored.

    Returns
    -------
    loss : float
        The mean negative log-likelihood of the labeled samples (weighted by
        `sample_weight` if given).

    Raises
    ------
    ValueError
        If `y_true` has no labeled sample.

    See Also
    --------
    sklearn.metrics.log_loss : Log loss on all the samples.
    labeled_accuracy_score : Accuracy on the labeled samples.
    unlabeled_mask : Mask of the unlabeled samples.

    Examples
    --------
    >>> from skae.metrics import labeled_log_loss
    >>> y_true = [0, -1, 1]
    >>> y_proba = [[0.8, 0.2], [0.5, 0.5], [0.4, 0.6]]
    >>> round(labeled_log_loss(y_true, y_proba, labels=[0, 1]), 4)
    0.367
    """
    y_true, labeled = _labeled_rows(y_true)
    y_proba = np.asarray(y_proba)
    check_consistent_length(y_true, y_proba, sample_weight)
    if sample_weight is not None:
        sample_weight = column_or_1d(sample_weight)[labeled]
    # `y_proba` is passed by position: its keyword is `y_pred` before
    # scikit-learn 1.9.
    return float(
        log_loss(
            y_true[labeled],
            y_proba[labeled],
            sample_weight=sample_weight,
            labels=labels,
        )
    )
