"""The classic semi-supervised baseline: pretrain an autoencoder, fine-tune its encoder."""

from numbers import Integral, Real

import torch.nn.functional as F
from sklearn.base import _fit_context
from sklearn.utils._param_validation import Interval, StrOptions
from torch import nn

from .autoencoder import AutoEncoderModel
from .base import NetEstimator, SemiSupervisedClassifierMixin
from .modules import build_decoder, build_encoder

__all__ = ["AutoEncoderClassifier"]


class PretrainedClassifierModel(AutoEncoderModel):
    """An :class:`~skae.autoencoder.AutoEncoderModel` plus a softmax head on the code.

    Phases: ``recon`` (encoder + decoder, on all rows) and ``sup`` (encoder + head, on the
    labeled rows), run as two stages by :class:`AutoEncoderClassifier`.
    """

    phases = ("recon", "sup")

    def __init__(self, encoder, decoder, head, **kwargs):
        super().__init__(encoder, decoder, **kwargs)
        self.head = head

    def phase_parameters(self, phase):
        if phase == "recon":
            return [*self.encoder.parameters(), *self.decoder.parameters()]
        return [*self.encoder.parameters(), *self.head.parameters()]

    def class_logits(self, x):
        return self.head(self.encoder(x))

    def loss_sup(self, batch):
        _, x_lab, y_lab = batch
        return F.cross_entropy(self.class_logits(x_lab), y_lab)


class AutoEncoderClassifier(SemiSupervisedClassifierMixin, NetEstimator):
    """Pretrain an autoencoder on all rows, then fine-tune encoder + softmax head on the labeled.

    The baseline that the semi-supervised models must beat. Rows with ``y == -1`` are unlabeled,
    as in :mod:`sklearn.semi_supervised`; they are used by the pretraining stage only.

    Parameters
    ----------
    n_components : int, default=32
        Size of the code the classifier head reads.
    hidden_layer_sizes : int or array-like of int, default=None
        Encoder hidden sizes (the decoder mirrors them); channels for ``backbone="conv"``.
        None means ``(256, 128)`` (MLP) or ``(32, 64)`` (conv).
    activation : {"relu", "leaky_relu", "tanh", "logistic", "identity"}, default="relu"
        Activation of the hidden layers (``"leaky_relu"``: slope 0.2).
    backbone : {"auto", "mlp", "conv"}, default="auto"
        ``"conv"`` for images, ``"mlp"`` for tables; ``"auto"`` picks by input shape.
    loss : {"mse", "bce"}, default="mse"
        Reconstruction loss of the pretraining stage.
    noise : float, default=0.0
        Gaussian input noise of the pretraining stage (a denoising autoencoder).
    pretrain_epochs : int, default=20
        Passes over all rows for the autoencoder.
    classes : array-like, default=None
        All class labels; None takes those present among the labeled rows.
    max_epochs : int, default=50
        Epochs of fine-tuning. As for the other semi-supervised classifiers, an epoch is
        ``n_samples / batch_size`` steps (one pass over all rows), and each step takes
        ``batch_size`` labeled rows, cycling through them: few labels are not starved. With
        very few labels among many rows, fewer epochs overfit them less: on MNIST with 100
        labels, 1 epoch gave 23.93 % test error over five draws against 27.00 % for 50 (with
        1000 labels, 50 did better: 8.07 % against 8.38 %; see the AutoEncoderClassifier page
        of the documentation).
    batch_size : int, default=128
        Rows per minibatch (unlabeled for pretraining, labeled for fine-tuning).
    lr : float, default=1e-3
        Learning rate.
    lr_schedule : {"constant", "linear"}, default="constant"
        ``"linear"``: ``lr`` for the first half of the epochs of each stage (pretraining,
        fine-tuning), then lower by ``lr / d`` each epoch, down to ``lr / d`` in the last
        (``d = epochs - epochs // 2``: 20 epochs train 11 at ``lr``, then at 0.9, 0.8, ...,
        0.1 times ``lr``). It takes the place of a learning-rate callback such as skorch's
        ``LRScheduler``, which works with ``"constant"``.
    optimizer : {"adam", "adamw", "sgd", "rmsprop"} or torch optimizer class, default="adam"
        The optimizer of each stage. ``"sgd"`` is SGD with Nesterov momentum 0.9, as in
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
        Seeds initialization, shuffling and noise.
    verbose : int, default=0
        Print skorch's epoch table when > 0.
    callbacks : list of skorch callbacks, default=None
        Extra skorch callbacks, cloned at each fit.
    warm_start : bool, default=False
        When True, ``fit`` goes on fine-tuning the fitted network for ``max_epochs`` more
        epochs (no new pretraining) instead of starting from new weights: train in chunks and
        look at the model in between. The weights carry over and ``net_.history`` grows; the
        optimizers start afresh, as in :class:`~sklearn.neural_network.MLPClassifier`.
        X must have the same shape and y the same classes as before.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels (without -1).
    net_ : skae._training.TrainingNet
        The fitted skorch net; ``net_.history`` has ``recon_loss`` for the pretraining epochs
        and ``sup_loss`` for the fine-tuning ones.
    input_shape_ : tuple of int
        Shape of one training sample.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of features seen during fit, when X has string column names.
    n_iter_ : int
        Number of epochs run (both stages), over all warm-started fits.

    See Also
    --------
    AAEClassifier, GANClassifier : Semi-supervised models trained on all rows jointly.
    AutoEncoder : The unsupervised autoencoder alone.

    Notes
    -----
    Stage 1 minimizes the autoencoder's reconstruction loss ``mean_i l(x_i, g(f(x_i + e_i)))``
    over all rows; stage 2 minimizes ``CE(h(f(x_lab)), y_lab)`` over the labeled rows, updating
    the encoder ``f`` and the linear head ``h``.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skae import AutoEncoderClassifier
    >>> from skae.datasets import make_semi_supervised
    >>> X, y = load_digits(return_X_y=True)
    >>> y_semi = make_semi_supervised(y, n_labeled=180, random_state=0)
    >>> clf = AutoEncoderClassifier(pretrain_epochs=5, max_epochs=20, random_state=0)
    >>> clf.fit(X / 16.0, y_semi).score(X / 16.0, y) > 0.7
    True
    """

    _parameter_constraints = {
        **NetEstimator._parameter_constraints,
        "loss": [StrOptions({"mse", "bce"})],
        "noise": [Interval(Real, 0, None, closed="left")],
        "pretrain_epochs": [Interval(Integral, 0, None, closed="left")],
        "classes": ["array-like", None],
    }

    def __init__(self, n_components=32, *, hidden_layer_sizes=None, activation="relu",
                 backbone="auto", loss="mse", noise=0.0, pretrain_epochs=20, classes=None,
                 max_epochs=50, batch_size=128, lr=1e-3, lr_schedule="constant",
                 optimizer="adam", weight_decay=0.0, device="cpu", cuda_graphs=True,
                 random_state=None, verbose=0, callbacks=None, warm_start=False):
        self.n_components = n_components
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.backbone = backbone
        self.loss = loss
        self.noise = noise
        self.pretrain_epochs = pretrain_epochs
        self.classes = classes
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

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Pretrain on all rows of X, then fine-tune on those with ``y != -1``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), (n_samples, H, W) or \
                (n_samples, C, H, W)
            Training data.
        y : array-like of shape (n_samples,)
            Class labels, -1 for unlabeled rows.

        Returns
        -------
        self : object
            Fitted estimator.
        """
        X = self._validate_X(X, reset=True)
        y_enc, labeled = self._validate_y(X, y)

        # both stages count epochs in passes over all rows (as the other semi-supervised
        # models do); each fine-tuning step takes a labeled minibatch, cycling through them
        pretrain = 0 if self._warm_starting() else self.pretrain_epochs
        return self._fit_semi_supervised(
            X, y_enc, labeled, stages=[(("recon",), pretrain), (("sup",), self.max_epochs)],
        )

    def _build_model(self):
        backbone = self._backbone()
        hidden = self._hidden_layer_sizes(backbone)
        shape, k = self.input_shape_, self.n_components
        encoder = build_encoder(backbone, shape, hidden, k, self.activation)
        decoder = build_decoder(backbone, k, hidden, shape, self.activation)
        head = nn.Linear(k, len(self.classes_))
        return PretrainedClassifierModel(encoder, decoder, head, loss=self.loss,
                                         noise=self.noise)

    @staticmethod
    def _class_logits(model, x):
        return model.class_logits(x)
