"""AAEClassifier ablation: which phase and which setting moves its semi-supervised error.

Fits the AAEClassifier (the benchmark's configuration: ``loss="bce"``, and on MNIST
``max_shift=2``) on the first ``--rows`` training images with ``--labels`` labels, once per
variant: a documented parameter changed, or a phase of the training step switched off.
Besides the test error it reports what explains the error:

* ``class share``: the smallest and largest share of the test images given to one class
  (10 % each when the categorical prior is matched);
* ``confidence``: the mean of the largest predicted probability;
* ``y use``: the reconstruction error of the test images decoded from their style code with
  the predicted class replaced by another row's, over the error with their own predicted class
  (1.0: the decoder ignores the class code);
* ``top confusions``: the three most frequent errors, ``true>predicted count`` (a class
  that the clusters merged with another, or split, shows here).

A model with ``backbone='conv'`` or ``max_shift > 0`` (on MNIST, the benchmark's configuration
shifts images) fits the same rows as square images.

Example::

    python benchmarks/aae_ablation.py --data-dir ../shared/data/mnist --rows 10000 \\
        --labels 100 --epochs 10 --test-rows 2000 --threads 1

``--stop-after N`` ends each fit after N epochs of the ``--epochs`` schedule: with
``--eval-every 1``, a quick screen of how a long fit starts (the test error after each epoch, the
top confusions after the last).
"""

import argparse
import math
import time
import warnings

import numpy as np
import torch
from _common import add_ablation_arguments, add_io_arguments, command_line, confusions_text
from _common import curve_text, load_data, machine_info, main_guard, print_table, result_paths
from _common import selected_variants, settings_text, square_images, write_results
from sklearn.exceptions import ConvergenceWarning
from skorch.callbacks import Callback, LRScheduler, PrintLog
from torch.optim.lr_scheduler import LinearLR

from skae._training import lr_factor
from skae.benchmark import TestError, make_model, takes_images
from skae.datasets import make_semi_supervised


def _linear_decay(epochs, steps_per_epoch):
    """A learning rate decaying linearly to 0 over ``epochs``."""
    return LRScheduler(LinearLR, start_factor=1.0, end_factor=0.0, total_iters=epochs)


def _warmup(epochs, steps_per_epoch):
    """A warm-up: the learning rate from ``lr / steps_per_epoch`` at the first step up by equal
    steps to ``lr`` at the first step of the second epoch, then constant."""
    return LRScheduler(LinearLR, start_factor=1.0 / steps_per_epoch, end_factor=1.0,
                       total_iters=steps_per_epoch, step_every="batch")


class _ReconstructionFrom(Callback):
    """From epoch ``start`` on, the reconstruction phase steps the encoder as well, at the
    decoder's rate, where before it (``reconstruction_lr_scale=0``) only the decoder learned."""

    def __init__(self, start):
        self.start = start

    def on_epoch_begin(self, net, **kwargs):
        if len(net.history) != self.start:
            return
        module, optimizer = net.module_, net.optimizer_recon_
        module.reconstruction_lr_scale = 1.0  # the codes now carry the reconstruction's gradient
        decoder = optimizer.param_groups[0]
        optimizer.add_param_group({"params": [*module.encoder.parameters()],
                                   "lr": decoder["lr"], "base_lr": decoder["base_lr"]})


def _reconstruction_from_decay(epochs, steps_per_epoch):
    """The encoder in the reconstruction phase from the first epoch of ``lr_schedule='linear'``'s
    decay on (the first whose :func:`skae._training.lr_factor` is below 1; never for one
    epoch)."""
    decaying = (e for e in range(1, epochs + 1) if lr_factor("linear", e, epochs) < 1)
    return _ReconstructionFrom(next(decaying, epochs + 1))


#: ``(name, parameters, phases, schedule)``; ``phases=None`` runs all four;
#: ``schedule(epochs, steps_per_epoch)`` is a callback changing a setting over the training
#: (the learning rate), None keeps the settings constant.
VARIANTS = [
    ("default", {}, None, None),
    ("discriminator_noise=0", {"discriminator_noise": 0.0}, None, None),
    ("reconstruct_labeled=True", {"reconstruct_labeled": True}, None, None),
    ("supervised_weight=3", {"supervised_weight": 3.0}, None, None),
    ("supervised_weight=10", {"supervised_weight": 10.0}, None, None),
    ("ema_decay=0", {"ema_decay": 0.0}, None, None),
    ("vat_weight=0", {"vat_weight": 0.0}, None, None),
    ("vat_epsilon=0.1", {"vat_epsilon": 0.1}, None, None),
    ("vat_epsilon=0.2", {"vat_epsilon": 0.2}, None, None),
    ("vat_epsilon=0.3", {"vat_epsilon": 0.3}, None, None),
    ("vat_epsilon=0.4", {"vat_epsilon": 0.4}, None, None),
    ("vat_epsilon 0.4 for 5 epochs, then 0.2",
     {"vat_epsilon": (0.4, 0.2), "vat_early_epochs": 5}, None, None),
    ("vat_epsilon 0.6 for 5 epochs, then 0.2",
     {"vat_epsilon": (0.6, 0.2), "vat_early_epochs": 5}, None, None),
    ("the paper's phases (discriminator_noise=0, vat_weight=0, ema_decay=0)",
     {"discriminator_noise": 0.0, "vat_weight": 0.0, "ema_decay": 0.0}, None, None),
    ("noise=0.3", {"noise": 0.3}, None, None),
    ("n_components=2", {"n_components": 2}, None, None),
    ("n_components=4", {"n_components": 4}, None, None),
    ("lr=3e-4", {"lr": 3e-4}, None, None),
    ("lr decaying linearly to 0", {"lr_schedule": "constant"}, None, _linear_decay),
    ("lr warming up linearly over the first epoch", {"lr_schedule": "constant"}, None, _warmup),
    ("lr constant for half the epochs, then decaying linearly to 0", {"lr_schedule": "linear"},
     None, None),
    ("lr_schedule='constant'", {"lr_schedule": "constant"}, None, None),
    ("optimizer='adamw', weight_decay=0.05", {"optimizer": "adamw", "weight_decay": 0.05}, None,
     None),
    ("no reconstruction phase", {}, ("disc", "gen", "sup"), None),
    ("reconstruction_lr_scale=0, then 1 once the lr decays", {"reconstruction_lr_scale": 0.0},
     None, _reconstruction_from_decay),
    ("no adversarial phases", {}, ("recon", "sup"), None),
    ("supervised phase only", {}, ("sup",), None),
    ("supervised phase alone for the first epoch", {"supervised_epochs": 1}, None, None),
    ("backbone='conv' (images)", {"backbone": "conv"}, None, None),
    ("max_shift=0 (rows of pixels)", {"max_shift": 0.0}, None, None),
    ("max_shift=2 (images)", {"max_shift": 2.0}, None, None),
    ("max_shift=3 (images)", {"max_shift": 3.0}, None, None),
    ("backbone='conv', activation='leaky_relu'", {"backbone": "conv", "activation": "leaky_relu"},
     None, None),
]

COLUMNS = [
    ("variant", "variant"), ("test_error", "test error (%)", ".2f"),
    ("class_share_min", "class share min (%)", ".1f"),
    ("class_share_max", "class share max (%)", ".1f"),
    ("confidence", "confidence", ".3f"), ("y_use", "y use", ".3f"),
    ("top_confusions", "top confusions"),
    ("fit_seconds", "fit time (s)", ".0f"),
]


class OnlyPhases(Callback):
    """Restrict the training step to ``phases`` (a :class:`skae._training.PhasedModel` knob)."""

    def __init__(self, phases):
        self.phases = phases

    def on_train_begin(self, net, **kwargs):
        net.module_.active_phases = tuple(self.phases)


class StopAfter(Callback):
    """End the fit after ``epochs`` epochs; the schedules still span ``max_epochs``.

    Raises ``KeyboardInterrupt``, which skorch's ``partial_fit`` catches (its ``EarlyStopping``
    stops the same way), so the model is the one after epoch ``epochs`` of the long fit. skorch
    runs ``PrintLog`` after every other callback, so the last epoch's row is printed here first.
    """

    def __init__(self, epochs):
        self.epochs = epochs

    def on_epoch_end(self, net, **kwargs):
        if len(net.history) >= self.epochs:
            for _, callback in net.callbacks_:
                if isinstance(callback, PrintLog):
                    callback.on_epoch_end(net, **kwargs)
            raise KeyboardInterrupt


def diagnose(clf, X_test, y_test, rng):
    """Test error, class shares, confidence, y use and top confusions of a fitted AAE."""
    proba = clf.predict_proba(X_test)
    index = proba.argmax(axis=1)
    pred = clf.classes_[index]
    share = 100.0 * np.bincount(index, minlength=len(clf.classes_)) / len(pred)
    z = clf.transform(X_test)

    def recon_error(labels):
        return float(np.mean((clf.inverse_transform(z, labels) - X_test) ** 2))

    return {
        "test_error": 100.0 * float(np.mean(pred != y_test)),
        "class_share_min": float(share.min()), "class_share_max": float(share.max()),
        "confidence": float(proba.max(axis=1).mean()),
        "y_use": recon_error(rng.permutation(pred)) / recon_error(pred),
        "top_confusions": confusions_text(y_test, pred),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_io_arguments(parser, "results/aae_ablation")
    add_ablation_arguments(parser, "an AAEClassifier", epochs=10,
                           eval_help="also score each variant on the test rows every N epochs "
                           "(a learning curve in the results)")
    parser.add_argument("--rows", type=int, default=None,
                        help="training images used (default: all)")
    parser.add_argument("--test-rows", type=int, default=2000, help="test images scored")
    parser.add_argument("--model-seed", type=int, default=None,
                        help="seed of the models alone (default: --seed): another "
                        "initialization and order of the batches for the same draw of labels")
    parser.add_argument("--verbose", action="store_true",
                        help="print each fit's epoch table (skorch's, every phase's loss)")
    parser.add_argument("--stop-after", type=int, default=None, metavar="N",
                        help="stop each fit after N of the --epochs epochs (the lr and phase "
                        "schedules still span --epochs): a quick screen of a long fit's start")
    args = parser.parse_args()
    if args.stop_after is not None and not 1 <= args.stop_after <= args.epochs:
        parser.error(f"--stop-after must be between 1 and --epochs ({args.epochs}), "
                     f"got {args.stop_after}")
    variants = selected_variants(VARIANTS, args.variants)

    X, y, X_test, y_test = load_data(args.dataset, args.data_dir, rows=args.rows, test=True)
    X_test, y_test = X_test[: args.test_rows], y_test[: args.test_rows]
    y_semi = make_semi_supervised(y, args.labels, random_state=args.seed)
    rows = []
    for name, params, phases, schedule in variants:
        model_seed = args.seed if args.model_seed is None else args.model_seed
        clf = make_model("AAEClassifier", dataset=args.dataset, random_state=model_seed,
                         max_epochs=args.epochs)
        clf.set_params(**{**dict(args.set), **params})
        X_fit, X_score = X, X_test
        if takes_images(clf):
            X_fit, X_score = square_images(X, X_test)
        callbacks = [] if phases is None else [OnlyPhases(phases)]
        if schedule is not None:
            callbacks.append(schedule(args.epochs, math.ceil(len(X_fit) / clf.batch_size)))
        if args.eval_every:
            callbacks.append(TestError.for_fit(clf, y_semi, X_score, y_test, args.eval_every))
        if args.stop_after is not None:
            callbacks.append(StopAfter(args.stop_after))  # last: the others see its epoch
        clf.set_params(callbacks=callbacks or None, verbose=int(args.verbose))
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # collapse shows in the table
            clf.fit(X_fit, y_semi)
        row = {"variant": name, "fit_seconds": time.perf_counter() - start,
               **diagnose(clf, X_score, y_test, np.random.default_rng(args.seed))}
        if args.eval_every:
            row["curve"] = TestError.curve(clf.net_)
        print(f"{name}: {row['test_error']:.2f}% in {row['fit_seconds']:.0f}s", flush=True)
        rows.append(row)
    print_table(rows, COLUMNS)
    data = f"{'MNIST' if args.dataset == 'mnist' else args.dataset}, {len(X)} training rows"
    base = make_model("AAEClassifier", dataset=args.dataset)
    notes = [f"AAEClassifier as in skae.benchmark.make_model (loss='bce', backbone='mlp', "
             f"max_shift={base.max_shift}), {args.epochs} epochs on the first {len(X)} training "
             f"rows of {args.dataset} with {args.labels} "
             f"labels (class-balanced draw, seed {args.seed}); scored on the first "
             f"{len(X_test)} test rows"]
    if args.stop_after is not None:
        notes[0] += f"; every fit stopped after {args.stop_after} of the {args.epochs} epochs"
    if args.model_seed is not None:
        notes[0] += f"; the models seeded with {args.model_seed} (initialization, batches)"
    if args.set:
        notes[0] += "; for every variant " + settings_text(args.set)
    notes += [f"{row['variant']}: {curve_text(row['curve'])}" for row in rows if row.get("curve")]
    title = f"AAEClassifier ablation, {data}, {args.labels} labels, {args.epochs} epochs"
    if args.stop_after is not None:
        title += f" (stopped after {args.stop_after})"
    if args.variants:
        title += ": " + "; ".join(row["variant"] for row in rows)
    write_results(rows, COLUMNS, *result_paths(args.output), command_line(),
                  notes, title=title, machine=machine_info())


if __name__ == "__main__":
    main_guard(main)
