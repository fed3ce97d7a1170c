"""Datasets: the MNIST loader and semi-supervised targets."""

import gzip
import hashlib
import numbers
import os
import shutil
import tempfile
import zlib
from pathlib import Path
from urllib.request import urlopen

import numpy as np
from sklearn.utils import Bunch, check_random_state
from sklearn.utils.multiclass import check_classification_targets

from .metrics import _as_1d_target, unlabeled_mask

__all__ = ["load_mnist", "make_semi_supervised"]

MNIST_URL = "https://ossci-datasets.s3.amazonaws.com/mnist/"

_MNIST_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}

# MD5 of the decompressed files: the archives themselves differ between
# mirrors (they are sometimes recompressed), their content does not.
_MNIST_MD5 = {
    "train-images-idx3-ubyte.gz": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte.gz": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte.gz": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte.gz": "27ae3e4e09519cfbb04c329615203637",
}

_IDX_IMAGES_MAGIC = 2051  # 0x00000803: unsigned bytes, 3 dimensions
_IDX_LABELS_MAGIC = 2049  # 0x00000801: unsigned bytes, 1 dimension

_MNIST_ENV_VAR = "SKAE_MNIST_DIR"

_MNIST_DESCR = """\
.. _mnist_dataset:

MNIST handwritten digits dataset
--------------------------------

**Data Set Characteristics:**

:Number of Instances: 60000 training and 10000 test images
:Number of Attributes: 784 (28x28 grey-level pixels)
:Number of Classes: 10 (the digits 0 to 9)
:Attribute Information: pixel intensities, 0 (background) to 255 (ink) as
    uint8, or divided by 255 into [0, 1] as float32
:Creator: Yann LeCun, Corinna Cortes and Christopher J.C. Burges

The MNIST database was built from NIST's Special Database 3 and Special
Database 1. The digits were size-normalized to fit a 20x20 box, preserving
their aspect ratio, and centered by their center of mass in a 28x28 image.
The 60000 training images come from about 250 writers; the 10000 test
images from other writers.

The data are read from the original IDX files
``train-images-idx3-ubyte.gz``, ``train-labels-idx1-ubyte.gz``,
``t10k-images-idx3-ubyte.gz`` and ``t10k-labels-idx1-ubyte.gz``.

.. rubric:: References

- Y. LeCun, L. Bottou, Y. Bengio and P. Haffner. "Gradient-based learning
  applied to document recognition". Proceedings of the IEEE, 86(11),
  2278-2324, 1998.
"""


def _default_mnist_folders():
    """Folders searched for the MNIST files when no path is given."""
    relative = Path("..", "shared", "data", "mnist")
    repository_root = Path(__file__).resolve().parent.parent
    return [Path.cwd() / relative, repository_root / relative]


def _resolve_mnist_folder(path, download):
    """Return the folder of the MNIST files, as a `Path`."""
    if path is not None:
        return Path(path).expanduser()
    env_folder = os.environ.get(_MNIST_ENV_VAR)
    if env_folder:
        return Path(env_folder).expanduser()
    candidates = _default_mnist_folders()
    for candidate in candidates:
        if candidate.is_dir():
            return candidate.resolve()
    searched = ", ".join(str(candidate) for candidate in candidates)
    message = (
        "Could not find the MNIST files: no path was given, the environment "
        f"variable {_MNIST_ENV_VAR} is not set, and none of the default folders "
        f"exists ({searched}). Pass the folder holding "
        f"{', '.join(_MNIST_FILES['train'] + _MNIST_FILES['test'])} as "
        f"load_mnist(path=...), or set {_MNIST_ENV_VAR} to it."
    )
    if download:
        message += " To download the files, pass the folder to save them in as path."
    raise FileNotFoundError(message)


def _md5_of_gzip_content(filepath):
    md5 = hashlib.md5(usedforsecurity=False)
    with gzip.open(filepath, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            md5.update(chunk)
    return md5.hexdigest()


def _download_mnist_file(folder, filename):
    """Download `filename` from `MNIST_URL` into `folder`, checking its content."""
    folder.mkdir(parents=True, exist_ok=True)
    url = MNIST_URL + filename
    # Write next to the destination then rename, so that an interrupted
    # download leaves no truncated file behind.
    with tempfile.NamedTemporaryFile(dir=folder, suffix=".part", delete=False) as tmp:
        tmp_path = Path(tmp.name)
        try:
            with urlopen(url, timeout=60) as response:
                shutil.copyfileobj(response, tmp)
        except BaseException:
            tmp.close()
            tmp_path.unlink(missing_ok=True)
            raise
    try:
        checksum = _md5_of_gzip_content(tmp_path)
    except (OSError, EOFError, zlib.error) as exc:
        tmp_path.unlink(missing_ok=True)
        raise OSError(f"{url} did not return a valid gzip file: {exc}") from exc
    expected = _MNIST_MD5[filename]
    if checksum != expected:
        tmp_path.unlink(missing_ok=True)
        raise OSError(
            f"{url} has an MD5 checksum of its content of {checksum} instead of "
            f"{expected}: the file may be corrupted."
        )
    os.replace(tmp_path, folder / filename)


def _read_idx(filepath, expected_magic, kind):
    """Read an IDX file of unsigned bytes, compressed with gzip.

    Returns the array of shape given by the header, dtype uint8.
    """
    try:
        with gzip.open(filepath, "rb") as f:
            raw = f.read()
    except (OSError, EOFError, zlib.error) as exc:
        raise ValueError(
            f"Could not read {filepath} as a gzip-compressed IDX {kind} file: {exc}"
        ) from exc
    n_dims = expected_magic & 0xFF
    header_size = 4 + 4 * n_dims
    if len(raw) < header_size:
        raise ValueError(
            f"{filepath} is not an IDX {kind} file: it holds {len(raw)} bytes, "
            f"fewer than the {header_size} bytes of the header."
        )
    magic = int.from_bytes(raw[:4], "big")
    if magic != expected_magic:
        raise ValueError(
            f"{filepath} is not an IDX {kind} file: its magic number is {magic}, "
            f"expected {expected_magic}. The file is corrupt, or is not the "
            f"{kind} file of the pair."
        )
    dims = np.frombuffer(raw, dtype=">u4", count=n_dims, offset=4)
    shape = tuple(int(d) for d in dims)
    n_values = int(np.prod(shape))
    if len(raw) - header_size != n_values:
        raise ValueError(
            f"{filepath} is corrupt: its header announces shape {shape}, that is "
            f"{n_values} bytes of data, but it holds {len(raw) - header_size}."
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header_size).reshape(shape)


def _check_mnist_files(folder, subsets, download):
    """Check that the files of `subsets` are in `folder`, or download them."""
    for subset in subsets:
        for filename in _MNIST_FILES[subset]:
            if (folder / filename).is_file():
                continue
            if download:
                _download_mnist_file(folder, filename)
                continue
            where = "" if folder.is_dir() else " (the folder does not exist)"
            raise FileNotFoundError(
                f"MNIST file {filename!r} not found in folder {folder}{where}. "
                f"Pass the folder holding the MNIST files as path, or "
                f"download=True to download them from {MNIST_URL}."
            )


def _load_mnist_subset(folder, subset, *, flatten, as_float):
    """Return the images and labels of the "train" or "test" subset."""
    images_file, labels_file = _MNIST_FILES[subset]
    images = _read_idx(folder / images_file, _IDX_IMAGES_MAGIC, "images")
    labels = _read_idx(folder / labels_file, _IDX_LABELS_MAGIC, "labels")
    if images.shape[0] != labels.shape[0]:
        raise ValueError(
            f"{folder / images_file} holds {images.shape[0]} images but "
            f"{folder / labels_file} holds {labels.shape[0]} labels."
        )
    if flatten:
        images = images.reshape(images.shape[0], int(np.prod(images.shape[1:])))
    if as_float:
        images = images.astype(np.float32)
        images /= 255
    else:
        # np.frombuffer returns a read-only view of the decompressed bytes.
        images = images.copy()
    return images, labels.astype(np.int64)


def load_mnist(
    path=None,
    *,
    subset="all",
    return_X_y=False,
    flatten=False,
    as_float=True,
    download=False,
):
    """Load the MNIST handwritten digits dataset (classification).

    Reads the original gzip-compressed IDX files of MNIST:

    =================   ==============
    Classes                         10
    Samples total                70000
    Training samples             60000
    Test samples                 10000
    Dimensionality          784, 28x28
    Features            0-255 or [0, 1]
    =================   ==============

    Nothing is cached: each call reads the files again.

    Parameters
    ----------
    path : str or path-like, default=None
        Folder holding ``train-images-idx3-ubyte.gz``,
        ``train-labels-idx1-ubyte.gz``, ``t10k-images-idx3-ubyte.gz`` and
        ``t10k-labels-idx1-ubyte.gz``. If None, the folder named by the
        environment variable ``SKAE_MNIST_DIR`` if set, else the first of
        ``../shared/data/mnist`` relative to the current directory and
        ``../shared/data/mnist`` relative to the folder holding the ``skae``
        package that exists.

    subset : {"train", "test", "all"}, default="all"
        The subset to load: the 60000 training images, the 10000 test
        images, or both.

    return_X_y : bool, default=False
        If True, return tuples of arrays instead of a
        :class:`~sklearn.utils.Bunch`. See below for more information about
        the returned objects.

    flatten : bool, default=False
        If True, the images have shape ``(n_samples, 784)``, else
        ``(n_samples, 28, 28)``.

    as_float : bool, default=True
        If True, the pixels are float32 in [0, 1], else uint8 in [0, 255].

    download : bool, default=False
        If True, download the files that are missing from the folder from
        ``https://ossci-datasets.s3.amazonaws.com/mnist/`` into it, checking
        their content against the known checksums. Files already there are
        never downloaded again. If False, raise a ``FileNotFoundError`` when
        a file is missing.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        Dictionary-like object, with the following attributes, if `subset` is
        "all":

        X_train : ndarray of shape (60000, 28, 28) or (60000, 784)
            The training images.
        y_train : ndarray of shape (60000,), dtype=int64
            The digits of the training images.
        X_test : ndarray of shape (10000, 28, 28) or (10000, 784)
            The test images.
        y_test : ndarray of shape (10000,), dtype=int64
            The digits of the test images.
        DESCR : str
            The full description of the dataset.

        and if `subset` is "train" or "test":

        data : ndarray of shape (n_samples, 28, 28) or (n_samples, 784)
            The images.
        target : ndarray of shape (n_samples,), dtype=int64
            The digits of the images.
        DESCR : str
            The full description of the dataset.

    (X_train, y_train, X_test, y_test) : tuple if `return_X_y` is True \
            and `subset` is "all"
        The arrays described above.

    (data, target) : tuple if `return_X_y` is True and `subset` is "train" \
            or "test"
        The arrays described above.

    Raises
    ------
    FileNotFoundError
        If the folder cannot be found, or a file is missing and `download`
        is False.

    ValueError
        If a file is not a valid gzip-compressed IDX file of the expected
        kind (wrong magic number, truncated data), or if the images and
        labels files of a subset hold different numbers of samples.

    See Also
    --------
    sklearn.datasets.load_digits : The 8x8 digits dataset, shipped with
        scikit-learn.
    make_semi_supervised : Hide the labels of most samples.

    Examples
    --------
    With the MNIST files in ``../shared/data/mnist``:

    >>> from skae.datasets import load_mnist
    >>> X_train, y_train, X_test, y_test = load_mnist(
    ...     return_X_y=True)  # doctest: +SKIP
    >>> X_train.shape, X_train.dtype, y_train[:5]  # doctest: +SKIP
    ((60000, 28, 28), dtype('float32'), array([5, 0, 4, 1, 9]))

    The IDX format is a big-endian header followed by the bytes of the
    array. Here, a tiny dataset of two 28x28 test images:

    >>> import gzip
    >>> import tempfile
    >>> from pathlib import Path
    >>> import numpy as np
    >>> def write_idx(filename, magic, array):
    ...     header = np.array([magic, *array.shape], dtype=">u4").tobytes()
    ...     with gzip.open(filename, "wb") as f:
    ...         f.write(header + array.tobytes())
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     images = np.full((2, 28, 28), 255, dtype=np.uint8)
    ...     labels = np.array([7, 2], dtype=np.uint8)
    ...     write_idx(Path(folder, "t10k-images-idx3-ubyte.gz"), 2051, images)
    ...     write_idx(Path(folder, "t10k-labels-idx1-ubyte.gz"), 2049, labels)
    ...     X, y = load_mnist(folder, subset="test", return_X_y=True, flatten=True)
    >>> X.shape, X.dtype, float(X.max())
    ((2, 784), dtype('float32'), 1.0)
    >>> y
    array([7, 2])
    """
    if subset not in ("train", "test", "all"):
        raise ValueError(
            f"subset must be one of 'train', 'test' or 'all'; got {subset!r}."
        )
    folder = _resolve_mnist_folder(path, download)
    _check_mnist_files(
        folder, ["train", "test"] if subset == "all" else [subset], download
    )
    kwargs = dict(flatten=flatten, as_float=as_float)

    if subset == "all":
        X_train, y_train = _load_mnist_subset(folder, "train", **kwargs)
        X_test, y_test = _load_mnist_subset(folder, "test", **kwargs)
        if return_X_y:
            return X_train, y_train, X_test, y_test
        return Bunch(
            X_train=X_train,
            y_train=y_train,
            X_test=X_test,
            y_test=y_test,
            DESCR=_MNIST_DESCR,
        )

    data, target = _load_mnist_subset(folder, subset, **kwargs)
    if return_X_y:
        return data, target
    return Bunch(data=data, target=target, DESCR=_MNIST_DESCR)


def _semi_supervised_dtype(dtype):
    """The dtype of the semi-supervised target, able to hold -1."""
    if dtype.kind in "if":
        return dtype
    if dtype.kind == "u":
        return np.dtype(f"int{min(2 * 8 * dtype.itemsize, 64)}")
    if dtype.kind == "b":
        # scikit-learn rejects object targets of booleans and -1.
        return np.dtype(np.int64)
    # Strings and anything else: -1 next to the labels.
    return np.dtype(object)


def make_semi_supervised(y, n_labeled, *, random_state=None):
    """Hide the labels of all but a class-balanced random draw of samples.

    Returns a copy of `y` in which the samples that are not drawn are marked
    unlabeled with ``-1``, the convention of :mod:`sklearn.semi_supervised`.
    The draw is balanced: each class keeps ``n_labeled // n_classes`` labeled
    samples, and the ``n_labeled % n_classes`` remaining labeled samples go to
    as many distinct classes, drawn at random among the classes that have
    more samples than their share.

    Parameters
    ----------
    y : array-like of shape (n_samples,)
        Target values (class labels). Samples already marked ``-1`` stay
        unlabeled and are never drawn.

    n_labeled : int or float
        If int, the number of samples that keep their label, at least the
        number of classes. If float, in (0, 1), the fraction of the labeled
        samples of `y` that keep their label (rounded down).

    random_state : int, RandomState instance or None, default=None
        Controls the random draw. Pass an int for reproducible output across
        multiple function calls. See :term:`Glossary <random_state>`.

    Returns
    -------
    y_semi : ndarray of shape (n_samples,)
        The semi-supervised target. Integer and floating point targets keep
        their dtype (unsigned integers become the next larger signed integer
        type, to hold ``-1``). Boolean targets become int64 (``False`` is 0,
        ``True`` is 1). String and object targets give an object array holding
        the labels and ``-1``, as
        :class:`~sklearn.semi_supervised.SelfTrainingClassifier` expects.

    Raises
    ------
    ValueError
        If `n_labeled` is smaller than the number of classes or larger than
        the number of labeled samples, or if a class has too few samples for
        its share of the labeled samples.

    See Also
    --------
    skae.metrics.unlabeled_mask : Mask of the unlabeled samples.
    skae.model_selection.SemiSupervisedStratifiedKFold : Cross-validation for
        semi-supervised targets.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import load_digits
    >>> from skae.datasets import make_semi_supervised
    >>> X, y = load_digits(return_X_y=True)
    >>> y_semi = make_semi_supervised(y, 50, random_state=0)
    >>> y_semi.dtype == y.dtype
    True
    >>> int((y_semi == -1).sum())
    1747
    >>> np.bincount(y_semi[y_semi != -1])
    array([5, 5, 5, 5, 5, 5, 5, 5, 5, 5])
    >>> make_semi_supervised(["cat", "dog", "dog", "cat"], 2, random_state=0)
    array([-1, 'dog', -1, 'cat'], dtype=object)
    """
    y = _as_1d_target(y)
    candidates = np.flatnonzero(~unlabeled_mask(y))
    y_labeled = y[candidates]
    n_candidates = candidates.shape[0]
    if n_candidates == 0:
        raise ValueError("y has no labeled sample: every target is -1.")
    if y_labeled.dtype == object:
        # Once the -1 are left out, let NumPy infer the dtype of the labels:
        # type_of_target rejects objects other than strings.
        y_labeled = np.asarray(y_labeled.tolist())
    check_classification_targets(y_labeled)

    if isinstance(n_labeled, (bool, np.bool_)) or not isinstance(
        n_labeled, numbers.Real
    ):
        raise TypeError(
            f"n_labeled must be an int or a float in (0, 1); got {n_labeled!r}."
        )
    if not isinstance(n_labeled, numbers.Integral):
        if not 0 < n_labeled < 1:
            raise ValueError(
                "n_labeled must be an int, or a float in the open interval (0, 1) "
                f"for a fraction of the samples; got {n_labeled!r}."
            )
        n_labeled = int(np.floor(n_labeled * n_candidates))
    n_labeled = int(n_labeled)

    classes, y_encoded = np.unique(y_labeled, return_inverse=True)
    y_encoded = y_encoded.reshape(-1)
    n_classes = classes.shape[0]
    counts = np.bincount(y_encoded, minlength=n_classes)
    if n_labeled < n_classes:
        raise ValueError(
            f"n_labeled={n_labeled} is smaller than the number of classes "
            f"{n_classes}: a class-balanced draw keeps at least one sample of "
            "each class."
        )
    if n_labeled > n_candidates:
        raise ValueError(
            f"n_labeled={n_labeled} is larger than the number of labeled samples "
            f"{n_candidates}."
        )

    share, remainder = divmod(n_labeled, n_classes)
    short = np.flatnonzero(counts < share)
    if short.size:
        k = short[0]
        label = classes[k].item() if isinstance(classes[k], np.generic) else classes[k]
        raise ValueError(
            f"The class {label!r} has only {counts[k]} samples, fewer than its "
            f"share of {share} labeled samples (n_labeled={n_labeled}, "
            f"{n_classes} classes)."
        )
    rng = check_random_state(random_state)
    shares = np.full(n_classes, share)
    if remainder:
        eligible = np.flatnonzero(counts > share)
        if eligible.size < remainder:
            raise ValueError(
                f"Cannot spread the {remainder} remaining labeled samples over "
                f"distinct classes: only {eligible.size} classes have more than "
                f"{share} samples (n_labeled={n_labeled}, {n_classes} classes)."
            )
        shares[rng.choice(eligible, size=remainder, replace=False)] += 1

    keep = np.concatenate(
        [
            rng.choice(np.flatnonzero(y_encoded == k), size=shares[k], replace=False)
            for k in range(n_classes)
        ]
    )
    y_semi = y.astype(_semi_supervised_dtype(y.dtype), copy=True)
    labeled = np.zeros(y.shape[0], dtype=bool)
    labeled[candidates[keep]] = True
    y_semi[~labeled] = -1
    return y_semi
