"""
AutoEncoder against PCA on the digits
=====================================

An :class:`~skae.AutoEncoder` and a :class:`~sklearn.decomposition.PCA` with the same
number of components, fitted on 8x8 digits without their labels. We compare their
reconstructions, their codes, and how well a classifier trained on a few labeled codes does.
"""

# %%
# The data: 1,797 digits, pixels scaled to [0, 1] (so ``loss="bce"`` applies).
import numpy as np
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

from skae import AutoEncoder
from skae.plotting import plot_codes, plot_reconstructions, plot_training_curves

X, y = load_digits(return_X_y=True)
X = (X / 16.0).astype(np.float32)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, stratify=y,
                                                    random_state=0)

# %%
# Fit both with 8 components. The autoencoder is an MLP 64-128-8-128-64.
pca = PCA(n_components=8).fit(X_train)
ae = AutoEncoder(n_components=8, hidden_layer_sizes=(128,), loss="bce", max_epochs=60,
                 batch_size=64, random_state=0).fit(X_train)


def mse(model):
    return float(np.mean((model.inverse_transform(model.transform(X_test)) - X_test) ** 2))


print(f"test reconstruction MSE: PCA {mse(pca):.4f}, AutoEncoder {mse(ae):.4f}")

# %%
# Inputs (top) and reconstructions (bottom) of test digits.
fig = plot_reconstructions(ae, X_test, n_samples=10)

# %%
fig = plot_reconstructions(pca, X_test, n_samples=10)

# %%
# The codes of the test digits, projected on their first two principal components and
# coloured by the digit (not used in training).
fig = plot_codes(ae, X_test, y_test)

# %%
# A logistic regression on the codes, fitted on 100 labeled training digits only.
rng = np.random.RandomState(0)
labeled = rng.choice(len(X_train), 100, replace=False)
for name, model in [("PCA", pca), ("AutoEncoder", ae)]:
    clf = LogisticRegression(max_iter=2000)
    clf.fit(model.transform(X_train[labeled]), y_train[labeled])
    print(f"{name:12s} codes + 100 labels: test accuracy "
          f"{clf.score(model.transform(X_test), y_test):.3f}")

# %%
# The reconstruction loss per epoch, from the net's history (``ae.net_.history``).
fig = plot_training_curves(ae)

# %%
# Anomaly scores: ``score_samples`` is the negative reconstruction error. Random noise images
# are unlike the training digits, and score lower.
noise = np.random.RandomState(1).uniform(size=X_test.shape).astype(np.float32)
print(f"mean score: test digits {ae.score_samples(X_test).mean():.3f}, "
      f"noise images {ae.score_samples(noise).mean():.3f}")
