"""The pure loss functions of :mod:`skae.losses`, against closed forms and naive formulas."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch.distributions import Normal, kl_divergence
from torch.testing import assert_close

from skae import losses


@pytest.fixture
def gen():
    return torch.Generator().manual_seed(0)


def _randn(gen, *shape):
    return torch.randn(*shape, generator=gen, dtype=torch.float64)


# --- gaussian_kl -----------------------------------------------------------------------------
def test_gaussian_kl_matches_closed_form(gen):
    mu, logvar = _randn(gen, 6, 3), _randn(gen, 6, 3)
    sigma = torch.exp(0.5 * logvar)
    # KL(N(mu, s^2) || N(0, 1)) = -log s + (s^2 + mu^2) / 2 - 1/2, summed over dimensions
    expected = (-torch.log(sigma) + (sigma**2 + mu**2) / 2 - 0.5).sum(dim=1)
    kl = losses.gaussian_kl(mu, logvar)
    assert kl.shape == (6,)
    assert_close(kl, expected)


def test_gaussian_kl_matches_torch_distributions(gen):
    mu, logvar = _randn(gen, 5, 4), _randn(gen, 5, 4)
    q = Normal(mu, torch.exp(0.5 * logvar))
    p = Normal(torch.zeros_like(mu), torch.ones_like(mu))
    assert_close(losses.gaussian_kl(mu, logvar), kl_divergence(q, p).sum(dim=1))


def test_gaussian_kl_is_zero_only_at_the_prior(gen):
    zeros = torch.zeros(3, 2, dtype=torch.float64)
    assert_close(losses.gaussian_kl(zeros, zeros), torch.zeros(3, dtype=torch.float64))
    assert (losses.gaussian_kl(_randn(gen, 3, 2), _randn(gen, 3, 2)) > 0).all()


# --- kl_sparsity -----------------------------------------------------------------------------
@pytest.mark.parametrize("rho", [0.05, 0.3])
def test_kl_sparsity_is_zero_when_mean_activation_equals_target(rho):
    codes = torch.full((7, 4), math.log(rho / (1 - rho)), dtype=torch.float64)  # sigmoid = rho
    assert losses.kl_sparsity(codes, rho).item() == pytest.approx(0.0, abs=1e-12)


def test_kl_sparsity_matches_bernoulli_kl(gen):
    codes, rho = _randn(gen, 50, 3), 0.1
    rho_hat = torch.sigmoid(codes).mean(dim=0)
    expected = (rho * torch.log(rho / rho_hat)
                + (1 - rho) * torch.log((1 - rho) / (1 - rho_hat))).sum()
    assert_close(losses.kl_sparsity(codes, rho), expected)
    assert expected > 0


# --- reconstruction_error --------------------------------------------------------------------
def test_reconstruction_error_mse_is_per_sample_mean_squared_error(gen):
    out, target = _randn(gen, 4, 1, 3, 5), _randn(gen, 4, 1, 3, 5)
    err = losses.reconstruction_error(out, target, "mse")
    assert err.shape == (4,)
    assert_close(err, ((out - target) ** 2).reshape(4, -1).mean(dim=1))


def test_reconstruction_error_bce_takes_logits(gen):
    logits = _randn(gen, 6, 10)
    target = torch.rand(6, 10, generator=gen, dtype=torch.float64)
    p = torch.sigmoid(logits)
    manual = -(target * torch.log(p) + (1 - target) * torch.log(1 - p)).mean(dim=1)
    assert_close(losses.reconstruction_error(logits, target, "bce"), manual)


def test_reconstruction_error_rejects_unknown_loss():
    with pytest.raises(ValueError, match="loss must be 'mse' or 'bce'"):
        losses.reconstruction_error(torch.zeros(2, 3), torch.zeros(2, 3), "l1")


# --- adversarial_loss ------------------------------------------------------------------------
def test_adversarial_loss_is_binary_cross_entropy(gen):
    logits = _randn(gen, 8, 1)
    p = torch.sigmoid(logits)
    assert_close(losses.adversarial_loss(logits, real=True), -torch.log(p).mean())
    assert_close(losses.adversarial_loss(logits, real=False), -torch.log(1 - p).mean())


# --- masked_cross_entropy --------------------------------------------------------------------
def test_masked_cross_entropy_of_all_unlabeled_batch_is_zero_with_gradient(gen):
    logits = _randn(gen, 5, 3).requires_grad_()
    y = torch.full((5,), -1)
    loss = losses.masked_cross_entropy(logits, y)
    assert loss.item() == 0.0
    loss.backward()  # a training step on an unlabeled batch must not crash
    assert_close(logits.grad, torch.zeros_like(logits))


def test_masked_cross_entropy_equals_cross_entropy_on_labeled_rows(gen):
    logits = _randn(gen, 8, 4)
    y = torch.tensor([2, -1, 0, -1, -1, 3, 1, -1])
    labeled = y >= 0
    expected = F.cross_entropy(logits[labeled], y[labeled])
    assert_close(losses.masked_cross_entropy(logits, y), expected)


# --- improved_gan_losses ---------------------------------------------------------------------
def test_improved_gan_losses_match_naive_discriminator_formula(gen):
    k = 4
    logits_lab, logits_unl, logits_fake = _randn(gen, 6, k), _randn(gen, 9, k), _randn(gen, 7, k)
    y_lab = torch.tensor([0, 1, 2, 3, 1, 0])
    sup, unsup = losses.improved_gan_losses(logits_lab, y_lab, logits_unl, logits_fake)

    # D(x) = Z(x) / (Z(x) + 1), Z(x) = sum_k exp(l_k(x)), computed naively
    z_unl, z_fake = logits_unl.exp().sum(dim=1), logits_fake.exp().sum(dim=1)
    naive_unsup = -torch.log(z_unl / (z_unl + 1)).mean() - torch.log(1 / (z_fake + 1)).mean()
    assert_close(unsup, naive_unsup)
    assert_close(sup, F.cross_entropy(logits_lab, y_lab))


def test_improved_gan_losses_stay_finite_for_large_logits():
    # naively, exp(1000) overflows; the logsumexp form gives the limits in closed form
    k = 3
    big = torch.full((4, k), 1000.0, dtype=torch.float64)
    sup, unsup = losses.improved_gan_losses(big, torch.zeros(4, dtype=torch.long), big, big)
    # real term -> 0 (D(x) -> 1); fake term -> log(Z + 1) ~ 1000 + log k
    assert torch.isfinite(unsup)
    assert unsup.item() == pytest.approx(1000.0 + math.log(k))
    assert sup.item() == pytest.approx(math.log(k))


# --- feature_matching ------------------------------------------------------------------------
def test_feature_matching_is_zero_for_equal_means(gen):
    real = _randn(gen, 10, 5)
    fake = real[torch.randperm(10, generator=gen)]  # other rows, same mean
    assert losses.feature_matching(real, fake).item() == pytest.approx(0.0, abs=1e-12)


def test_feature_matching_is_mean_squared_difference_of_means(gen):
    real, fake = _randn(gen, 10, 5), _randn(gen, 12, 5)
    expected = ((real.mean(dim=0) - fake.mean(dim=0)) ** 2).mean()
    assert_close(losses.feature_matching(real, fake), expected)


# --- virtual_adversarial_loss ----------------------------------------------------------------
def _kl(logits_p, logits_q):
    p = logits_p.softmax(dim=1)
    return (p * (logits_p.log_softmax(dim=1) - logits_q.log_softmax(dim=1))).sum(dim=1)


def test_virtual_adversarial_loss_is_zero_for_a_classifier_that_ignores_x(gen):
    logits = _randn(gen, 1, 3)
    x = _randn(gen, 5, 4)
    loss = losses.virtual_adversarial_loss(lambda v: logits.expand(len(v), 3) + 0 * v[:, :1],
                                           x, epsilon=1.0)
    assert loss.item() == pytest.approx(0.0, abs=1e-12)


def test_virtual_adversarial_loss_perturbs_along_the_only_direction_that_matters(gen):
    # logits depend on feature 0 only: the worst perturbation of norm eps is +-eps along it
    weight = torch.tensor([[2.0, 0.0, 0.0, 0.0], [-1.0, 0.0, 0.0, 0.0]], dtype=torch.float64,
                          requires_grad=True)
    x = _randn(gen, 1, 4)
    eps = 0.7

    def forward(v):
        return v @ weight.T

    loss = losses.virtual_adversarial_loss(forward, x, epsilon=eps)
    with torch.no_grad():
        shift = torch.tensor([[eps, 0.0, 0.0, 0.0]], dtype=torch.float64)
        candidates = [_kl(forward(x), forward(x + s)).item() for s in (shift, -shift)]
        other = torch.tensor([[0.0, eps, 0.0, 0.0]], dtype=torch.float64)
        assert _kl(forward(x), forward(x + other)).item() == 0.0
    assert min(abs(loss.item() - c) for c in candidates) < 1e-6 * max(candidates)
    loss.backward()  # the loss trains the classifier; p(y|x) itself is held fixed
    assert weight.grad is not None and weight.grad[:, 0].abs().sum() > 0


def test_virtual_adversarial_loss_takes_one_epsilon_per_row_and_image_batches(gen):
    conv = torch.nn.Conv2d(1, 3, 3).double()

    def forward(v):
        return conv(v).mean(dim=(2, 3))

    x = _randn(gen, 4, 1, 6, 6)

    def loss(*eps):
        torch.manual_seed(0)  # the same probe directions
        return losses.virtual_adversarial_loss(forward, x, torch.tensor(eps).double()).item()

    # a row with eps = 0 is not perturbed and adds 0 to the mean over the rows
    first, last, every = loss(1.0, 1.0, 0.0, 0.0), loss(0.0, 0.0, 1.0, 1.0), loss(1, 1, 1, 1)
    assert first > 0 and last > 0
    assert first + last == pytest.approx(every, rel=1e-9)
    assert loss(0.0, 0.0, 0.0, 0.0) == pytest.approx(0.0, abs=1e-15)


def test_consistency_loss_is_the_kl_to_the_fixed_prediction_on_x(gen):
    weight = _randn(gen, 3, 4).requires_grad_()
    x, x_other = _randn(gen, 5, 4), _randn(gen, 5, 4)

    def forward(v):
        return v @ weight.T

    assert losses.consistency_loss(forward, x, x).item() == pytest.approx(0.0, abs=1e-12)
    loss = losses.consistency_loss(forward, x, x_other)
    with torch.no_grad():
        expected = _kl(forward(x), forward(x_other)).mean()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-9)
    with torch.no_grad():  # a log p(y|x) computed once (shared with the VAT loss): the same
        log_p = forward(x).log_softmax(dim=1)
    assert losses.consistency_loss(forward, x, x_other, log_p=log_p).item() == loss.item()
    # the gradient comes through the prediction on x_other alone: p(y|x) is a fixed target
    (grad,) = torch.autograd.grad(loss, weight)
    p, q = forward(x).softmax(dim=1).detach(), forward(x_other).softmax(dim=1).detach()
    assert_close(grad, (q - p).T @ x_other / len(x))


def test_consistency_loss_with_a_threshold_is_the_cross_entropy_to_confident_predictions(gen):
    weight = _randn(gen, 3, 4)
    x, x_other = 3.0 * _randn(gen, 8, 4), _randn(gen, 8, 4)

    def forward(v):
        return v @ weight.T

    with torch.no_grad():
        p = forward(x).softmax(dim=1)
    conf, target = p.max(dim=1)
    threshold = float(conf.median())  # about half the rows are confident
    confident = conf >= threshold
    assert 0 < confident.sum() < len(x)
    ce = torch.nn.functional.cross_entropy(forward(x_other), target, reduction="none")
    loss = losses.consistency_loss(forward, x, x_other, threshold=threshold)
    # summed over the confident rows, divided by all of them (FixMatch's mean)
    assert loss.item() == pytest.approx((ce[confident].sum() / len(x)).item(), rel=1e-9)
    # the hard target differs from the soft one; above every confidence it is 0
    assert loss.item() != pytest.approx(losses.consistency_loss(forward, x, x_other).item())
    assert losses.consistency_loss(forward, x, x_other, threshold=1.0).item() == 0.0
    # threshold=0 is the soft loss
    assert losses.consistency_loss(forward, x, x_other, threshold=0.0).item() == pytest.approx(
        losses.consistency_loss(forward, x, x_other).item())
