import pickle
import warnings

import numpy as np
import pytest
from numpy.testing import assert_array_equal
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, get_scorer, log_loss
from sklearn.model_selection import (
    GridSearchCV,
    KFold,
    StratifiedKFold,
    cross_validate,
)
from sklearn.semi_supervised import SelfTrainingClassifier

from skae.datasets import make_semi_supervised
from skae.model_selection import (
    SemiSupervisedStratifiedKFold,
    labeled_accuracy_scorer,
    labeled_log_loss_scorer,
)


def _semi_supervised_target(n_samples=203, n_classes=3, frac_unlabeled=0.7, seed=0):
    rng = np.random.RandomState(seed)
    y = rng.randint(n_classes, size=n_samples)
    y[rng.uniform(size=n_samples) < frac_unlabeled] = -1
    return y


def _test_folds(cv, X, y):
    folds = np.full(len(y), -1)
    for i, (train, test) in enumerate(cv.split(X, y)):
        assert_array_equal(np.sort(np.concatenate([train, test])), np.arange(len(y)))
        assert np.intersect1d(train, test).size == 0
        assert np.all(folds[test] == -1)  # each sample is tested once
        folds[test] = i
    assert np.all(folds >= 0)
    return folds


@pytest.mark.parametrize("shuffle, random_state", [(False, None), (True, 0), (True, 3)])
@pytest.mark.parametrize("n_splits", [2, 3, 5])
def test_folds_are_stratified_and_balanced(n_splits, shuffle, random_state):
    y = _semi_supervised_target()
    X = np.zeros((len(y), 1))
    cv = SemiSupervisedStratifiedKFold(
        n_splits, shuffle=shuffle, random_state=random_state
    )
    assert cv.get_n_splits(X, y) == n_splits
    folds = _test_folds(cv, X, y)

    labeled = y != -1
    classes = np.unique(y[labeled])
    # Every test fold holds labeled rows of every class, spread like
    # StratifiedKFold: per class, fold counts differ by at most one.
    per_class = np.array(
        [[np.sum((folds == i) & (y == c)) for c in classes] for i in range(n_splits)]
    )
    assert np.all(per_class >= 1)
    assert np.all(per_class.max(axis=0) - per_class.min(axis=0) <= 1)
    # The unlabeled rows and the folds as a whole are spread evenly.
    n_unlabeled = np.bincount(folds[~labeled], minlength=n_splits)
    assert n_unlabeled.max() - n_unlabeled.min() <= 2
    sizes = np.bincount(folds, minlength=n_splits)
    assert sizes.max() - sizes.min() <= 1
    assert sizes.sum() == len(y)


@pytest.mark.parametrize(
    "shuffle, random_state", [(False, None), (True, 0), (True, 42)]
)
def test_labeled_folds_match_stratified_kfold(shuffle, random_state):
    y = _semi_supervised_target(seed=1)
    X = np.zeros((len(y), 1))
    labeled_idx = np.flatnonzero(y != -1)
    cv = SemiSupervisedStratifiedKFold(4, shuffle=shuffle, random_state=random_state)
    skf = StratifiedKFold(4, shuffle=shuffle, random_state=random_state)
    for (_, test), (_, test_labeled) in zip(
        cv.split(X, y), skf.split(X[labeled_idx], y[labeled_idx]), strict=True
    ):
        assert_array_equal(np.intersect1d(test, labeled_idx), labeled_idx[test_labeled])


def test_unlabeled_rows_split_like_kfold_without_shuffle():
    # With no shuffling, the unlabeled rows go to the folds in contiguous
    # blocks, in order, like KFold.
    y = np.array([0, 1, 0, 1] + [-1] * 8)
    X = np.zeros((len(y), 1))
    cv = SemiSupervisedStratifiedKFold(2)
    folds = _test_folds(cv, X, y)
    assert_array_equal(folds[y == -1], [0, 0, 0, 0, 1, 1, 1, 1])
    kfold_tests = [test for _, test in KFold(2).split(np.zeros(8))]
    unlabeled_idx = np.flatnonzero(y == -1)
    for i, test in enumerate(kfold_tests):  # KFold on the unlabeled rows
        assert_array_equal(
            unlabeled_idx[test], unlabeled_idx[folds[unlabeled_idx] == i]
        )


def test_fully_labeled_target_gives_stratified_kfold():
    X, y = load_digits(return_X_y=True)
    cv = SemiSupervisedStratifiedKFold(5, shuffle=True, random_state=0)
    skf = StratifiedKFold(5, shuffle=True, random_state=0)
    for (train, test), (train_ref, test_ref) in zip(
        cv.split(X, y), skf.split(X, y), strict=True
    ):
        assert_array_equal(train, train_ref)
        assert_array_equal(test, test_ref)


def test_shuffle_determinism():
    y = _semi_supervised_target(seed=2)
    X = np.zeros((len(y), 1))

    def folds(random_state):
        cv = SemiSupervisedStratifiedKFold(3, shuffle=True, random_state=random_state)
        return _test_folds(cv, X, y)

    assert_array_equal(folds(0), folds(0))
    assert not np.array_equal(folds(0), folds(1))
    rng_folds = folds(np.random.RandomState(0))
    assert_array_equal(rng_folds, folds(0))
    no_shuffle = _test_folds(SemiSupervisedStratifiedKFold(3), X, y)
    assert not np.array_equal(no_shuffle, folds(0))


def test_object_labels_and_class_invariance():
    y_int = _semi_supervised_target(seed=3)
    names = np.array(["b", "a", "c"], dtype=object)
    y_obj = names[y_int]
    y_obj[y_int == -1] = -1
    X = np.zeros((len(y_int), 1))
    cv = SemiSupervisedStratifiedKFold(3, shuffle=True, random_state=0)
    assert_array_equal(_test_folds(cv, X, y_int), _test_folds(cv, X, y_obj))
    # A list mixing strings and -1 is read as an object array.
    assert_array_equal(_test_folds(cv, X, list(y_obj)), _test_folds(cv, X, y_int))
    # Integers in an object array (type_of_target says "unknown" for them).
    assert_array_equal(
        _test_folds(cv, X, y_int.astype(object)), _test_folds(cv, X, y_int)
    )


def test_warns_when_least_populated_class_is_small():
    y = np.array([0] * 6 + [1] * 2 + [-1] * 6)
    X = np.zeros((len(y), 1))
    cv = SemiSupervisedStratifiedKFold(3)
    with pytest.warns(UserWarning, match="least populated class in y has only 2"):
        folds = _test_folds(cv, X, y)
    assert np.all(np.bincount(folds[y == 0]) == 2)


def test_no_warning_when_classes_are_large_enough():
    y = np.array([0] * 3 + [1] * 3 + [-1] * 2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        list(SemiSupervisedStratifiedKFold(3).split(np.zeros((8, 1)), y))


def test_errors():
    X = np.zeros((10, 1))
    # Every class has fewer labeled rows than n_splits.
    y = np.array([0, 0, 1, 1] + [-1] * 6)
    with pytest.raises(ValueError, match="n_splits=3 cannot be greater"):
        list(SemiSupervisedStratifiedKFold(3).split(X, y))
    with pytest.raises(ValueError, match="no labeled sample"):
        list(SemiSupervisedStratifiedKFold(2).split(X, np.full(10, -1)))
    with pytest.raises(ValueError, match="requires y"):
        list(SemiSupervisedStratifiedKFold(2).split(X, None))
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        list(SemiSupervisedStratifiedKFold(2).split(X, np.array([0, 1, 0, 1])))
    with pytest.raises(ValueError, match="Supported target types"):
        list(SemiSupervisedStratifiedKFold(2).split(X, np.linspace(0, 1, 10)))
    with pytest.raises(ValueError, match="n_splits=11 greater"):
        list(SemiSupervisedStratifiedKFold(11).split(X, np.arange(10) % 2))
    with pytest.raises(ValueError, match="at least one"):
        SemiSupervisedStratifiedKFold(1)
    with pytest.raises(ValueError, match="no effect since shuffle is False"):
        SemiSupervisedStratifiedKFold(2, random_state=0)
    with pytest.warns(UserWarning, match="groups parameter is ignored"):
        list(SemiSupervisedStratifiedKFold(2).split(X, np.arange(10) % 2, groups=X))


def test_repr_clone_pickle():
    cv = SemiSupervisedStratifiedKFold(3, shuffle=True, random_state=7)
    assert repr(cv) == (
        "SemiSupervisedStratifiedKFold(n_splits=3, random_state=7, shuffle=True)"
    )
    y = _semi_supervised_target()
    X = np.zeros((len(y), 1))
    expected = _test_folds(cv, X, y)
    assert_array_equal(_test_folds(pickle.loads(pickle.dumps(cv)), X, y), expected)


@pytest.fixture(scope="module")
def digits_semi():
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    y_semi = make_semi_supervised(y, 150, random_state=0)
    return X, y, y_semi


@pytest.fixture(scope="module")
def fitted_classifier(digits_semi):
    X, y, _ = digits_semi
    return LogisticRegression(max_iter=200).fit(X[:600], y[:600])


def test_labeled_accuracy_scorer(digits_semi, fitted_classifier):
    X, y, y_semi = digits_semi
    labeled = y_semi != -1
    score = labeled_accuracy_scorer(fitted_classifier, X, y_semi)
    expected = accuracy_score(y[labeled], fitted_classifier.predict(X[labeled]))
    assert score == pytest.approx(expected)
    assert score != pytest.approx(accuracy_score(y_semi, fitted_classifier.predict(X)))
    with pytest.raises(ValueError, match="no labeled sample"):
        labeled_accuracy_scorer(fitted_classifier, X[:5], np.full(5, -1))


def test_labeled_log_loss_scorer(digits_semi, fitted_classifier):
    X, y, y_semi = digits_semi
    labeled = y_semi != -1
    score = labeled_log_loss_scorer(fitted_classifier, X, y_semi)
    expected = log_loss(y[labeled], fitted_classifier.predict_proba(X[labeled]))
    assert score == pytest.approx(-expected)
    # On a fully labeled target, it is scikit-learn's neg_log_loss.
    neg_log_loss = get_scorer("neg_log_loss")
    assert labeled_log_loss_scorer(fitted_classifier, X, y) == pytest.approx(
        neg_log_loss(fitted_classifier, X, y)
    )
    # A test set missing classes among its labeled rows still uses all the
    # probability columns, through estimator.classes_.
    y_two = np.where(np.isin(y, [3, 7]), y, -1)
    mask = y_two != -1
    proba = fitted_classifier.predict_proba(X[mask])
    expected = -np.mean(
        np.log(proba[np.arange(mask.sum()), y_two[mask]].clip(np.finfo(float).eps))
    )
    assert labeled_log_loss_scorer(fitted_classifier, X, y_two) == pytest.approx(
        -expected
    )
    weights = np.linspace(1, 2, len(y))
    assert labeled_log_loss_scorer(
        fitted_classifier, X, y_semi, sample_weight=weights
    ) == pytest.approx(
        -log_loss(
            y[labeled],
            fitted_classifier.predict_proba(X[labeled]),
            sample_weight=weights[labeled],
        )
    )


def test_grid_search_self_training(digits_semi):
    X, y, y_semi = digits_semi
    cv = SemiSupervisedStratifiedKFold(3, shuffle=True, random_state=0)
    for _, test in cv.split(X, y_semi):
        labeled_test = y_semi[test][y_semi[test] != -1]
        assert_array_equal(np.bincount(labeled_test), np.full(10, 5))

    search = GridSearchCV(
        SelfTrainingClassifier(LogisticRegression(max_iter=200), max_iter=1),
        {"threshold": [0.8, 0.99]},
        cv=cv,
        scoring={
            "accuracy": labeled_accuracy_scorer,
            "log_loss": labeled_log_loss_scorer,
        },
        refit="accuracy",
        error_score="raise",
    )
    search.fit(X, y_semi)
    results = search.cv_results_
    for key in ("mean_test_accuracy", "mean_test_log_loss"):
        assert np.all(np.isfinite(results[key]))
    assert np.all(results["mean_test_accuracy"] > 0.7)
    assert np.all(results["mean_test_log_loss"] < 0)
    assert search.best_params_["threshold"] in (0.8, 0.99)
    # The refitted model is scored on the hidden labels.
    assert accuracy_score(y, search.predict(X)) > 0.8


def test_cross_validate_with_object_labels(digits_semi):
    X, y, y_semi = digits_semi
    names = np.array([f"digit{i}" for i in range(10)], dtype=object)
    y_obj = names[y].astype(object)
    y_obj[y_semi == -1] = -1
    estimator = SelfTrainingClassifier(LogisticRegression(max_iter=200), max_iter=1)
    results = cross_validate(
        clone(estimator),
        X,
        y_obj,
        cv=SemiSupervisedStratifiedKFold(3),
        scoring={
            "accuracy": labeled_accuracy_scorer,
            "log_loss": labeled_log_loss_scorer,
        },
        error_score="raise",
    )
    assert np.all(results["test_accuracy"] > 0.7)
    assert np.all(results["test_log_loss"] < 0)
