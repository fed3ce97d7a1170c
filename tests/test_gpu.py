"""Every estimator on a CUDA device (skipped without one: run with ``pytest -m gpu``).

On CUDA, results are only checked to be sane (shapes, finite values, accuracy well above
chance), not equal to CPU results.
"""

import os
import pickle
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.datasets import load_digits
from skorch.callbacks import Callback, LRScheduler
from torch.optim.lr_scheduler import LambdaLR

from skae import VAE, AAEClassifier, AutoEncoder, AutoEncoderClassifier, GANClassifier
from skae.modules import WeightNormLinear

pytestmark = pytest.mark.gpu

DEVICE = "cuda"


@pytest.fixture(scope="module")
def semi():
    X, y = load_digits(return_X_y=True)
    rng = np.random.RandomState(0)
    keep = np.zeros(len(y), dtype=bool)
    for c in range(10):
        idx = np.flatnonzero(y == c)
        keep[rng.choice(idx, size=len(idx) // 10, replace=False)] = True
    return X / 16.0, y, np.where(keep, y, -1)


def _on_device(estimator):
    params = list(estimator.net_.module_.parameters())
    return all(p.device.type == torch.device(DEVICE).type for p in params)


@pytest.fixture(scope="module")
def aae(semi):
    X, _, y_semi = semi
    return AAEClassifier(6, hidden_layer_sizes=(64,), discriminator_hidden_sizes=(32,),
                         max_epochs=10, device=DEVICE, random_state=0).fit(X, y_semi)


@pytest.fixture(scope="module")
def ae(semi):
    return AutoEncoder(8, hidden_layer_sizes=(32,), max_epochs=10, device=DEVICE,
                       random_state=0).fit(semi[0])


def test_autoencoder(semi, ae):
    X = semi[0]
    assert _on_device(ae)
    codes = ae.transform(X)
    assert codes.shape == (len(X), 8) and codes.dtype == np.float64
    assert np.all(np.isfinite(codes))
    assert ae.inverse_transform(codes).shape == X.shape
    scores = ae.score_samples(X)
    assert np.all(np.isfinite(scores))
    noise = np.random.RandomState(0).uniform(0, 1, size=(50, 64))
    assert np.median(ae.score_samples(noise)) < np.percentile(scores, 5)
    assert ae.net_.history[-1, "recon_loss"] < ae.net_.history[0, "recon_loss"]


@pytest.mark.parametrize("device", ["cuda:0", torch.device("cuda")])
def test_device_spellings(semi, device):
    X = semi[0][:200].astype(np.float32)
    ae = AutoEncoder(2, hidden_layer_sizes=(8,), max_epochs=1, device=device, random_state=0)
    codes = ae.fit(X).transform(X)
    assert _on_device(ae) and codes.dtype == np.float32 and np.all(np.isfinite(codes))


def test_missing_cuda_index_is_a_value_error(semi):
    n = torch.cuda.device_count()
    with pytest.raises(ValueError, match=f"only {n} CUDA device"):
        AutoEncoder(device=f"cuda:{n}", max_epochs=1).fit(semi[0][:50])


def test_conv_autoencoder_on_images(semi):
    imgs = semi[0].reshape(-1, 1, 8, 8)
    ae = AutoEncoder(4, hidden_layer_sizes=(8, 16), max_epochs=3, device=DEVICE,
                     random_state=0).fit(imgs)
    assert _on_device(ae)
    out = ae.inverse_transform(ae.transform(imgs))
    assert out.shape == imgs.shape and np.all(np.isfinite(out))


def test_fit_leaves_cuda_rng_untouched(semi):
    cpu, cuda = torch.random.get_rng_state(), torch.cuda.get_rng_state()
    AutoEncoder(2, hidden_layer_sizes=(8,), noise=0.1, max_epochs=1, device=DEVICE,
                random_state=0).fit(semi[0][:200])
    assert torch.equal(torch.random.get_rng_state(), cpu)
    assert torch.equal(torch.cuda.get_rng_state(), cuda)


def test_vae(semi):
    X = semi[0]
    vae = VAE(4, hidden_layer_sizes=(32,), loss="bce", max_epochs=5, device=DEVICE,
              random_state=0).fit(X)
    assert _on_device(vae)
    s = vae.sample(6, random_state=0)
    assert s.shape == (6, 64) and np.all((s >= 0) & (s <= 1))
    assert_array_equal(s, vae.sample(6, random_state=0))
    assert np.all(np.isfinite(vae.score_samples(X)))
    assert_array_equal(vae.transform(X[:20]), vae.transform(X[:20]))


def test_aae_classifier(semi, aae):
    X, y, y_semi = semi
    assert _on_device(aae)
    unlabeled = y_semi == -1
    assert aae.score(X[unlabeled], y[unlabeled]) > 0.3  # chance: 0.1
    assert np.allclose(aae.predict_proba(X).sum(axis=1), 1)
    assert aae.transform(X).shape == (len(X), 6)
    Xs, ys = aae.sample(4, y=3, random_state=0)
    assert Xs.shape == (4, 64) and np.all(np.isfinite(Xs)) and list(ys) == [3] * 4


def test_autoencoder_classifier(semi):
    X, y, y_semi = semi
    clf = AutoEncoderClassifier(8, hidden_layer_sizes=(32,), pretrain_epochs=3, max_epochs=30,
                                batch_size=32, lr=1e-2, device=DEVICE, random_state=0)
    clf.fit(X, y_semi)
    assert _on_device(clf)
    unlabeled = y_semi == -1
    assert clf.score(X[unlabeled], y[unlabeled]) > 0.3


def test_gan_classifier_warm_started_on_cuda_then_on_the_cpu(semi):
    X, y, y_semi = semi
    gan = GANClassifier(hidden_layer_sizes=(128, 64), generator_hidden_sizes=(64,),
                        max_epochs=10, device=DEVICE, random_state=0, warm_start=True)
    gan.fit(X, y_semi)
    assert _on_device(gan)
    gan.fit(X, y_semi)  # ten more epochs on the GPU
    assert gan.n_iter_ == 20 and _on_device(gan)
    unlabeled = y_semi == -1
    assert gan.score(X[unlabeled], y[unlabeled]) > 0.5  # chance: 0.1
    gan.set_params(device="cpu", max_epochs=1).fit(X, y_semi)  # and on from there on the CPU
    assert gan.n_iter_ == 21
    assert all(p.device.type == "cpu" for p in gan.net_.module_.parameters())


class _RecordsGraphs(Callback):
    """Notes whether any training step of the fit ran through a recorded CUDA graph."""

    def initialize(self):
        self.recorded = False
        return self

    def on_batch_end(self, net, **kwargs):
        graphs = net.__dict__.get("_cuda_graph_steps") or {}
        self.recorded |= any(entry["graph"] is not None for entry in graphs.values())


@pytest.mark.parametrize("cuda_graphs", [True, False])
def test_gan_trains_with_and_without_cuda_graphs(semi, cuda_graphs):
    X, y, y_semi = semi
    gan = GANClassifier(hidden_layer_sizes=(128, 64), generator_hidden_sizes=(64,),
                        max_epochs=10, device=DEVICE, random_state=0, cuda_graphs=cuda_graphs,
                        callbacks=[_RecordsGraphs()]).fit(X, y_semi)
    assert dict(gan.net_.callbacks_)["_RecordsGraphs"].recorded is cuda_graphs
    assert "_cuda_graph_steps" not in gan.net_.__dict__  # graphs live for one fit
    # the averaging counted every step, the replayed ones too (its count lives on the device)
    steps = 10 * -(-len(X) // gan.batch_size)
    assert int(gan.net_.module_.average.n_averaged) == steps
    unlabeled = y_semi == -1
    assert gan.score(X[unlabeled], y[unlabeled]) > 0.5  # chance: 0.1
    pickle.loads(pickle.dumps(gan))


class _SwingThirdEpoch(Callback):
    """Arms the guard of the average (``ema_guard``) for the third epoch and swings the
    discriminator's last weights after that epoch's last step (each class's output to the
    next class), so that the guard holds the epoch; the fourth holds nothing."""

    def __init__(self, steps):
        self.steps = steps

    def initialize(self):
        self.start = self.restored = None
        return self

    def on_epoch_begin(self, net, **kwargs):
        model = net.module_
        if len(net.history) == 3:
            model._guard_calm, model.ema_guard = model.guard_calm_epochs, 0.05
            self.start = [t.clone() for t in model._epoch_average]
        elif len(net.history) == 4:
            model.ema_guard = 0.99

    def on_batch_end(self, net, **kwargs):
        if len(net.history) == 3 and len(net.history[-1, "batches"]) == self.steps:
            with torch.no_grad():  # in place: the recorded step goes on with these tensors
                for p in net.module_.head.parameters():
                    p.copy_(p.roll(1, dims=0))

    def on_epoch_end(self, net, **kwargs):
        if len(net.history) == 3:  # after the model's end_epoch, which held the epoch
            state = net.module_.average.state()
            self.restored = all(torch.equal(a, b) for a, b in zip(state, self.start))


def test_ema_guard_holds_the_average_of_a_recorded_step(semi):
    # the guard restores the average in place, between replays of the recorded CUDA graph that
    # updates it: the replays of the next epoch go on from the restored tensors
    X, y, y_semi = semi
    batch_size = 100
    steps = -(-len(X) // batch_size)
    swing = _SwingThirdEpoch(steps)
    gan = GANClassifier(hidden_layer_sizes=(128, 64), generator_hidden_sizes=(64,),
                        max_epochs=4, batch_size=batch_size, ema_guard=0.99, device=DEVICE,
                        random_state=0,
                        callbacks=[_RecordsGraphs(), swing]).fit(X, y_semi)
    assert dict(gan.net_.callbacks_)["_RecordsGraphs"].recorded
    history = gan.net_.history
    assert history[:, "average_held"] == [False, False, True, False]
    assert history[2, "average_disagreement"] > 0.05
    assert dict(gan.net_.callbacks_)["_SwingThirdEpoch"].restored
    assert int(gan.net_.module_.average.n_averaged) == 3 * steps  # the third epoch's undone
    unlabeled = y_semi == -1
    assert np.isfinite(gan.predict_proba(X[unlabeled])).all()


@pytest.mark.parametrize("max_rotation, max_warp", [(0.0, 0.0), (10.0, 0.0), (10.0, 1.0)])
@pytest.mark.parametrize("Estimator", [AAEClassifier, GANClassifier])
def test_shifts_of_images_are_recorded_in_cuda_graphs(semi, Estimator, max_rotation, max_warp):
    # random_shift inside the recorded step: no copy from the host, no fallback warning
    X, y, y_semi = semi
    images = X.reshape(-1, 8, 8)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        clf = Estimator(hidden_layer_sizes=(64,), backbone="mlp", max_shift=1.0, max_epochs=5,
                        max_rotation=max_rotation, max_warp=max_warp, device=DEVICE,
                        random_state=0, callbacks=[_RecordsGraphs()]).fit(images, y_semi)
    assert dict(clf.net_.callbacks_)["_RecordsGraphs"].recorded
    unlabeled = y_semi == -1
    assert clf.score(images[unlabeled], y[unlabeled]) > 0.5  # chance: 0.1


@pytest.mark.parametrize("settings", [
    {"class_prior": "predicted"},
    {"class_prior": np.arange(1.0, 11.0)},
    {"consistency_threshold": 0.8, "consistency_teacher": "average"},
])
def test_aae_prior_and_consistency_targets_are_recorded_in_cuda_graphs(semi, settings):
    # the prior's draws and running mean, hard and averaged targets inside the recorded step
    X, y, y_semi = semi
    images = X.reshape(-1, 8, 8)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        clf = AAEClassifier(hidden_layer_sizes=(64,), backbone="mlp", max_shift=1.0,
                            max_epochs=5, device=DEVICE, random_state=0,
                            callbacks=[_RecordsGraphs()], **settings).fit(images, y_semi)
    assert dict(clf.net_.callbacks_)["_RecordsGraphs"].recorded
    model = clf.net_.module_
    if "class_prior" in settings:
        prior = model.prior.cpu()
        assert prior.sum().item() == pytest.approx(1.0, abs=1e-4)
        if isinstance(settings["class_prior"], str):  # "predicted": moved by the replays
            assert not torch.allclose(prior, torch.full((10,), 0.1))
    unlabeled = y_semi == -1
    assert clf.score(images[unlabeled], y[unlabeled]) > 0.5  # chance: 0.1


def test_aae_staged_phases_and_reconstruction_rate_on_cuda(semi, weights_per_epoch):
    # supervised_epochs changes the recorded step's phases after the first epoch, and
    # reconstruction_lr_scale=0 leaves the encoder out of the reconstruction phase
    X, y, y_semi = semi
    clf = AAEClassifier(6, hidden_layer_sizes=(64,), discriminator_hidden_sizes=(32,),
                        max_epochs=4, supervised_epochs=1, reconstruction_lr_scale=0,
                        device=DEVICE, random_state=0,
                        callbacks=[_RecordsGraphs(), weights_per_epoch]).fit(X, y_semi)
    assert dict(clf.net_.callbacks_)["_RecordsGraphs"].recorded
    record = dict(clf.net_.callbacks_)["WeightsPerEpoch"]
    start, first, last = (record.part(epoch, "decoder") for epoch in (0, 1, -1))
    assert torch.equal(first, start) and not torch.equal(last, first)
    history = clf.net_.history
    assert "recon_loss" not in history[0] and np.isfinite(history[-1, "recon_loss"])
    module = clf.net_.module_
    (group,) = clf.net_.optimizer_recon_.param_groups
    assert group["params"] == list(module.decoder.parameters())
    unlabeled = y_semi == -1
    assert clf.score(X[unlabeled], y[unlabeled]) > 0.3  # chance: 0.1

def _one_then_zero(epoch):
    return 1.0 if epoch < 1 else 0.0


def test_cuda_graphs_follow_a_learning_rate_schedule(semi, weights_per_epoch):
    # lr 0 after the first epoch: a step recorded with the first lr would go on moving weights
    ae = AutoEncoder(4, hidden_layer_sizes=(32,), max_epochs=3, device=DEVICE, random_state=0,
                     callbacks=[LRScheduler(LambdaLR, lr_lambda=_one_then_zero),
                                weights_per_epoch, _RecordsGraphs()]).fit(semi[0])
    assert dict(ae.net_.callbacks_)["_RecordsGraphs"].recorded
    first = dict(ae.net_.callbacks_)["WeightsPerEpoch"].states[1]
    for name, value in ae.net_.module_.state_dict().items():
        assert torch.equal(value, first[name]), name


def test_weight_norm_linear_on_cuda_matches_the_cpu():
    torch.manual_seed(0)
    layer = WeightNormLinear(20, 7)
    x = torch.randn(16, 20)
    results = []
    for device in ("cpu", DEVICE):
        lay = pickle.loads(pickle.dumps(layer)).to(device)
        out = lay(x.to(device))
        grads = torch.autograd.grad(out.square().sum(), list(lay.parameters()))
        results.append([t.cpu() for t in (out, *grads)])
    for cpu, cuda in zip(*results):
        torch.testing.assert_close(cuda, cpu, rtol=1e-4, atol=1e-5)


def test_pickle_round_trip_on_cuda(semi, aae):
    X = semi[0]
    restored = pickle.loads(pickle.dumps(aae))
    assert _on_device(restored)
    assert_array_equal(restored.predict_proba(X), aae.predict_proba(X))


_LOAD_ON_CPU = textwrap.dedent("""
    import pickle, sys, warnings
    import numpy as np
    import torch

    assert not torch.cuda.is_available(), "CUDA should be hidden"
    folder = sys.argv[1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # skorch warns that it maps CUDA to the CPU
        with open(folder + "/models.pkl", "rb") as f:
            models = pickle.load(f)
    for model in models.values():
        assert torch.device(model.net_.device).type == "cpu"
        assert all(p.device.type == "cpu" for p in model.net_.module_.parameters())
    X = np.load(folder + "/X.npy")
    np.save(folder + "/codes_cpu.npy", models["ae"].transform(X))
    np.save(folder + "/proba_cpu.npy", models["aae"].predict_proba(X))
""")


def test_cuda_model_unpickles_and_predicts_without_cuda(tmp_path, semi, ae, aae):
    X = semi[0][:300]
    with open(tmp_path / "models.pkl", "wb") as f:
        pickle.dump({"ae": ae, "aae": aae}, f)
    np.save(tmp_path / "X.npy", X)
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    result = subprocess.run([sys.executable, "-c", _LOAD_ON_CPU, str(tmp_path)], check=False,
                            env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert_allclose(np.load(tmp_path / "codes_cpu.npy"), ae.transform(X), rtol=1e-3, atol=1e-4)
    assert_allclose(np.load(tmp_path / "proba_cpu.npy"), aae.predict_proba(X), atol=1e-4)
