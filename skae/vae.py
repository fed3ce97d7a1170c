"""Variational autoencoder: a transformer that can also sample new data."""

import math
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, validate_params
from sklearn.utils.validation import check_is_fitted

from . import losses
from ._training import PhasedModel
from .autoencoder import BaseAutoEncoder
from .modules import build_decoder, build_encoder

__all__ = ["VAE"]


class VAEModel(PhasedModel):
    """Gaussian encoder ``q(z|x) = N(mu, diag(exp(logvar)))``, decoder ``p(x|z)``."""

    phases = ("elbo",)

    def __init__(self, encoder, decoder, n_components, *, loss="mse", beta=1.0):
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.n_components = n_components
        self.loss = loss
        self.beta = beta

    def phase_parameters(self, phase):
        return self.parameters()

    def posterior(self, x):
        mu, logvar = self.encoder(x).split(self.n_components, dim=1)
        return mu, logvar.clamp(-30.0, 20.0)

    def encode(self, x):
        return self.posterior(x)[0]

    def decode(self, z):
        out = self.decoder(z)
        return torch.sigmoid(out) if self.loss == "bce" else out

    def _neg_log_likelihood(self, out, x):
        # -log p(x|z) up to a constant: 0.5 * squared error (unit-variance Gaussian) or BCE
        per_feature = losses.reconstruction_error(out, x, self.loss)
        scale = 0.5 if self.loss == "mse" else 1.0
        return scale * per_feature * math.prod(x.shape[1:])

    def loss_elbo(self, batch):
        (x,) = batch
        mu, logvar = self.posterior(x)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        nll = self._neg_log_likelihood(self.decoder(z), x)
        return (nll + self.beta * losses.gaussian_kl(mu, logvar)).mean()

    def sample_error(self, x):
        # negative ELBO with the reconstruction term at the posterior mean: deterministic
        mu, logvar = self.posterior(x)
        return self._neg_log_likelihood(self.decoder(mu), x) + losses.gaussian_kl(mu, logvar)


class VAE(BaseAutoEncoder):
    """Variational autoencoder (Kingma & Welling, 2014): transformer and generator.

    ``transform`` returns the posterior mean, ``inverse_transform`` decodes codes, and
    :meth:`sample` generates new data shaped like the training samples.

    Parameters
    ----------
    n_components : int, default=2
        Dimension of the latent space.
    hidden_layer_sizes : int or array-like of int, default=None
        Encoder hidden sizes; the decoder mirrors them. For ``backbone="conv"``, channels of
        each stride-2 convolution. None means ``(256, 128)`` (MLP) or ``(32, 64)`` (conv).
    activation : {"relu", "leaky_relu", "tanh", "logistic", "identity"}, default="relu"
        Activation of the hidden layers (``"leaky_relu"``: slope 0.2).
    backbone : {"auto", "mlp", "conv"}, default="auto"
        ``"conv"`` for images, ``"mlp"`` for tables; ``"auto"`` picks by input shape.
    loss : {"mse", "bce"}, default="mse"
        Likelihood ``p(x|z)``: unit-variance Gaussian (squared error) or Bernoulli (binary
        cross-entropy, data in [0, 1]).
    beta : float, default=1.0
        Weight of the KL term in training (beta-VAE). ``score_samples`` always uses 1.
    max_epochs : int, default=50
        Passes over the training data.
    batch_size : int, default=128
        Rows per minibatch.
    lr : float, default=1e-3
        Learning rate.
    lr_schedule : {"constant", "linear"}, default="constant"
        ``"linear"``: ``lr`` for the first half of the epochs of each ``fit``, then lower by
        ``lr / d`` each epoch, down to ``lr / d`` in the last (``d = epochs - epochs // 2``:
        20 epochs train 11 at ``lr``, then at 0.9, 0.8, ..., 0.1 times ``lr``). It takes the
        place of a learning-rate callback such as skorch's ``LRScheduler``, which works with
        ``"constant"``.
    optimizer : {"adam", "adamw", "sgd", "rmsprop"} or torch optimizer class, default="adam"
        The optimizer. ``"sgd"`` is SGD with Nesterov momentum 0.9, as in
        :class:`~sklearn.neural_network.MLPClassifier`.
    weight_decay : float, default=0.0
        L2 penalty.
    device : str or torch.device, default="cpu"
        ``"cpu"``, ``"cuda"``, ``"cuda:1"``.
    cuda_graphs : bool, default=True
        On a CUDA device, record a training step once as a CUDA graph and replay it for the
        next batches: several times faster for networks small enough that launching their
        kernels, not running them, takes the time. The step is recorded again when a callback
        changes the learning rate or a scalar setting of the model (its public number, string
        and boolean attributes); set it to False for callbacks that replace parameters or
        change the model otherwise during ``fit``. Ignored on the CPU.
    random_state : int, RandomState instance or None, default=None
        Seeds initialization, shuffling and the reparametrization noise.
    verbose : int, default=0
        Print skorch's epoch table when > 0.
    callbacks : list of skorch callbacks, default=None
        Extra skorch callbacks, cloned at each fit.
    warm_start : bool, default=False
        When True, ``fit`` goes on training the fitted network for ``max_epochs`` more
        epochs instead of starting from new weights: train in chunks and look at the
        model in between. The weights carry over and ``net_.history`` grows; the
        optimizers start afresh, as in :class:`~sklearn.neural_network.MLPClassifier`.
        X must have the same shape as before.

    Attributes
    ----------
    net_ : skae._training.TrainingNet
        The fitted skorch net (``net_.history``: the ``elbo_loss`` per epoch).
    input_shape_ : tuple of int
        Shape of one training sample.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of features seen during fit, when X has string column names.
    n_iter_ : int
        Number of epochs run, over all warm-started fits (``len(net_.history)``).

    See Also
    --------
    AutoEncoder : Deterministic autoencoder, with denoising, sparsity and tied weights.

    Notes
    -----
    Training minimizes the negative evidence lower bound, averaged over the batch,

    ``L = mean_i [ -log p(x_i | z_i) + beta * KL(N(mu_i, sigma_i^2) || N(0, I)) ]``,
    ``z_i = mu_i + sigma_i * eps_i``, ``eps_i ~ N(0, I)``,

    ``KL = 0.5 * sum_j (mu_j^2 + sigma_j^2 - 1 - log sigma_j^2)``, and ``-log p(x|z)`` is
    ``0.5 * ||x - g(z)||^2`` (``loss="mse"``) or the summed binary cross-entropy
    (``loss="bce"``), each up to a constant. :meth:`score_samples` returns the ELBO with the
    reconstruction term evaluated at ``z = mu`` so that it is deterministic.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skae import VAE
    >>> X, _ = load_digits(return_X_y=True)
    >>> vae = VAE(n_components=4, loss="bce", max_epochs=5, random_state=0).fit(X / 16.0)
    >>> vae.transform(X[:3] / 16.0).shape
    (3, 4)
    >>> vae.sample(5, random_state=0).shape
    (5, 64)
    """

    _parameter_constraints = {
        **BaseAutoEncoder._parameter_constraints,
        "beta": [Interval(Real, 0, None, closed="left")],
    }

    def __init__(self, n_components=2, *, hidden_layer_sizes=None, activation="relu",
                 backbone="auto", loss="mse", beta=1.0, max_epochs=50, batch_size=128, lr=1e-3,
                 lr_schedule="constant", optimizer="adam", weight_decay=0.0, device="cpu",
                 cuda_graphs=True, random_state=None, verbose=0, callbacks=None,
                 warm_start=False):
        self.n_components = n_components
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.backbone = backbone
        self.loss = loss
        self.beta = beta
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.lr_schedule = lr_schedule
        self.optimizer = optimizer
        self.weight_decay = weight_decay
        self.device = device
        self.cuda_graphs = cuda_graphs
        self.random_state = random_state
        self.verbose = verbose
        self.callbacks = callbacks
        self.warm_start = warm_start

    def _build_network(self, backbone, hidden):
        shape = self.input_shape_
        encoder = build_encoder(backbone, shape, hidden, 2 * self.n_components, self.activation)
        decoder = build_decoder(backbone, self.n_components, hidden, shape, self.activation)
        return VAEModel(encoder, decoder, self.n_components, loss=self.loss, beta=self.beta)

    @validate_params(
        {"n_samples": [Interval(Integral, 1, None, closed="left")],
         "random_state": ["random_state"]},
        prefer_skip_nested_validation=True,
    )
    def sample(self, n_samples=1, random_state=None):
        """Generate new samples by decoding draws from the prior ``N(0, I)``.

        Parameters
        ----------
        n_samples : int, default=1
            Number of samples.
        random_state : int, RandomState instance or None, default=None
            Seeds the prior draws.

        Returns
        -------
        X : ndarray of shape (n_samples, *input_shape_)
            Generated data, float32.
        """
        check_is_fitted(self)
        z = check_random_state(random_state).standard_normal((n_samples, self.n_components))
        return self._forward(lambda m, b: m.decode(b), z.astype(np.float32))
