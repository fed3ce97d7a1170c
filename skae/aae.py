"""Semi-supervised adversarial autoencoder (Makhzani et al., 2015)."""

from numbers import Integral, Real

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.base import _fit_context
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions, validate_params
from sklearn.utils.validation import check_array, check_is_fitted

from . import losses
from ._training import PhasedModel
from .base import (
    SHIFT_CONSTRAINTS, CodeTransformerMixin, NetEstimator, SemiSupervisedClassifierMixin,
)
from .modules import MLP, ParameterAverage, build_decoder, build_encoder, random_shift

__all__ = ["AAEClassifier"]


class AAEModel(PhasedModel):
    """Encoder ``q(y, z | x)``, decoder ``p(x | y, z)``, a categorical and a Gaussian critic.

    Phases, in the order the paper runs them on every minibatch: ``recon`` (encoder +
    decoder), ``disc`` (both discriminators), ``gen`` (encoder fools both), ``sup`` (encoder's
    ``q(y|x)`` on the labeled minibatch; with ``vat_weight > 0`` also its virtual adversarial
    loss on the minibatch of all rows, with perturbations of ``vat_epsilon`` times that
    minibatch's root-mean-square row norm; ``vat_schedule=(early, late, n)`` sets
    ``vat_epsilon`` to ``early`` for the first ``n`` epochs and to ``late`` after them; with
    ``max_shift > 0`` (or ``max_rotation`` or ``max_warp`` > 0), the labeled images shifted at
    random by up to ``max_shift`` pixels (turned by up to ``max_rotation`` degrees, warped by up
    to ``max_warp`` pixels) and
    ``consistency_weight`` times the consistency loss between the minibatch of all rows and a
    shifted copy of it; ``consistency_threshold`` and ``consistency_teacher`` set that loss's
    target). The first ``supervised_epochs`` epochs run the ``sup`` phase alone. With
    ``ema_decay > 0``, after every step ``average`` takes in the encoder's weights, and in eval
    mode the averaged encoder encodes. ``class_prior`` other than ``"uniform"`` keeps the
    prior's class probabilities in the buffer ``prior`` (for ``"predicted"``, updated by every
    ``disc`` phase).
    """

    phases = ("recon", "disc", "gen", "sup")
    max_rotation = 0.0  # for models pickled before the parameters existed
    max_warp = 0.0
    consistency_threshold = 0.0
    consistency_teacher = "encoder"
    predicted_prior = False
    supervised_epochs = 0
    #: weight of each minibatch's mean ``q(y|x)`` in the running mean of a predicted prior
    prior_rate = 1e-3

    def __init__(self, encoder, decoder, disc_y, disc_z, n_classes, n_components, *,
                 loss="mse", noise=0.0, supervised_weight=1.0, discriminator_noise=0.0,
                 reconstruct_labeled=False, ema_decay=0.0, vat_weight=0.0, vat_epsilon=0.4,
                 vat_schedule=None, max_shift=0.0, max_rotation=0.0, max_warp=0.0,
                 consistency_weight=1.0, consistency_threshold=0.0,
                 consistency_teacher="encoder", class_prior="uniform", generator_lr_scale=0.5,
                 reconstruction_lr_scale=1.0, supervised_epochs=0):
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.disc_y = disc_y
        self.disc_z = disc_z
        self.n_classes = n_classes
        self.n_components = n_components
        self.loss = loss
        self.noise = noise
        self.supervised_weight = supervised_weight
        self.discriminator_noise = discriminator_noise
        self.reconstruct_labeled = reconstruct_labeled
        self.ema_decay = ema_decay
        self.vat_weight = vat_weight
        self.vat_epsilon = vat_epsilon
        self.vat_schedule = vat_schedule
        self.max_shift = max_shift
        self.max_rotation = max_rotation
        self.max_warp = max_warp
        self.consistency_weight = consistency_weight
        self.consistency_threshold = consistency_threshold
        self.consistency_teacher = consistency_teacher
        self.generator_lr_scale = generator_lr_scale
        self.reconstruction_lr_scale = reconstruction_lr_scale
        self.supervised_epochs = supervised_epochs
        # the categorical prior: "uniform" (the paper's), "predicted" (the running mean of the
        # encoder's own q(y|x), from uniform) or given probabilities
        kind = class_prior if isinstance(class_prior, str) else "given"
        self.predicted_prior = kind == "predicted"
        if kind != "uniform":
            prior = (torch.full((n_classes,), 1.0 / n_classes) if self.predicted_prior
                     else torch.as_tensor(class_prior, dtype=torch.float32))
            self.register_buffer("prior", prior)
        if vat_schedule is not None:  # the first epoch's value until training sets each epoch's
            self.begin_epoch(1)
        # the encoder's averaged weights, for predictions and codes (see ``encode``)
        self.average = ParameterAverage(encoder)

    def begin_epoch(self, epoch):
        if self.vat_schedule is not None:
            early, late, n_early = self.vat_schedule
            self.vat_epsilon = early if epoch <= n_early else late
        if self.supervised_epochs and epoch <= self.supervised_epochs + 1:  # labels first
            self.active_phases = (("sup",) if epoch <= self.supervised_epochs
                                  else tuple(self.phases))

    def end_step(self):
        if self.ema_decay > 0:
            self.average.update(self.encoder, self.ema_decay)

    def phase_parameters(self, phase):
        if phase == "recon":  # the encoder too, unless its rate there is 0
            encoder = [*self.encoder.parameters()] if self.reconstruction_lr_scale else []
            return [*encoder, *self.decoder.parameters()]
        if phase == "disc":
            return [*self.disc_y.parameters(), *self.disc_z.parameters()]
        return self.encoder.parameters()

    def phase_optimizer_kwargs(self, phase):
        if phase == "disc":
            return {"betas": (0.5, 0.999)}
        if phase == "gen":
            return {"betas": (0.5, 0.999), "lr_scale": self.generator_lr_scale}
        return {}

    def phase_lr_scales(self, phase):
        scale = self.reconstruction_lr_scale
        if phase == "recon" and scale and scale != 1:  # the encoder's step beside the decoder's
            return [(self.encoder.parameters(), scale)]
        return ()

    # --- the maps ---------------------------------------------------------------------------
    def encode(self, x):
        """``(class logits, style z)``.

        In training mode: the encoder being trained, with ``noise`` on the input. In eval
        mode: the averaged encoder when ``ema_decay > 0`` (and it has averaged a step), else
        the encoder being trained.
        """
        if self.training:
            if self.noise:
                x = x + self.noise * torch.randn_like(x)
            out = self.encoder(x)
        elif self.ema_decay > 0 and self.average.steps():
            out = self.average.module(x)
        else:
            out = self.encoder(x)
        return out[:, : self.n_classes], out[:, self.n_classes:]

    def decode_logits(self, y_soft, z):
        return self.decoder(torch.cat([y_soft, z], dim=1))

    def decode(self, y_soft, z):
        out = self.decode_logits(y_soft, z)
        return torch.sigmoid(out) if self.loss == "bce" else out

    def class_logits(self, x):
        return self.encode(x)[0]

    def style(self, x):
        return self.encode(x)[1]

    def critic_input(self, code):
        """``code`` as the discriminators see it in training: with ``N(0, s^2)`` noise added.

        The noise (``s = discriminator_noise``) blurs the difference between one-hot prior
        samples and nearly one-hot softmax outputs, which the categorical discriminator could
        otherwise tell apart however confident the encoder becomes.
        """
        if self.training and self.discriminator_noise:
            code = code + self.discriminator_noise * torch.randn_like(code)
        return code

    def _prior(self, n, like):
        k = self.n_classes
        if hasattr(self, "prior"):  # classes drawn by their prior probabilities
            cdf = self.prior.cumsum(0)
            u = torch.rand(n, device=like.device, dtype=cdf.dtype) * cdf[-1]
            index = torch.searchsorted(cdf, u).clamp_(max=k - 1)
        else:  # uniform
            index = torch.randint(k, (n,), device=like.device)
        y = F.one_hot(index, k)
        return y.to(like.dtype), torch.randn(n, self.n_components, device=like.device)

    # --- the losses -----------------------------------------------------------------------
    def loss_recon(self, batch):
        x = batch[0]
        # at a rate of 0 the reconstruction trains the decoder alone: fixed codes
        shapes_codes = bool(self.reconstruction_lr_scale)
        with torch.set_grad_enabled(shapes_codes):
            logits, z = self.encode(x)
        out = self.decode_logits(logits.softmax(dim=1), z)
        loss = losses.reconstruction_error(out, x, self.loss).mean()
        if self.reconstruct_labeled:  # the labeled minibatch, decoded from its known class
            _, x_lab, y_lab = batch
            with torch.set_grad_enabled(shapes_codes):
                _, z_lab = self.encode(x_lab)
            y_onehot = F.one_hot(y_lab, self.n_classes).to(z_lab.dtype)
            out = self.decode_logits(y_onehot, z_lab)
            loss = loss + losses.reconstruction_error(out, x_lab, self.loss).mean()
        return loss

    def loss_disc(self, batch):
        x = batch[0]
        with torch.no_grad():
            logits, z = self.encode(x)
            if self.predicted_prior:  # the classes as large as the encoder makes them
                self.prior.lerp_(logits.softmax(dim=1).mean(dim=0).to(self.prior.dtype),
                                 self.prior_rate)
        y_prior, z_prior = self._prior(len(x), z)
        noisy = self.critic_input
        return (
            losses.adversarial_loss(self.disc_y(noisy(y_prior)), real=True)
            + losses.adversarial_loss(self.disc_y(noisy(logits.softmax(dim=1))), real=False)
            + losses.adversarial_loss(self.disc_z(noisy(z_prior)), real=True)
            + losses.adversarial_loss(self.disc_z(noisy(z)), real=False)
        )

    def loss_gen(self, batch):
        logits, z = self.encode(batch[0])
        noisy = self.critic_input
        return (
            losses.adversarial_loss(self.disc_y(noisy(logits.softmax(dim=1))), real=True)
            + losses.adversarial_loss(self.disc_z(noisy(z)), real=True)
        )

    def loss_sup(self, batch):
        x, x_lab, y_lab = batch
        moves = self.max_shift or self.max_rotation or self.max_warp
        if moves:  # images: each labeled one moved a little teaches its neighbours
            x_lab = self._move(x_lab)
        loss = self.supervised_weight * F.cross_entropy(self.class_logits(x_lab), y_lab)
        shifted = moves and self.consistency_weight
        taught = shifted and self.consistency_teacher == "average"
        log_p = None
        if self.vat_weight or (shifted and not taught):  # q(y|x) of all rows: a fixed target
            with torch.no_grad():
                log_p = self.class_logits(x).log_softmax(dim=1)
        if self.vat_weight:  # smoothness of q(y|x) around the rows of the (unlabeled) minibatch
            scale = x.detach().flatten(1).square().sum(dim=1).mean().sqrt()  # RMS row norm
            loss = loss + self.vat_weight * losses.virtual_adversarial_loss(
                self.class_logits, x, self.vat_epsilon * scale, log_p=log_p)
        if shifted:  # same class for a shifted image
            target = log_p
            if taught:  # Mean Teacher's target
                with torch.no_grad():
                    target = self.average.module(x)[:, : self.n_classes].log_softmax(dim=1)
            loss = loss + self.consistency_weight * losses.consistency_loss(
                self.class_logits, x, self._move(x), log_p=target,
                threshold=self.consistency_threshold)
        return loss

    def _move(self, x):
        return random_shift(x, self.max_shift, self.max_rotation, self.max_warp)


class AAEClassifier(SemiSupervisedClassifierMixin, CodeTransformerMixin, NetEstimator):
    """Semi-supervised adversarial autoencoder classifier (Makhzani et al., 2015).

    The encoder emits a categorical class code ``y`` (softmax over classes) and a continuous
    style code ``z``; the decoder reconstructs the input from ``(y, z)``. Two discriminators
    push ``y`` towards one-hot vectors of a uniform categorical prior and ``z`` towards
    ``N(0, I)``, and the labeled rows train ``q(y|x)`` directly. Rows with ``y == -1`` are
    unlabeled, as in :mod:`sklearn.semi_supervised`.

    Parameters
    ----------
    n_components : int, default=10
        Dimension of the style code ``z``.
    hidden_layer_sizes : int or array-like of int, default=None
        Encoder hidden sizes (the decoder mirrors them); channels of the stride-2 convolutions
        for ``backbone="conv"``. None means ``(1000, 1000)`` (MLP, as in the paper) or
        ``(32, 64)`` (conv).
    discriminator_hidden_sizes : int or array-like of int, default=(1000, 1000)
        Hidden sizes of both discriminators (MLPs).
    activation : {"relu", "leaky_relu", "tanh", "logistic", "identity"}, default="relu"
        Activation of the hidden layers (``"leaky_relu"``: slope 0.2).
    backbone : {"auto", "mlp", "conv"}, default="auto"
        ``"conv"`` for images, ``"mlp"`` for tables; ``"auto"`` picks by input shape.
    loss : {"mse", "bce"}, default="mse"
        Reconstruction loss; ``"bce"`` for data in [0, 1] such as pixel intensities.
    noise : float, default=0.0
        Standard deviation of Gaussian noise added to the encoder's input during training.
    hidden_noise : float, default=0.0
        Standard deviation of Gaussian noise added to every hidden layer of the encoder, after
        its activation, during training (as the :class:`GANClassifier`'s discriminator does).
    batch_norm : bool, default=False
        Batch-normalize every hidden layer of the encoder, before its activation (as the MLP of
        the virtual adversarial training paper does). In eval mode the encoder uses running
        statistics, averaged alongside the weights when ``ema_decay > 0``. On MNIST with 100
        labels (``max_shift=2``, 20 epochs, the draw of seed 0, one AMD CPU) it learned faster,
        1.91 % after 10 epochs against 2.39 % without, and ended level, 2.11 % against 2.21 %
        (1.87 % on an Intel CPU); with ``hidden_noise=0.3`` too, 2.09 % (see the
        AAEClassifier page of the documentation).
    supervised_weight : float, default=1.0
        Weight of the cross-entropy of the supervised phase, beside that phase's virtual
        adversarial and consistency losses. The phase has its own optimizer, so with Adam
        (which does not see the scale of its loss) the weight sets only the balance between the
        labels and those unlabeled losses; with ``optimizer="sgd"`` it also scales the step. On
        MNIST with 1000 labels (``max_shift=2``, ``max_rotation=10``, 20 epochs) 3 gave 2.05 and
        1.86 % on two draws against 1.74 and 1.73 %, and 0.5 gave 1.68 and 1.75 % (see the
        benchmarks page).
    discriminator_noise : float, default=0.3
        Standard deviation of Gaussian noise added to what both discriminators see during
        training, prior samples and codes alike ("instance noise"). Without it the categorical
        discriminator can tell exact one-hot vectors from any softmax output; with it the
        classes of MNIST came out balanced and the error with 100 labels fell by half (see the
        AAEClassifier page of the documentation). 0 is the paper's setting.
    reconstruct_labeled : bool, default=False
        The reconstruction phase also reconstructs the labeled minibatch from its known class
        (one-hot) and its style, so the decoder learns what each class code means. False is
        the paper's reconstruction phase (the unlabeled minibatch only); on MNIST with 100
        labels True did not help.
    ema_decay : float in [0, 1), default=0.9999
        Predictions and codes (``predict``, ``transform``...) use an exponential moving
        average of the encoder's weights over the training steps (Polyak averaging, as
        :class:`GANClassifier` does for its discriminator), which smooths the step-to-step
        jitter of adversarial training. The average spans about the last tenth of the steps
        early in training, and at most about ``1 / (1 - ema_decay)`` steps. On MNIST after
        20 epochs it lowered the test error from 6.57 % to 5.85 % with 100 labels and from
        6.14 % to 4.60 % with 1000 (seed 0). 0 uses the last weights, as the paper does.
    vat_weight : float, default=1.0
        Weight of the virtual adversarial loss (Miyato et al., 2018) added to the supervised
        phase: on the minibatch of all rows, the KL divergence between ``q(y|x)`` and
        ``q(y|x + r)`` for the small perturbation ``r`` that changes it most. It needs no label,
        so the unlabeled rows teach the classifier to keep its prediction near each row and to
        draw class boundaries through empty regions. On MNIST with 100 labels it lowered the
        test error after 10 epochs from 8.16 % to 3.81 % on average over four draws of the
        labels (see the AAEClassifier page of the documentation). 0 is the paper's supervised
        phase; the loss costs about a fifth more time per epoch. The shifts of ``max_shift``
        do not replace it: with ``max_shift=2`` and 100 labels, 0 gave 2.88 % after 20 epochs
        against 1.87 % (the draw of seed 0).
    vat_epsilon : float or (float, float), default=(0.4, 0.2)
        L2 norm of the perturbation ``r`` of one row, as a fraction of the root-mean-square L2
        norm of the minibatch's rows (so it does not depend on the scale of the features; on
        MNIST pixels in [0, 1], 0.4 is an L2 norm of about 3.7). A pair ``(early, late)``
        perturbs by ``early`` for the first ``vat_early_epochs`` epochs, while the classes
        form, and by ``late`` after them, for finer boundaries; a number perturbs by that
        throughout. On MNIST with 100 labels (label draws of seeds 0 to 3), a constant 0.2 left
        two of the four draws with their 4s and 9s split across each other, 0.4 none, and
        ``(0.4, 0.2)`` did better than 0.4 on each of them: 2.68 % on average after 20 epochs
        against 3.11 %. A fifth draw went wrong with 0.4 and the pair alike (see the
        AAEClassifier page of the documentation).
    vat_early_epochs : int, default=5
        Epochs perturbed by the first value of a pair ``vat_epsilon``, counted over
        warm-started fits. Ignored when ``vat_epsilon`` is a number.
    max_shift : float, default=0.0
        For images only (X of shape ``(n, H, W)`` or ``(n, C, H, W)``, whatever the
        backbone): the supervised phase trains on the labeled images shifted at random by up
        to ``max_shift`` pixels along each axis (a new shift at every step, fractions of a
        pixel too), and adds ``consistency_weight`` times the KL divergence between ``q(y|x)``
        and ``q(y|shifted x)`` on the minibatch of all rows, so that the few labels reach the
        shifted look-alikes of their rows and a shift does not change the class. 0 turns both
        off (the paper's model). On MNIST with 100 labels (the MLP backbone on 28x28 images,
        20 epochs), 2 pixels gave 2.50 % test error on average over five draws of the labels
        against 6.25 % without: 1.87, 1.82 and 1.76 % instead of 2.22, 2.35 and 2.35 %, and
        2.05 and 5.01 % instead of 12.73 and 11.60 % on the two draws whose 4s and 9s split
        across each other without the shifts; with 1000 labels, 1.82 and 1.87 % instead of
        2.19 and 2.08 % (seeds 0 and 1; see the AAEClassifier page of the documentation). A
        fit took 5 to 20 % longer.
    max_rotation : float, default=0.0
        For images only, as ``max_shift``: each shifted image also turns about its centre by
        an angle drawn uniformly in ``[-max_rotation, max_rotation]`` degrees, in the
        supervised loss and the consistency loss alike (either parameter > 0 turns both
        losses on). On MNIST with 100 labels, 10 degrees beside ``max_shift=2`` gave 1.68,
        1.84 and 2.05 % after 20 epochs on three draws of the labels (1.87, 1.82 and 2.05 %
        without the turns) and 7.72 % on a fourth whose 4s and 9s split (5.01 % without):
        no better; with 1000 labels, 1.74 and 1.73 % against 1.82 and 1.87 % (see the
        AAEClassifier page of the documentation).
    max_warp : float, default=0.0
        For images only, as ``max_shift``: each shifted image is also warped elastically, as
        :class:`GANClassifier`'s ``max_warp`` does (the points of a 4 x 4 grid over it moved
        by up to ``max_warp`` pixels along each axis, bicubic between them), in the supervised
        loss and the consistency loss alike. Not yet measured on the AAEClassifier.
    consistency_weight : float, default=1.0
        Weight of the consistency loss under shifts; used when ``max_shift``,
        ``max_rotation`` or ``max_warp`` > 0.
    consistency_threshold : float in [0, 1], default=0.0
        0: the consistency loss under shifts is the KL divergence to the soft prediction
        ``q(y|x)``. Above 0 its target is hard, as in FixMatch (Sohn et al., 2020): the
        cross-entropy of ``q(y|shifted x)`` against the most probable class of ``q(y|x)``, for
        the rows whose probability of that class is at least ``consistency_threshold`` (the
        others add nothing), so confident unlabeled rows teach as labeled ones do. On MNIST
        with 100 labels (``max_shift=2``, 20 epochs, the draw of seed 0) 0.8 gave 2.05 %
        against 1.87 % with the soft target (see the AAEClassifier page of the
        documentation).
    consistency_teacher : {"encoder", "average"}, default="encoder"
        Whose prediction on the unshifted rows is the target of the consistency loss:
        ``"encoder"``, the encoder being trained (held fixed); ``"average"``, the running
        average of its weights (``ema_decay``), the teacher of Mean Teacher (Tarvainen and
        Valpola, 2017), which changes more slowly and smoothly than the encoder. On MNIST
        with 100 labels (``max_shift=2``, 20 epochs, the draw of seed 0) ``"average"`` gave
        2.48 % against 1.87 % (see the AAEClassifier page of the documentation).
    class_prior : {"uniform", "predicted"} or array-like of shape (n_classes,), \
            default="uniform"
        The categorical prior whose one-hot samples the categorical discriminator takes for
        real, and so the share of the rows that the encoder gives each class. ``"uniform"``:
        equal shares (the paper's). ``"predicted"``: the running mean of the encoder's own
        ``q(y|x)`` over the minibatches (about the last thousand), starting from uniform, so
        the prior still makes the codes one-hot but stops pushing the classes to equal sizes
        once they have formed. An array: the probability of each class, in the order of
        ``classes_`` (normalized to sum to 1), when the shares are known. On MNIST with 100
        labels (``max_shift=2``, 20 epochs, the draw of seed 0) the uniform prior gives the
        classes 9.2 to 11.2 % of the test images, which has 8.9 to 11.4 % of each; with
        ``"predicted"`` they took 8.8 to 11.4 %, and the test error hardly moved: 1.82 %, and
        1.92 % with the training set's class shares given, against 1.87 % (see the
        AAEClassifier page of the documentation).
    generator_lr_scale : float, default=0.5
        The learning rate of the regularization phase's generator step (the encoder's update
        that fools the discriminators) as a multiple of ``lr``; the other phases train at ``lr``
        (and ``lr_schedule`` scales all alike). Below 1 the adversarial pull on the encoder
        weighs less against the labels and its other losses, while the discriminators still
        learn at ``lr``. On MNIST (``max_shift=2``, 20 epochs, one AMD CPU) 0.5 gave 1.55, 1.56
        and 1.65 % with 100 labels on the draws of seeds 0, 1 and 5, against 2.21, 2.29 and
        1.99 % at 1 (the default until 2026-12-05), 1.70 and 1.59 % on those of seeds 2 and 3
        (1.74 % for seed 2 at 1), and 1.61 and 1.48 % with 1000 labels against 1.79 and 1.87 %
        (seeds 0 and 1); after the default 50 epochs, 1.44, 1.15, 1.42, 1.59, 1.35, 1.42, 1.31,
        1.32 and 1.32 % with 100 labels (seeds 0 to 3 and 5 to 9) and 1.33, 1.18, 1.22, 1.55,
        1.44 and 1.53 % with 1000 (seeds 0 to 5); 0.3 was no better with 100 labels (1.79, 2.49,
        2.35 %). It does not mend a draw whose labeled 4s and 9s let the encoder split them
        along another line: that of seed 4 ended at 9.52 % after 20 epochs (10.12 % at 1) and
        9.00 % after 50. Too low and the encoder cannot keep up with the discriminators: 0.1
        merged classes with 100 labels (about a tenth of the test images wrong after 10 epochs)
        and ended at 1.97 % with 1000 (see the AAEClassifier page of the documentation).
    reconstruction_lr_scale : float, default=1.0
        The learning rate of the reconstruction phase's step on the encoder as a multiple of
        ``lr``; the decoder learns at ``lr`` whatever it is. Below 1 the reconstruction pulls
        less on the codes, and 0 leaves the encoder to the regularization and supervised
        phases: the decoder then learns to reconstruct the rows from codes that it does not
        shape (``inverse_transform`` and ``sample`` still work), and a step costs less. With
        many labels the encoder learns faster without that pull but loses its footing late in
        training. On MNIST with 1000 labels (``max_shift=2``, an Intel CPU; the defaults on an
        AMD one) 0 gave 1.43 % after 20 epochs against 1.61 % at 1 (the draw of seed 0; 0.1 the
        same, 0.3 1.66 %), but over the default 50 epochs, best at 1.14 and 1.36 % after 20 and
        15 of them, it ended at 1.86 and 2.13 % on the draws of seeds 0 and 3 against 1.33 and
        1.55 % at 1, worse as the rate decayed; with ``class_prior="predicted"`` as well,
        1.20 ± 0.08 % over the draws of seeds 0 to 5 against 1.38 ± 0.16 % at the defaults on
        the AMD CPU, and 1.18 ± 0.10 % against the defaults' 1.32 ± 0.08 % on the Intel CPU
        over the draws of seeds 0, 3, 4 and 5; with 100 labels 1.79 ± 1.43 % over the draws of seeds
        0 to 8 (5.58 % on that of seed 4) against 2.22 ± 2.54 % at the defaults on the AMD CPU
        (9.00 % on seed 4; see the AAEClassifier page of the documentation).
    supervised_epochs : int, default=0
        Epochs at the start of a fit that run the supervised phase alone (the labeled rows'
        cross-entropy, with the virtual adversarial and consistency losses of all rows), before
        the four phases run together; they count in ``max_epochs`` and cost less than the
        others (the decoder and discriminators wait). Must be less than ``max_epochs``. The
        epochs are counted over warm-started fits, as ``n_iter_`` is. On MNIST with 100 labels
        (``max_shift=2``, 50 epochs, an Intel CPU) 1 gave 1.55 % on the draw of seed 4, whose
        4s and 9s the default 0 splits in the first epoch (9.00 % on an AMD CPU; on that CPU 1
        splits them too, a split it makes rarer, not impossible), and 1.56 ± 0.37 %
        over the draws of seeds 0 to 9 (2.13 ± 2.42 % at 0 on the AMD CPU; without seed 4, 1.57
        against 1.37 %; see the AAEClassifier page of the documentation).
    classes : array-like, default=None
        All class labels. None takes the labels present among the labeled rows; if given,
        every class must have at least one labeled row.
    max_epochs : int, default=50
        Passes over all rows (labeled and unlabeled). At a constant learning rate the training
        has bouts of large steps after 15 to 35 epochs (on MNIST with 100 labels, one Intel
        CPU, seed 3: 2.46 % after 15 epochs, 3.36 % after 20); the default
        ``lr_schedule="linear"`` lowers the rate over the second half of the epochs, which
        ends on small steps: 2.22, 2.35 and 2.35 % after 20 epochs for seeds 0, 1 and 3
        (2.39, 2.07 and 3.36 % at the constant rate), 2.25 % after 50 for seed 0. With
        ``max_shift=2`` on the images, seed 0 gave 1.87 % after 20 epochs and 1.99 % after 50
        (4.05 % after 30 of those, before the rate came down). Watch ``net_.history`` (see
        the AAEClassifier page of the documentation).
    batch_size : int, default=100
        Rows per minibatch; each step also draws this many labeled rows, cycling through the
        labeled set.
    lr : float, default=1e-3
        Learning rate of every phase's Adam optimizer.
    lr_schedule : {"constant", "linear"}, default="linear"
        ``"linear"``: ``lr`` for the first half of the epochs of each ``fit``, then lower by
        ``lr / d`` each epoch, down to ``lr / d`` in the last (``d = epochs - epochs // 2``:
        20 epochs train 11 at ``lr``, then at 0.9, 0.8, ..., 0.1 times ``lr``); every phase
        alike. ``"constant"`` keeps ``lr`` throughout (the default until 2026-12-01); use it
        with a learning-rate callback such as skorch's ``LRScheduler``.
    optimizer : {"adam", "adamw", "sgd", "rmsprop"} or torch optimizer class, default="adam"
        The optimizer of each phase (adversarial phases use ``betas=(0.5, 0.999)`` with Adam).
        ``"sgd"`` is SGD with Nesterov momentum 0.9, as in
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
        Seeds initialization, shuffling, labeled-batch draws and prior samples.
    verbose : int, default=0
        Print skorch's epoch table (every phase's loss) when > 0.
    callbacks : list of skorch callbacks, default=None
        Extra skorch callbacks, cloned at each fit.
    warm_start : bool, default=False
        When True, ``fit`` goes on training the fitted network for ``max_epochs`` more
        epochs instead of starting from new weights: train in chunks and look at the
        model in between. The weights carry over and ``net_.history`` grows; the
        optimizers start afresh, as in :class:`~sklearn.neural_network.MLPClassifier`.
        X must have the same shape and y the same classes as before.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels (without -1).
    net_ : skae._training.TrainingNet
        The fitted skorch net; ``net_.history`` has ``recon_loss``, ``disc_loss``,
        ``gen_loss`` and ``sup_loss`` per epoch and batch.
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
    GANClassifier : Semi-supervised GAN (Salimans et al., 2016).
    AutoEncoderClassifier : Pretrain an autoencoder, fine-tune its encoder.
    sklearn.semi_supervised.SelfTrainingClassifier : Self-training meta-estimator.

    Notes
    -----
    With encoder ``(l(x), z(x))``, ``q(y|x) = softmax(l(x))``, decoder ``g``, discriminators
    ``D_y`` and ``D_z`` and ``BCE`` the binary cross-entropy with logits, each minibatch runs:

    1. reconstruction: ``min_{enc, dec} mean l_rec(x, g(q(y|x), z(x)))``, plus, with
       ``reconstruct_labeled``, ``mean l_rec(x_lab, g(onehot(y_lab), z(x_lab)))`` on the
       labeled minibatch;
    2. regularization, discriminators: ``min_D BCE(D_y(y~), 1) + BCE(D_y(q(y|x)), 0) +
       BCE(D_z(z~), 1) + BCE(D_z(z(x)), 0)`` with ``y~`` one-hot from the categorical
       prior (``class_prior``, uniform by default), ``z~ ~ N(0, I)``;
    3. regularization, generator: ``min_enc BCE(D_y(q(y|x)), 1) + BCE(D_z(z(x)), 1)``;
    4. supervised: ``min_enc supervised_weight * CE(l(x_lab), y_lab) + vat_weight *
       KL(q(y|x) || q(y|x + r_adv))`` on a labeled minibatch and the minibatch of all rows,
       ``q(y|x)`` held fixed, ``r_adv`` of norm ``vat_epsilon`` times the root-mean-square row
       norm, found by one power iteration (Miyato et al., 2018); with ``max_shift > 0``,
       ``x_lab`` shifted at random and ``+ consistency_weight * KL(q(y|x) || q(y|s(x)))``,
       ``s`` a random shift of up to ``max_shift`` pixels (and turn of up to ``max_rotation``
       degrees, and elastic warp of up to ``max_warp`` pixels); with
       ``consistency_threshold = t > 0`` that KL is replaced by
       ``mean_x [max_k q(k|x) >= t] CE(l(s(x)), argmax_k q(k|x))``.

    Each phase has its own optimizer, as in the paper. In 2 and 3 the discriminators see
    their inputs with ``N(0, discriminator_noise^2)`` noise added. After each minibatch, a
    running average of the encoder's weights takes in the new ones (``ema_decay``); the
    fitted estimator predicts and encodes with that average.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skae import AAEClassifier
    >>> from skae.datasets import make_semi_supervised
    >>> X, y = load_digits(return_X_y=True)
    >>> y_semi = make_semi_supervised(y, n_labeled=180, random_state=0)
    >>> clf = AAEClassifier(hidden_layer_sizes=(128,), discriminator_hidden_sizes=(64,),
    ...                     max_epochs=5, random_state=0).fit(X / 16.0, y_semi)
    >>> clf.predict(X[:3] / 16.0).shape
    (3,)
    >>> clf.transform(X[:3] / 16.0).shape
    (3, 10)
    """

    _parameter_constraints = {
        **NetEstimator._parameter_constraints,
        "discriminator_hidden_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
        "loss": [StrOptions({"mse", "bce"})],
        "noise": [Interval(Real, 0, None, closed="left")],
        "hidden_noise": [Interval(Real, 0, None, closed="left")],
        "batch_norm": ["boolean"],
        "supervised_weight": [Interval(Real, 0, None, closed="left")],
        "discriminator_noise": [Interval(Real, 0, None, closed="left")],
        "reconstruct_labeled": ["boolean"],
        "ema_decay": [Interval(Real, 0, 1, closed="left")],
        "vat_weight": [Interval(Real, 0, None, closed="left")],
        "vat_epsilon": [Interval(Real, 0, None, closed="neither"), "array-like"],
        "vat_early_epochs": [Interval(Integral, 0, None, closed="left")],
        **SHIFT_CONSTRAINTS,
        "consistency_threshold": [Interval(Real, 0, 1, closed="both")],
        "consistency_teacher": [StrOptions({"encoder", "average"})],
        "class_prior": [StrOptions({"uniform", "predicted"}), "array-like"],
        "generator_lr_scale": [Interval(Real, 0, None, closed="neither")],
        "reconstruction_lr_scale": [Interval(Real, 0, None, closed="left")],
        "supervised_epochs": [Interval(Integral, 0, None, closed="left")],
        "classes": ["array-like", None],
    }
    _default_hidden_layer_sizes = {"mlp": (1000, 1000), "conv": (32, 64)}

    def __init__(self, n_components=10, *, hidden_layer_sizes=None,
                 discriminator_hidden_sizes=(1000, 1000), activation="relu", backbone="auto",
                 loss="mse", noise=0.0, hidden_noise=0.0, batch_norm=False,
                 supervised_weight=1.0, discriminator_noise=0.3,
                 reconstruct_labeled=False, ema_decay=0.9999, vat_weight=1.0,
                 vat_epsilon=(0.4, 0.2), vat_early_epochs=5, max_shift=0.0,
                 max_rotation=0.0, max_warp=0.0, consistency_weight=1.0,
                 consistency_threshold=0.0,
                 consistency_teacher="encoder", class_prior="uniform",
                 generator_lr_scale=0.5, reconstruction_lr_scale=1.0, supervised_epochs=0,
                 classes=None, max_epochs=50, batch_size=100, lr=1e-3, lr_schedule="linear",
                 optimizer="adam", weight_decay=0.0, device="cpu", cuda_graphs=True,
                 random_state=None, verbose=0, callbacks=None, warm_start=False):
        self.n_components = n_components
        self.hidden_layer_sizes = hidden_layer_sizes
        self.discriminator_hidden_sizes = discriminator_hidden_sizes
        self.activation = activation
        self.backbone = backbone
        self.loss = loss
        self.noise = noise
        self.hidden_noise = hidden_noise
        self.batch_norm = batch_norm
        self.supervised_weight = supervised_weight
        self.discriminator_noise = discriminator_noise
        self.reconstruct_labeled = reconstruct_labeled
        self.ema_decay = ema_decay
        self.vat_weight = vat_weight
        self.vat_epsilon = vat_epsilon
        self.vat_early_epochs = vat_early_epochs
        self.max_shift = max_shift
        self.max_rotation = max_rotation
        self.max_warp = max_warp
        self.consistency_weight = consistency_weight
        self.consistency_threshold = consistency_threshold
        self.consistency_teacher = consistency_teacher
        self.class_prior = class_prior
        self.generator_lr_scale = generator_lr_scale
        self.reconstruction_lr_scale = reconstruction_lr_scale
        self.supervised_epochs = supervised_epochs
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
        """Fit on all rows of X; rows with ``y == -1`` are unlabeled.

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
        self._check_max_shift()
        if self.supervised_epochs >= self.max_epochs and not self._warm_starting():
            raise ValueError(
                f"supervised_epochs={self.supervised_epochs} must be less than "
                f"max_epochs={self.max_epochs}: the other phases would never run"
            )
        y_enc, labeled = self._validate_y(X, y)
        return self._fit_semi_supervised(X, y_enc, labeled)

    def _build_model(self):
        backbone = self._backbone()
        hidden = self._hidden_layer_sizes(backbone)
        disc_hidden = self._hidden_layer_sizes("mlp", self.discriminator_hidden_sizes)
        k, d = len(self.classes_), self.n_components
        shape, act = self.input_shape_, self.activation
        return AAEModel(
            build_encoder(backbone, shape, hidden, k + d, act,
                          hidden_noise=float(self.hidden_noise), batch_norm=bool(self.batch_norm)),
            build_decoder(backbone, k + d, hidden, shape, act),
            MLP([k, *disc_hidden, 1], act),
            MLP([d, *disc_hidden, 1], act),
            k, d, loss=self.loss, noise=self.noise,
            supervised_weight=self.supervised_weight,
            discriminator_noise=self.discriminator_noise,
            reconstruct_labeled=bool(self.reconstruct_labeled), ema_decay=self.ema_decay,
            vat_weight=self.vat_weight, **self._vat_epsilon_schedule(),
            max_shift=float(self.max_shift), max_rotation=float(self.max_rotation),
            max_warp=float(self.max_warp), consistency_weight=float(self.consistency_weight),
            consistency_threshold=float(self.consistency_threshold),
            consistency_teacher=self.consistency_teacher, class_prior=self._class_prior(),
            generator_lr_scale=float(self.generator_lr_scale),
            reconstruction_lr_scale=float(self.reconstruction_lr_scale),
            supervised_epochs=int(self.supervised_epochs),
        )

    def _class_prior(self):
        """``class_prior`` for the model: a string, or the given probabilities, normalized."""
        prior = self.class_prior
        if isinstance(prior, str):
            return prior
        k = len(self.classes_)
        values = np.asarray(prior, dtype=object)
        if values.shape != (k,) or not all(
                isinstance(v, Real) and np.isfinite(v) and v >= 0 for v in values):
            raise ValueError(
                f"class_prior must be 'uniform', 'predicted' or {k} non-negative numbers, one "
                f"for each class of classes_; got {prior!r}"
            )
        values = values.astype(np.float64)
        if values.sum() <= 0:
            raise ValueError(f"class_prior must have a positive sum; got {prior!r}")
        return (values / values.sum()).astype(np.float32)

    def _vat_epsilon_schedule(self):
        """The model's ``vat_epsilon`` or, for a pair, its ``vat_schedule``."""
        eps = self.vat_epsilon
        if isinstance(eps, Real):
            return {"vat_epsilon": float(eps), "vat_schedule": None}
        values = np.asarray(eps, dtype=object)
        if values.shape != (2,) or not all(
                isinstance(v, Real) and np.isfinite(v) and v > 0 for v in values):
            raise ValueError(
                "vat_epsilon must be a positive number or a pair (early, late) of positive "
                f"numbers; got {eps!r}"
            )
        early, late = (float(v) for v in values)
        return {"vat_schedule": (early, late, int(self.vat_early_epochs))}

    def __setstate__(self, state):
        # saved before these parameters existed: it was trained as the paper does
        state = {"hidden_noise": 0.0, "batch_norm": False, "discriminator_noise": 0.0,
                 "reconstruct_labeled": False, "ema_decay": 0.0, "vat_weight": 0.0,
                 "vat_epsilon": 0.4, "vat_early_epochs": 5, "max_shift": 0.0,
                 "max_rotation": 0.0, "max_warp": 0.0, "consistency_weight": 1.0,
                 "consistency_threshold": 0.0,
                 "consistency_teacher": "encoder", "class_prior": "uniform",
                 "generator_lr_scale": 1.0, "reconstruction_lr_scale": 1.0,
                 "supervised_epochs": 0, **state}
        net_state = state.get("_net_state")
        if net_state is not None and "average.n_averaged" not in net_state["weights"]:
            # and before the encoder's average: an empty one (predictions use the encoder)
            weights = dict(net_state["weights"])
            weights.update({f"average.module.{name[len('encoder.'):]}": value
                            for name, value in net_state["weights"].items()
                            if name.startswith("encoder.")})
            weights["average.n_averaged"] = np.zeros((), dtype=np.int64)
            state["_net_state"] = {**net_state, "weights": weights}
        super().__setstate__(state)

    @staticmethod
    def _class_logits(model, x):
        return model.class_logits(x)

    def transform(self, X):
        """The style code ``z`` of each row (the class content is :meth:`predict_proba`).

        Returns
        -------
        z : ndarray of shape (n_samples, n_components)
        """
        X = self._validate_X(X, reset=False)
        return self._forward(lambda m, x: m.style(x), X).astype(X.dtype, copy=False)

    def _one_hot(self, y, n):
        y = np.broadcast_to(np.asarray(y, dtype=self.classes_.dtype), (n,))
        unknown = np.setdiff1d(y, self.classes_)
        if unknown.size:
            raise ValueError(f"y has labels {unknown.tolist()} not in classes_")
        return np.eye(len(self.classes_), dtype=np.float32)[np.searchsorted(self.classes_, y)]

    def inverse_transform(self, X, y=None):
        """Decode style codes, rendered as class ``y``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_components)
            Style codes, e.g. from :meth:`transform`.
        y : array-like of shape (n_samples,) or a single label, default=None
            Class of each row. None decodes with a uniform class vector (a class-agnostic
            blend).

        Returns
        -------
        X_original : ndarray of shape (n_samples, *input_shape_)
        """
        check_is_fitted(self)
        z = check_array(X, dtype=(np.float32, np.float64))
        if z.shape[1] != self.n_components:
            raise ValueError(
                f"X has {z.shape[1]} features, but the style code has n_components="
                f"{self.n_components}"
            )
        k = len(self.classes_)
        onehot = (np.full((len(z), k), 1.0 / k, dtype=np.float32) if y is None
                  else self._one_hot(y, len(z)))
        yz = np.hstack([onehot, z.astype(np.float32)])
        decoded = self._forward(lambda m, b: m.decode(b[:, :k], b[:, k:]), yz)
        return decoded.astype(z.dtype, copy=False)

    @validate_params(
        {"n_samples": [Interval(Integral, 1, None, closed="left")],
         "y": ["array-like", None, "boolean", Integral, str],
         "style": ["array-like", None],
         "random_state": ["random_state"]},
        prefer_skip_nested_validation=True,
    )
    def sample(self, n_samples=1, y=None, style=None, random_state=None):
        """Generate rows of chosen classes in a chosen or random style.

        Parameters
        ----------
        n_samples : int, default=1
            Number of rows.
        y : label or array-like of shape (n_samples,), default=None
            Class of each row; None draws classes from the categorical prior (uniformly
            unless ``class_prior`` says otherwise).
        style : array-like of shape (n_components,) or (n_samples, n_components), default=None
            Style code(s); None draws from ``N(0, I)``. One style with several classes renders
            the same style in each class (the content/style split of the paper).
        random_state : int, RandomState instance or None, default=None
            Seeds the draws.

        Returns
        -------
        X : ndarray of shape (n_samples, *input_shape_)
            Generated rows.
        y : ndarray of shape (n_samples,)
            Their classes.
        """
        check_is_fitted(self)
        rng = check_random_state(random_state)
        if y is None:
            prior = getattr(self.net_.module_, "prior", None)
            if prior is None:
                y = self.classes_[rng.randint(len(self.classes_), size=n_samples)]
            else:
                p = prior.detach().cpu().double().numpy()
                y = rng.choice(self.classes_, size=n_samples, p=p / p.sum())
        y = np.broadcast_to(np.asarray(y, dtype=self.classes_.dtype), (n_samples,)).copy()
        if style is None:
            z = rng.standard_normal((n_samples, self.n_components))
        else:
            z = np.broadcast_to(np.atleast_2d(np.asarray(style, dtype=float)),
                                (n_samples, self.n_components))
        return self.inverse_transform(z.astype(np.float32), y), y
