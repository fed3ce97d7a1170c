"""The shared glue of every skae estimator (:mod:`skae.base`): validation, seeding, devices,
pickling, scikit-learn composition, feature names and input shapes."""

import pickle
import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch
import torch.serialization
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.base import clone, is_classifier
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from skorch.callbacks import Callback

from skae import VAE, AAEClassifier, AutoEncoder, AutoEncoderClassifier, GANClassifier

TINY = {"hidden_layer_sizes": (16,), "max_epochs": 2, "random_state": 0}


def _tiny_estimators():
    return [
        AutoEncoder(3, **TINY),
        VAE(3, **TINY),
        AAEClassifier(3, discriminator_hidden_sizes=(8,), **TINY),
        AutoEncoderClassifier(3, pretrain_epochs=1, **TINY),
    ]


ESTIMATORS = pytest.mark.parametrize(
    "estimator", _tiny_estimators(), ids=lambda e: type(e).__name__
)


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X / 16.0, y


@pytest.fixture(scope="module")
def small(digits):
    X, y = digits
    return X[:300], y[:300]


@pytest.fixture(scope="module")
def fitted_ae(small):
    return AutoEncoder(4, hidden_layer_sizes=(16,), max_epochs=3, random_state=0).fit(small[0])


def _fit(estimator, X, y):
    return estimator.fit(X, y) if is_classifier(estimator) else estimator.fit(X)


def _output(estimator, X):
    return estimator.predict_proba(X) if is_classifier(estimator) else estimator.transform(X)


# --- composition with scikit-learn -----------------------------------------------------------
def test_pipeline_in_grid_search(digits):
    X, y = digits
    X, y = X[:400] * 16.0, y[:400]  # raw pixels: the scaler is doing real work
    pipe = Pipeline([
        ("scale", StandardScaler()),
        ("autoencoder", AutoEncoder(hidden_layer_sizes=(16,), max_epochs=3, random_state=0)),
        ("clf", LogisticRegression(max_iter=200)),
    ])
    grid = {"autoencoder__n_components": [2, 8], "autoencoder__noise": [0.0, 0.1]}
    search = GridSearchCV(pipe, grid, cv=2, error_score="raise").fit(X, y)
    assert len(search.cv_results_["params"]) == 4
    assert np.all(np.isfinite(search.cv_results_["mean_test_score"]))
    assert search.best_params_["autoencoder__n_components"] in (2, 8)
    best = search.best_estimator_
    assert best.named_steps["autoencoder"].n_components == search.best_params_[
        "autoencoder__n_components"]
    assert best.predict(X[:5]).shape == (5,)
    # 8 codes carry more than 2 for a linear classifier (chance is 0.1)
    scores = dict(zip(
        [(p["autoencoder__n_components"], p["autoencoder__noise"])
         for p in search.cv_results_["params"]],
        search.cv_results_["mean_test_score"], strict=True,
    ))
    assert scores[(8, 0.0)] > max(0.3, scores[(2, 0.0)])


@ESTIMATORS
def test_clone_copies_parameters_not_state(estimator, small):
    _fit(estimator, *small)
    copy = clone(estimator)
    assert copy.get_params() == estimator.get_params()
    assert not hasattr(copy, "net_")
    assert hasattr(estimator, "net_")


@ESTIMATORS
def test_pickle_round_trip_gives_identical_outputs(estimator, small):
    X, y = small
    _fit(estimator, X, y)
    restored = pickle.loads(pickle.dumps(estimator))
    assert_array_equal(_output(restored, X), _output(estimator, X))
    if is_classifier(estimator):
        assert_array_equal(restored.predict(X), estimator.predict(X))


@ESTIMATORS
def test_same_random_state_same_model_different_differs(estimator, small):
    X, y = small
    a = _output(_fit(clone(estimator), X, y), X)
    b = _output(_fit(clone(estimator), X, y), X)
    c = _output(_fit(clone(estimator).set_params(random_state=1), X, y), X)
    assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_refit_starts_over(small, fitted_ae):
    X, _ = small
    ae = clone(fitted_ae).fit(X)
    first = ae.transform(X)
    ae.fit(X)  # not a continuation of the first fit
    assert_array_equal(ae.transform(X), first)
    assert ae.n_iter_ == ae.max_epochs


# --- warm_start: training in chunks ---------------------------------------------------------
def _semi(y, n_labeled=60):
    y_semi = np.full(len(y), -1)
    y_semi[:n_labeled] = y[:n_labeled]
    return y_semi


@ESTIMATORS
def test_warm_start_goes_on_from_the_fitted_weights(estimator, small):
    X, y = small
    warm = clone(estimator).set_params(warm_start=True)
    _fit(warm, X, y)
    first = warm.n_iter_
    before = _output(warm, X)
    _fit(warm, X, y)
    assert warm.n_iter_ == len(warm.net_.history) == first + estimator.max_epochs
    # the second fit started from the first one's weights: its first epoch's loss is below
    # the first fit's first one (where a fresh start would be back)
    losses = warm.net_.history[:, "train_loss"]
    start = first - estimator.max_epochs
    assert losses[first] < losses[start]
    assert not np.allclose(_output(warm, X), before)
    # a seed gives the same chunked run again
    again = clone(estimator).set_params(warm_start=True)
    _fit(again, X, y)
    _fit(again, X, y)
    assert_array_equal(_output(again, X), _output(warm, X))


def test_warm_start_does_not_pretrain_again(small):
    X, y = small
    clf = AutoEncoderClassifier(3, pretrain_epochs=2, warm_start=True, **TINY)
    clf.fit(X, _semi(y))
    clf.fit(X, _semi(y))
    epochs = clf.net_.history
    assert ["recon_loss" in e for e in epochs] == [True, True, False, False, False, False]


def test_warm_start_takes_new_parameters_and_rejects_another_network(small):
    X, y = small
    clf = AAEClassifier(3, discriminator_hidden_sizes=(8,), warm_start=True, **TINY)
    clf.fit(X, _semi(y))
    clf.set_params(noise=0.3, max_epochs=1).fit(X, _semi(y))
    assert clf.net_.module_.noise == 0.3 and clf.n_iter_ == 3
    with pytest.raises(ValueError, match="warm_start=True, but the fitted weights do not fit"):
        clf.set_params(hidden_layer_sizes=(32,)).fit(X, _semi(y))


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")  # 1 epoch
def test_warm_start_needs_the_same_classes_and_features(small):
    X, y = small
    gan = GANClassifier(hidden_layer_sizes=(16,), generator_hidden_sizes=(16,), max_epochs=1,
                        random_state=0, warm_start=True).fit(X, _semi(y))
    y_other = _semi(y)
    y_other[y_other == 3] = 10
    with pytest.raises(ValueError, match="same classes as in the previous call to fit"):
        gan.fit(X, y_other)
    with pytest.raises(ValueError, match="features"):
        gan.fit(X[:, :32], _semi(y))
    # without warm_start, another data set is simply a new fit
    gan.set_params(warm_start=False).fit(X[:, :32], y_other)
    assert gan.n_features_in_ == 32 and 10 in gan.classes_


def _halve(epoch):
    return 0.5 ** epoch


def test_warm_start_after_pickle_and_with_a_learning_rate_schedule(small):
    from skorch.callbacks import LRScheduler
    from torch.optim.lr_scheduler import LambdaLR

    X, _ = small
    ae = AutoEncoder(3, **TINY, warm_start=True, lr=1e-2,
                     callbacks=[LRScheduler(LambdaLR, lr_lambda=_halve)])
    ae = pickle.loads(pickle.dumps(ae.fit(X)))
    ae.fit(X)  # resumes the schedule where the first fit left it
    assert_allclose(ae.net_.history[:, "event_lr"], 1e-2 * 0.5 ** np.arange(4))


@ESTIMATORS
def test_fit_leaves_global_torch_rng_untouched(estimator, small):
    state = torch.random.get_rng_state()
    _fit(estimator, *small)
    _output(estimator, small[0])
    assert torch.equal(torch.random.get_rng_state(), state)


@pytest.mark.parametrize("flushing", [False, True])
def test_fit_restores_the_flush_denormal_mode(small, flushing):
    from skae.base import _flushes_denormals

    if not torch.set_flush_denormal(flushing):
        pytest.skip("this CPU cannot flush denormals")
    try:
        assert _flushes_denormals() is flushing
        AutoEncoder(3, **TINY).fit(small[0])
        assert _flushes_denormals() is flushing
    finally:
        torch.set_flush_denormal(False)


def test_random_state_none_still_fits(small):
    ae = AutoEncoder(2, hidden_layer_sizes=(8,), max_epochs=1).fit(small[0])
    assert ae.transform(small[0]).shape == (300, 2)


def test_output_of_a_row_does_not_depend_on_the_other_rows(small, fitted_ae):
    X, _ = small
    full = fitted_ae.transform(X)
    assert_array_equal(fitted_ae.transform(X[7:12]), full[7:12])
    assert_array_equal(fitted_ae.transform(X[[250, 3]]), full[[250, 3]])


# --- dtype, feature names, pandas --------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_output_dtype_follows_input(small, fitted_ae, dtype):
    X = small[0].astype(dtype)
    codes = fitted_ae.transform(X)
    assert codes.dtype == dtype
    assert fitted_ae.inverse_transform(codes).dtype == dtype
    assert fitted_ae.fit_transform(X).dtype == dtype


def test_integer_input_is_accepted_as_float(small):
    X = (small[0] * 16).astype(np.int64)
    ae = AutoEncoder(2, hidden_layer_sizes=(8,), max_epochs=1, random_state=0)
    codes = ae.fit_transform(X)
    assert np.issubdtype(codes.dtype, np.floating) and codes.shape == (300, 2)
    assert_allclose(codes, clone(ae).fit_transform(X.astype(np.float32)))


def test_dataframe_feature_names_and_pandas_output(small):
    X = pd.DataFrame(small[0], columns=[f"px{i}" for i in range(64)], index=range(5, 305))
    ae = AutoEncoder(3, hidden_layer_sizes=(8,), max_epochs=1, random_state=0).fit(X)
    assert_array_equal(ae.feature_names_in_, X.columns)
    names = ["autoencoder0", "autoencoder1", "autoencoder2"]
    assert_array_equal(ae.get_feature_names_out(), names)
    out = ae.set_output(transform="pandas").transform(X)
    assert isinstance(out, pd.DataFrame)
    assert list(out.columns) == names
    assert_array_equal(out.index, X.index)
    assert_allclose(out.to_numpy(), ae.set_output(transform="default").transform(X))
    with pytest.raises(ValueError, match="feature names"):
        ae.transform(X.rename(columns={"px0": "other"}))


def test_feature_names_out_of_vae_and_aae(small):
    X, y = small
    assert_array_equal(VAE(2, **TINY).fit(X).get_feature_names_out(), ["vae0", "vae1"])
    aae = AAEClassifier(2, discriminator_hidden_sizes=(8,), **TINY).fit(X, y)
    assert_array_equal(aae.get_feature_names_out(), ["aaeclassifier0", "aaeclassifier1"])


# --- images ----------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(8, 8), (1, 8, 8)])
@pytest.mark.parametrize("backbone", ["conv", "mlp", "auto"])
def test_images_keep_their_shape(small, shape, backbone):
    X = small[0].reshape(-1, *shape)
    ae = AutoEncoder(3, hidden_layer_sizes=(4,), backbone=backbone, max_epochs=1,
                     random_state=0).fit(X)
    assert ae.input_shape_ == shape and ae.n_features_in_ == 64
    codes = ae.transform(X)
    assert codes.shape == (300, 3)
    assert ae.inverse_transform(codes).shape == (300, *shape)
    # flat rows of the same pixels are accepted
    assert_array_equal(ae.transform(small[0]), codes)
    assert ae.score_samples(X).shape == (300,)


def test_auto_backbone_is_conv_for_images_and_mlp_for_tables(small):
    kw = {"hidden_layer_sizes": (4,), "max_epochs": 1, "random_state": 0}
    img = AutoEncoder(2, **kw).fit(small[0].reshape(-1, 8, 8))
    tab = AutoEncoder(2, **kw).fit(small[0])
    assert any(isinstance(m, torch.nn.Conv2d) for m in img.net_.module_.modules())
    assert not any(isinstance(m, torch.nn.Conv2d) for m in tab.net_.module_.modules())


def test_image_model_rejects_other_sample_shapes(small):
    ae = AutoEncoder(2, hidden_layer_sizes=(4,), max_epochs=1, random_state=0)
    ae.fit(small[0].reshape(-1, 8, 8))
    with pytest.raises(ValueError, match=r"samples of shape \(4, 16\).*fitted on samples of "
                                         r"shape \(8, 8\)"):
        ae.transform(small[0].reshape(-1, 4, 16))
    with pytest.raises(ValueError, match=r"samples of shape \(60,\)"):
        ae.transform(small[0][:, :60])


# --- input errors ----------------------------------------------------------------------------
def _with(X, value):
    X = X.copy()
    X[3, 5] = value
    return X


@ESTIMATORS
@pytest.mark.parametrize("make_X, match", [
    (lambda X: _with(X, np.nan), "Input X contains NaN"),
    (lambda X: _with(X, np.inf), "Input X contains infinity"),
    (lambda X: X[:0], r"Found array with 0 sample\(s\)"),
    (lambda X: X[0], "Expected 2D array, got 1D array"),
    (lambda X: X + 1j, "Complex data not supported"),
    (lambda X: np.array([["a", "b"]] * len(X), dtype=object), "could not convert string"),
], ids=["nan", "inf", "empty", "1d", "complex", "strings"])
def test_invalid_X_is_rejected(estimator, small, make_X, match):
    X, y = small
    X_bad = make_X(X)
    with pytest.raises(ValueError, match=match):
        _fit(clone(estimator), X_bad, y[: len(X_bad)] if X_bad.ndim else y)


@ESTIMATORS
def test_sparse_input_is_a_clear_type_error(estimator, small):
    X, y = small
    with pytest.raises(TypeError, match="Sparse data was passed.*dense data is required"):
        _fit(clone(estimator), sp.csr_matrix(X), y)


@ESTIMATORS
def test_transform_checks_number_of_features(estimator, small):
    X, y = small
    _fit(estimator, X, y)
    with pytest.raises(ValueError, match="X has 10 features, but .* is expecting 64 features"):
        _output(estimator, X[:, :10])
    with pytest.raises(ValueError, match="Input X contains NaN"):
        _output(estimator, _with(X, np.nan))


@ESTIMATORS
def test_conv_backbone_on_tabular_data_is_rejected(estimator, small):
    X, y = small
    with pytest.raises(ValueError, match=r"backbone='conv' needs images of shape \(n, H, W\)"):
        _fit(clone(estimator).set_params(backbone="conv"), X, y)


@ESTIMATORS
@pytest.mark.parametrize("hidden", [(0,), (-3,), (2.5,), ("a",), [[2, 3]]])
def test_invalid_hidden_layer_sizes(estimator, small, hidden):
    X, y = small
    with pytest.raises(ValueError, match="hidden_layer_sizes must be positive integers"):
        _fit(clone(estimator).set_params(hidden_layer_sizes=hidden), X, y)


def test_conv_backbone_needs_hidden_layers(small):
    X = small[0].reshape(-1, 8, 8)
    with pytest.raises(ValueError, match="backbone='conv' needs at least one entry"):
        AutoEncoder(2, hidden_layer_sizes=(), max_epochs=1).fit(X)


@pytest.mark.parametrize("params, match", [
    ({"n_components": 0}, "'n_components' parameter"),
    ({"activation": "gelu"}, "'activation' parameter"),
    ({"optimizer": "lbfgs"}, "'optimizer' parameter"),
    ({"lr": 0.0}, "'lr' parameter"),
    ({"loss": "l1"}, "'loss' parameter"),
])
def test_invalid_parameters_are_named(small, params, match):
    with pytest.raises(ValueError, match=match):
        AutoEncoder(max_epochs=1, **params).fit(small[0])


# --- devices ---------------------------------------------------------------------------------
@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
@ESTIMATORS
def test_cuda_device_without_cuda_is_a_value_error(estimator, small):
    with pytest.raises(ValueError, match="device='cuda' but CUDA is not available"):
        _fit(clone(estimator).set_params(device="cuda"), *small)


def test_unknown_device_is_a_value_error(small):
    with pytest.raises(ValueError, match="device='tpu' is not a torch device"):
        AutoEncoder(device="tpu", max_epochs=1).fit(small[0])


def test_torch_device_object_is_accepted(small):
    ae = AutoEncoder(2, hidden_layer_sizes=(4,), max_epochs=1, device=torch.device("cpu"))
    assert ae.fit(small[0]).transform(small[0]).shape == (300, 2)


def test_model_pickled_on_cuda_loads_without_cuda(small, fitted_ae, monkeypatch):
    """Simulated: the model's tensors are written tagged 'cuda:0' and the net's device is
    'cuda', as after a fit on a GPU; loading must map them to the CPU (tests/test_gpu.py does
    it for real, on a machine with CUDA)."""
    X, _ = small
    expected = fitted_ae.transform(X)
    net = fitted_ae.net_
    tensors = list(net.module_.state_dict().values())
    for optimizer in net.phase_optimizers().values():
        tensors += [v for s in optimizer.state.values() for v in s.values() if torch.is_tensor(v)]
    on_gpu = {t.untyped_storage().data_ptr() for t in tensors}
    tag = torch.serialization.location_tag
    with monkeypatch.context() as m:
        m.setattr(torch.serialization, "location_tag",
                  lambda s: "cuda:0" if s.data_ptr() in on_gpu else tag(s))
        m.setattr(net, "device", "cuda")
        blob = pickle.dumps(fitted_ae)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*(CUDA|device).*")
        restored = pickle.loads(blob)  # CUDA is not available here
    assert torch.device(restored.net_.device).type == "cpu"
    assert_array_equal(restored.transform(X), expected)


@pytest.mark.parametrize("make_X", [
    lambda X: X[::-1, ::-1], lambda X: X.reshape(-1, 8, 8)[::-1, :, ::-1], np.asfortranarray,
], ids=["reversed", "reversed-images", "fortran"])
def test_non_contiguous_input_is_accepted(make_X):
    from sklearn.datasets import load_digits

    from skae import AutoEncoder

    X = make_X(load_digits().data[:100] / 16.0)
    ae = AutoEncoder(2, hidden_layer_sizes=(8,), max_epochs=1, random_state=0).fit(X)
    codes = ae.transform(X)
    assert codes.shape == (100, 2)
    assert ae.inverse_transform(codes[::-1]).shape == X.shape
    np.testing.assert_allclose(codes, ae.transform(np.ascontiguousarray(X)))


def test_integer_input_gives_float64_codes_as_sklearn_does():
    from skae import AutoEncoder

    X = load_digits().data[:100].astype(np.int64)
    ae = AutoEncoder(2, hidden_layer_sizes=8, max_epochs=1, random_state=0).fit(X)
    assert ae.transform(X).dtype == np.float64
    assert ae.transform(X.astype(np.float32)).dtype == np.float32


def test_an_int_hidden_layer_sizes_is_one_layer():
    from skae import AutoEncoder

    X = load_digits().data[:100] / 16.0
    a = AutoEncoder(2, hidden_layer_sizes=8, max_epochs=1, random_state=0).fit(X)
    b = AutoEncoder(2, hidden_layer_sizes=(8,), max_epochs=1, random_state=0).fit(X)
    assert_allclose(a.transform(X), b.transform(X))


@ESTIMATORS
def test_leaky_relu_activation(estimator, small):
    estimator = clone(estimator).set_params(activation="leaky_relu")
    _fit(estimator, *small)
    leaky = [m for m in estimator.net_.module_.modules() if isinstance(m, torch.nn.LeakyReLU)]
    assert leaky and all(m.negative_slope == 0.2 for m in leaky)
    assert not any(isinstance(m, torch.nn.ReLU) for m in estimator.net_.module_.modules())


class _ZeroWeights(Callback):
    """Zero every weight when training ends: the model then gives every row one class."""

    def on_train_end(self, net, **kwargs):
        with torch.no_grad():
            for param in net.module_.parameters():
                param.zero_()


CLASSIFIERS = pytest.mark.parametrize(
    "classifier",
    [AAEClassifier(3, discriminator_hidden_sizes=(8,), **TINY),
     AutoEncoderClassifier(3, pretrain_epochs=1, **TINY),
     GANClassifier(hidden_layer_sizes=(16,), generator_hidden_sizes=(16,), max_epochs=2,
                   random_state=0)],
    ids=lambda e: type(e).__name__,
)


@CLASSIFIERS
def test_a_classifier_that_learned_nothing_warns(classifier, small):
    X, y = small
    y_semi = np.where(np.arange(len(y)) % 3 == 0, y, -1)
    with pytest.warns(ConvergenceWarning, match=r"did not learn its labeled rows: it predicts "
                                                r"class 0 for all 100 of them, which span 10 "
                                                r"classes \(training collapsed"):
        clone(classifier).set_params(callbacks=[_ZeroWeights()]).fit(X, y_semi)


@CLASSIFIERS
def test_a_classifier_that_learned_does_not_warn(classifier, small):
    X, y = small
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        clone(classifier).set_params(max_epochs=10).fit(X, y)
