"""
Semi-supervised classification and style with an AAE
=====================================================

An :class:`~skae.AAEClassifier` fitted on digits of which only 10 % keep their label (the
others are ``-1``), beside an MLP that sees the labeled digits only. The AAE also separates
a digit's class from its style: one style code rendered in every class.
"""

# %%
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier

from skae import AAEClassifier
from skae.datasets import make_semi_supervised
from skae.plotting import plot_codes, plot_reconstructions, plot_samples, plot_training_curves

X, y = load_digits(return_X_y=True)
X = (X / 16.0).astype(np.float32)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, stratify=y,
                                                    random_state=0)
y_semi = make_semi_supervised(y_train, n_labeled=0.1, random_state=0)
labeled = y_semi != -1
print(f"{labeled.sum()} labeled training digits, {(~labeled).sum()} unlabeled")

# %%
# Fit the AAE on all training digits, and the MLP on the labeled ones.
aae = AAEClassifier(n_components=4, hidden_layer_sizes=(256, 256),
                    discriminator_hidden_sizes=(128,), loss="bce", max_epochs=100,
                    random_state=0).fit(X_train, y_semi)
mlp = MLPClassifier(hidden_layer_sizes=(256, 256), max_iter=500, random_state=0)
mlp.fit(X_train[labeled], y_train[labeled])
print(f"test accuracy: AAEClassifier {aae.score(X_test, y_test):.3f}, "
      f"MLP on the labeled rows {mlp.score(X_test, y_test):.3f}")

# %%
# Class and style: each row is one style code :math:`z \sim \mathcal N(0, I)`, decoded
# with each class in turn (``aae.sample(10, y=aae.classes_, style=z)``).
fig = plot_samples(aae, n_styles=6, random_state=0)

# %%
# Reconstructions from the predicted class and the inferred style.
fig = plot_reconstructions(aae, X_test, n_samples=10)

# %%
# The style codes of the test digits, coloured by digit: the style should carry little of
# the class (the discriminator pushes it towards :math:`\mathcal N(0, I)` for every class).
fig = plot_codes(aae, X_test, y_test)

# %%
# Every phase's loss per epoch: reconstruction, the discriminators, the encoder as
# generator, and the supervised cross-entropy on the labeled minibatches.
fig = plot_training_curves(aae)
