"""
Semi-supervised classification with a GAN
=========================================

A :class:`~skae.GANClassifier` (Salimans et al., 2016) on digits with 10 % of the labels:
its discriminator classifies the labeled digits and tells real digits, labeled or not,
from the generator's. It trains in chunks of 10 epochs (``warm_start=True``: each ``fit``
goes on from the last), scored on held-out digits after each.
"""

# %%
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from skae import GANClassifier
from skae.datasets import make_semi_supervised
from skae.plotting import plot_samples, plot_training_curves

X, y = load_digits(return_X_y=True)
X = (X / 16.0).astype(np.float32)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, stratify=y,
                                                    random_state=0)
y_semi = make_semi_supervised(y_train, n_labeled=0.1, random_state=0)

gan = GANClassifier(hidden_layer_sizes=(256, 128), generator_hidden_sizes=(128,),
                    max_epochs=10, warm_start=True, random_state=0)
accuracy = []
for chunk in range(6):  # 60 epochs in all
    gan.fit(X_train, y_semi)
    accuracy.append(gan.score(X_test, y_test))
print(f"test accuracy with {(y_semi != -1).sum()} labels after {gan.n_iter_} epochs: "
      f"{accuracy[-1]:.3f}")

# %%
# Test accuracy after each chunk of training.
import matplotlib.pyplot as plt

fig, ax = plt.subplots(figsize=(5, 3))
ax.plot(np.arange(1, 7) * 10, accuracy, marker="o")
ax.set(xlabel="epochs", ylabel="test accuracy", title="GANClassifier on digits, 10 % labels")
fig.tight_layout()

# %%
# The discriminator's and the generator's losses per epoch.
fig = plot_training_curves(gan)

# %%
# The generator's samples. Feature matching trains the generator to help the classifier,
# not to draw convincing digits, and it shows.
fig = plot_samples(gan, n_samples=36, random_state=0)
