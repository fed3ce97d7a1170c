import gzip
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_array_equal
from sklearn.datasets import load_digits
from sklearn.utils import Bunch

import skae.datasets
from skae.datasets import load_mnist, make_semi_supervised

MNIST_FILES = [
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
]


def _write_idx(filename, magic, array, shape=None):
    shape = array.shape if shape is None else shape
    header = np.array([magic, *shape], dtype=">u4").tobytes()
    with gzip.open(filename, "wb") as f:
        f.write(header + np.ascontiguousarray(array, dtype=np.uint8).tobytes())


def _write_tiny_mnist(folder, n_train=5, n_test=3, seed=0):
    """Write a tiny MNIST in IDX format; return its arrays."""
    rng = np.random.RandomState(seed)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = rng.randint(0, 256, size=(n, 28, 28)).astype(np.uint8)
        labels = rng.randint(0, 10, size=n).astype(np.uint8)
        images[0, 0, 0], images[0, 0, 1] = 0, 255
        _write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", 2051, images)
        _write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", 2049, labels)
        arrays[prefix] = images, labels
    return arrays


@pytest.fixture
def tiny_mnist(tmp_path):
    folder = tmp_path / "mnist"
    return folder, _write_tiny_mnist(folder)


@pytest.fixture
def no_network(monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("load_mnist tried to download")

    monkeypatch.setattr(skae.datasets, "urlopen", fail)


def test_load_mnist_all_bunch(tiny_mnist, no_network):
    folder, arrays = tiny_mnist
    data = load_mnist(folder)
    assert isinstance(data, Bunch)
    assert set(data) == {"X_train", "y_train", "X_test", "y_test", "DESCR"}
    assert "MNIST" in data.DESCR
    for X, y, prefix in [
        (data.X_train, data.y_train, "train"),
        (data.X_test, data.y_test, "t10k"),
    ]:
        images, labels = arrays[prefix]
        assert X.shape == images.shape
        assert X.dtype == np.float32
        assert X.min() == 0.0 and X.max() == 1.0
        np.testing.assert_allclose(X, images / 255.0, rtol=1e-6)
        assert y.dtype == np.int64
        assert_array_equal(y, labels)


def test_load_mnist_uint8_flatten_return_X_y(tiny_mnist, no_network):
    folder, arrays = tiny_mnist
    X_train, y_train, X_test, y_test = load_mnist(
        str(folder), return_X_y=True, flatten=True, as_float=False
    )
    assert X_train.shape == (5, 784) and X_test.shape == (3, 784)
    assert X_train.dtype == np.uint8
    assert_array_equal(X_train, arrays["train"][0].reshape(5, -1))
    assert_array_equal(y_test, arrays["t10k"][1])
    assert X_train.flags.writeable
    X_train[0, 0] = 1  # the result is an independent, writable array


@pytest.mark.parametrize("subset, prefix", [("train", "train"), ("test", "t10k")])
def test_load_mnist_subset(tiny_mnist, no_network, subset, prefix):
    folder, arrays = tiny_mnist
    images, labels = arrays[prefix]
    data = load_mnist(folder, subset=subset)
    assert set(data) == {"data", "target", "DESCR"}
    assert data.data.shape == images.shape
    assert_array_equal(data.target, labels)
    X, y = load_mnist(folder, subset=subset, return_X_y=True, flatten=True)
    assert X.shape == (len(labels), 784)
    assert_array_equal(y, labels)


def test_load_mnist_subset_needs_only_its_files(tmp_path, no_network):
    _write_tiny_mnist(tmp_path)
    (tmp_path / "train-images-idx3-ubyte.gz").unlink()
    X, y = load_mnist(tmp_path, subset="test", return_X_y=True)
    assert X.shape == (3, 28, 28)
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte.gz"):
        load_mnist(tmp_path, subset="all")


def test_load_mnist_other_image_size(tmp_path):
    images = np.arange(2 * 4 * 3, dtype=np.uint8).reshape(2, 4, 3)
    _write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", 2051, images)
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", 2049, np.array([1, 2]))
    X, y = load_mnist(tmp_path, subset="test", return_X_y=True, as_float=False)
    assert_array_equal(X, images)
    X, _ = load_mnist(tmp_path, subset="test", return_X_y=True, flatten=True)
    assert X.shape == (2, 12)


def test_load_mnist_corrupt_magic_number(tiny_mnist):
    folder, arrays = tiny_mnist
    _write_idx(folder / "train-images-idx3-ubyte.gz", 2052, arrays["train"][0])
    with pytest.raises(ValueError, match="magic number is 2052, expected 2051"):
        load_mnist(folder)


def test_load_mnist_swapped_files(tiny_mnist):
    folder, _ = tiny_mnist
    labels_file = folder / "t10k-labels-idx1-ubyte.gz"
    images_file = folder / "t10k-images-idx3-ubyte.gz"
    labels_file.write_bytes(images_file.read_bytes())
    with pytest.raises(ValueError, match="not an IDX labels file.*expected 2049"):
        load_mnist(folder, subset="test")


def test_load_mnist_truncated_data(tiny_mnist):
    folder, arrays = tiny_mnist
    images = arrays["train"][0]
    # The header announces one more image than the file holds.
    _write_idx(folder / "train-images-idx3-ubyte.gz", 2051, images, shape=(6, 28, 28))
    with pytest.raises(ValueError, match="corrupt.*shape \\(6, 28, 28\\)"):
        load_mnist(folder, subset="train")


def test_load_mnist_header_too_short(tiny_mnist):
    folder, _ = tiny_mnist
    with gzip.open(folder / "train-labels-idx1-ubyte.gz", "wb") as f:
        f.write(b"\x00\x00")
    with pytest.raises(ValueError, match="fewer than the 8 bytes of the header"):
        load_mnist(folder, subset="train")


def test_load_mnist_not_gzip(tiny_mnist):
    folder, _ = tiny_mnist
    (folder / "t10k-images-idx3-ubyte.gz").write_bytes(b"not a gzip file at all")
    with pytest.raises(ValueError, match="gzip-compressed IDX images file"):
        load_mnist(folder, subset="test")


def test_load_mnist_truncated_gzip(tiny_mnist):
    folder, _ = tiny_mnist
    labels_file = folder / "train-labels-idx1-ubyte.gz"
    data = labels_file.read_bytes()
    labels_file.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="gzip-compressed IDX labels file"):
        load_mnist(folder, subset="train")


def test_load_mnist_count_mismatch(tiny_mnist):
    folder, _ = tiny_mnist
    _write_idx(folder / "t10k-labels-idx1-ubyte.gz", 2049, np.array([1, 2]))
    with pytest.raises(ValueError, match="holds 3 images but .* holds 2 labels"):
        load_mnist(folder, subset="test")


def test_load_mnist_missing_file_names_folder_and_file(tiny_mnist, no_network):
    folder, _ = tiny_mnist
    (folder / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(FileNotFoundError) as excinfo:
        load_mnist(folder)
    message = str(excinfo.value)
    assert "t10k-labels-idx1-ubyte.gz" in message
    assert str(folder) in message


def test_load_mnist_missing_folder_download_false(tmp_path, no_network):
    folder = tmp_path / "does-not-exist"
    with pytest.raises(FileNotFoundError, match="folder does not exist") as excinfo:
        load_mnist(folder, download=False)
    assert str(folder) in str(excinfo.value)
    assert "train-images-idx3-ubyte.gz" in str(excinfo.value)
    assert not folder.exists()


def test_load_mnist_download_skips_present_files(tiny_mnist, no_network):
    folder, arrays = tiny_mnist
    X, y = load_mnist(folder, subset="train", return_X_y=True, download=True)
    assert_array_equal(y, arrays["train"][1])


def test_load_mnist_invalid_subset(tiny_mnist):
    folder, _ = tiny_mnist
    with pytest.raises(ValueError, match="subset must be one of"):
        load_mnist(folder, subset="validation")


def test_load_mnist_env_var(tiny_mnist, monkeypatch, no_network):
    folder, arrays = tiny_mnist
    monkeypatch.setenv("SKAE_MNIST_DIR", str(folder))
    X, y = load_mnist(subset="test", return_X_y=True)
    assert_array_equal(y, arrays["t10k"][1])
    # An explicit path wins over the environment variable.
    other = folder.parent / "other"
    other_arrays = _write_tiny_mnist(other, n_test=4, seed=1)
    X, y = load_mnist(other, subset="test", return_X_y=True)
    assert_array_equal(y, other_arrays["t10k"][1])


def test_load_mnist_default_folder_relative_to_cwd(tmp_path, monkeypatch, no_network):
    arrays = _write_tiny_mnist(tmp_path / "shared" / "data" / "mnist")
    (tmp_path / "repo").mkdir()
    monkeypatch.delenv("SKAE_MNIST_DIR", raising=False)
    monkeypatch.chdir(tmp_path / "repo")
    X, y = load_mnist(subset="train", return_X_y=True)
    assert_array_equal(y, arrays["train"][1])


def test_load_mnist_no_folder_found(tmp_path, monkeypatch, no_network):
    monkeypatch.delenv("SKAE_MNIST_DIR", raising=False)
    missing = [tmp_path / "a", tmp_path / "b"]
    monkeypatch.setattr(skae.datasets, "_default_mnist_folders", lambda: missing)
    with pytest.raises(FileNotFoundError, match="SKAE_MNIST_DIR") as excinfo:
        load_mnist()
    assert "path=" in str(excinfo.value)
    assert str(missing[0]) in str(excinfo.value)


def _shared_mnist_folder():
    env = os.environ.get("SKAE_MNIST_DIR")
    repository_root = Path(skae.datasets.__file__).resolve().parent.parent
    for folder in [env, repository_root / ".." / "shared" / "data" / "mnist"]:
        if folder and all((Path(folder) / name).is_file() for name in MNIST_FILES):
            return Path(folder)
    return None


def test_load_real_mnist():
    folder = _shared_mnist_folder()
    if folder is None:
        pytest.skip("the MNIST files are not available")
    data = load_mnist(folder)
    assert data.X_train.shape == (60000, 28, 28)
    assert data.X_test.shape == (10000, 28, 28)
    assert data.X_train.dtype == np.float32
    assert 0.0 == data.X_train.min() and data.X_train.max() == 1.0
    assert_array_equal(data.y_train[:5], [5, 0, 4, 1, 9])
    assert_array_equal(data.y_test[:5], [7, 2, 1, 0, 4])
    assert_array_equal(
        np.bincount(data.y_train), np.bincount(data.y_train, minlength=10)
    )
    assert np.bincount(data.y_train).sum() == 60000
    assert np.bincount(data.y_test)[1] == 1135

    X, y = load_mnist(
        folder, subset="test", return_X_y=True, flatten=True, as_float=False
    )
    assert X.shape == (10000, 784) and X.dtype == np.uint8
    assert_array_equal(X.reshape(-1, 28, 28) / np.float32(255), data.X_test)
    assert_array_equal(y, data.y_test)


# make_semi_supervised


@pytest.fixture(scope="module")
def digits_target():
    return load_digits().target


@pytest.mark.parametrize("n_labeled", [10, 50, 53, 59, 100])
def test_make_semi_supervised_balanced(digits_target, n_labeled):
    y = digits_target
    y_semi = make_semi_supervised(y, n_labeled, random_state=0)
    labeled = y_semi != -1
    assert labeled.sum() == n_labeled
    # The labels kept are the true ones.
    assert_array_equal(y_semi[labeled], y[labeled])
    counts = np.bincount(y_semi[labeled], minlength=10)
    share, remainder = divmod(n_labeled, 10)
    assert np.all((counts == share) | (counts == share + 1))
    assert np.sum(counts == share + 1) == remainder


def test_make_semi_supervised_remainder_classes_are_random(digits_target):
    extra = set()
    for seed in range(10):
        y_semi = make_semi_supervised(digits_target, 13, random_state=seed)
        counts = np.bincount(y_semi[y_semi != -1], minlength=10)
        extra.add(tuple(np.flatnonzero(counts == 2)))
    assert len(extra) > 1


def test_make_semi_supervised_fraction(digits_target):
    y_semi = make_semi_supervised(digits_target, 0.1, random_state=0)
    assert np.sum(y_semi != -1) == int(0.1 * len(digits_target))  # 179


def test_make_semi_supervised_deterministic(digits_target):
    a = make_semi_supervised(digits_target, 30, random_state=42)
    b = make_semi_supervised(digits_target, 30, random_state=42)
    c = make_semi_supervised(digits_target, 30, random_state=43)
    assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    rng_draw = make_semi_supervised(
        digits_target, 30, random_state=np.random.RandomState(42)
    )
    assert_array_equal(rng_draw, a)


def test_make_semi_supervised_does_not_modify_input(digits_target):
    y = digits_target.copy()
    y_semi = make_semi_supervised(y, 20, random_state=0)
    assert_array_equal(y, digits_target)
    assert not np.shares_memory(y, y_semi)


@pytest.mark.parametrize("dtype", [np.int8, np.int32, np.int64, np.float32, np.float64])
def test_make_semi_supervised_keeps_numeric_dtype(dtype):
    y = np.repeat(np.arange(4), 5).astype(dtype)
    y_semi = make_semi_supervised(y, 8, random_state=0)
    assert y_semi.dtype == dtype
    assert np.sum(y_semi == -1) == 12


def test_make_semi_supervised_unsigned_dtype():
    y = np.repeat(np.arange(4), 5).astype(np.uint8)
    y_semi = make_semi_supervised(y, 8, random_state=0)
    assert y_semi.dtype == np.int16
    assert np.sum(y_semi == -1) == 12


@pytest.mark.parametrize(
    "y",
    [
        np.array(["cat", "dog", "eel"] * 4),
        np.array(["cat", "dog", "eel"] * 4, dtype=object),
        ["cat", "dog", "eel"] * 4,
        pd.Series(["cat", "dog", "eel"] * 4),
    ],
    ids=["str", "object", "list", "series"],
)
def test_make_semi_supervised_string_labels(y):
    y_semi = make_semi_supervised(y, 6, random_state=0)
    assert isinstance(y_semi, np.ndarray)
    assert y_semi.dtype == object
    unlabeled = np.array(
        [value is not None and isinstance(value, int) for value in y_semi]
    )
    assert all(value == -1 for value in y_semi[unlabeled])
    assert unlabeled.sum() == 6
    assert sorted(y_semi[~unlabeled]) == ["cat", "cat", "dog", "dog", "eel", "eel"]


def test_make_semi_supervised_string_labels_with_self_training():
    # The object target is what SelfTrainingClassifier expects.
    from sklearn.linear_model import LogisticRegression
    from sklearn.semi_supervised import SelfTrainingClassifier

    X, y = load_digits(return_X_y=True)
    X, y = X[:500] / 16, y[:500]
    names = np.array([f"digit{i}" for i in range(10)])[y]
    y_semi = make_semi_supervised(names, 100, random_state=0)
    clf = SelfTrainingClassifier(LogisticRegression(max_iter=200), max_iter=1)
    clf.fit(X, y_semi)
    assert set(clf.classes_) == set(names)


def test_make_semi_supervised_bool_labels():
    y = np.array([True, False] * 5)
    y_semi = make_semi_supervised(y, 4, random_state=0)
    assert y_semi.dtype == np.int64
    assert_array_equal(np.bincount(y_semi[y_semi != -1]), [2, 2])
    assert_array_equal(y_semi[y_semi != -1], y[y_semi != -1])


def test_make_semi_supervised_keeps_existing_unlabeled():
    y = np.array([0, 1, -1, 0, 1, -1, 0, 1])
    y_semi = make_semi_supervised(y, 4, random_state=0)
    assert np.all(y_semi[[2, 5]] == -1)
    assert np.sum(y_semi != -1) == 4
    with pytest.raises(ValueError, match="larger than the number of labeled samples 6"):
        make_semi_supervised(y, 7)


def test_make_semi_supervised_errors(digits_target):
    with pytest.raises(ValueError, match="smaller than the number of classes 10"):
        make_semi_supervised(digits_target, 9)
    with pytest.raises(ValueError, match="larger than the number of labeled samples"):
        make_semi_supervised(digits_target, len(digits_target) + 1)
    y = np.array([0] * 10 + [1] * 2)
    with pytest.raises(ValueError, match="class 1 has only 2 samples.*share of 3"):
        make_semi_supervised(y, 6)
    # Enough samples in all, but not enough classes to spread the remainder.
    y = np.array([0] * 2 + [1] * 2 + [2] * 5)
    with pytest.raises(ValueError, match="Cannot spread the 2 remaining"):
        make_semi_supervised(y, 8)
    for bad in (0.0, 1.0, 1.5, -0.2):
        with pytest.raises(ValueError, match="open interval"):
            make_semi_supervised(digits_target, bad)
    with pytest.raises(TypeError, match="n_labeled must be"):
        make_semi_supervised(digits_target, "10")
    with pytest.raises(TypeError, match="n_labeled must be"):
        make_semi_supervised(digits_target, True)
    with pytest.raises(ValueError, match="no labeled sample"):
        make_semi_supervised(np.full(5, -1), 2)
    with pytest.raises(ValueError, match="Unknown label type"):
        make_semi_supervised(np.linspace(0, 1, 20), 4)
    # A fraction rounding down below the number of classes.
    with pytest.raises(ValueError, match="smaller than the number of classes"):
        make_semi_supervised(digits_target, 0.001)
