import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_array_equal
from sklearn.metrics import accuracy_score, log_loss

from skae.metrics import labeled_accuracy_score, labeled_log_loss, unlabeled_mask


@pytest.mark.parametrize(
    "y, expected",
    [
        (np.array([0, -1, 2, -1], dtype=np.int64), [False, True, False, True]),
        (np.array([0, -1, 2], dtype=np.int8), [False, True, False]),
        (np.array([0.0, -1.0, np.nan, 1.5]), [False, True, False, False]),
        (np.array([0, 1, 255], dtype=np.uint8), [False, False, False]),
        (np.array(["cat", -1, "dog", -1.0], dtype=object), [False, True, False, True]),
        (
            np.array([None, -1, np.int64(-1), "-1"], dtype=object),
            [False, True, True, False],
        ),
        (np.array(["cat", "-1", "dog"]), [False, False, False]),
        (np.array([b"cat", b"-1"]), [False, False]),
        (np.array([True, False]), [False, False]),
        ([0, -1, 1], [False, True, False]),
        # NumPy would turn this list into strings, losing the -1.
        (["cat", -1, "dog"], [False, True, False]),
        ((-1, "dog"), [True, False]),
        (pd.Series(["cat", -1, "dog"]), [False, True, False]),
        (pd.Series([3, -1, None], dtype="Int64"), [False, True, False]),
        (pd.Series(["cat", "dog"], dtype="category"), [False, False]),
    ],
)
def test_unlabeled_mask(y, expected):
    mask = unlabeled_mask(y)
    assert mask.dtype == bool
    assert mask.shape == (len(expected),)
    assert_array_equal(mask, expected)


def test_unlabeled_mask_empty_and_column():
    assert unlabeled_mask(np.array([], dtype=np.int64)).shape == (0,)
    with pytest.warns(UserWarning, match="column-vector"):
        mask = unlabeled_mask(np.array([[1], [-1]]))
    assert_array_equal(mask, [False, True])
    with pytest.raises(ValueError):
        unlabeled_mask(np.zeros((3, 2)))


def test_labeled_accuracy_score_ignores_unlabeled():
    y_true = np.array([0, -1, 1, 1, -1, 2])
    y_pred = np.array([0, 1, 1, 0, 2, 2])
    labeled = y_true != -1
    score = labeled_accuracy_score(y_true, y_pred)
    assert isinstance(score, float)
    assert score == pytest.approx(0.75)
    assert score == pytest.approx(accuracy_score(y_true[labeled], y_pred[labeled]))


def test_labeled_accuracy_score_sample_weight():
    y_true = np.array([0, -1, 1, 1])
    y_pred = np.array([0, 0, 0, 1])
    weights = np.array([1.0, 100.0, 3.0, 1.0])
    # Correct: rows 0 (weight 1) and 3 (weight 1); wrong: row 2 (weight 3).
    assert labeled_accuracy_score(
        y_true, y_pred, sample_weight=weights
    ) == pytest.approx(2 / 5)


def test_labeled_accuracy_score_object_labels():
    y_true = np.array(["cat", -1, "dog", "dog"], dtype=object)
    y_pred = np.array(["cat", "dog", "cat", "dog"])
    assert labeled_accuracy_score(y_true, y_pred) == pytest.approx(2 / 3)
    # A string dtype target has no unlabeled sample: "-1" is a class.
    y_str = np.array(["cat", "-1", "dog", "dog"])
    assert labeled_accuracy_score(y_str, y_pred) == pytest.approx(0.5)


@pytest.mark.parametrize("metric", [labeled_accuracy_score, labeled_log_loss])
def test_metrics_raise_without_labeled_sample(metric):
    y_true = np.array([-1, -1])
    second = (
        np.array([[0.5, 0.5], [0.5, 0.5]]) if metric is labeled_log_loss else [0, 1]
    )
    with pytest.raises(ValueError, match="no labeled sample"):
        metric(y_true, second)


def test_metrics_check_lengths():
    with pytest.raises(ValueError, match="inconsistent"):
        labeled_accuracy_score([0, 1, -1], [0, 1])
    with pytest.raises(ValueError, match="inconsistent"):
        labeled_log_loss([0, 1, -1], [[0.5, 0.5], [0.5, 0.5]])


def test_labeled_log_loss_matches_log_loss_on_labeled_rows():
    rng = np.random.RandomState(0)
    y_true = np.array([0, 1, 2, -1, 2, -1, 0, 1])
    y_proba = rng.dirichlet(np.ones(3), size=y_true.shape[0])
    labeled = y_true != -1
    loss = labeled_log_loss(y_true, y_proba)
    assert isinstance(loss, float)
    assert loss == pytest.approx(log_loss(y_true[labeled], y_proba[labeled]))

    weights = rng.uniform(0.5, 2.0, size=y_true.shape[0])
    assert labeled_log_loss(y_true, y_proba, sample_weight=weights) == pytest.approx(
        log_loss(y_true[labeled], y_proba[labeled], sample_weight=weights[labeled])
    )


def test_labeled_log_loss_labels_for_missing_class():
    # Class 2 has no labeled row: the columns need `labels` to be matched.
    y_true = np.array([0, 1, -1, 1])
    y_proba = np.array(
        [[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.0, 0.0, 1.0], [0.2, 0.5, 0.3]]
    )
    with pytest.raises(ValueError):
        labeled_log_loss(y_true, y_proba)
    expected = -np.mean(np.log([0.7, 0.8, 0.5]))
    assert labeled_log_loss(y_true, y_proba, labels=[0, 1, 2]) == pytest.approx(
        expected
    )


def test_labeled_log_loss_binary_1d_and_object_labels():
    y_true = np.array(["no", -1, "yes"], dtype=object)
    y_proba = np.array([0.2, 0.9, 0.6])  # probability of "yes"
    expected = -np.mean(np.log([0.8, 0.6]))
    assert labeled_log_loss(y_true, y_proba, labels=["no", "yes"]) == pytest.approx(
        expected
    )
