"""AutoEncoder: what it learns (PCA for the linear case, denoising, sparsity, anomaly scores)."""

import numpy as np
import pytest
from numpy.testing import assert_array_equal
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from torch import nn

from skae import AutoEncoder


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X / 16.0, y


@pytest.fixture(scope="module")
def ae(digits):
    return AutoEncoder(8, hidden_layer_sizes=(32,), max_epochs=15, random_state=0).fit(digits[0])


def _mse(model, X):
    return np.mean((model.inverse_transform(model.transform(X)) - X) ** 2)


def test_linear_autoencoder_reaches_pca_reconstruction_error(digits):
    X, _ = digits
    k = 4
    pca = PCA(k).fit(X)
    pca_err = np.mean((pca.inverse_transform(pca.transform(X)) - X) ** 2)
    ae = AutoEncoder(k, hidden_layer_sizes=(), activation="identity", loss="mse", lr=1e-2,
                     max_epochs=100, random_state=0).fit(X)
    ae_err = _mse(ae, X)
    # PCA is the best rank-k affine reconstruction: the autoencoder can only tie it
    assert ae_err >= pca_err * (1 - 1e-3)
    assert ae_err <= pca_err * 1.03


def test_linear_autoencoder_is_purely_linear(digits):
    ae = AutoEncoder(3, hidden_layer_sizes=(), activation="identity", max_epochs=1,
                     random_state=0).fit(digits[0][:100])
    kinds = {type(m) for m in ae.net_.module_.modules()}
    assert nn.Linear in kinds
    assert not kinds & {nn.ReLU, nn.Tanh, nn.Sigmoid}


def test_training_lowers_reconstruction_error(digits, ae):
    X, _ = digits
    untrained = AutoEncoder(8, hidden_layer_sizes=(32,), max_epochs=1, random_state=0).fit(X)
    assert _mse(ae, X) < 0.8 * _mse(untrained, X)
    losses = ae.net_.history[:, "recon_loss"]
    assert losses[-1] < losses[0]
    assert ae.n_iter_ == 15


def test_score_is_mean_of_score_samples(digits, ae):
    X = digits[0][:50]
    assert ae.score(X) == pytest.approx(np.mean(ae.score_samples(X)))
    assert ae.score_samples(X).dtype == np.float64
    assert ae.score_samples(X) == pytest.approx(-np.mean(
        (ae.inverse_transform(ae.transform(X)) - X) ** 2, axis=1), rel=1e-4, abs=1e-6)


@pytest.mark.parametrize("outlier", ["scaled", "noise"])
def test_score_samples_flags_outliers(digits, ae, outlier):
    X, _ = digits
    rng = np.random.RandomState(0)
    odd = X[:50] * 5 if outlier == "scaled" else rng.uniform(0, 1, size=(50, 64))
    typical = ae.score_samples(X)
    # nearly every outlier scores below the 5th percentile of the training rows
    assert np.mean(ae.score_samples(odd) < np.percentile(typical, 5)) > 0.9


def test_denoising_trains_and_transform_is_deterministic(digits):
    X, _ = digits
    dae = AutoEncoder(8, hidden_layer_sizes=(32,), noise=0.3, max_epochs=5, random_state=0)
    dae.fit(X)
    assert_array_equal(dae.transform(X), dae.transform(X))
    assert_array_equal(dae.score_samples(X[:20]), dae.score_samples(X[:20]))
    losses = dae.net_.history[:, "recon_loss"]
    assert np.all(np.isfinite(losses)) and losses[-1] < losses[0]
    # the noise changes what is learned
    plain = AutoEncoder(8, hidden_layer_sizes=(32,), max_epochs=5, random_state=0).fit(X)
    assert not np.allclose(plain.transform(X), dae.transform(X))


def test_denoising_autoencoder_removes_noise(digits):
    X, _ = digits
    rng = np.random.RandomState(1)
    noisy = X + 0.3 * rng.standard_normal(X.shape)
    dae = AutoEncoder(16, hidden_layer_sizes=(64,), noise=0.3, max_epochs=15, random_state=0)
    dae.fit(X)
    denoised = dae.inverse_transform(dae.transform(noisy))
    assert np.mean((denoised - X) ** 2) < 0.5 * np.mean((noisy - X) ** 2)


def test_sparsity_pulls_code_activation_to_target(digits):
    X, _ = digits
    target = 0.05
    kw = {"hidden_layer_sizes": (32,), "max_epochs": 10, "random_state": 0}
    dense = AutoEncoder(8, sparsity_weight=0.0, **kw).fit(X)
    sparse = AutoEncoder(8, sparsity_weight=1.0, sparsity_target=target, **kw).fit(X)

    def rho(model):  # mean sigmoid activation of each code unit
        return (1 / (1 + np.exp(-model.transform(X)))).mean(axis=0)

    assert rho(sparse).mean() < rho(dense).mean()
    assert np.abs(rho(sparse) - target).max() < np.abs(rho(dense) - target).min()


def test_tied_weights_halve_the_weights_and_fit(digits):
    X, _ = digits
    kw = {"hidden_layer_sizes": (32,), "max_epochs": 3, "random_state": 0}
    tied = AutoEncoder(8, tied_weights=True, **kw).fit(X)
    untied = AutoEncoder(8, **kw).fit(X)
    n_tied = sum(p.numel() for p in tied.net_.module_.parameters())
    n_untied = sum(p.numel() for p in untied.net_.module_.parameters())
    weights = 64 * 32 + 32 * 8
    assert n_untied - n_tied == weights
    assert tied.inverse_transform(tied.transform(X)).shape == X.shape
    losses = tied.net_.history[:, "recon_loss"]
    assert losses[-1] < losses[0]


def test_tied_weights_need_the_mlp_backbone(digits):
    X = digits[0][:50].reshape(-1, 8, 8)
    with pytest.raises(ValueError, match=r"tied_weights=True needs the MLP backbone"):
        AutoEncoder(2, hidden_layer_sizes=(4,), tied_weights=True, max_epochs=1).fit(X)
    # on images, the MLP backbone can be tied
    ae = AutoEncoder(2, hidden_layer_sizes=(4,), tied_weights=True, backbone="mlp",
                     max_epochs=1, random_state=0).fit(X)
    assert ae.inverse_transform(ae.transform(X)).shape == X.shape


def test_bce_loss_reconstructs_in_unit_interval(digits):
    X, _ = digits
    ae = AutoEncoder(4, hidden_layer_sizes=(16,), loss="bce", max_epochs=3, random_state=0)
    out = ae.fit(X).inverse_transform(ae.transform(X))
    assert out.min() >= 0 and out.max() <= 1
    assert np.all(ae.score_samples(X[:10]) < 0)  # minus a cross-entropy


def test_bce_loss_rejects_data_outside_unit_interval(digits):
    with pytest.raises(ValueError, match=r"loss='bce' needs X in \[0, 1\].*got values in "
                                         r"\[0, 16\]"):
        AutoEncoder(loss="bce", max_epochs=1).fit(digits[0] * 16)


def test_inverse_transform_checks_code_width(ae):
    with pytest.raises(ValueError, match="X has 5 features, but inverse_transform expects "
                                         "codes with n_components=8"):
        ae.inverse_transform(np.zeros((3, 5)))


@pytest.mark.parametrize("optimizer", ["sgd", "adamw", "rmsprop"])
def test_other_optimizers_train(digits, optimizer):
    X = digits[0][:300]
    ae = AutoEncoder(4, hidden_layer_sizes=(16,), optimizer=optimizer, lr=1e-2, max_epochs=3,
                     random_state=0).fit(X)
    assert np.all(np.isfinite(ae.net_.history[:, "recon_loss"]))


def test_sgd_has_nesterov_momentum_as_in_sklearn_mlp(digits):
    import pickle

    ae = AutoEncoder(4, hidden_layer_sizes=(16,), optimizer="sgd", lr=1e-2, max_epochs=1,
                     random_state=0).fit(digits[0][:100])
    defaults = ae.net_.optimizer_.defaults
    assert defaults["momentum"] == 0.9 and defaults["nesterov"] is True
    loaded = pickle.loads(pickle.dumps(ae))
    np.testing.assert_array_equal(loaded.transform(digits[0][:5]), ae.transform(digits[0][:5]))
