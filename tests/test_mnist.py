"""End to end on the real MNIST files (``../shared/data/mnist`` or ``SKAE_MNIST_DIR``).

Marked slow (about four minutes on one CPU thread): ``python3 -m pytest tests -m slow``. Skipped
when the files are absent. Small subsets and few epochs: these check that the models learn
what they should from real data, not the benchmark numbers (see ``benchmarks/``).
"""

import numpy as np
import pytest
from sklearn.decomposition import PCA
from sklearn.neural_network import MLPClassifier

from skae import AutoEncoder, GANClassifier
from skae.datasets import load_mnist, make_semi_supervised

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def mnist(mnist_dir):
    return load_mnist(mnist_dir, return_X_y=True, flatten=True)


@pytest.fixture(scope="module")
def subset(mnist):
    X_train, y_train, X_test, y_test = mnist
    return X_train[:10000], X_test[:2000]


def test_load_mnist_reads_the_original_files(mnist):
    X_train, y_train, X_test, y_test = mnist
    assert X_train.shape == (60000, 784) and X_test.shape == (10000, 784)
    assert X_train.dtype == np.float32 and X_train.min() == 0.0 and X_train.max() == 1.0
    assert np.bincount(y_train).tolist()[:2] == [5923, 6742]  # the published class counts
    assert np.bincount(y_test).tolist()[:2] == [980, 1135]


def test_autoencoder_reconstructs_better_than_pca(subset):
    X, X_test = subset
    ae = AutoEncoder(n_components=8, max_epochs=5, random_state=0).fit(X)
    pca = PCA(n_components=8).fit(X)
    ae_mse = np.mean((ae.inverse_transform(ae.transform(X_test)) - X_test) ** 2)
    pca_mse = np.mean((pca.inverse_transform(pca.transform(X_test)) - X_test) ** 2)
    assert ae_mse < 0.9 * pca_mse


def test_gan_classifier_learns_from_the_unlabeled_rows(mnist):
    """100 labels among the 60,000 training rows, 2 epochs: the GAN beats an MLP fitted on
    the 100 labeled rows by far (measured on 2,000 test images: about 17 % against 31 %)."""
    X, y, X_test, y_test = mnist
    X_test, y_test = X_test[:2000], y_test[:2000]
    y_semi = make_semi_supervised(y, 100, random_state=0)
    labeled = y_semi != -1
    mlp = MLPClassifier(hidden_layer_sizes=(256,), max_iter=1000, random_state=0)
    mlp_error = 1 - mlp.fit(X[labeled], y_semi[labeled]).score(X_test, y_test)
    gan = GANClassifier(max_epochs=2, random_state=0).fit(X, y_semi)
    gan_error = 1 - gan.score(X_test, y_test)
    assert gan_error < mlp_error - 0.05, (gan_error, mlp_error)
