"""
Generating digits with a VAE
============================

A :class:`~skae.VAE` with a 2-D latent space: its codes give a map of the digits, and
decoding draws from the prior :math:`\\mathcal N(0, I)` generates new ones.
"""

# %%
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits

from skae import VAE
from skae.plotting import plot_codes, plot_samples, plot_training_curves

X, y = load_digits(return_X_y=True)
X = (X / 16.0).astype(np.float32)

vae = VAE(n_components=2, hidden_layer_sizes=(256, 128), loss="bce", max_epochs=100,
          batch_size=64, random_state=0).fit(X)

# %%
# The posterior means of all digits, coloured by digit: the VAE was not told the labels.
fig = plot_codes(vae, X, y)

# %%
# Samples: decoded draws from the prior.
fig = plot_samples(vae, n_samples=36, random_state=0)

# %%
# The latent space as a grid: decode the codes of a regular grid over [-2, 2]^2.
side = 10
grid = np.linspace(-2, 2, side)
codes = np.array([[a, b] for b in grid[::-1] for a in grid], dtype=np.float32)
images = vae.inverse_transform(codes).reshape(side, side, 8, 8)
fig, ax = plt.subplots(figsize=(6, 6))
ax.imshow(images.transpose(0, 2, 1, 3).reshape(side * 8, side * 8), cmap="gray_r")
ax.set_axis_off()
ax.set_title("decoded grid of the 2-D latent space")

# %%
# The negative ELBO per epoch.
fig = plot_training_curves(vae)
