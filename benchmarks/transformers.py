"""skae's AutoEncoder and VAE against PCA, as transformers, on MNIST.

For each model and code size: fit on the training rows, then report

- the reconstruction MSE of the test images (``inverse_transform(transform(X_test))``; for the
  VAE the decoded posterior mean), per pixel, pixels in [0, 1];
- the test accuracy of a LogisticRegression (on standardized codes) and of a 5-nearest-neighbour
  classifier (on the raw codes), both trained on the codes of the training rows.

A ``pixels`` row gives the two classifiers on the raw pixels, for reference.

Example::

    python benchmarks/transformers.py --rows 20000 --epochs 10 --n-components 2 8 32 \\
        --output docs/benchmarks/transformers_cpu
"""

import argparse
import sys
import time
import warnings

import numpy as np
import torch
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from _common import (
    BenchmarkError,
    add_io_arguments,
    command_line,
    load_data,
    machine_info,
    main_guard,
    print_table,
    result_paths,
    write_results,
)

MODELS = ("pca", "ae", "vae", "ae-conv", "vae-conv")


def make_model(name, n_components, args):
    if name == "pca":
        return PCA(n_components=n_components, random_state=args.random_state)
    from skae import VAE, AutoEncoder

    backbone = "conv" if name.endswith("-conv") else "mlp"
    common = dict(
        backbone=backbone, max_epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
        device=args.device, random_state=args.random_state,
    )
    if name.startswith("vae"):
        return VAE(n_components, loss=args.vae_loss, **common)
    return AutoEncoder(n_components, loss=args.ae_loss, **common)


def classifier_scores(codes_train, y_train, codes_test, y_test, args):
    """``(logreg accuracy, knn accuracy, seconds)`` on the codes."""
    start = time.perf_counter()
    logreg = make_pipeline(StandardScaler(), LogisticRegression(max_iter=args.max_iter))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        logreg.fit(codes_train, y_train)
    knn = KNeighborsClassifier(n_neighbors=5).fit(codes_train, y_train)
    scores = logreg.score(codes_test, y_test), knn.score(codes_test, y_test)
    return (*scores, time.perf_counter() - start)


def run_one(name, n_components, data, args):
    X_train, y_train, X_test, y_test = data
    if name.endswith("-conv"):  # the convolutional backbone takes (n, H, W) images
        X_fit, X_eval = (X.reshape(-1, *args.image_shape) for X in (X_train, X_test))
    else:
        X_fit, X_eval = X_train, X_test
    model = make_model(name, n_components, args)
    start = time.perf_counter()
    model.fit(X_fit)
    fit_s = time.perf_counter() - start
    codes_train = model.transform(X_fit)
    codes_test = model.transform(X_eval)
    recon = model.inverse_transform(codes_test).reshape(len(X_test), -1)
    mse = float(np.mean((recon - X_test) ** 2))
    logreg, knn, clf_s = classifier_scores(codes_train, y_train, codes_test, y_test, args)
    row = {
        "model": name,
        "n_components": n_components,
        "test_mse": mse,
        "logreg_acc": logreg,
        "knn_acc": knn,
        "fit_s": fit_s,
        "clf_s": clf_s,
    }
    if hasattr(model, "net_"):
        row["epochs"] = model.n_iter_
        row["train_loss"] = float(model.net_.history[-1, model.net_.module_.phases[0] + "_loss"])
    return row


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description="Compare skae's AutoEncoder and VAE with PCA as MNIST transformers: test "
        "reconstruction MSE, LogisticRegression and 5-NN accuracy on the codes.",
    )
    add_io_arguments(parser, "results/transformers_<device>")
    parser.add_argument("--rows", type=int, default=None,
                        help="training rows used to fit the transformers and the classifiers "
                        "(default: all)")
    parser.add_argument("--models", nargs="+", choices=MODELS, default=["pca", "ae", "vae"],
                        help="models to compare (default: pca ae vae; the -conv variants use the "
                        "convolutional backbone)")
    parser.add_argument("--n-components", type=int, nargs="+", default=[2, 8, 32],
                        help="code sizes (default: 2 8 32)")
    parser.add_argument("--epochs", type=int, default=20,
                        help="epochs of the autoencoders (default: 20)")
    parser.add_argument("--batch-size", type=int, default=128, help="batch size (default: 128)")
    parser.add_argument("--lr", type=float, default=1e-3, help="learning rate (default: 1e-3)")
    parser.add_argument("--ae-loss", choices=("mse", "bce"), default="mse",
                        help="AutoEncoder loss (default: mse)")
    parser.add_argument("--vae-loss", choices=("mse", "bce"), default="bce",
                        help="VAE likelihood (default: bce, Bernoulli pixels)")
    parser.add_argument("--pixels", action=argparse.BooleanOptionalAction, default=True,
                        help="also score the classifiers on the raw pixels (default: yes)")
    parser.add_argument("--max-iter", type=int, default=500,
                        help="LogisticRegression max_iter (default: 500)")
    parser.add_argument("--device", default="cpu", help="torch device: cpu or cuda (default: cpu)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch and BLAS (numpy, scikit-learn) threads (default: 1)")
    parser.add_argument("--seed", "--random-state", dest="random_state", type=int, default=0,
                        help="seed of the models (default: 0)")
    args = parser.parse_args(argv)
    for name in ("epochs", "batch_size", "threads", "max_iter"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.rows is not None and args.rows < 10:
        parser.error("--rows must be at least 10")
    if min(args.n_components) < 1:
        parser.error("--n-components must be at least 1")
    return args


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    with threadpool_limits(args.threads):
        run(args)


def run(args):
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise BenchmarkError("--device cuda but CUDA is not available on this machine")
    X_train, y_train, X_test, y_test = load_data(args.dataset, args.data_dir, rows=args.rows,
                                                 test=True)
    side = int(round(np.sqrt(X_train.shape[1])))
    args.image_shape = (side, side)
    data = (X_train, y_train, X_test, y_test)
    print(f"{args.dataset}: fit on {len(X_train)} training rows, evaluate on {len(X_test)} test "
          f"rows; {args.epochs} epochs; device {args.device}; {torch.get_num_threads()} "
          "thread(s)", flush=True)

    rows = []
    wall_start = time.perf_counter()
    if args.pixels:
        logreg, knn, clf_s = classifier_scores(X_train, y_train, X_test, y_test, args)
        rows.append({"model": "pixels", "n_components": X_train.shape[1], "test_mse": 0.0,
                     "logreg_acc": logreg, "knn_acc": knn, "clf_s": clf_s})
        print(f"  pixels: logreg {logreg:.4f}, 5-NN {knn:.4f} ({clf_s:.1f} s)", flush=True)
    for n_components in args.n_components:
        for name in args.models:
            row = run_one(name, n_components, data, args)
            rows.append(row)
            print(f"  {name:<8} k={n_components:<3} test MSE {row['test_mse']:.5f}, "
                  f"logreg {row['logreg_acc']:.4f}, 5-NN {row['knn_acc']:.4f} "
                  f"(fit {row['fit_s']:.1f} s, classifiers {row['clf_s']:.1f} s)", flush=True)
    wall = time.perf_counter() - wall_start
    rows.sort(key=lambda r: (r["model"] != "pixels", r["n_components"], MODELS.index(r["model"])
                             if r["model"] in MODELS else -1))

    columns = [
        ("model", "model"), ("n_components", "code size"),
        ("test_mse", "test MSE", ".5f"), ("logreg_acc", "logreg acc", ".4f"),
        ("knn_acc", "5-NN acc", ".4f"), ("fit_s", "fit s", ".1f"),
        ("clf_s", "classifiers s", ".1f"),
    ]
    print()
    print_table(rows, columns)
    print(f"\ntotal: {wall:.0f} s wall")

    names = {"ae": "AutoEncoder (MLP)", "vae": "VAE (MLP)", "ae-conv": "AutoEncoder (conv)",
             "vae-conv": "VAE (conv)", "pca": "PCA"}
    notes = [
        f"Data: {args.dataset}; transformers and classifiers fit on the first {len(X_train)} "
        f"training rows, scored on the {len(X_test)} test rows; pixels in [0, 1].",
        "Models: " + ", ".join(names[m] for m in args.models) + f". Autoencoders: skae defaults "
        "(MLP 256-128 / conv 32-64 channels, ReLU, Adam), "
        f"{args.epochs} epochs, batch {args.batch_size}, lr {args.lr}, AutoEncoder loss "
        f"{args.ae_loss}, VAE likelihood {args.vae_loss}, random_state {args.random_state}; "
        f"device {args.device}, {torch.get_num_threads()} torch and BLAS thread(s).",
        "`test MSE`: mean squared error per pixel of `inverse_transform(transform(X_test))` "
        "(VAE: the decoded posterior mean). `logreg acc`: StandardScaler + "
        f"LogisticRegression(max_iter={args.max_iter}) on the codes; `5-NN acc`: "
        "KNeighborsClassifier(5) on the raw codes. `pixels`: the classifiers on the raw pixels.",
        "`fit s`: the transformer's fit; `classifiers s`: fitting and scoring both classifiers.",
        f"The whole run took {wall:.0f} s wall.",
    ]
    path_md, path_json = result_paths(args.output.replace("<device>", args.device))
    config = {k: v for k, v in vars(args).items() if k != "image_shape"}
    write_results(
        rows, columns, path_md, path_json, command_line(), notes,
        title="skae transformers against PCA", machine=machine_info(args.device),
        extra={"config": {**config, "rows": len(X_train)}, "wall_s": wall},
    )
    print(f"wrote {path_md} and {path_json}")


if __name__ == "__main__":
    sys.exit(main_guard(main))
