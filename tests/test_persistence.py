"""Saving and loading fitted estimators: pickle, joblib, GPU -> CPU, and skops.

See docs/persistence.rst for what each path guarantees.
"""

import io
import os
import pickle
import subprocess
import sys
import warnings
import zipfile

import joblib
import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from skae import VAE, AAEClassifier, AutoEncoder, AutoEncoderClassifier, GANClassifier
from skae.datasets import make_semi_supervised

skops_io = pytest.importorskip("skops.io")


def _estimators():
    return [
        AutoEncoder(n_components=3, hidden_layer_sizes=(16,), max_epochs=2, random_state=0),
        VAE(n_components=2, hidden_layer_sizes=(16,), max_epochs=2, random_state=0),
        AAEClassifier(n_components=2, hidden_layer_sizes=(16,), discriminator_hidden_sizes=(8,),
                      max_epochs=2, random_state=0),
        AutoEncoderClassifier(n_components=4, hidden_layer_sizes=(16,), pretrain_epochs=1,
                              max_epochs=2, random_state=0),
        GANClassifier(n_components=4, hidden_layer_sizes=(16,), generator_hidden_sizes=(16,),
                      max_epochs=2, random_state=0),
    ]


IDS = [type(e).__name__ for e in _estimators()]


@pytest.fixture(scope="module")
def data():
    X, y = load_digits(return_X_y=True)
    X = (X[:200] / 16.0).astype(np.float32)
    return X, make_semi_supervised(y[:200], n_labeled=50, random_state=0)


@pytest.fixture(scope="module", params=range(len(IDS)), ids=IDS)
def fitted(request, data):
    est = _estimators()[request.param]
    X, y_semi = data
    return est.fit(X, y_semi) if hasattr(est, "classes") else est.fit(X)


def outputs(est, X):
    """Everything a fitted estimator computes, deterministic given its random_state."""
    out = {}
    for method in ("transform", "predict", "predict_proba", "score_samples"):
        if hasattr(est, method):
            out[method] = getattr(est, method)(X)
    if hasattr(est, "sample"):
        sample = est.sample(5, random_state=0)
        out["sample"] = sample[0] if isinstance(sample, tuple) else sample
    return out


def assert_same_outputs(a, b, X, **tol):
    out_a, out_b = outputs(a, X), outputs(b, X)
    assert out_a.keys() == out_b.keys()
    for key in out_a:
        if tol:
            np.testing.assert_allclose(out_a[key], out_b[key], err_msg=key, **tol)
        else:
            np.testing.assert_array_equal(out_a[key], out_b[key], err_msg=key)


# --- pickle and joblib ------------------------------------------------------------------------
def test_pickle_round_trip(fitted, data):
    loaded = pickle.loads(pickle.dumps(fitted))
    assert type(loaded) is type(fitted)
    assert loaded.get_params().keys() == fitted.get_params().keys()
    assert_same_outputs(fitted, loaded, data[0])
    assert [row["train_loss"] for row in loaded.net_.history] == [
        row["train_loss"] for row in fitted.net_.history]


def test_model_saved_before_the_cuda_graphs_parameter_loads(fitted, data):
    state = fitted.__getstate__()
    del state["cuda_graphs"]
    loaded = type(fitted).__new__(type(fitted))
    loaded.__setstate__(state)
    assert loaded.get_params()["cuda_graphs"] is True
    assert_same_outputs(fitted, loaded, data[0])


def test_model_saved_before_the_lr_schedule_parameter_loads(fitted, data):
    state = fitted.__getstate__()
    del state["lr_schedule"]
    loaded = type(fitted).__new__(type(fitted))
    loaded.__setstate__(state)
    assert loaded.get_params()["lr_schedule"] == "constant"
    assert_same_outputs(fitted, loaded, data[0])


def test_joblib_round_trip(fitted, data, tmp_path):
    path = tmp_path / "model.joblib"
    joblib.dump(fitted, path)
    loaded = joblib.load(path)
    assert_same_outputs(fitted, loaded, data[0])


def test_loaded_model_can_be_refitted(fitted, data):
    loaded = pickle.loads(pickle.dumps(fitted))
    X, y_semi = data
    refit = loaded.fit(X, y_semi) if hasattr(loaded, "classes") else loaded.fit(X)
    assert_same_outputs(fitted, refit, X)  # same random_state: same model


def test_model_trained_on_gpu_loads_on_cpu_only_machine(data, monkeypatch):
    """Simulated: the net's device says CUDA; the loading machine has none.

    Loading rebuilds the net on the CPU from the saved numpy weights (with skorch's
    DeviceWarning); the estimator keeps ``device="cuda"`` as its parameter, so refitting needs
    ``set_params(device="cpu")``.
    The real round trip is ``test_gpu_pickle_loads_in_a_cpu_only_process`` below.
    """
    X, y_semi = data
    est = AAEClassifier(n_components=2, hidden_layer_sizes=(16,),
                        discriminator_hidden_sizes=(8,), max_epochs=1,
                        random_state=0).fit(X, y_semi)
    expected = est.predict_proba(X)
    est.net_.device = "cuda"
    blob = pickle.dumps(est)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loaded = pickle.loads(blob)
    assert any("no CUDA devices are available" in str(w.message) for w in caught)
    assert torch.device(loaded.net_.device).type == "cpu"
    assert next(loaded.net_.module_.parameters()).device.type == "cpu"
    np.testing.assert_array_equal(loaded.predict_proba(X), expected)
    loaded.set_params(device="cpu").fit(X, y_semi)


@pytest.mark.gpu
def test_gpu_pickle_loads_in_a_cpu_only_process(data, tmp_path):
    X, y_semi = data
    est = AAEClassifier(n_components=2, hidden_layer_sizes=(16,),
                        discriminator_hidden_sizes=(8,), max_epochs=2, device="cuda",
                        random_state=0).fit(X, y_semi)
    joblib.dump(est, tmp_path / "gpu.joblib")
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "proba.npy", est.predict_proba(X))
    code = (
        "import joblib, numpy as np, torch, warnings\n"
        "assert not torch.cuda.is_available()\n"
        "warnings.simplefilter('ignore')\n"
        f"est = joblib.load({str(tmp_path / 'gpu.joblib')!r})\n"
        f"X = np.load({str(tmp_path / 'X.npy')!r})\n"
        f"expected = np.load({str(tmp_path / 'proba.npy')!r})\n"
        "assert torch.device(est.net_.device).type == 'cpu'\n"
        "np.testing.assert_allclose(est.predict_proba(X), expected, atol=1e-5)\n"
        "print('ok')\n"
    )
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"


# --- skops ------------------------------------------------------------------------------------
@pytest.mark.parametrize("est", _estimators(), ids=IDS)
def test_skops_unfitted_estimator_trusts_only_its_class(est):
    blob = skops_io.dumps(est)
    untrusted = skops_io.get_untrusted_types(data=blob)
    assert untrusted == [f"{type(est).__module__}.{type(est).__name__}"]
    loaded = skops_io.loads(blob, trusted=untrusted)
    assert loaded.get_params() == est.get_params()


def test_skops_refuses_untrusted_types(fitted):
    blob = skops_io.dumps(fitted)
    with pytest.raises(skops_io.exceptions.UntrustedTypesFoundException):
        skops_io.loads(blob)


def test_skops_round_trip_of_fitted_estimator(fitted, data, tmp_path):
    path = tmp_path / "model.skops"
    skops_io.dump(fitted, path)
    untrusted = skops_io.get_untrusted_types(file=path)
    loaded = skops_io.load(path, trusted=untrusted)
    assert_same_outputs(fitted, loaded, data[0])


class _Payload:
    """Pickled, it calls ``print``: stands for any code an attacker would run."""

    def __reduce__(self):
        return print, ("payload ran",)


def test_skops_file_of_a_fitted_estimator_holds_no_pickle(fitted):
    """The only type to trust is the estimator's own class: the net is stored as numpy
    arrays (weights), strings and numbers (device, history), never as a pickle."""
    blob = skops_io.dumps(fitted)
    assert skops_io.get_untrusted_types(data=blob) == [
        f"{type(fitted).__module__}.{type(fitted).__name__}"]
    with zipfile.ZipFile(io.BytesIO(blob)) as z:
        names = z.namelist()
    assert set(names) - {"schema.json"} and all(n.endswith(".npy") for n in names
                                                if n != "schema.json")


def test_skops_load_of_a_tampered_file_runs_no_code(data, capfd):
    X, _ = data
    est = AutoEncoder(n_components=2, hidden_layer_sizes=(8,), max_epochs=1,
                      random_state=0).fit(X)
    blob = skops_io.dumps(est)
    trusted = skops_io.get_untrusted_types(data=blob)
    payload = np.empty(1, dtype=object)
    payload[0] = _Payload()
    tampered = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(blob)) as src, zipfile.ZipFile(tampered, "w") as dst:
        for name in src.namelist():
            content = src.read(name)
            if name.endswith(".npy"):  # every array (a weight) becomes a pickled object
                buf = io.BytesIO()
                np.save(buf, payload, allow_pickle=True)
                content = buf.getvalue()
            dst.writestr(name, content)
    tampered = tampered.getvalue()
    assert skops_io.get_untrusted_types(data=tampered) == trusted  # nothing looks different
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(Exception):  # noqa: B017 - any failure to load is fine
            skops_io.loads(tampered, trusted=trusted)
    assert "payload ran" not in capfd.readouterr().out


def test_estimator_saved_after_set_params_that_change_the_network(data):
    X, _ = data
    est = AutoEncoder(n_components=2, hidden_layer_sizes=(8,), max_epochs=1,
                      random_state=0).fit(X)
    blob = pickle.dumps(est.set_params(hidden_layer_sizes=(16,)))
    with pytest.raises(ValueError, match="stored weights do not fit the AutoEncoder"):
        pickle.loads(blob)
