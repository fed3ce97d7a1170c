"""VAE: deterministic encoding, seeded sampling, the beta trade-off, likelihood scores."""

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.datasets import load_digits

from skae import VAE
from skae.losses import gaussian_kl


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X / 16.0, y


@pytest.fixture(scope="module")
def vae(digits):
    return VAE(4, hidden_layer_sizes=(32,), max_epochs=10, random_state=0).fit(digits[0])


def _posterior(model, X):
    with torch.no_grad():
        return model.net_.module_.posterior(torch.as_tensor(X, dtype=torch.float32))


def test_transform_is_the_deterministic_posterior_mean(digits, vae):
    X = digits[0][:100]
    codes = vae.transform(X)
    assert codes.shape == (100, 4)
    assert_array_equal(codes, vae.transform(X))
    mu, _ = _posterior(vae, X)
    assert_allclose(codes, mu.numpy(), rtol=1e-5, atol=1e-6)


def test_sample_shapes_and_seeding(vae):
    a = vae.sample(7, random_state=0)
    assert a.shape == (7, 64) and a.dtype == np.float32
    assert np.all(np.isfinite(a))
    assert_array_equal(a, vae.sample(7, random_state=0))
    assert not np.allclose(a, vae.sample(7, random_state=1))
    assert vae.sample().shape == (1, 64)


def test_sample_decodes_prior_draws(vae):
    z = np.random.RandomState(3).standard_normal((5, 4)).astype(np.float32)
    assert_allclose(vae.sample(5, random_state=3), vae.inverse_transform(z), rtol=1e-6)


def test_sample_of_image_model_has_image_shape(digits):
    X = digits[0][:300].reshape(-1, 1, 8, 8)
    vae = VAE(2, hidden_layer_sizes=(4,), loss="bce", max_epochs=1, random_state=0).fit(X)
    s = vae.sample(3, random_state=0)
    assert s.shape == (3, 1, 8, 8)
    assert s.min() >= 0 and s.max() <= 1  # Bernoulli means
    assert vae.inverse_transform(vae.transform(X)).shape == X.shape


def test_sample_rejects_bad_n_samples(vae):
    with pytest.raises(ValueError, match="n_samples"):
        vae.sample(0)


def test_beta_trades_reconstruction_for_kl(digits):
    X, _ = digits
    kw = {"hidden_layer_sizes": (32,), "max_epochs": 8, "random_state": 0}
    low, high = VAE(4, beta=0.1, **kw).fit(X), VAE(4, beta=4.0, **kw).fit(X)

    def kl(model):
        return gaussian_kl(*_posterior(model, X)).mean().item()

    def recon(model):
        return np.mean((model.inverse_transform(model.transform(X)) - X) ** 2)

    assert kl(high) < kl(low)
    assert recon(high) > recon(low)


def test_score_samples_is_finite_and_higher_in_distribution(digits, vae):
    X, _ = digits
    noise = np.random.RandomState(0).uniform(0, 1, size=(100, 64))
    s_in, s_out = vae.score_samples(X), vae.score_samples(noise)
    assert np.all(np.isfinite(s_in)) and np.all(np.isfinite(s_out))
    assert s_in.shape == (len(X),) and s_in.dtype == np.float64
    assert np.median(s_in) > np.max(s_out)
    assert_array_equal(vae.score_samples(X[:10]), vae.score_samples(X[:10]))


def test_score_samples_is_elbo_at_the_posterior_mean(digits, vae):
    # -(0.5 * ||x - g(mu)||^2 + KL(q(z|x) || p(z))), the documented deterministic ELBO
    X = digits[0][:20]
    mu, logvar = _posterior(vae, X)
    recon = vae.inverse_transform(mu.numpy())
    expected = -(0.5 * ((recon - X) ** 2).sum(axis=1) + gaussian_kl(mu, logvar).numpy())
    assert_allclose(vae.score_samples(X), expected, rtol=1e-4)


def test_training_improves_the_elbo(digits, vae):
    losses = vae.net_.history[:, "elbo_loss"]
    assert len(losses) == 10 and losses[-1] < losses[0]
