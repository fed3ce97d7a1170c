import copy
import pickle

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from skorch.callbacks import Callback

from skae import DivergenceError, GANClassifier, losses
from skae.datasets import make_semi_supervised
from skae.modules import random_shift

SMALL = dict(hidden_layer_sizes=(32,), generator_hidden_sizes=(16,), max_epochs=3, random_state=0)


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return (X / 16).astype(np.float32), y


@pytest.fixture(scope="module")
def small_data(digits):
    X, y = digits
    return X[:300], make_semi_supervised(y[:300], 60, random_state=0)


@pytest.fixture(scope="module")
def fitted(small_data):
    return GANClassifier(**SMALL).fit(*small_data)


def test_semi_supervised_beats_supervised_only(digits):
    # 30 labels among 1257 rows: the real/fake task on the unlabeled rows helps the classifier
    X, y = digits
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, random_state=0,
                                                        stratify=y)
    y_semi = make_semi_supervised(y_train, 30, random_state=0)
    params = dict(hidden_layer_sizes=(128, 64), generator_hidden_sizes=(64,), max_epochs=30,
                  random_state=0)
    semi = GANClassifier(**params).fit(X_train, y_semi).score(X_test, y_test)
    supervised = GANClassifier(unsupervised_weight=0.0, **params).fit(X_train, y_semi)
    assert semi > 0.8
    assert semi > supervised.score(X_test, y_test) + 0.03


def test_fit_attributes(fitted, small_data):
    X, _ = small_data
    np.testing.assert_array_equal(fitted.classes_, np.arange(10))
    assert fitted.n_iter_ == 3
    assert fitted.input_shape_ == (64,)
    history = fitted.net_.history
    assert np.all(np.isfinite(history[:, "disc_loss"]))
    assert np.all(np.isfinite(history[:, "gen_loss"]))
    proba = fitted.predict_proba(X[:5])
    assert proba.shape == (5, 10)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)


def test_discriminator_loss_is_the_improved_gan_objective(fitted, small_data):
    # D(x) = Z(x) / (Z(x) + 1), Z = sum_k exp(l_k): the real/fake logit is logsumexp(l)
    X, y = small_data
    model = fitted.net_.module_
    labeled = y != -1
    x = torch.tensor(X[:50])
    x_lab = torch.tensor(X[labeled][:20])
    y_lab = torch.tensor(y[labeled][:20])
    with torch.no_grad():
        torch.testing.assert_close(model.real_logit(x),
                                   torch.logsumexp(model.discriminate(x), dim=1))
        torch.manual_seed(0)
        loss = model.loss_disc((x, x_lab, y_lab))
        torch.manual_seed(0)
        fake = model.generator(model.noise(model.n_fake, x))

        def prob_real(rows):
            z = model.discriminate(rows).double().exp().sum(dim=1)
            return z / (z + 1)

        expected = (F.cross_entropy(model.discriminate(x_lab), y_lab).double()
                    - prob_real(x).log().mean() - (1 - prob_real(fake)).log().mean())
    assert model.n_fake == fitted.batch_size
    torch.testing.assert_close(loss.double(), expected, rtol=1e-4, atol=1e-5)


def test_predictions_use_the_averaged_discriminator(fitted, small_data):
    X, _ = small_data
    model = fitted.net_.module_
    steps = fitted.n_iter_ * int(np.ceil(len(X) / fitted.batch_size))
    assert model.average.steps() == steps
    x = torch.tensor(X)
    with torch.no_grad():
        averaged = model.average.module["head"](model.average.module["features"](x))
        live = model.discriminate(x)
    np.testing.assert_allclose(fitted.predict_proba(X), averaged.softmax(1).numpy(), rtol=1e-5)
    assert not torch.allclose(averaged, live)
    # ema_decay=0: the last weights
    last = GANClassifier(**SMALL, ema_decay=0.0).fit(*small_data)
    with torch.no_grad():
        live = last.net_.module_.discriminate(x)
    np.testing.assert_allclose(last.predict_proba(X), live.softmax(1).numpy(), rtol=1e-5)
    assert last.net_.module_.average.steps() == 0


def test_hidden_scales_are_trained_by_default(small_data):
    clf = GANClassifier(**{**SMALL, "max_epochs": 1}).fit(*small_data)
    model = clf.net_.module_
    hidden = model.features[2]
    assert hidden.weight_g.requires_grad and not bool(model.data_initialized)
    stepped = {id(p) for group in clf.net_.optimizer_disc_.param_groups for p in group["params"]}
    assert id(hidden.weight_g) in stepped


def test_data_init_sets_hidden_scales_from_data_then_fixes_them(small_data):
    X, y = small_data
    clf = GANClassifier(**{**SMALL, "max_epochs": 1, "warm_start": True, "data_init": True})
    clf.fit(X, y)
    model = clf.net_.module_
    hidden, output = model.features[2], model.head[1]
    assert bool(model.data_initialized)
    assert not hidden.weight_g.requires_grad and output.weight_g.requires_grad
    stepped = {id(p) for group in clf.net_.optimizer_disc_.param_groups for p in group["params"]}
    assert id(hidden.weight_g) not in stepped and id(output.weight_g) in stepped
    # initialized from the data (not the norm of v), and not again on a warm-started fit
    g = hidden.weight_g.detach().clone()
    assert not torch.allclose(g, hidden.weight_v.detach().norm(dim=1, keepdim=True))
    clf.fit(X, y)
    torch.testing.assert_close(clf.net_.module_.features[2].weight_g, g)


def test_sample_shape_range_and_determinism(fitted):
    a = fitted.sample(5, random_state=0)
    assert a.shape == (5, 64) and a.dtype == np.float32
    assert a.min() >= 0 and a.max() <= 1  # X in [0, 1]: sigmoid output
    np.testing.assert_array_equal(a, fitted.sample(5, random_state=0))
    assert not np.array_equal(a, fitted.sample(5, random_state=1))
    assert fitted.sample().shape == (1, 64)


def test_linear_generator_output_for_standardized_data(small_data):
    X, y = small_data
    X = (X - X.mean(axis=0)) / (X.std(axis=0) + 1e-3)
    samples = GANClassifier(**SMALL).fit(X, y).sample(200, random_state=0)
    assert samples.min() < 0 or samples.max() > 1


def test_same_random_state_same_predictions(fitted, small_data):
    X, y = small_data
    other = GANClassifier(**SMALL).fit(X, y)
    np.testing.assert_array_equal(fitted.predict_proba(X), other.predict_proba(X))


def test_fully_labeled_y(digits):
    X, y = digits
    clf = GANClassifier(**{**SMALL, "max_epochs": 20}).fit(X[:200], y[:200])
    assert clf.score(X[:200], y[:200]) > 0.5


@pytest.mark.parametrize("batch_size", [1, 7])
def test_generator_batch_is_at_least_two_rows(small_data, batch_size):
    X, y = small_data
    clf = GANClassifier(**{**SMALL, "max_epochs": 1, "batch_size": batch_size}).fit(X[:30], y[:30])
    assert clf.net_.module_.n_fake == max(batch_size, 2)


def test_nan_in_X_raises(small_data):
    X, y = small_data
    X = X.copy()
    X[3, 5] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        GANClassifier(**SMALL).fit(X, y)


def test_no_labeled_rows_raises(small_data):
    X, _ = small_data
    with pytest.raises(ValueError, match="no labeled rows"):
        GANClassifier(**SMALL).fit(X, np.full(len(X), -1))


def test_string_labels_with_unlabeled_rows(small_data):
    X, _ = small_data
    y = np.array(["even", "odd"] * 150, dtype=object)
    y[10:] = -1
    clf = GANClassifier(**SMALL).fit(X, y)
    np.testing.assert_array_equal(clf.classes_, ["even", "odd"])
    assert set(clf.predict(X)) <= {"even", "odd"}


def test_pickle_round_trip(fitted, small_data):
    X, _ = small_data
    restored = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(restored.predict_proba(X), fitted.predict_proba(X))
    np.testing.assert_array_equal(restored.sample(3, random_state=0),
                                  fitted.sample(3, random_state=0))


def test_conv_backbone_on_images(digits):
    X, y = digits
    images = X[:200].reshape(-1, 8, 8)
    y_semi = make_semi_supervised(y[:200], 40, random_state=0)
    clf = GANClassifier(hidden_layer_sizes=(8, 16), max_epochs=2, random_state=0)
    clf.fit(images, y_semi)
    assert any(isinstance(m, torch.nn.Conv2d) for m in clf.net_.module_.modules())
    assert clf.predict(images).shape == (200,)
    assert clf.predict(images.reshape(200, 64)).shape == (200,)  # flat rows are accepted too
    assert clf.sample(4, random_state=0).shape == (4, 8, 8)


@pytest.fixture(scope="module")
def shifted(small_data):
    """Fitted on the digits as 8x8 images, with shifts."""
    X, y = small_data
    return GANClassifier(**SMALL, backbone="mlp", max_shift=1.0).fit(X.reshape(-1, 8, 8), y)


def test_max_shift_fits_images_and_changes_the_model(shifted, fitted, small_data):
    X, _ = small_data
    assert (fitted.max_shift, fitted.consistency_weight) == (0.0, 1.0)  # the defaults: no shift
    model = shifted.net_.module_
    assert (model.max_shift, model.consistency_weight) == (1.0, 1.0)
    assert shifted.input_shape_ == (8, 8)
    assert shifted.sample(2, random_state=0).shape == (2, 8, 8)
    proba = shifted.predict_proba(X.reshape(-1, 8, 8))
    assert not np.allclose(proba, fitted.predict_proba(X))
    conv = GANClassifier(**{**SMALL, "hidden_layer_sizes": (4,)}, max_shift=1.0)
    assert conv.fit(X.reshape(-1, 1, 8, 8), small_data[1]).predict(
        X[:5].reshape(-1, 1, 8, 8)).shape == (5,)
    # max_warp alone moves the images too, another way
    warped = GANClassifier(**SMALL, backbone="mlp", max_warp=1.0).fit(X.reshape(-1, 8, 8),
                                                                      small_data[1])
    assert warped.net_.module_.max_warp == 1.0
    assert not np.allclose(warped.predict_proba(X.reshape(-1, 8, 8)), proba)


def test_discriminator_loss_with_max_shift_shifts_the_labeled_images_and_adds_consistency(
        shifted, small_data):
    X, y = small_data
    # a copy, to leave the shared fixture as it is; eval(): no Gaussian noise, so that the
    # random draws are z and the shifts
    model = copy.deepcopy(shifted.net_.module_).eval()
    labeled = y != -1
    x = torch.tensor(X[:50]).reshape(-1, 8, 8)
    x_lab = torch.tensor(X[labeled][:20]).reshape(-1, 8, 8)
    y_lab = torch.tensor(y[labeled][:20])
    model.consistency_weight = 3.0
    with torch.no_grad():
        torch.manual_seed(0)
        loss = model.loss_disc((x, x_lab, y_lab))
        torch.manual_seed(0)  # the same draws, in the same order: z, labeled shift, all rows'
        fake = model.generator(model.noise(model.n_fake, x))
        shifted_lab = random_shift(x_lab, 1.0)
        x_shifted = random_shift(x, 1.0)
        sup, unsup = losses.improved_gan_losses(
            model.discriminate(shifted_lab), y_lab, model.discriminate(x),
            model.discriminate(fake))
        consistency = losses.consistency_loss(model.discriminate, x, x_shifted)
        assert consistency.item() > 0
        torch.testing.assert_close(loss, sup + unsup + 3.0 * consistency, rtol=1e-5, atol=1e-6)
        # consistency_weight=0: the shifted labeled images alone
        model.consistency_weight = 0.0
        torch.manual_seed(0)
        torch.testing.assert_close(model.loss_disc((x, x_lab, y_lab)), sup + unsup,
                                   rtol=1e-5, atol=1e-6)
        # max_rotation: the same losses on images shifted and turned
        model.consistency_weight, model.max_rotation = 3.0, 20.0
        torch.manual_seed(0)
        loss = model.loss_disc((x, x_lab, y_lab))
        torch.manual_seed(0)
        fake = model.generator(model.noise(model.n_fake, x))
        moved_lab = random_shift(x_lab, 1.0, 20.0)
        x_moved = random_shift(x, 1.0, 20.0)
        sup, unsup = losses.improved_gan_losses(
            model.discriminate(moved_lab), y_lab, model.discriminate(x),
            model.discriminate(fake))
        consistency = losses.consistency_loss(model.discriminate, x, x_moved)
        torch.testing.assert_close(loss, sup + unsup + 3.0 * consistency, rtol=1e-5, atol=1e-6)
        # max_warp: the same losses on images shifted, turned and warped; warped alone too
        for move in [(1.0, 20.0, 1.5), (0.0, 0.0, 1.5)]:
            model.max_shift, model.max_rotation, model.max_warp = move
            torch.manual_seed(0)
            loss = model.loss_disc((x, x_lab, y_lab))
            torch.manual_seed(0)
            fake = model.generator(model.noise(model.n_fake, x))
            moved_lab = random_shift(x_lab, *move)
            x_moved = random_shift(x, *move)
            sup, unsup = losses.improved_gan_losses(
                model.discriminate(moved_lab), y_lab, model.discriminate(x),
                model.discriminate(fake))
            consistency = losses.consistency_loss(model.discriminate, x, x_moved)
            assert consistency.item() > 0
            torch.testing.assert_close(loss, sup + unsup + 3.0 * consistency,
                                       rtol=1e-5, atol=1e-6)


def test_max_shift_on_rows_is_a_clear_error(small_data):
    with pytest.raises(ValueError, match="max_shift=2 shifts images, but X has rows of 64"):
        GANClassifier(**SMALL, max_shift=2).fit(*small_data)
    with pytest.raises(ValueError, match="max_rotation=10 rotates images, but X has rows of 64"):
        GANClassifier(**SMALL, max_rotation=10).fit(*small_data)
    with pytest.raises(ValueError, match="max_warp=1.5 warps images, but X has rows of 64"):
        GANClassifier(**SMALL, max_warp=1.5).fit(*small_data)


def test_model_saved_before_max_shift_loads_without_shifts(fitted, small_data):
    state = fitted.__getstate__()
    del state["max_shift"], state["max_rotation"], state["consistency_weight"]
    del state["ema_guard"], state["generator_lr_scale"], state["max_warp"]
    loaded = GANClassifier.__new__(GANClassifier)
    loaded.__setstate__(state)
    assert (loaded.max_shift, loaded.max_rotation, loaded.consistency_weight) == (0.0, 0.0, 1.0)
    assert loaded.max_warp == 0.0
    assert (loaded.ema_guard, loaded.generator_lr_scale) == (0.0, 1.0)
    np.testing.assert_array_equal(loaded.predict_proba(small_data[0]),
                                  fitted.predict_proba(small_data[0]))


def test_generator_lr_scale_sets_the_learning_rate_of_the_generator_alone(fitted, small_data):
    clf = GANClassifier(**SMALL, lr=2e-3, generator_lr_scale=0.25).fit(*small_data)
    lrs = {phase: [g["lr"] for g in getattr(clf.net_, f"optimizer_{phase}_").param_groups]
           for phase in ("disc", "gen")}
    assert lrs == {"disc": [2e-3], "gen": [5e-4]}
    assert clf.net_.optimizer_gen_.param_groups[0]["betas"] == (0.5, 0.999)  # kept
    # by default both phases learn at lr
    assert fitted.generator_lr_scale == 1.0
    assert [g["lr"] for g in fitted.net_.optimizer_gen_.param_groups] == [fitted.lr]
    # a slower generator makes other fakes, and so another discriminator
    same_lr = GANClassifier(**SMALL, lr=2e-3).fit(*small_data)
    X = small_data[0][:20]
    assert not np.array_equal(clf.predict_proba(X), same_lr.predict_proba(X))


@pytest.mark.parametrize("scale", [0, -0.5])
def test_generator_lr_scale_must_be_positive(small_data, scale):
    with pytest.raises(ValueError, match="generator_lr_scale"):
        GANClassifier(**SMALL, generator_lr_scale=scale).fit(*small_data)


def test_divergence_names_the_phase(small_data):
    with pytest.raises(DivergenceError, match="'disc' loss"):
        GANClassifier(**{**SMALL, "optimizer": "sgd", "lr": 1e12}).fit(*small_data)


def test_ema_guard_off_records_nothing_and_a_silent_guard_changes_nothing(fitted, small_data):
    X, _ = small_data
    assert "average_disagreement" not in fitted.net_.history[-1]
    # a guard that never undoes an epoch (it is above every disagreement) leaves training as it
    # is: checking the rows draws no random numbers
    guarded = GANClassifier(**SMALL, ema_guard=0.99).fit(*small_data)
    history = guarded.net_.history
    assert history[:, "average_held"] == [False] * 3
    apart = history[:, "average_disagreement"]
    assert all(0 <= value < 0.99 for value in apart)
    np.testing.assert_array_equal(guarded.predict_proba(X), fitted.predict_proba(X))
    model = guarded.net_.module_
    with torch.no_grad():
        x = torch.tensor(X)
        by_average = model.average.module["head"](model.average.module["features"](x))
        expected = float((by_average.argmax(1) != model.discriminate(x).argmax(1)).float().mean())
    assert model.disagreement(x) == pytest.approx(expected)
    assert apart[-1] == pytest.approx(expected)
    # more rows than guard_rows: the same random ones each time, the global random state intact
    model.guard_rows = 100
    state = torch.random.get_rng_state()
    sub = model.disagreement(x)
    assert torch.equal(torch.random.get_rng_state(), state) and sub == model.disagreement(x)
    rows = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))[:100]
    assert sub == pytest.approx(float((by_average.argmax(1) != model.discriminate(x).argmax(1))
                                      [rows].float().mean()))


class _Dataset:
    def __init__(self, X):
        self.X = torch.tensor(X)


def _swing(model):
    """Swing the discriminator's last weights (each class's output to the next class) and
    average them in for a step."""
    with torch.no_grad():
        for p in model.head.parameters():
            p.copy_(p.roll(1, dims=0))
    model.end_step()


@pytest.fixture(scope="module")
def guarded(small_data):
    """Fitted with ``ema_guard=0.05``; tests change deep copies of its model."""
    return GANClassifier(**SMALL, ema_guard=0.05).fit(*small_data)


def test_ema_guard_undoes_the_average_of_an_epoch_whose_weights_swung(guarded, small_data):
    X, _ = small_data
    model = copy.deepcopy(guarded.net_.module_)
    data = _Dataset(X)
    model._guard_calm = 0
    model.begin_epoch(4)
    _swing(model)
    apart = model.disagreement(data.X)
    assert apart > 0.05
    # not armed yet (the disagreement has not stayed at or under half the guard): kept
    steps = model.average.steps()
    assert model.end_epoch(data) == {"average_disagreement": apart, "average_held": False}
    assert model.average.steps() == steps and model._guard_calm == 0
    # armed: the epoch's updates of the average are undone
    model._guard_calm = model.guard_calm_epochs
    model.begin_epoch(5)
    before = [t.clone() for t in model.average.state()]
    _swing(model)
    record = model.end_epoch(data)
    assert record["average_held"] and record["average_disagreement"] > 0.05
    for tensor, value in zip(model.average.state(), before):
        assert torch.equal(tensor, value)


def test_ema_guard_arms_after_calm_epochs_in_a_row(guarded, small_data):
    X, _ = small_data
    data = _Dataset(X)
    calm = copy.deepcopy(guarded.net_.module_)
    calm._guard_calm = 0
    apart = calm.disagreement(data.X)
    assert 0 < apart <= 0.05
    # the share measured, and whether the average gives every class to some rows (this small
    # model's does not yet: set here)
    compared = {"every_class": True}
    calm._compare = lambda X: (apart, compared["every_class"])

    def epoch(guard):
        calm.ema_guard = guard
        calm.begin_epoch(4)
        assert calm.end_epoch(data) == {"average_disagreement": apart, "average_held": False}
        return calm._guard_calm

    # within half the guard: one calm epoch more; within the guard but over half: back to 0
    calm_epochs = calm.guard_calm_epochs
    assert [epoch(2 * apart) for _ in range(calm_epochs - 1)] == list(range(1, calm_epochs))
    assert epoch(1.5 * apart) == 0
    # within half the guard while the average leaves a class to no row: back to 0 as well
    assert epoch(2 * apart) == 1
    compared["every_class"] = False
    assert epoch(2 * apart) == 0
    compared["every_class"] = True
    assert [epoch(2 * apart) for _ in range(calm_epochs)] == list(range(1, calm_epochs + 1))
    # armed: an epoch within the guard keeps its updates and the guard stays armed
    assert epoch(1.5 * apart) == calm_epochs
    calm.ema_guard = 0.5 * apart  # armed and over the guard: held
    calm.begin_epoch(5)
    assert calm.end_epoch(data)["average_held"]


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")  # tiny fits
def test_ema_guard_does_not_arm_while_the_average_classes_every_row_alike(digits):
    # a small MLP on 300 labeled digits: for four epochs both weights class every row as one
    # class, 0 % apart; a guard armed there would hold the average as the discriminator learns
    X, y = digits[0][:300], digits[1][:300]
    params = dict(hidden_layer_sizes=(16,), generator_hidden_sizes=(16,), max_epochs=10,
                  random_state=0)
    guarded = GANClassifier(**params, ema_guard=0.02).fit(X, y)
    history = guarded.net_.history
    assert history[:4, "average_disagreement"] == [0.0] * 4
    assert not any(history[:, "average_held"])
    assert len(np.unique(guarded.predict(X))) > 1
    off = GANClassifier(**params).fit(X, y)
    np.testing.assert_array_equal(guarded.predict_proba(X), off.predict_proba(X))


class _InterruptMidEpoch(Callback):
    """Interrupt the fit (as Ctrl-C would) at the second batch of the second epoch."""

    def on_batch_end(self, net, **kwargs):
        if len(net.history) == 2 and len(net.history[-1, "batches"]) == 2:
            raise KeyboardInterrupt


def test_ema_guard_keeps_no_copy_of_the_average_after_an_interrupted_fit(small_data):
    # skorch ends a fit that Ctrl-C interrupts as if it were done: the copy of the average
    # kept for the epoch under way goes with it (else it is pickled with the estimator)
    clf = GANClassifier(**SMALL, ema_guard=0.05, callbacks=[_InterruptMidEpoch()])
    model = clf.fit(*small_data).net_.module_
    assert len(clf.net_.history) == 2 and "average_held" not in clf.net_.history[-1]
    assert model._epoch_average is None


def test_ema_guard_does_nothing_without_an_average(small_data):
    clf = GANClassifier(**SMALL, ema_decay=0.0, ema_guard=0.05).fit(*small_data)
    assert "average_disagreement" not in clf.net_.history[-1]
    assert clf.net_.module_.average.steps() == 0
