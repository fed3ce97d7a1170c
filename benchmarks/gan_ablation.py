"""GANClassifier ablation: the authors' training details, one at a time, on a learning curve.

Fits the GANClassifier (the benchmark's MNIST configuration) with ``--labels`` labels once per
variant, a documented parameter changed, and every ``--eval-every`` epochs scores the test set
twice: with the averaged discriminator that ``predict`` uses (``ema_decay``) and with the
discriminator's last weights. The Improved-GAN authors' code tests with averaged weights,
initializes its weight-normalized layers from the data with fixed hidden scales
(``data_init=True``), halves the unsupervised loss (``unsupervised_weight=0.5``) and puts
Adam's epsilon under the square root (about ``eps=1e-4`` in torch's Adam); one more variant
decays the learning rate linearly to 0 over the second half of the epochs.

The benchmark's MNIST GAN is the paper's MLP on the 28x28 images shifted at random
(``max_shift=2``, with its consistency loss; the same as the variant ``max_shift=2 (images,
MLP)``); ``max_shift=0 (rows of pixels)`` is the configuration before 2026-12-02, the
paper's. With ``backbone="auto"``, as the estimator does for images, the discriminator and the
generator are convolutional: ``max_shift=2 (images)`` is that GAN with the shifts,
``backbone='conv' (images)`` without them.

Each variant is one run, so two variants fit a 2-core machine side by side::

    python benchmarks/gan_ablation.py --data-dir ../shared/data/mnist --epochs 40 \\
        --eval-every 5 --variants default --threads 1
"""

import argparse
import time

import numpy as np
import torch
from _common import BenchmarkError, add_io_arguments, command_line, load_data, machine_info
from _common import add_ablation_arguments, main_guard, print_table, result_paths
from _common import selected_variants, settings_text, square_images, write_results
from skorch.callbacks import Callback

from skae.base import forward_in_batches
from skae.benchmark import make_model, takes_images
from skae.datasets import make_semi_supervised


class AdamEps4(torch.optim.Adam):
    """Adam with ``eps=1e-4``: about the authors' update ``m / sqrt(v + 1e-8)`` (their
    ``nn.adam_updates``), which damps the steps of parameters whose gradients are below about
    1e-4, where torch's ``m / (sqrt(v) + 1e-8)`` does not."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-4, weight_decay=0.0,
                 fused=None):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                         fused=fused)


#: ``(name, parameters)``
VARIANTS = [
    ("default", {}),
    ("data_init=True", {"data_init": True}),
    ("unsupervised_weight=0.5", {"unsupervised_weight": 0.5}),
    ("data_init=True, unsupervised_weight=0.5", {"data_init": True, "unsupervised_weight": 0.5}),
    ("Adam eps=1e-4", {"optimizer": AdamEps4}),
    ("lr decaying linearly to 0 over the second half", {"lr_schedule": "linear"}),
    # the benchmark's MNIST GAN shifts its images (make_model): this is the former one
    ("max_shift=0 (rows of pixels)", {"max_shift": 0.0}),
    # images: backbone "auto" is the convolutional discriminator and generator
    ("max_shift=2 (images)", {"max_shift": 2.0, "backbone": "auto"}),
    ("max_shift=2 (images, MLP)", {"max_shift": 2.0, "backbone": "mlp"}),
    ("backbone='conv' (images)", {"backbone": "conv", "max_shift": 0.0}),
]

COLUMNS = [
    ("variant", "variant"), ("epochs", "epochs"),
    ("test_error", "test error, averaged (%)", ".2f"),
    ("test_error_last", "test error, last weights (%)", ".2f"),
    ("fit_seconds", "fit time (s)", ".0f"),
]


def _classes(model, device, X):
    """The classes of the rows ``X`` by the averaged and by the last discriminator weights."""
    averaged, last = forward_in_batches(
        model, device, lambda m, x: (m.class_logits(x), m.discriminate(x)), X)
    return averaged.argmax(1), last.argmax(1)


def test_errors(model, device, X, y_index):
    """Test error (%) of the averaged and of the last discriminator weights, in one pass."""
    return tuple(100.0 * float(np.mean(pred != y_index)) for pred in _classes(model, device, X))


def disagreement(model, device, X):
    """The share (%) of the rows ``X`` that the averaged and the last weights class apart."""
    averaged, last = _classes(model, device, X)
    return 100.0 * float(np.mean(averaged != last))


class Curve(Callback):
    """Every ``every`` epochs, record the test error (%) of the averaged and of the last
    weights in the net's history (``test_error``, ``test_error_last``), and the share (%) of
    the training rows ``X_train`` on which the two disagree (``disagreement``): no labels
    needed, it rises when the last weights swing (see docs/benchmarks.rst)."""

    def __init__(self, X, y_index, every, X_train):
        self.X, self.y_index, self.every, self.X_train = X, y_index, every, X_train

    def on_epoch_end(self, net, **kwargs):
        epoch = len(net.history)
        if epoch % self.every:
            return
        averaged, last = test_errors(net.module_, net.device, self.X, self.y_index)
        apart = disagreement(net.module_, net.device, self.X_train)
        net.module_.train()
        net.history.record("test_error", averaged)
        net.history.record("test_error_last", last)
        net.history.record("disagreement", apart)
        print(f"  epoch {epoch}: averaged {averaged:.2f} %, last weights {last:.2f} %, "
              f"training rows apart {apart:.2f} %", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_io_arguments(parser, "results/gan_ablation")
    add_ablation_arguments(parser, "a GANClassifier", epochs=40, eval_every=5,
                           eval_help="score the test set every N epochs")
    parser.add_argument("--device", default="cpu", help="'cpu', 'cuda', 'cuda:1'")
    args = parser.parse_args()
    if args.eval_every <= 0:
        raise BenchmarkError("--eval-every must be positive")
    variants = selected_variants(VARIANTS, args.variants)

    X, y, X_test, y_test = load_data(args.dataset, args.data_dir, test=True)
    y_semi = make_semi_supervised(y, args.labels, random_state=args.seed)
    rows, notes = [], []
    for name, params in variants:
        clf = make_model("GANClassifier", dataset=args.dataset, device=args.device,
                         random_state=args.seed, max_epochs=args.epochs)
        classes = np.unique(y)  # every class has labeled rows: classes_ is this
        y_index = np.searchsorted(classes, y_test)
        clf.set_params(**{**dict(args.set), **params})
        images = takes_images(clf)
        X_fit, X_score = square_images(X, X_test) if images else (X, X_test)
        # cloned by fit: the curve is in history
        clf.set_params(callbacks=[Curve(X_score, y_index, args.eval_every, X_fit)])
        print(f"{name}:", flush=True)
        start = time.perf_counter()
        clf.fit(X_fit, y_semi)
        seconds = time.perf_counter() - start
        np.testing.assert_array_equal(clf.classes_, classes)
        error, error_last = test_errors(clf.net_.module_, clf.net_.device, X_score, y_index)
        rows.append({"variant": name, "epochs": args.epochs, "test_error": error,
                     "test_error_last": error_last, "fit_seconds": seconds})
        points = [(h["epoch"], h["test_error"], h["test_error_last"], h["disagreement"])
                  for h in clf.net_.history if "test_error" in h]
        notes.append(f"{name} ({clf._backbone()} discriminator on "
                     f"{'images' if images else 'rows of pixels'}): test error (%) averaged / "
                     "last weights after " + ", ".join(
            f"{e} epochs {a:.2f} / {b:.2f}" for e, a, b, _ in points)
                     + "; training rows the two class apart (%) after " + ", ".join(
            f"{e} epochs {d:.2f}" for e, _, _, d in points))
        guarded = [h for h in clf.net_.history if "average_held" in h]
        if guarded:  # ema_guard > 0
            held = [str(h["epoch"]) for h in guarded if h["average_held"]]
            notes[-1] += ("; ema_guard undid the average's updates of "
                          + (f"epochs {', '.join(held)}" if held else "no epoch"))
    print_table(rows, COLUMNS)
    dataset = "MNIST" if args.dataset == "mnist" else args.dataset
    notes.insert(0, f"GANClassifier as in skae.benchmark.make_model, {args.epochs} epochs on "
                 f"the {len(X)} training rows of {args.dataset} with {args.labels} labels "
                 f"(class-balanced draw, seed {args.seed}), on {args.device}; scored on the "
                 f"{len(X_test)} test rows, with the averaged discriminator (what predict "
                 "uses) and with its last weights")
    if args.set:
        notes[0] += "; for every variant " + settings_text(args.set)
    title = f"GANClassifier ablation, {dataset}, {args.labels} labels, {args.epochs} epochs"
    if args.variants:
        title += ": " + "; ".join(row["variant"] for row in rows)
    write_results(rows, COLUMNS, *result_paths(args.output), command_line(),
                  notes, title=title, machine=machine_info(args.device))


if __name__ == "__main__":
    main_guard(main)
