"""skae: scikit-learn compatible autoencoders and semi-supervised deep classifiers.

Transformers: :class:`AutoEncoder`, :class:`VAE`. Semi-supervised classifiers (``y == -1``
marks unlabeled rows, as in :mod:`sklearn.semi_supervised`): :class:`AAEClassifier`,
:class:`GANClassifier`, :class:`AutoEncoderClassifier`.
"""

from ._training import DivergenceError
from .aae import AAEClassifier
from .autoencoder import AutoEncoder
from .gan import GANClassifier
from .pretrain import AutoEncoderClassifier
from .vae import VAE

__version__ = "0.1.0.dev0"

__all__ = [
    "AAEClassifier",
    "AutoEncoder",
    "AutoEncoderClassifier",
    "DivergenceError",
    "GANClassifier",
    "VAE",
    "__version__",
]
