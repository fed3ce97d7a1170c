"""AutoEncoderClassifier: pretrain on all rows, then fine-tune on the labeled ones."""

import pickle

import numpy as np
import pytest
from numpy.testing import assert_array_equal
from sklearn.base import clone
from sklearn.datasets import load_digits

from skae import AutoEncoderClassifier
from skae.datasets import make_semi_supervised

TINY = {"hidden_layer_sizes": (16,), "pretrain_epochs": 1, "max_epochs": 2, "random_state": 0}


@pytest.fixture(scope="module")
def semi():
    X, y = load_digits(return_X_y=True)
    rng = np.random.RandomState(0)
    keep = np.zeros(len(y), dtype=bool)
    for c in range(10):
        idx = np.flatnonzero(y == c)
        keep[rng.choice(idx, size=len(idx) // 10, replace=False)] = True
    return X / 16.0, y, np.where(keep, y, -1)


@pytest.fixture(scope="module")
def clf(semi):
    X, _, y_semi = semi
    return AutoEncoderClassifier(8, hidden_layer_sizes=(32,), pretrain_epochs=3, max_epochs=30,
                                 batch_size=32, lr=1e-2, random_state=0).fit(X, y_semi)


def test_history_has_recon_then_sup(clf):
    h = clf.net_.history
    assert clf.n_iter_ == len(h) == 3 + 30
    for i, epoch in enumerate(h):
        if i < 3:
            assert "recon_loss" in epoch and "sup_loss" not in epoch
        else:
            assert "sup_loss" in epoch and "recon_loss" not in epoch
    assert h[-1, "sup_loss"] < h[3, "sup_loss"]


def test_pretraining_trains_the_autoencoder_on_all_rows(semi):
    X, _, y_semi = semi
    model = AutoEncoderClassifier(4, hidden_layer_sizes=(16,), pretrain_epochs=4, max_epochs=1,
                                  random_state=0).fit(X, y_semi)
    recon = model.net_.history[:4, "recon_loss"]
    assert recon[-1] < recon[0]
    # an epoch of pretraining is a pass over all rows, labeled or not
    assert model.net_.history[0, "train_batch_count"] == -(-len(X) // model.batch_size)
    # so is an epoch of fine-tuning: as many steps, each on a minibatch of labeled rows
    assert model.net_.history[-1, "train_batch_count"] == -(-len(X) // model.batch_size)


def test_fine_tuning_cycles_through_few_labels(semi):
    """10 labeled rows: each epoch is still len(X) / batch_size steps of fine-tuning, each
    on labeled rows only; a few epochs learn the 10 labels."""
    X, y, _ = semi
    y_few = make_semi_supervised(y, 10, random_state=0)
    clf = AutoEncoderClassifier(4, hidden_layer_sizes=(16,), pretrain_epochs=0, max_epochs=5,
                                batch_size=32, random_state=0).fit(X, y_few)
    assert clf.net_.history[:, "train_batch_count"] == [-(-len(X) // 32)] * 5
    sup = clf.net_.history[:, "sup_loss"]
    assert sup[-1] < sup[0]
    labeled = y_few != -1
    assert clf.score(X[labeled], y_few[labeled]) == 1.0  # the 10 labels are learned


def test_linear_lr_schedule_decays_each_stage(semi, see_lr):
    X, _, y_semi = semi
    model = AutoEncoderClassifier(**{**TINY, "pretrain_epochs": 4, "max_epochs": 4},
                                  lr=0.01, lr_schedule="linear", callbacks=[see_lr])
    seen = dict(model.fit(X[:200], y_semi[:200]).net_.callbacks_)["SeeLr"].seen
    # pretraining steps the reconstruction phase, fine-tuning the supervised one
    assert [lrs["recon"] for lrs in seen[:4]] == pytest.approx([0.01, 0.01, 0.01, 0.005])
    assert [lrs["sup"] for lrs in seen[4:]] == pytest.approx([0.01, 0.01, 0.01, 0.005])


def test_no_pretraining_is_allowed(semi):
    X, _, y_semi = semi
    model = AutoEncoderClassifier(**{**TINY, "pretrain_epochs": 0}).fit(X, y_semi)
    assert all("recon_loss" not in e for e in model.net_.history)
    assert model.n_iter_ == 2


def test_labeled_rows_are_learned_and_generalize(semi, clf):
    X, y, y_semi = semi
    labeled = y_semi != -1
    assert clf.score(X[labeled], y[labeled]) > 0.9
    assert clf.score(X[~labeled], y[~labeled]) > 0.5  # chance: 0.1


def test_classes_and_score_ignore_unlabeled(semi, clf):
    X, y, y_semi = semi
    assert_array_equal(clf.classes_, np.arange(10))
    labeled = y_semi != -1
    assert clf.score(X, y_semi) == pytest.approx(np.mean(clf.predict(X[labeled]) == y[labeled]))


def test_pickle_round_trip_gives_identical_predictions(semi, clf):
    X = semi[0]
    restored = pickle.loads(pickle.dumps(clf))
    assert_array_equal(restored.predict_proba(X), clf.predict_proba(X))


def test_same_random_state_same_predictions(semi):
    X, _, y_semi = semi
    a = AutoEncoderClassifier(**TINY).fit(X[:400], y_semi[:400])
    b = clone(a).fit(X[:400], y_semi[:400])
    c = clone(a).set_params(random_state=1).fit(X[:400], y_semi[:400])
    assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    assert not np.allclose(a.predict_proba(X), c.predict_proba(X))


def test_string_labels_and_full_labels(semi):
    X, y, y_semi = semi
    y_str = np.array([f"d{v}" for v in y], dtype=object)
    y_str[y_semi == -1] = -1
    model = AutoEncoderClassifier(**TINY).fit(X, y_str)
    assert_array_equal(model.classes_, [f"d{v}" for v in range(10)])
    assert set(model.predict(X[:10])) <= set(model.classes_)
    full = AutoEncoderClassifier(**TINY).fit(X[:300], y[:300])
    assert full.predict(X[:3]).shape == (3,)


def test_label_errors(semi):
    X, _, y_semi = semi
    with pytest.raises(ValueError, match="y has no labeled rows"):
        AutoEncoderClassifier(**TINY).fit(X[:30], np.full(30, -1))
    with pytest.raises(ValueError, match=r"classes \[10\] have no labeled row"):
        AutoEncoderClassifier(classes=list(range(11)), **TINY).fit(X, y_semi)
    with pytest.raises(ValueError, match="Unknown label type"):
        AutoEncoderClassifier(**TINY).fit(X, np.where(y_semi == -1, -1.0, 0.5 + y_semi / 3))


def test_images_with_conv_backbone(semi):
    X, _, y_semi = semi
    imgs = X[:300].reshape(-1, 1, 8, 8)
    model = AutoEncoderClassifier(4, **{**TINY, "hidden_layer_sizes": (4,)})
    model.fit(imgs, y_semi[:300])
    assert model.predict_proba(imgs).shape == (300, len(model.classes_))
    assert model.predict(X[:300]).shape == (300,)  # flat rows of the same pixels
