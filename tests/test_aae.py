"""AAEClassifier: the -1 convention, learning from few labels, style codes and sampling."""

import pickle

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.base import clone
from sklearn.datasets import load_digits
from skorch.callbacks import Callback

from skae import AAEClassifier, losses
from skae.modules import random_shift

TINY = {"hidden_layer_sizes": (16,), "discriminator_hidden_sizes": (8,), "max_epochs": 1,
        "random_state": 0}


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X / 16.0, y


@pytest.fixture(scope="module")
def semi(digits):
    """Digits with 10 % of the labels kept (stratified), the rest -1."""
    X, y = digits
    rng = np.random.RandomState(0)
    keep = np.zeros(len(y), dtype=bool)
    for c in range(10):
        idx = np.flatnonzero(y == c)
        keep[rng.choice(idx, size=len(idx) // 10, replace=False)] = True
    y_semi = np.where(keep, y, -1)
    return X, y, y_semi


@pytest.fixture(scope="module")
def aae(semi):
    X, _, y_semi = semi
    return AAEClassifier(6, hidden_layer_sizes=(64,), discriminator_hidden_sizes=(32,),
                         max_epochs=15, random_state=0).fit(X, y_semi)


def test_classes_exclude_unlabeled_marker(aae):
    assert_array_equal(aae.classes_, np.arange(10))


def test_history_has_every_phase(aae):
    last = aae.net_.history[-1]
    for phase in ("recon", "disc", "gen", "sup"):
        assert np.isfinite(last[f"{phase}_loss"])
    assert aae.n_iter_ == 15


def test_labeled_rows_are_learned(semi, aae):
    X, y, y_semi = semi
    labeled = y_semi != -1
    assert aae.score(X[labeled], y[labeled]) > 0.85


def test_beats_chance_by_far_with_ten_percent_labels(semi, aae):
    X, y, y_semi = semi
    unlabeled = y_semi == -1
    assert aae.score(X[unlabeled], y[unlabeled]) > 0.5  # chance: 0.1


def test_score_ignores_unlabeled_rows(semi, aae):
    X, y, y_semi = semi
    labeled = y_semi != -1
    expected = np.mean(aae.predict(X[labeled]) == y[labeled])
    assert aae.score(X, y_semi) == pytest.approx(expected)


def test_predict_proba_is_a_distribution(semi, aae):
    X = semi[0][:50]
    proba = aae.predict_proba(X)
    assert proba.shape == (50, 10)
    assert np.allclose(proba.sum(axis=1), 1) and (proba >= 0).all()
    assert_array_equal(aae.predict(X), aae.classes_[proba.argmax(axis=1)])
    assert np.allclose(np.exp(aae.predict_log_proba(X)), proba)


def test_transform_gives_style_codes(semi, aae):
    X = semi[0][:40]
    z = aae.transform(X)
    assert z.shape == (40, 6)
    assert_array_equal(z, aae.transform(X))
    assert aae.inverse_transform(z).shape == (40, 64)
    assert aae.inverse_transform(z, y=aae.predict(X)).shape == (40, 64)


def test_inverse_transform_rejects_unknown_classes_and_widths(aae):
    with pytest.raises(ValueError, match=r"y has labels \[42\] not in classes_"):
        aae.inverse_transform(np.zeros((2, 6)), y=42)
    with pytest.raises(ValueError, match="X has 3 features, but the style code has "
                                         "n_components=6"):
        aae.inverse_transform(np.zeros((2, 3)))


def test_sample_of_one_class(aae):
    X, y = aae.sample(5, y=3, random_state=0)
    assert X.shape == (5, 64)
    assert_array_equal(y, [3] * 5)
    X2, _ = aae.sample(5, y=3, random_state=0)
    assert_array_equal(X, X2)


def test_sample_without_y_draws_known_classes(aae):
    _, y = aae.sample(30, random_state=0)
    assert set(y) <= set(aae.classes_) and len(set(y)) > 1


def test_one_style_rendered_in_every_class(aae):
    style = np.zeros(6)
    X, y = aae.sample(10, y=aae.classes_, style=style)
    assert_array_equal(y, aae.classes_)
    # the same style in different classes gives different rows ...
    dist = np.linalg.norm(X[:, None] - X[None], axis=2)
    assert dist[~np.eye(10, dtype=bool)].min() > 1e-3
    # ... and is exactly inverse_transform of that style rendered as each class
    assert_array_equal(X, aae.inverse_transform(np.tile(style, (10, 1)), y=aae.classes_))


def test_pickle_round_trip_gives_identical_predictions(semi, aae):
    X = semi[0]
    restored = pickle.loads(pickle.dumps(aae))
    assert_array_equal(restored.predict_proba(X), aae.predict_proba(X))
    assert_array_equal(restored.transform(X), aae.transform(X))


def test_same_random_state_same_predictions(semi):
    X, _, y_semi = semi
    a = AAEClassifier(**TINY).fit(X[:400], y_semi[:400])
    b = clone(a).fit(X[:400], y_semi[:400])
    assert_array_equal(a.predict_proba(X), b.predict_proba(X))


# --- labels ----------------------------------------------------------------------------------
def test_string_labels_with_unlabeled_marker(semi):
    X, y, y_semi = semi
    names = np.array([f"digit{v}" for v in y], dtype=object)
    y_str = names.copy()
    y_str[y_semi == -1] = -1
    clf = AAEClassifier(**TINY).fit(X, y_str)
    assert_array_equal(clf.classes_, [f"digit{v}" for v in range(10)])
    pred = clf.predict(X[:20])
    assert set(pred) <= set(clf.classes_)
    labeled = y_semi != -1
    assert clf.score(X, y_str) == pytest.approx(np.mean(clf.predict(X[labeled])
                                                        == names[labeled]))
    Xs, ys = clf.sample(2, y="digit7", random_state=0)
    assert Xs.shape == (2, 64) and list(ys) == ["digit7", "digit7"]


def test_fully_labeled_y_works(digits):
    X, y = digits
    clf = AAEClassifier(**TINY).fit(X[:300], y[:300])
    assert_array_equal(clf.classes_, np.unique(y[:300]))
    assert clf.predict(X[:5]).shape == (5,)


def test_no_labeled_rows_is_an_error(digits):
    X, _ = digits
    with pytest.raises(ValueError, match="y has no labeled rows: every entry is -1"):
        AAEClassifier(**TINY).fit(X[:50], np.full(50, -1))


def test_declared_class_without_labeled_row_is_an_error(semi):
    X, _, y_semi = semi
    with pytest.raises(ValueError, match=r"classes \[10\] have no labeled row in y"):
        AAEClassifier(classes=list(range(11)), **TINY).fit(X, y_semi)


def test_label_outside_declared_classes_is_an_error(semi):
    X, _, y_semi = semi
    with pytest.raises(ValueError, match=r"y has labels \[9\] not in classes="):
        AAEClassifier(classes=list(range(9)), **TINY).fit(X, y_semi)


def test_declared_classes_are_used(semi):
    X, _, y_semi = semi
    clf = AAEClassifier(classes=list(range(10)), **TINY).fit(X, y_semi)
    assert_array_equal(clf.classes_, np.arange(10))


def test_continuous_y_is_an_error(semi):
    X, _, y_semi = semi
    y_cont = np.where(y_semi == -1, -1.0, np.random.RandomState(0).rand(len(y_semi)))
    with pytest.raises(ValueError, match="Unknown label type"):
        AAEClassifier(**TINY).fit(X, y_cont)


def test_single_class_is_an_error(semi):
    X, _, y_semi = semi
    with pytest.raises(ValueError, match="at least 2 classes"):
        AAEClassifier(**TINY).fit(X, np.where(y_semi == -1, -1, 0))


def test_y_none_is_an_error(digits):
    with pytest.raises(ValueError, match="requires y to be passed"):
        AAEClassifier(**TINY).fit(digits[0][:20], None)


def test_image_input_with_conv_backbone(semi):
    X, _, y_semi = semi
    imgs = X[:300].reshape(-1, 8, 8)
    clf = AAEClassifier(3, hidden_layer_sizes=(4,), discriminator_hidden_sizes=(8,),
                        max_epochs=1, random_state=0).fit(imgs, y_semi[:300])
    assert clf.transform(imgs).shape == (300, 3)
    assert clf.inverse_transform(clf.transform(imgs[:4])).shape == (4, 8, 8)
    Xs, _ = clf.sample(2, random_state=0)
    assert Xs.shape == (2, 8, 8)


def _model(aae, **settings):
    """A copy of the fitted AAE's model with some of its training settings changed."""
    model = pickle.loads(pickle.dumps(aae.net_.module_))
    for key, value in settings.items():
        setattr(model, key, value)
    return model


@pytest.mark.parametrize("backbone", ["mlp", "conv"])
def test_encoder_batch_norm_and_hidden_noise(semi, backbone):
    X, y, y_semi = semi
    X_img = X.reshape(-1, 8, 8)
    # 1797 rows in minibatches of 64 leave a last one of 5; of 16, one of 5 too
    clf = AAEClassifier(4, hidden_layer_sizes=(8, 8) if backbone == "conv" else (64,),
                        discriminator_hidden_sizes=(32,), backbone=backbone, batch_norm=True,
                        hidden_noise=0.1, max_epochs=10, batch_size=64, random_state=0)
    clf.fit(X_img, y_semi)
    kinds = {type(m).__name__ for m in clf.net_.module_.encoder.modules()}
    assert {"GaussianNoise", "BatchNorm2d" if backbone == "conv" else "BatchNorm1d"} <= kinds
    # predictions use the averaged encoder, with its averaged running statistics
    assert clf.score(X_img, y) > 0.5
    assert_array_equal(clf.predict(X_img[:20]), clf.predict(X_img[:20]))


def test_encoder_batch_norm_fits_a_last_minibatch_of_one_row(semi):
    X, _, y_semi = semi
    X1, y1 = X[:101], y_semi[:101].copy()
    y1[:10] = np.arange(10)  # 100 rows and one left over in minibatches of 50
    clf = AAEClassifier(batch_norm=True, batch_size=50, **TINY).fit(X1, y1)
    assert np.isfinite(clf.predict_proba(X1)).all()


def test_discriminators_see_noisy_codes_in_training_only(aae):
    assert aae.discriminator_noise == 0.3  # the default
    model = _model(aae)
    code = torch.zeros(20000, 3)
    model.train()
    noisy = model.critic_input(code)
    assert noisy.std().item() == pytest.approx(0.3, rel=0.05)
    assert abs(noisy.mean().item()) < 0.01
    model.eval()
    assert torch.equal(model.critic_input(code), code)
    model = _model(aae, discriminator_noise=0.0).train()
    assert torch.equal(model.critic_input(code), code)


def test_discriminator_losses_use_the_noisy_codes(semi, aae):
    # the same batch and the same random draws give other losses with other noise
    X, _, _ = semi
    x = torch.as_tensor(X[:50], dtype=torch.float32)
    batch = (x, x[:5], torch.zeros(5, dtype=torch.long))
    out = {}
    for noise in (0.0, 0.3):
        model = _model(aae, discriminator_noise=noise).train()
        torch.manual_seed(0)
        out[noise] = (model.loss_disc(batch).item(), model.loss_gen(batch).item())
    assert out[0.0][0] != pytest.approx(out[0.3][0])
    assert out[0.0][1] != pytest.approx(out[0.3][1])


def test_reconstruction_phase_decodes_labeled_rows_from_their_known_class(semi, aae):
    X, y, y_semi = semi
    labeled = np.flatnonzero(y_semi != -1)[:7]
    x = torch.as_tensor(X[:40], dtype=torch.float32)
    x_lab = torch.as_tensor(X[labeled], dtype=torch.float32)
    y_lab = torch.as_tensor(np.searchsorted(aae.classes_, y[labeled]))
    batch = (x, x_lab, y_lab)
    assert aae.reconstruct_labeled is False  # the default: the paper's reconstruction phase
    model = _model(aae, reconstruct_labeled=True).eval()  # no input noise: terms computed again
    with torch.no_grad():
        alone = _model(aae, reconstruct_labeled=False).eval().loss_recon(batch)
        both = model.loss_recon(batch)
        _, z_lab = model.encode(x_lab)
        out = model.decode_logits(torch.eye(len(aae.classes_))[y_lab], z_lab)
        labeled_term = ((out - x_lab) ** 2).mean()  # loss="mse"
    assert both.item() == pytest.approx(alone.item() + labeled_term.item(), rel=1e-5)
    # the labeled term depends on the given classes, not on the predicted ones
    with torch.no_grad():
        other = model.loss_recon((x, x_lab, (y_lab + 1) % len(aae.classes_)))
    assert other.item() != pytest.approx(both.item())


def test_supervised_phase_adds_the_virtual_adversarial_loss_of_all_rows(semi, aae):
    X, y, y_semi = semi
    assert (aae.vat_weight, aae.vat_epsilon) == (1.0, (0.4, 0.2))  # the defaults
    labeled = np.flatnonzero(y_semi != -1)[:7]
    x = torch.as_tensor(X[:40], dtype=torch.float32)
    x_lab = torch.as_tensor(X[labeled], dtype=torch.float32)
    y_lab = torch.as_tensor(np.searchsorted(aae.classes_, y[labeled]))
    model = _model(aae, vat_weight=0.0).train()
    ce = torch.nn.functional.cross_entropy(model.class_logits(x_lab), y_lab)
    assert model.loss_sup((x, x_lab, y_lab)).item() == pytest.approx(ce.item())
    model = _model(aae, vat_weight=2.0, vat_epsilon=0.5).train()
    rms = np.sqrt((X[:40] ** 2).sum(axis=1).mean())  # the perturbation scales with the rows
    torch.manual_seed(0)
    with_vat = model.loss_sup((x, x_lab, y_lab))
    torch.manual_seed(0)
    vat = losses.virtual_adversarial_loss(model.class_logits, x, 0.5 * float(rms))
    assert vat.item() > 0
    assert with_vat.item() == pytest.approx(ce.item() + 2.0 * vat.item(), rel=1e-5)
    # only the unlabeled rows' smoothness: the labels do not enter that term
    torch.manual_seed(0)
    other = model.loss_sup((x, x_lab, (y_lab + 1) % len(aae.classes_)))
    other_ce = torch.nn.functional.cross_entropy(model.class_logits(x_lab),
                                                 (y_lab + 1) % len(aae.classes_))
    assert other.item() - other_ce.item() == pytest.approx(2.0 * vat.item(), rel=1e-4)


@pytest.mark.parametrize("max_shift, max_rotation, max_warp",
                         [(1.5, 0.0, 0.0), (0.0, 20.0, 0.0), (1.5, 20.0, 0.0), (0.0, 0.0, 1.0),
                          (1.5, 20.0, 1.0)])
def test_supervised_phase_with_max_shift_shifts_the_labeled_images_and_adds_consistency(
        semi, aae, max_shift, max_rotation, max_warp):
    X, y, y_semi = semi
    # the defaults: no shift, no turn, no warp
    assert (aae.max_shift, aae.max_rotation, aae.max_warp) == (0.0, 0.0, 0.0)
    assert aae.consistency_weight == 1.0
    moves = {"max_shift": max_shift, "max_rotation": max_rotation, "max_warp": max_warp}
    move = (max_shift, max_rotation, max_warp)
    labeled = np.flatnonzero(y_semi != -1)[:7]
    # the MLP encoder flattens its input: the fitted model reads the digits as 8x8 images too
    x = torch.as_tensor(X[:40], dtype=torch.float32).reshape(-1, 8, 8)
    x_lab = torch.as_tensor(X[labeled], dtype=torch.float32).reshape(-1, 8, 8)
    y_lab = torch.as_tensor(np.searchsorted(aae.classes_, y[labeled]))
    batch = (x, x_lab, y_lab)
    model = _model(aae, vat_weight=0.0, **moves, consistency_weight=3.0).train()
    torch.manual_seed(0)
    loss = model.loss_sup(batch)
    torch.manual_seed(0)  # the same draws, in the same order: labeled shift, then all rows'
    shifted_lab = random_shift(x_lab, *move)
    ce = torch.nn.functional.cross_entropy(model.class_logits(shifted_lab), y_lab)
    consistency = losses.consistency_loss(model.class_logits, x,
                                          random_shift(x, *move))
    assert consistency.item() > 0
    assert loss.item() == pytest.approx(ce.item() + 3.0 * consistency.item(), rel=1e-5)
    # consistency_weight=0: the shifted labeled images alone
    model = _model(aae, vat_weight=0.0, **moves, consistency_weight=0.0).train()
    torch.manual_seed(0)
    assert model.loss_sup(batch).item() == pytest.approx(ce.item(), rel=1e-5)
    # consistency_threshold: the hard targets of the confident rows (FixMatch)
    assert aae.consistency_threshold == 0.0  # the default: the soft targets
    model = _model(aae, vat_weight=0.0, **moves, consistency_weight=3.0,
                   consistency_threshold=0.5).train()
    torch.manual_seed(0)
    loss = model.loss_sup(batch)
    torch.manual_seed(0)
    shifted_lab = random_shift(x_lab, *move)
    hard = losses.consistency_loss(model.class_logits, x,
                                   random_shift(x, *move), threshold=0.5)
    assert hard.item() > 0 and hard.item() != pytest.approx(consistency.item())
    assert loss.item() == pytest.approx(ce.item() + 3.0 * hard.item(), rel=1e-5)
    # consistency_teacher="average": the averaged encoder's prediction is the target
    assert aae.consistency_teacher == "encoder"  # the default
    model = _model(aae, vat_weight=0.0, **moves, consistency_weight=3.0,
                   consistency_teacher="average").train()
    with torch.no_grad():
        teacher = model.average.module(x)[:, : model.n_classes].log_softmax(dim=1)
        student = model.class_logits(x).log_softmax(dim=1)
    assert not torch.allclose(teacher, student)  # the average has moved away from the last step
    torch.manual_seed(0)
    loss = model.loss_sup(batch)
    torch.manual_seed(0)
    shifted_lab = random_shift(x_lab, *move)
    taught = losses.consistency_loss(model.class_logits, x,
                                     random_shift(x, *move), log_p=teacher)
    assert taught.item() != pytest.approx(consistency.item())
    assert loss.item() == pytest.approx(ce.item() + 3.0 * taught.item(), rel=1e-5)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")  # tiny fits
def test_max_shift_fits_images_with_either_backbone(semi):
    X, _, y_semi = semi
    images = X.reshape(-1, 8, 8)
    plain = AAEClassifier(**TINY, backbone="mlp").fit(images, y_semi)
    shifted = AAEClassifier(**TINY, backbone="mlp", max_shift=1.0).fit(images, y_semi)
    assert shifted.net_.module_.max_shift == 1.0
    assert shifted.predict(images).shape == (len(X),)
    assert not np.allclose(shifted.predict_proba(images), plain.predict_proba(images))
    conv = AAEClassifier(**{**TINY, "hidden_layer_sizes": (4,)}, max_shift=1.0)
    assert conv.fit(images[:, None], y_semi).predict(images[:5, None]).shape == (5,)
    warped = AAEClassifier(**TINY, backbone="mlp", max_warp=1.0).fit(images, y_semi)
    assert warped.net_.module_.max_warp == 1.0
    assert not np.allclose(warped.predict_proba(images), shifted.predict_proba(images))


def test_max_shift_on_rows_is_a_clear_error(semi):
    X, _, y_semi = semi
    with pytest.raises(ValueError, match="max_shift=2 shifts images, but X has rows of 64"):
        AAEClassifier(**TINY, max_shift=2).fit(X, y_semi)
    with pytest.raises(ValueError, match="max_rotation=10 rotates images, but X has rows of 64"):
        AAEClassifier(**TINY, max_rotation=10).fit(X, y_semi)
    with pytest.raises(ValueError, match="max_warp=1.5 warps images, but X has rows of 64"):
        AAEClassifier(**TINY, max_warp=1.5).fit(X, y_semi)


class _RecordVatEpsilon(Callback):
    """Records the model's ``vat_epsilon`` at each epoch's start."""

    def initialize(self):
        self.seen = []
        return self

    def on_epoch_begin(self, net, **kwargs):
        self.seen.append(net.module_.vat_epsilon)


def _seen(clf):
    """What the fitted clone of the ``_RecordVatEpsilon`` callback recorded."""
    return dict(clf.net_.callbacks_)["_RecordVatEpsilon"].seen


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")  # tiny fits
def test_a_pair_vat_epsilon_perturbs_by_early_then_late(semi):
    X, _, y_semi = semi
    clf = AAEClassifier(**{**TINY, "max_epochs": 4}, vat_epsilon=(0.4, 0.2),
                        vat_early_epochs=2, warm_start=True, callbacks=[_RecordVatEpsilon()])
    clf.fit(X, y_semi)
    assert _seen(clf) == [0.4, 0.4, 0.2, 0.2]
    assert clf.net_.module_.vat_schedule == (0.4, 0.2, 2)
    # a warm-started fit goes on counting the epochs: the 5th is early, the 6th late
    clf.set_params(max_epochs=2, vat_early_epochs=5).fit(X, y_semi)
    assert _seen(clf) == [0.4, 0.2]
    # vat_early_epochs=0: the late value from the start; a number: constant
    for eps, early, expected in [((0.4, 0.2), 0, [0.2, 0.2]), (0.3, 1, [0.3, 0.3])]:
        clf = AAEClassifier(**{**TINY, "max_epochs": 2}, vat_epsilon=eps,
                            vat_early_epochs=early, callbacks=[_RecordVatEpsilon()])
        clf.fit(X, y_semi)
        assert _seen(clf) == expected


@pytest.mark.parametrize("eps", [(0.4,), (0.4, 0.2, 0.1), (0.4, -0.2), (0.4, np.nan),
                                 (0.4, "a"), [[0.4, 0.2]]])
def test_a_bad_vat_epsilon_pair_is_a_clear_error(semi, eps):
    X, _, y_semi = semi
    with pytest.raises(ValueError, match="vat_epsilon must be a positive number or a pair"):
        AAEClassifier(**TINY, vat_epsilon=eps).fit(X, y_semi)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")  # tiny fits
def test_generator_lr_scale_sets_the_learning_rate_of_the_generator_step_alone(semi):
    X, _, y_semi = semi
    clf = AAEClassifier(**TINY, lr=2e-3, lr_schedule="constant",
                        generator_lr_scale=0.25).fit(X, y_semi)
    lrs = {phase: [g["lr"] for g in getattr(clf.net_, f"optimizer_{phase}_").param_groups]
           for phase in ("recon", "disc", "gen", "sup")}
    assert lrs == {"recon": [2e-3], "disc": [2e-3], "gen": [5e-4], "sup": [2e-3]}
    # the generator step keeps the adversarial phases' betas
    assert clf.net_.optimizer_gen_.param_groups[0]["betas"] == (0.5, 0.999)
    # a smaller step for the encoder against the discriminators: other weights, same data
    default = AAEClassifier(**TINY, lr=2e-3, lr_schedule="constant").fit(X, y_semi)
    assert not np.array_equal(clf.predict_proba(X[:20]), default.predict_proba(X[:20]))
    # by default the generator step takes half of lr, the other phases all of it
    assert default.generator_lr_scale == 0.5
    assert [g["lr"] for g in default.net_.optimizer_gen_.param_groups] == [1e-3]
    assert [g["lr"] for g in default.net_.optimizer_sup_.param_groups] == [2e-3]


@pytest.mark.parametrize("scale", [0, -0.5])
def test_generator_lr_scale_must_be_positive(semi, scale):
    X, _, y_semi = semi
    with pytest.raises(ValueError, match="generator_lr_scale"):
        AAEClassifier(**TINY, generator_lr_scale=scale).fit(X, y_semi)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")  # tiny fits
def test_reconstruction_lr_scale_sets_the_encoders_rate_in_the_reconstruction_phase(semi):
    X, _, y_semi = semi
    clf = AAEClassifier(**TINY, lr=2e-3, lr_schedule="constant",
                        reconstruction_lr_scale=0.25).fit(X, y_semi)
    module = clf.net_.module_
    groups = clf.net_.optimizer_recon_.param_groups
    assert [g["params"] for g in groups] == [list(module.encoder.parameters()),
                                             list(module.decoder.parameters())]
    assert [g["lr"] for g in groups] == [5e-4, 2e-3]
    for phase in ("disc", "gen", "sup"):  # the other phases keep one group at their rate
        assert len(getattr(clf.net_, f"optimizer_{phase}_").param_groups) == 1
    default = AAEClassifier(**TINY, lr=2e-3, lr_schedule="constant").fit(X, y_semi)
    assert [g["lr"] for g in default.net_.optimizer_recon_.param_groups] == [2e-3]
    assert not np.array_equal(clf.predict_proba(X[:20]), default.predict_proba(X[:20]))


class _WithoutReconstruction(Callback):
    def on_train_begin(self, net, **kwargs):
        net.module_.active_phases = ("disc", "gen", "sup")


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")  # tiny fits
def test_reconstruction_lr_scale_0_trains_the_decoder_alone(semi):
    X, _, y_semi = semi
    params = dict(TINY, max_epochs=2, reconstruct_labeled=True)
    clf = AAEClassifier(**params, reconstruction_lr_scale=0).fit(X, y_semi)
    module = clf.net_.module_
    # the reconstruction phase steps the decoder alone ...
    (group,) = clf.net_.optimizer_recon_.param_groups
    assert group["params"] == list(module.decoder.parameters())
    # ... so the encoder is the one of a fit without that phase
    without = AAEClassifier(**params, callbacks=[_WithoutReconstruction()]).fit(X, y_semi)
    assert_array_equal(clf.predict_proba(X), without.predict_proba(X))
    assert_array_equal(clf.transform(X), without.transform(X))
    # and the decoder learned to reconstruct from those codes
    def error(model):
        return np.mean((model.inverse_transform(model.transform(X[:200])) - X[:200]) ** 2)
    assert error(clf) < 0.9 * error(without)


@pytest.mark.parametrize("scale", [-0.5, "half"])
def test_reconstruction_lr_scale_must_be_a_non_negative_number(semi, scale):
    X, _, y_semi = semi
    with pytest.raises((ValueError, TypeError), match="reconstruction_lr_scale"):
        AAEClassifier(**TINY, reconstruction_lr_scale=scale).fit(X, y_semi)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")  # tiny fits
def test_supervised_epochs_run_the_supervised_phase_alone_first(semi, weights_per_epoch):
    X, _, y_semi = semi
    clf = AAEClassifier(**dict(TINY, max_epochs=3), supervised_epochs=2, warm_start=True,
                        callbacks=[weights_per_epoch]).fit(X, y_semi)
    others = ("recon_loss", "disc_loss", "gen_loss")
    for epoch in clf.net_.history[:2]:  # the labels first: the other phases wait
        assert np.isfinite(epoch["sup_loss"]) and not any(k in epoch for k in others)
    assert all(np.isfinite(clf.net_.history[-1][k]) for k in ("sup_loss", *others))
    assert clf.n_iter_ == 3
    # the encoder learns from the first epoch; the decoder and discriminators from the third
    record = dict(clf.net_.callbacks_)["WeightsPerEpoch"]
    for name in ("decoder", "disc_y", "disc_z"):
        assert torch.equal(record.part(2, name), record.part(0, name))
        assert not torch.equal(record.part(3, name), record.part(0, name))
    assert not torch.equal(record.part(1, "encoder"), record.part(0, "encoder"))
    # a warm-started fit goes on counting epochs: all phases from its first one
    clf.set_params(max_epochs=1).fit(X, y_semi)
    assert clf.n_iter_ == 4 and all(k in clf.net_.history[-1] for k in others)
    # 0, the default: all phases from the first epoch
    default = AAEClassifier(**TINY).fit(X, y_semi)
    assert all(k in default.net_.history[0] for k in others)


@pytest.mark.parametrize("epochs, match", [(-1, "supervised_epochs"),
                                           (1.5, "supervised_epochs"),
                                           (2, "less than max_epochs=2")])
def test_supervised_epochs_must_leave_epochs_for_the_other_phases(semi, epochs, match):
    X, _, y_semi = semi
    with pytest.raises(ValueError, match=match):
        AAEClassifier(**dict(TINY, max_epochs=2), supervised_epochs=epochs).fit(X, y_semi)


def test_model_saved_before_the_later_parameters_loads_as_trained(semi):
    X, _, y_semi = semi
    # such a model predicted with its last weights: so does a fit with ema_decay=0
    last = AAEClassifier(6, hidden_layer_sizes=(64,), discriminator_hidden_sizes=(32,),
                         max_epochs=2, ema_decay=0.0, vat_weight=0.0,
                         random_state=0).fit(X, y_semi)
    state = last.__getstate__()
    for name in ("discriminator_noise", "reconstruct_labeled", "ema_decay", "vat_weight",
                 "vat_epsilon", "vat_early_epochs", "generator_lr_scale",
                 "reconstruction_lr_scale", "supervised_epochs", "max_warp"):
        del state[name]
    weights = state["_net_state"]["weights"]
    state["_net_state"]["weights"] = {k: v for k, v in weights.items()
                                      if not k.startswith("average.")}
    loaded = AAEClassifier.__new__(AAEClassifier)
    loaded.__setstate__(state)
    params = loaded.get_params()
    assert params["discriminator_noise"] == 0.0 and params["reconstruct_labeled"] is False
    assert params["ema_decay"] == 0.0 and params["vat_weight"] == 0.0
    assert params["generator_lr_scale"] == 1.0 and params["reconstruction_lr_scale"] == 1.0
    assert params["supervised_epochs"] == 0 and params["max_warp"] == 0.0
    assert_array_equal(loaded.predict_proba(X[:50]), last.predict_proba(X[:50]))
    assert_array_equal(loaded.transform(X[:50]), last.transform(X[:50]))


def test_predictions_and_codes_use_the_averaged_encoder(semi, aae):
    X, _, y_semi = semi
    assert aae.ema_decay == 0.9999  # the default
    model = aae.net_.module_
    steps = aae.n_iter_ * int(np.ceil(len(X) / aae.batch_size))
    assert model.average.steps() == steps
    x = torch.as_tensor(X, dtype=torch.float32)
    with torch.no_grad():
        averaged = model.average.module(x)
        live = model.encoder(x)
    k = len(aae.classes_)
    np.testing.assert_allclose(aae.predict_proba(X), averaged[:, :k].softmax(1).numpy(),
                               rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(aae.transform(X), averaged[:, k:].numpy(), rtol=1e-5,
                               atol=1e-6)
    assert not torch.allclose(averaged, live)
    # training encodes with the encoder being trained
    model.train()
    try:
        with torch.no_grad():
            torch.testing.assert_close(model.encode(x)[1], live[:, k:])
    finally:
        model.eval()
    # ema_decay=0: the last weights
    last = clone(aae).set_params(ema_decay=0.0, max_epochs=2).fit(X, y_semi)
    with torch.no_grad():
        live = last.net_.module_.encoder(x)
    np.testing.assert_allclose(last.predict_proba(X), live[:, :k].softmax(1).numpy(),
                               rtol=1e-5, atol=1e-7)
    assert last.net_.module_.average.steps() == 0


def test_warm_start_goes_on_averaging(semi):
    X, _, y_semi = semi
    clf = AAEClassifier(**TINY, warm_start=True).fit(X, y_semi)
    steps = int(np.ceil(len(X) / clf.batch_size))
    assert clf.net_.module_.average.steps() == steps
    clf.fit(X, y_semi)
    assert clf.net_.module_.average.steps() == 2 * steps
    # switched on after a fit without it: the average starts then
    clf = AAEClassifier(**TINY, warm_start=True, ema_decay=0.0).fit(X, y_semi)
    clf.set_params(ema_decay=0.99).fit(X, y_semi)
    assert clf.net_.module_.average.steps() == steps


def test_class_prior_given_draws_the_prior_samples_by_its_probabilities(semi, aae):
    assert aae.class_prior == "uniform"  # the default: the paper's prior, no buffer
    assert not hasattr(aae.net_.module_, "prior")
    X, y, y_semi = semi
    shares = np.arange(1.0, 11.0)  # class k ten times as likely as class 0 for k = 9
    clf = AAEClassifier(class_prior=shares, **TINY).fit(X, y_semi)
    model = clf.net_.module_
    assert_allclose(model.prior.numpy(), shares / shares.sum(), rtol=1e-6)
    torch.manual_seed(0)
    onehot, z = model._prior(20000, torch.zeros(1))
    assert onehot.shape == (20000, 10) and z.shape == (20000, model.n_components)
    assert set(onehot.sum(dim=1).tolist()) == {1.0}
    assert_allclose(onehot.mean(dim=0).numpy(), shares / shares.sum(), atol=0.01)
    # sample() draws its classes from it too
    _, y_sampled = clf.sample(5000, random_state=0)
    assert_allclose(np.bincount(y_sampled, minlength=10) / 5000, shares / shares.sum(),
                    atol=0.02)
    # the given prior stays as given; the fitted model pickles with it
    assert_allclose(pickle.loads(pickle.dumps(clf)).net_.module_.prior.numpy(),
                    shares / shares.sum(), rtol=1e-6)


def test_class_prior_predicted_follows_the_encoders_class_shares(semi):
    X, _, y_semi = semi
    clf = AAEClassifier(class_prior="predicted", **{**TINY, "max_epochs": 3}).fit(X, y_semi)
    model = clf.net_.module_
    prior = model.prior.clone()
    assert prior.sum().item() == pytest.approx(1.0, abs=1e-5)
    assert not torch.allclose(prior, torch.full((10,), 0.1))  # moved away from uniform
    # one discriminator step moves it by prior_rate towards the minibatch's mean q(y|x)
    x = torch.as_tensor(X[:50], dtype=torch.float32)
    model.train()
    with torch.no_grad():
        mean_q = model.encode(x)[0].softmax(dim=1).mean(dim=0)
    model.loss_disc((x,))
    assert_allclose(model.prior.numpy(), (prior + model.prior_rate * (mean_q - prior)).numpy(),
                    rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("prior, match", [
    ([1.0, 2.0], "10 non-negative numbers"),
    ([1.0] * 9 + [-1.0], "10 non-negative numbers"),
    ([1.0] * 9 + [np.nan], "10 non-negative numbers"),
    ([0.0] * 10, "positive sum"),
])
def test_class_prior_bad_values_are_value_errors(semi, prior, match):
    X, _, y_semi = semi
    with pytest.raises(ValueError, match=match):
        AAEClassifier(class_prior=prior, **TINY).fit(X, y_semi)
