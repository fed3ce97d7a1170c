"""Pure loss functions of skae's models.

Every function takes tensors and returns a tensor; none holds state. Each is small enough to
test against a closed form (see ``tests/test_losses.py``).
"""

import math

import torch
import torch.nn.functional as F

__all__ = [
    "reconstruction_error",
    "kl_sparsity",
    "gaussian_kl",
    "adversarial_loss",
    "masked_cross_entropy",
    "improved_gan_losses",
    "feature_matching",
    "consistency_loss",
    "virtual_adversarial_loss",
]


def reconstruction_error(output, target, loss="mse"):
    """Per-sample reconstruction error, averaged over features.

    Parameters
    ----------
    output : Tensor of shape (n, ...)
        Decoder output: the reconstruction for ``loss="mse"``, logits for ``loss="bce"``.
    target : Tensor of the same shape
        The clean input.
    loss : {"mse", "bce"}
        Squared error, or binary cross-entropy of ``sigmoid(output)`` against ``target``
        (targets in [0, 1]).

    Returns
    -------
    Tensor of shape (n,)
    """
    if loss == "mse":
        err = (output - target).square()
    elif loss == "bce":
        err = F.binary_cross_entropy_with_logits(output, target, reduction="none")
    else:  # validated by the estimators; kept for direct callers
        raise ValueError(f"loss must be 'mse' or 'bce', got {loss!r}")
    return err.flatten(1).mean(dim=1)


def kl_sparsity(codes, target):
    """KL sparsity penalty of Ng's sparse autoencoder.

    ``sum_j KL(rho || rho_hat_j)`` where ``rho_hat_j`` is the mean over the batch of
    ``sigmoid(codes[:, j])``.
    """
    rho_hat = torch.sigmoid(codes).mean(dim=0).clamp(1e-6, 1 - 1e-6)
    rho = torch.as_tensor(target, dtype=codes.dtype, device=codes.device)
    kl = rho * torch.log(rho / rho_hat) + (1 - rho) * torch.log((1 - rho) / (1 - rho_hat))
    return kl.sum()


def gaussian_kl(mu, logvar):
    """Per-sample ``KL(N(mu, exp(logvar)) || N(0, I))``, summed over dimensions."""
    return 0.5 * (mu.square() + logvar.exp() - 1.0 - logvar).sum(dim=1)


def adversarial_loss(logits, real):
    """Binary cross-entropy of discriminator ``logits`` against all-real (1) or all-fake (0)."""
    target = torch.ones_like(logits) if real else torch.zeros_like(logits)
    return F.binary_cross_entropy_with_logits(logits, target)


def masked_cross_entropy(logits, y):
    """Cross-entropy over the rows with ``y >= 0``; rows with ``y == -1`` are ignored.

    Returns 0 (with a gradient path) for a batch without labeled rows.
    """
    mask = y >= 0
    n = mask.sum()
    ce = F.cross_entropy(logits, y.clamp(min=0), reduction="none")
    return (ce * mask).sum() / n.clamp(min=1)


def improved_gan_losses(logits_lab, y_lab, logits_unl, logits_fake):
    """Discriminator loss of Salimans et al. (2016), section 5.

    The discriminator has K class logits ``l``; its real/fake logit is ``logsumexp(l)``, i.e.
    ``D(x) = Z(x) / (Z(x) + 1)`` with ``Z(x) = sum_k exp(l_k(x))``.

    ``L_sup = CE(logits_lab, y_lab)``;
    ``L_unsup = -mean log D(x_unl) - mean log(1 - D(G(z)))``
    ``= mean[-lse(l_unl) + softplus(lse(l_unl))] + mean[softplus(lse(l_fake))]``.

    Returns
    -------
    (loss_supervised, loss_unsupervised) : tuple of scalar Tensors
    """
    loss_sup = F.cross_entropy(logits_lab, y_lab)
    lse_unl = torch.logsumexp(logits_unl, dim=1)
    lse_fake = torch.logsumexp(logits_fake, dim=1)
    loss_unsup = (-lse_unl + F.softplus(lse_unl)).mean() + F.softplus(lse_fake).mean()
    return loss_sup, loss_unsup


def feature_matching(features_real, features_fake):
    """Feature-matching generator loss: ``|| mean f(x) - mean f(G(z)) ||^2`` (mean over units)."""
    return (features_real.mean(dim=0) - features_fake.mean(dim=0)).square().mean()


def _fixed_log_p(forward, x, log_p):
    """``log p(y|x)`` without gradient: ``log_p`` when given, else computed."""
    if log_p is None:
        with torch.no_grad():
            log_p = forward(x).log_softmax(dim=1)
    return log_p


def consistency_loss(forward, x, x_other, log_p=None, threshold=0.0):
    """``KL(p(y|x) || p(y|x_other))`` averaged over the rows, ``p(y|x)`` held fixed.

    ``p(y|x) = softmax(forward(x))``. With ``x_other`` a transformed copy of ``x`` (e.g. shifted
    images), it asks the classifier to predict alike for both, and needs no label. ``log_p``:
    ``log p(y|x)`` already computed (without gradient), e.g. shared with
    :func:`virtual_adversarial_loss`.

    With ``threshold > 0`` the target is hard, as in FixMatch (Sohn et al., 2020): the
    cross-entropy of ``p(y|x_other)`` against the most probable class of ``p(y|x)``, for the
    rows where that class's probability is at least ``threshold``, summed and divided by the
    number of all rows (the confident rows act as labeled ones; the others add nothing).
    """
    log_p = _fixed_log_p(forward, x, log_p)
    log_q = forward(x_other).log_softmax(dim=1)
    if threshold > 0:
        log_conf, target = log_p.max(dim=1)
        confident = log_conf >= math.log(threshold)
        return (F.nll_loss(log_q, target, reduction="none") * confident).mean()
    return F.kl_div(log_q, log_p, log_target=True, reduction="batchmean")


def virtual_adversarial_loss(forward, x, epsilon, xi=1e-6, log_p=None):
    """Virtual adversarial loss of Miyato et al. (2018), one power iteration.

    ``KL(p(y|x) || p(y|x + r))`` averaged over the rows, where ``p(y|x) = softmax(forward(x))``
    is held fixed (no gradient) and ``r`` is the perturbation of L2 norm ``epsilon`` (per row)
    that changes ``p(y|x)`` most, to first order: the normalized gradient of
    ``KL(p(y|x) || p(y|x + xi d))`` with respect to ``d``, for a random unit ``d``. It needs no
    label, so it smooths the classifier around unlabeled rows.

    Parameters
    ----------
    forward : callable
        Maps a batch shaped like ``x`` to class logits of shape (n, n_classes).
    x : Tensor of shape (n, ...)
        Inputs.
    epsilon : float or Tensor of shape (n,)
        L2 norm of each row's perturbation.
    xi : float, default=1e-6
        Size of the probe perturbation of the power iteration.
    log_p : Tensor of shape (n, n_classes), default=None
        ``log p(y|x)``, already computed without gradient; None computes it.

    Returns
    -------
    Scalar Tensor, differentiable with respect to the parameters of ``forward``.
    """
    def unit_rows(t):  # each row (all but the first dimension) scaled to L2 norm 1, flat
        return F.normalize(t.flatten(1), dim=1, eps=1e-12)

    log_p = _fixed_log_p(forward, x, log_p)
    d = (xi * unit_rows(torch.randn_like(x))).view_as(x).requires_grad_()
    probe = F.kl_div(forward(x + d).log_softmax(dim=1), log_p, log_target=True,
                     reduction="batchmean")
    (grad,) = torch.autograd.grad(probe, d)
    eps = torch.as_tensor(epsilon, dtype=x.dtype, device=x.device)
    r = (unit_rows(grad) * eps.reshape(-1, 1)).view_as(x)
    return F.kl_div(forward(x + r).log_softmax(dim=1), log_p, log_target=True,
                    reduction="batchmean")
