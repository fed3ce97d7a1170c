"""Autoencoders as scikit-learn transformers."""

from numbers import Real

import numpy as np
import torch
from sklearn.base import _fit_context
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_array, check_is_fitted

from . import losses
from ._training import PhasedModel, TensorBatchDataset
from .base import CodeTransformerMixin, NetEstimator
from .modules import build_decoder, build_encoder

__all__ = ["AutoEncoder"]


class AutoEncoderModel(PhasedModel):
    """Encoder + decoder trained on reconstruction (with optional noise and sparsity)."""

    phases = ("recon",)

    def __init__(self, encoder, decoder, *, loss="mse", noise=0.0, sparsity_weight=0.0,
                 sparsity_target=0.05):
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.loss = loss
        self.noise = noise
        self.sparsity_weight = sparsity_weight
        self.sparsity_target = sparsity_target

    def phase_parameters(self, phase):
        return self.parameters()

    def encode(self, x):
        return self.encoder(x)

    def decode(self, z):
        out = self.decoder(z)
        return torch.sigmoid(out) if self.loss == "bce" else out

    def loss_recon(self, batch):
        x = batch[0]
        x_in = x + self.noise * torch.randn_like(x) if self.noise else x
        codes = self.encoder(x_in)
        loss = losses.reconstruction_error(self.decoder(codes), x, self.loss).mean()
        if self.sparsity_weight:
            loss = loss + self.sparsity_weight * losses.kl_sparsity(codes, self.sparsity_target)
        return loss

    def sample_error(self, x):
        return losses.reconstruction_error(self.decoder(self.encoder(x)), x, self.loss)


class BaseAutoEncoder(CodeTransformerMixin, NetEstimator):
    """What every autoencoder transformer shares: fit, transform, inverse_transform, scores.

    Subclasses implement ``_build_network(backbone, hidden)``; the model provides ``encode``,
    ``decode`` and ``sample_error`` (per-sample loss, lower is better).
    """

    _parameter_constraints = {
        **NetEstimator._parameter_constraints,
        "loss": [StrOptions({"mse", "bce"})],
    }

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Fit the autoencoder to X.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), (n_samples, H, W) or \
                (n_samples, C, H, W)
            Training data: a table (array or DataFrame) or images.
        y : Ignored
            Not used, present for API consistency by convention.

        Returns
        -------
        self : object
            Fitted estimator.
        """
        X = self._validate_X(X, reset=True)
        if self.loss == "bce" and (X.min() < 0 or X.max() > 1):
            raise ValueError(
                "loss='bce' needs X in [0, 1] (e.g. after MinMaxScaler); got values in "
                f"[{X.min():.3g}, {X.max():.3g}]. Use loss='mse' for other data."
            )
        self._fit_net(lambda device, seed: TensorBatchDataset(self._tensor(X, device)))
        return self

    def _build_model(self):
        backbone = self._backbone()
        return self._build_network(backbone, self._hidden_layer_sizes(backbone))

    def transform(self, X):
        """Encode X into codes of shape ``(n_samples, n_components)``.

        Parameters
        ----------
        X : array-like of the training data's shape

        Returns
        -------
        codes : ndarray of shape (n_samples, n_components)
            In X's float dtype (float32 or float64).
        """
        X = self._validate_X(X, reset=False)
        return self._forward(lambda m, x: m.encode(x), X).astype(X.dtype, copy=False)

    def inverse_transform(self, X):
        """Decode codes back to the input space.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_components)
            Codes, e.g. from :meth:`transform`.

        Returns
        -------
        X_original : ndarray of shape (n_samples, *input_shape)
            Reconstructions, shaped like the training samples.
        """
        check_is_fitted(self)
        codes = check_array(X, dtype=(np.float32, np.float64), input_name="X")
        if codes.shape[1] != self.n_components:
            raise ValueError(
                f"X has {codes.shape[1]} features, but inverse_transform expects codes with "
                f"n_components={self.n_components} features"
            )
        return self._forward(lambda m, z: m.decode(z), codes).astype(codes.dtype, copy=False)

    def score_samples(self, X):
        """Negative per-sample reconstruction error (higher means better reconstructed).

        Usable as an anomaly score: outliers reconstruct badly and score low.

        Returns
        -------
        scores : ndarray of shape (n_samples,)
        """
        X = self._validate_X(X, reset=False)
        return -self._forward(lambda m, x: m.sample_error(x), X).astype(np.float64)

    def score(self, X, y=None):
        """Mean of :meth:`score_samples`: GridSearchCV's default score.

        Returns
        -------
        score : float
        """
        return float(np.mean(self.score_samples(X)))

class AutoEncoder(BaseAutoEncoder):
    """Autoencoder transformer: MLP or convolutional, optionally denoising, sparse or tied.

    ``transform`` encodes to ``n_components`` codes, ``inverse_transform`` decodes them.
    Train it on all your data to reduce dimensions, extract image features, denoise, or score
    anomalies by reconstruction error (:meth:`score_samples`).

    Parameters
    ----------
    n_components : int, default=2
        Size of the code.
    hidden_layer_sizes : int or array-like of int, default=None
        Encoder hidden sizes; the decoder mirrors them. For ``backbone="conv"``, the number of
        channels of each stride-2 convolution. None means ``(256, 128)`` (MLP) or ``(32, 64)``
        (conv). ``()`` with ``activation="identity"`` gives a linear autoencoder.
    activation : {"relu", "leaky_relu", "tanh", "logistic", "identity"}, default="relu"
        Activation of the hidden layers (``"leaky_relu"``: slope 0.2). Codes and outputs have none.
    backbone : {"auto", "mlp", "conv"}, default="auto"
        Network type: ``"conv"`` for images ``(n, H, W)`` / ``(n, C, H, W)``, ``"mlp"`` flattens
        every sample. ``"auto"`` chooses ``"conv"`` for images and ``"mlp"`` for tables.
    loss : {"mse", "bce"}, default="mse"
        Reconstruction loss: mean squared error, or binary cross-entropy for data in [0, 1]
        (the decoder then ends in a sigmoid).
    noise : float, default=0.0
        Standard deviation of the Gaussian noise added to the inputs during training only
        (denoising autoencoder). The loss compares the reconstruction with the clean input.
    sparsity_weight : float, default=0.0
        Weight of the KL sparsity penalty on the codes (0 disables it).
    sparsity_target : float, default=0.05
        Target mean activation ``rho`` of each code unit (after a logistic squashing).
    tied_weights : bool, default=False
        The MLP decoder reuses the encoder's weights, transposed (halves the parameters).
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
        The optimizer. Adam-family optimizers use their fused implementation where available.
        ``"sgd"`` is SGD with Nesterov momentum 0.9, as in
        :class:`~sklearn.neural_network.MLPClassifier`.
    weight_decay : float, default=0.0
        L2 penalty (the optimizer's ``weight_decay``).
    device : str or torch.device, default="cpu"
        Where to train and infer: ``"cpu"``, ``"cuda"``, ``"cuda:1"``.
    cuda_graphs : bool, default=True
        On a CUDA device, record a training step once as a CUDA graph and replay it for the
        next batches: several times faster for networks small enough that launching their
        kernels, not running them, takes the time. The step is recorded again when a callback
        changes the learning rate or a scalar setting of the model (its public number, string
        and boolean attributes); set it to False for callbacks that replace parameters or
        change the model otherwise during ``fit``. Ignored on the CPU.
    random_state : int, RandomState instance or None, default=None
        Seeds weight initialization, shuffling and noise. An int makes CPU runs repeatable.
        The global torch RNG is left untouched.
    verbose : int, default=0
        Print skorch's epoch table when > 0.
    callbacks : list of skorch callbacks, default=None
        Extra skorch callbacks (``EarlyStopping(monitor="train_loss")``, ``ProgressBar()``,
        LR schedules...). Cloned at each fit.
    warm_start : bool, default=False
        When True, ``fit`` goes on training the fitted network for ``max_epochs`` more
        epochs instead of starting from new weights: train in chunks and look at the
        model in between. The weights carry over and ``net_.history`` grows; the
        optimizers start afresh, as in :class:`~sklearn.neural_network.MLPClassifier`.
        X must have the same shape as before.

    Attributes
    ----------
    net_ : skae._training.TrainingNet
        The fitted skorch net; ``net_.history`` holds the losses per epoch and batch, and
        ``net_.module_`` the torch model.
    input_shape_ : tuple of int
        Shape of one training sample.
    n_features_in_ : int
        Number of features seen during fit (pixels for images).
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of features seen during fit, when X has string column names.
    n_iter_ : int
        Number of epochs run, over all warm-started fits (``len(net_.history)``).

    See Also
    --------
    VAE : Variational autoencoder, which can also sample new data.
    sklearn.decomposition.PCA : The linear baseline.

    Notes
    -----
    The loss minimized is, for a batch of rows ``x`` and noise ``e ~ N(0, noise^2)``,

    ``L = mean_i l(x_i, g(f(x_i + e_i))) + sparsity_weight * sum_j KL(rho || rho_hat_j)``

    with ``f`` the encoder, ``g`` the decoder, ``l`` the per-feature mean of the squared error
    or the binary cross-entropy, and ``rho_hat_j`` the batch mean of ``sigmoid(f(x)_j)``.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skae import AutoEncoder
    >>> X, _ = load_digits(return_X_y=True)
    >>> X = X / 16.0
    >>> ae = AutoEncoder(n_components=8, max_epochs=5, random_state=0)
    >>> codes = ae.fit_transform(X)
    >>> codes.shape
    (1797, 8)
    >>> ae.inverse_transform(codes).shape
    (1797, 64)
    """

    _parameter_constraints = {
        **BaseAutoEncoder._parameter_constraints,
        "noise": [Interval(Real, 0, None, closed="left")],
        "sparsity_weight": [Interval(Real, 0, None, closed="left")],
        "sparsity_target": [Interval(Real, 0, 1, closed="neither")],
        "tied_weights": ["boolean"],
    }

    def __init__(self, n_components=2, *, hidden_layer_sizes=None, activation="relu",
                 backbone="auto", loss="mse", noise=0.0, sparsity_weight=0.0, sparsity_target=0.05,
                 tied_weights=False, max_epochs=50, batch_size=128, lr=1e-3,
                 lr_schedule="constant", optimizer="adam", weight_decay=0.0, device="cpu",
                 cuda_graphs=True, random_state=None, verbose=0, callbacks=None,
                 warm_start=False):
        self.n_components = n_components
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.backbone = backbone
        self.loss = loss
        self.noise = noise
        self.sparsity_weight = sparsity_weight
        self.sparsity_target = sparsity_target
        self.tied_weights = tied_weights
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
        if self.tied_weights and backbone != "mlp":
            raise ValueError("tied_weights=True needs the MLP backbone (backbone='mlp')")
        shape = self.input_shape_
        encoder = build_encoder(backbone, shape, hidden, self.n_components, self.activation)
        decoder = build_decoder(backbone, self.n_components, hidden, shape, self.activation,
                                tied_to=encoder if self.tied_weights else None)
        return AutoEncoderModel(
            encoder, decoder, loss=self.loss, noise=self.noise,
            sparsity_weight=self.sparsity_weight, sparsity_target=self.sparsity_target,
        )
