"""Model selection tools for semi-supervised targets.

Semi-supervised targets mark each unlabeled sample with ``-1``, the
convention of :mod:`sklearn.semi_supervised`. The scorers below score the
labeled samples only, and :class:`SemiSupervisedStratifiedKFold` makes sure
that every test fold holds labeled samples of every class.
"""

import warnings

import numpy as np
from sklearn.metrics import make_scorer
from sklearn.model_selection._split import _BaseKFold
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import type_of_target

from .metrics import (
    _as_1d_target,
    labeled_accuracy_score,
    labeled_log_loss,
    unlabeled_mask,
)

__all__ = [
    "SemiSupervisedStratifiedKFold",
    "labeled_accuracy_scorer",
    "labeled_log_loss_scorer",
]


labeled_accuracy_scorer = make_scorer(labeled_accuracy_score)
labeled_accuracy_scorer.__doc__ = """Scorer of the accuracy on the labeled samples.

Built with :func:`sklearn.metrics.make_scorer` from
:func:`skae.metrics.labeled_accuracy_score`: call it as
``labeled_accuracy_scorer(estimator, X, y)``, or pass it as ``scoring`` to
:class:`~sklearn.model_selection.GridSearchCV` or
:func:`~sklearn.model_selection.cross_validate`. Samples whose target is
``-1`` are ignored; it raises a ``ValueError`` when `y` has no labeled
sample.
"""


def labeled_log_loss_scorer(estimator, X, y_true, sample_weight=None):
    """Negative log loss of a fitted classifier on the labeled samples.

    The counterpart of scikit-learn's ``"neg_log_loss"`` scorer for
    semi-supervised targets: it computes :func:`skae.metrics.labeled_log_loss`
    on ``estimator.predict_proba(X)``, with the columns labeled by
    ``estimator.classes_``, and returns its opposite so that greater is
    better. Use it as ``scoring`` in
    :class:`~sklearn.model_selection.GridSearchCV` or
    :func:`~sklearn.model_selection.cross_validate`.

    Parameters
    ----------
    estimator : estimator object
        A fitted classifier with a ``predict_proba`` method. Its ``classes_``
        attribute, when present, gives the labels of the probability columns,
        so that a test set in which a class has no labeled sample is still
        scored correctly.

    X : array-like of shape (n_samples, n_features)
        Test samples.

    y_true : array-like of shape (n_samples,)
        True labels of `X`, ``-1`` for the unlabeled samples.

    sample_weight : array-like of shape (n_samples,), default=None
        Sample weights. The weights of the unlabeled samples are ignored.

    Returns
    -------
    score : float
        The negative log loss of the labeled samples.

    Raises
    ------
    ValueError
        If `y_true` has no labeled sample.

    See Also
    --------
    skae.metrics.labeled_log_loss : The log loss on the labeled samples.
    labeled_accuracy_scorer : Scorer of the accuracy on the labeled samples.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skae.model_selection import labeled_log_loss_scorer
    >>> X = np.array([[0.0], [1.0], [2.0], [3.0]])
    >>> clf = LogisticRegression().fit(X, [0, 0, 1, 1])
    >>> score = labeled_log_loss_scorer(clf, X, [0, -1, 1, -1])
    >>> bool(score < 0)
    True
    """
    y_proba = estimator.predict_proba(X)
    labels = getattr(estimator, "classes_", None)
    return -labeled_log_loss(
        y_true, y_proba, labels=labels, sample_weight=sample_weight
    )


class SemiSupervisedStratifiedKFold(_BaseKFold):
    """Stratified K-Fold cross-validator for semi-supervised targets.

    The labeled samples (``y != -1``) are split as
    :class:`~sklearn.model_selection.StratifiedKFold` splits them: each test
    fold holds about the same number of labeled samples of each class. The
    unlabeled samples (``y == -1``) are spread over the folds as
    :class:`~sklearn.model_selection.KFold` would, so that the test folds hold
    ``n_samples // n_splits`` or ``n_samples // n_splits + 1`` samples in all.

    With :class:`~sklearn.model_selection.StratifiedKFold` the unlabeled
    samples would count as one more class, and with
    :class:`~sklearn.model_selection.KFold` a test fold could receive few or
    no labeled samples of a class, both of which bias scores computed on the
    labeled samples only (see :data:`labeled_accuracy_scorer`).

    Parameters
    ----------
    n_splits : int, default=5
        Number of folds. Must be at least 2.

    shuffle : bool, default=False
        Whether to shuffle the samples of each class, and the unlabeled
        samples, before splitting them into folds. The samples within each
        split are not shuffled.

    random_state : int, RandomState instance or None, default=None
        When `shuffle` is True, `random_state` affects the ordering of the
        indices, which controls the randomness of each fold. Otherwise, leave
        `random_state` as `None`. Pass an int for reproducible output across
        multiple function calls. See :term:`Glossary <random_state>`.

    See Also
    --------
    sklearn.model_selection.StratifiedKFold : Stratified K-Fold on fully
        labeled targets.
    sklearn.model_selection.KFold : K-Fold without stratification.

    Notes
    -----
    With the same `n_splits`, `shuffle` and `random_state`, the labeled
    samples are assigned to the same folds as
    ``StratifiedKFold(n_splits, shuffle=shuffle, random_state=random_state)``
    assigns them when it splits the labeled samples alone.

    As with :class:`~sklearn.model_selection.StratifiedKFold`, a warning is
    raised when the least populated class has fewer labeled samples than
    `n_splits` (some test folds then miss that class), and a ``ValueError``
    when every class has.

    Examples
    --------
    >>> import numpy as np
    >>> from skae.model_selection import SemiSupervisedStratifiedKFold
    >>> X = np.zeros((8, 1))
    >>> y = np.array([0, 0, 1, 1, -1, -1, -1, -1])
    >>> cv = SemiSupervisedStratifiedKFold(n_splits=2)
    >>> cv.get_n_splits()
    2
    >>> print(cv)
    SemiSupervisedStratifiedKFold(n_splits=2, random_state=None, shuffle=False)
    >>> for i, (train_index, test_index) in enumerate(cv.split(X, y)):
    ...     print(f"Fold {i}:")
    ...     print(f"  Train: index={train_index}")
    ...     print(f"  Test:  index={test_index}")
    Fold 0:
      Train: index=[1 3 6 7]
      Test:  index=[0 2 4 5]
    Fold 1:
      Train: index=[0 2 4 5]
      Test:  index=[1 3 6 7]
    """

    def __init__(self, n_splits=5, *, shuffle=False, random_state=None):
        super().__init__(n_splits=n_splits, shuffle=shuffle, random_state=random_state)

    def _make_test_folds(self, X, y):
        """Return the test fold index of each sample."""
        rng = check_random_state(self.random_state)
        n_splits = self.n_splits
        y = _as_1d_target(y)
        unlabeled = unlabeled_mask(y)
        labeled_idx = np.flatnonzero(~unlabeled)
        if labeled_idx.size == 0:
            raise ValueError(
                "y has no labeled sample: every target is -1 (unlabeled). "
                f"{self.__class__.__name__} needs labeled samples to stratify."
            )
        y_labeled = y[labeled_idx]
        if y_labeled.dtype == object:
            # Once the -1 are left out, let NumPy infer the dtype of the
            # labels: type_of_target rejects objects other than strings.
            y_labeled = np.asarray(y_labeled.tolist())

        allowed_target_types = ("binary", "multiclass")
        type_of_target_y = type_of_target(y_labeled, input_name="y")
        if type_of_target_y not in allowed_target_types:
            raise ValueError(
                "Supported target types for the labeled samples are: "
                f"{allowed_target_types}. Got {type_of_target_y!r} instead."
            )

        # Encode the classes by order of appearance, as StratifiedKFold does,
        # so that relabelling the classes does not change the folds.
        _, y_idx, y_inv = np.unique(y_labeled, return_index=True, return_inverse=True)
        _, class_perm = np.unique(y_idx, return_inverse=True)
        y_encoded = class_perm[y_inv.reshape(-1)]

        n_classes = len(y_idx)
        y_counts = np.bincount(y_encoded, minlength=n_classes)
        min_groups = np.min(y_counts)
        if np.all(n_splits > y_counts):
            raise ValueError(
                f"n_splits={n_splits} cannot be greater than the number of labeled "
                "members in each class."
            )
        if n_splits > min_groups:
            warnings.warn(
                f"The least populated class in y has only {min_groups} labeled "
                f"members, which is less than n_splits={n_splits}.",
                UserWarning,
                stacklevel=2,
            )

        # Labeled samples: the allocation of StratifiedKFold, a round robin
        # over the sorted classes. Earlier folds receive the extra samples.
        y_order = np.sort(y_encoded)
        allocation = np.asarray(
            [
                np.bincount(y_order[i::n_splits], minlength=n_classes)
                for i in range(n_splits)
            ]
        )
        test_folds = np.empty(len(y), dtype="i")
        labeled_folds = np.empty(len(y_labeled), dtype="i")
        for k in range(n_classes):
            folds_for_class = np.arange(n_splits).repeat(allocation[:, k])
            if self.shuffle:
                rng.shuffle(folds_for_class)
            labeled_folds[y_encoded == k] = folds_for_class
        test_folds[labeled_idx] = labeled_folds

        # Unlabeled samples: fill the folds up to n_samples // n_splits (+ 1
        # for the first n_samples % n_splits folds). The labeled fold sizes
        # are ceil((n_labeled - i) / n_splits), never above these targets.
        n_samples = len(y)
        fold_sizes = np.full(n_splits, n_samples // n_splits, dtype=int)
        fold_sizes[: n_samples % n_splits] += 1
        unlabeled_sizes = fold_sizes - allocation.sum(axis=1)
        folds_for_unlabeled = np.arange(n_splits).repeat(unlabeled_sizes)
        if self.shuffle:
            rng.shuffle(folds_for_unlabeled)
        test_folds[unlabeled] = folds_for_unlabeled
        return test_folds

    def _iter_test_masks(self, X, y=None, groups=None):
        test_folds = self._make_test_folds(X, y)
        for i in range(self.n_splits):
            yield test_folds == i

    def split(self, X, y, groups=None):
        """Generate indices to split data into training and test set.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data, where `n_samples` is the number of samples
            and `n_features` is the number of features.

            Note that providing ``y`` is sufficient to generate the splits and
            hence ``np.zeros(n_samples)`` may be used as a placeholder for
            ``X`` instead of actual training data.

        y : array-like of shape (n_samples,)
            The target variable, ``-1`` for the unlabeled samples.
            Stratification is done based on the labeled samples.

        groups : array-like of shape (n_samples,), default=None
            Always ignored, exists for API compatibility.

        Yields
        ------
        train : ndarray
            The training set indices for that split.

        test : ndarray
            The testing set indices for that split.

        Notes
        -----
        Randomized CV splitters may return different results for each call of
        split. You can make the results identical by setting `random_state`
        to an integer.
        """
        if groups is not None:
            warnings.warn(
                f"The groups parameter is ignored by {self.__class__.__name__}",
                UserWarning,
                stacklevel=2,
            )
        if y is None:
            raise ValueError(
                f"{self.__class__.__name__}.split requires y, the target with -1 "
                "for the unlabeled samples; got y=None."
            )
        y = _as_1d_target(y)
        return super().split(X, y, groups)
