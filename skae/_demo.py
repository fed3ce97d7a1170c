"""``python -m skae demo``: skae's models beside scikit-learn baselines on the digits data.

Runs with no download and no GPU, on scikit-learn's embedded 8x8 digits (1,797 images):
75 % to fit on, of which 10 % keep their label (the rest ``-1``), and 25 % to test on.

- transformers (AutoEncoder, VAE, against PCA), fitted on all training rows without labels:
  the test reconstruction error, and the test accuracy of a logistic regression fitted on the
  codes of the labeled rows;
- classifiers: AAEClassifier on all rows (semi-supervised) against LabelSpreading and
  SelfTrainingClassifier (semi-supervised) and an MLPClassifier on the labeled rows only.

Every row of the table uses the same labeled rows, so its accuracy column compares ways of
using few labels plus many unlabeled rows. Figures go to the output folder.
"""

import sys
import time
import warnings
from pathlib import Path

import numpy as np
from skorch.callbacks import Callback

__all__ = ["run_demo", "format_table"]

#: epochs of each skae model in the demo (measured: ~50 s in all on one 2-core CPU thread)
DEMO_EPOCHS = {"AutoEncoder": 60, "VAE": 100, "AAEClassifier": 100}


class EpochProgress(Callback):
    """A progress bar over epochs (skorch's ``ProgressBar`` counts the batches of one epoch;
    the demo's epochs last milliseconds, so one bar per fit is what is readable)."""

    def __init__(self, name, total, file=None):
        self.name = name
        self.total = total
        self.file = file

    def on_train_begin(self, net, **kwargs):
        from tqdm.auto import tqdm

        self.bar_ = tqdm(total=self.total, desc=f"  {self.name}", unit="epoch",
                         file=self.file or sys.stderr, leave=True, dynamic_ncols=True)

    def on_epoch_end(self, net, **kwargs):
        row = net.history[-1]
        losses = {k[:-5]: f"{v:.3g}" for k, v in row.items()
                  if k.endswith("_loss") and k != "train_loss" and not k.endswith("best")}
        self.bar_.set_postfix(losses, refresh=False)
        self.bar_.update(1)

    def on_train_end(self, net, **kwargs):
        self.bar_.close()
        self.bar_ = None


def load_demo_data(seed=0, labeled=0.1):
    """``(X_train, y_train, y_semi, X_test, y_test)``: digits in [0, 1], float32."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    from .datasets import make_semi_supervised

    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, stratify=y, random_state=seed
    )
    y_semi = make_semi_supervised(y_train, n_labeled=labeled, random_state=seed)
    return X_train, y_train, y_semi, X_test, y_test


def _models(epochs, seed, device, callbacks):
    from sklearn.decomposition import PCA

    from . import AAEClassifier, AutoEncoder, VAE

    def ep(name):
        return DEMO_EPOCHS[name] if epochs is None else epochs

    return {
        "PCA": PCA(n_components=8, random_state=seed),
        "AutoEncoder": AutoEncoder(
            n_components=8, hidden_layer_sizes=(128,), loss="bce", max_epochs=ep("AutoEncoder"),
            batch_size=64, device=device, random_state=seed, callbacks=callbacks("AutoEncoder"),
        ),
        "VAE": VAE(
            n_components=8, hidden_layer_sizes=(256, 128), loss="bce", max_epochs=ep("VAE"),
            batch_size=64, device=device, random_state=seed, callbacks=callbacks("VAE"),
        ),
        "AAEClassifier": AAEClassifier(
            n_components=4, hidden_layer_sizes=(256, 256), discriminator_hidden_sizes=(128,),
            loss="bce", max_epochs=ep("AAEClassifier"), device=device, random_state=seed,
            callbacks=callbacks("AAEClassifier"),
        ),
    }


def _baselines(seed):
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.neural_network import MLPClassifier
    from sklearn.semi_supervised import LabelSpreading, SelfTrainingClassifier
    from sklearn.svm import SVC

    return {
        "LabelSpreading": LabelSpreading(),
        "SelfTrainingClassifier(SVC)": SelfTrainingClassifier(
            CalibratedClassifierCV(SVC(), ensemble=False)
        ),
        "MLPClassifier": MLPClassifier(
            hidden_layer_sizes=(256, 256), max_iter=200, random_state=seed
        ),
    }


def format_table(rows):
    """The demo's rows as an aligned text table."""
    columns = [
        ("model", "model", None),
        ("code", "code", None),
        ("recon_mse", "recon. MSE", ".4f"),
        ("accuracy", "accuracy", ".3f"),
        ("fit_s", "fit (s)", ".1f"),
    ]
    header = [title for _, title, _ in columns]
    body = [
        ["" if row.get(key) is None else (format(row[key], fmt) if fmt else str(row[key]))
         for key, _, fmt in columns]
        for row in rows
    ]
    widths = [max(len(c) for c in col) for col in zip(header, *body)]
    right = [fmt is not None for _, _, fmt in columns]

    def line(cells):
        return "  ".join(c.rjust(w) if r else c.ljust(w)
                         for c, w, r in zip(cells, widths, right)).rstrip()

    return "\n".join([line(header), "  ".join("-" * w for w in widths), *map(line, body)])


def _save(fig, folder, name, written):
    import matplotlib.pyplot as plt

    path = folder / name
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    written.append(path)


def run_demo(output="skae_demo_output", *, epochs=None, seed=0, device="cpu", quiet=False,
             labeled=0.1, file=None):
    """Fit the demo's models, print the table, write the figures; returns the table's rows.

    Parameters
    ----------
    output : str or path-like, default="skae_demo_output"
        Folder for the figures (created if needed).
    epochs : int, default=None
        Epochs of every skae model; None uses :data:`DEMO_EPOCHS`.
    seed : int, default=0
        Seeds the split, the labeled draw and every model.
    device : str, default="cpu"
        Device of the skae models.
    quiet : bool, default=False
        No progress bars and no messages; the table is still printed.
    labeled : float or int, default=0.1
        Fraction (or number) of training rows that keep their label.
    file : file-like, default=None
        Where to print (None: standard output).
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from . import plotting

    out = file or sys.stdout

    def say(message):
        if not quiet:
            print(message, file=out, flush=True)

    X_train, y_train, y_semi, X_test, y_test = load_demo_data(seed, labeled)
    lab = y_semi != -1
    say(f"skae demo: digits, {len(X_train)} training rows ({lab.sum()} labeled, the rest -1), "
        f"{len(X_test)} test rows")

    def callbacks(name):
        if quiet:
            return None
        return [EpochProgress(name, DEMO_EPOCHS[name] if epochs is None else epochs)]

    models = _models(epochs, seed, device, callbacks)
    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for name in ("PCA", "AutoEncoder", "VAE"):
            model = models[name]
            say(f"fitting {name} on all training rows (no labels)")
            start = time.perf_counter()
            model.fit(X_train)
            fit_s = time.perf_counter() - start
            recon = model.inverse_transform(model.transform(X_test))
            probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
            probe.fit(model.transform(X_train[lab]), y_train[lab])
            rows.append({
                "model": name,
                "code": f"{model.n_components}-D",
                "recon_mse": float(np.mean((recon - X_test) ** 2)),
                "accuracy": probe.score(model.transform(X_test), y_test), "fit_s": fit_s,
            })
        for name, model in _baselines(seed).items():
            supervised_only = name.startswith("MLP")
            say(f"fitting {name}")
            start = time.perf_counter()
            if supervised_only:
                model.fit(X_train[lab], y_train[lab])
            else:
                model.fit(X_train, y_semi)
            rows.append({
                "model": f"{name} (labeled only)" if supervised_only else name,
                "accuracy": model.score(X_test, y_test), "fit_s": time.perf_counter() - start,
            })
        aae = models["AAEClassifier"]
        say("fitting AAEClassifier on all rows (semi-supervised)")
        start = time.perf_counter()
        aae.fit(X_train, y_semi)
        fit_s = time.perf_counter() - start
        recon = aae.inverse_transform(aae.transform(X_test), y=aae.predict(X_test))
        rows.append({
            "model": "AAEClassifier",
            "code": f"class + {aae.n_components}-D style",
            "recon_mse": float(np.mean((recon - X_test) ** 2)),
            "accuracy": aae.score(X_test, y_test), "fit_s": fit_s,
        })

    print(file=out)
    print(f"Digits: {lab.sum()} labeled of {len(X_train)} training rows; reconstruction "
          f"error and accuracy\non the {len(X_test)} test rows. PCA, AutoEncoder and VAE fit "
          "without labels; their accuracy\nis a logistic regression's on the codes of the "
          "labeled rows. The MLP sees the labeled\nrows only, the other classifiers all "
          "rows.", file=out)
    print(format_table(rows), file=out)
    print(file=out, flush=True)

    folder = Path(output)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    ae, vae = models["AutoEncoder"], models["VAE"]
    _save(plotting.plot_reconstructions(ae, X_test), folder, "reconstructions_autoencoder.png",
          written)
    _save(plotting.plot_reconstructions(vae, X_test), folder, "reconstructions_vae.png", written)
    _save(plotting.plot_samples(vae, n_samples=36, random_state=seed), folder,
          "samples_vae.png", written)
    _save(plotting.plot_samples(aae, n_styles=6, random_state=seed), folder,
          "samples_aae_per_class.png", written)
    _save(plotting.plot_codes(ae, X_test, y_test), folder, "codes_autoencoder.png", written)
    _save(plotting.plot_codes(aae, X_test, y_test), folder, "codes_aae_style.png", written)
    _save(plotting.plot_training_curves(vae), folder, "training_curves_vae.png", written)
    _save(plotting.plot_training_curves(aae), folder, "training_curves_aae.png", written)
    print(f"Figures written to {folder.resolve()}/:", file=out)
    for path in written:
        print(f"  {path.name}", file=out)
    return rows
