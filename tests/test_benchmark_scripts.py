"""The scripts of ``benchmarks/`` run end to end on the embedded digits (tiny settings)."""

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def from_benchmarks(module, name):
    """``name`` from the script module ``module`` of ``benchmarks/``."""
    sys.path.insert(0, str(BENCHMARKS))
    try:
        return getattr(__import__(module), name)
    finally:
        sys.path.remove(str(BENCHMARKS))


def run_script(name, *args):
    return subprocess.run([sys.executable, str(BENCHMARKS / name), *map(str, args)],
                          capture_output=True, text=True, timeout=300)

PAPER_PHASES = "the paper's phases (discriminator_noise=0, vat_weight=0, ema_decay=0)"


def test_aae_ablation_writes_one_row_per_variant(tmp_path):
    out = tmp_path / "ablation"
    done = run_script("aae_ablation.py", "--dataset", "digits", "--epochs", "1",
                      "--labels", "50", "--variants", "default", "supervised phase only",
                      "lr decaying linearly to 0", PAPER_PHASES, "--threads", "1",
                      "--output", out)
    assert done.returncode == 0, done.stderr
    result = json.loads(out.with_suffix(".json").read_text())
    assert [row["variant"] for row in result["rows"]] == [  # in the order of VARIANTS
        "default", PAPER_PHASES, "lr decaying linearly to 0", "supervised phase only"]
    assert result["machine"]["torch_threads"] == 1  # --threads, set as it was parsed
    n_test = int(re.search(r"scored on the first (\d+) test rows", result["notes"][0])[1])
    for row in result["rows"]:
        assert 0.0 <= row["test_error"] <= 100.0
        assert 0.0 <= row["class_share_min"] <= 10.0 <= row["class_share_max"] <= 100.0
        assert 0.1 <= row["confidence"] <= 1.0 and row["y_use"] > 0
        # the three most frequent errors, "true>predicted count", most frequent first
        counts = [int(pair.split()[1]) for pair in row["top_confusions"].split(", ")]
        assert len(counts) == 3 and counts == sorted(counts, reverse=True)
        assert sum(counts) <= round(row["test_error"] / 100 * n_test)
    assert "aae_ablation.py --dataset digits" in result["command"]
    assert "| default |" in out.with_suffix(".md").read_text()


def test_aae_ablation_learning_curve_and_vat_epsilon_step(tmp_path):
    out = tmp_path / "ablation"
    variant = "vat_epsilon 0.4 for 5 epochs, then 0.2"
    done = run_script("aae_ablation.py", "--dataset", "digits", "--epochs", "2",
                      "--eval-every", "1", "--labels", "50", "--variants", variant,
                      "--threads", "1", "--output", out)
    assert done.returncode == 0, done.stderr
    (row,) = json.loads(out.with_suffix(".json").read_text())["rows"]
    assert [epoch for epoch, _ in row["curve"]] == [1, 2]
    assert row["curve"][-1][1] == pytest.approx(row["test_error"])  # the same model scored
    assert f"{variant}: test error (%) after 1 epochs" in out.with_suffix(".md").read_text()


def test_aae_ablation_verbose_prints_the_epoch_tables(tmp_path):
    variant = "lr constant for half the epochs, then decaying linearly to 0"
    done = run_script("aae_ablation.py", "--dataset", "digits", "--epochs", "2", "--labels",
                      "50", "--variants", variant, "--verbose", "--threads", "1",
                      "--output", tmp_path / "x")
    assert done.returncode == 0, done.stderr
    assert "disc_loss" in done.stdout and "sup_loss" in done.stdout
    rows = [line.split() for line in done.stdout.splitlines()]
    assert [row[0] for row in rows if row and row[0].isdigit()] == ["1", "2"]


def test_aae_ablation_sets_a_parameter_for_every_variant(tmp_path):
    out = tmp_path / "x"
    done = run_script("aae_ablation.py", "--dataset", "digits", "--epochs", "2", "--labels",
                      "50", "--variants", "default", "lr_schedule='constant'", "--set",
                      "lr_schedule=constant", "--set", "vat_epsilon=(0.3, 0.1)", "--threads",
                      "1", "--output", out)
    assert done.returncode == 0, done.stderr
    result = json.loads(out.with_suffix(".json").read_text())
    assert result["notes"][0].endswith(
        "for every variant lr_schedule='constant', vat_epsilon=(0.3, 0.1)")
    default, constant = ({k: v for k, v in row.items() if k != "fit_seconds"}
                         for row in result["rows"])
    assert {**default, "variant": None} == {**constant, "variant": None}  # the same fit
    bad = run_script("aae_ablation.py", "--dataset", "digits", "--set", "lr_schedule")
    assert bad.returncode == 2 and "expected NAME=VALUE" in bad.stderr


def test_aae_ablation_stop_after_is_the_start_of_the_long_fit(tmp_path):
    def fit(*args):
        out = tmp_path / ("stopped" if args else "full")
        done = run_script("aae_ablation.py", "--dataset", "digits", "--epochs", "4",
                          "--eval-every", "1", "--labels", "50", "--threads", "1",
                          "--variants", "default", *args, "--output", out)
        assert done.returncode == 0, done.stderr
        return json.loads(out.with_suffix(".json").read_text())

    full, stopped = fit(), fit("--stop-after", "3")
    (full_row,), (row,) = full["rows"], stopped["rows"]
    # the first 3 epochs of the 4-epoch schedule (lr_schedule="linear" decays over epochs 3-4)
    assert row["curve"] == full_row["curve"][:3]
    assert row["test_error"] == pytest.approx(row["curve"][-1][1])
    assert stopped["notes"][0].endswith("every fit stopped after 3 of the 4 epochs")
    assert stopped["title"].endswith("4 epochs (stopped after 3): default")
    verbose = run_script("aae_ablation.py", "--dataset", "digits", "--epochs", "4", "--labels",
                         "50", "--variants", "default", "--threads", "1", "--stop-after", "2",
                         "--verbose", "--output", tmp_path / "verbose")
    assert verbose.returncode == 0, verbose.stderr
    epochs = re.findall(r"^ +(\d+) +\d", verbose.stdout, flags=re.MULTILINE)  # PrintLog's rows
    assert epochs == ["1", "2"], verbose.stdout
    bad = run_script("aae_ablation.py", "--dataset", "digits", "--epochs", "4",
                     "--stop-after", "5")
    assert bad.returncode == 2 and "--stop-after must be between 1 and --epochs (4)" in bad.stderr


@pytest.mark.parametrize("script", ["aae_ablation.py", "gan_ablation.py", "semi_supervised.py"])
def test_threads_must_be_at_least_1(script):
    bad = run_script(script, "--dataset", "digits", "--threads", "0")
    assert bad.returncode == 2 and "--threads must be at least 1, got 0" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_aae_ablation_rejects_an_unknown_variant(tmp_path):
    done = run_script("aae_ablation.py", "--dataset", "digits", "--variants", "dropout",
                      "--output", tmp_path / "x")
    assert done.returncode == 1
    assert "unknown variants ['dropout']" in done.stderr and "Traceback" not in done.stderr


def test_gan_ablation_scores_averaged_and_last_weights(tmp_path):
    out = tmp_path / "gan"
    done = run_script("gan_ablation.py", "--dataset", "digits", "--epochs", "2",
                      "--eval-every", "1", "--labels", "50", "--variants", "data_init=True",
                      "default", "lr decaying linearly to 0 over the second half",
                      "Adam eps=1e-4", "max_shift=2 (images)", "max_shift=2 (images, MLP)",
                      "max_shift=0 (rows of pixels)", "backbone='conv' (images)",
                      "--threads", "1", "--output", out)
    assert done.returncode == 0, done.stderr
    result = json.loads(out.with_suffix(".json").read_text())
    assert [row["variant"] for row in result["rows"]] == [
        "default", "data_init=True", "Adam eps=1e-4",
        "lr decaying linearly to 0 over the second half", "max_shift=0 (rows of pixels)",
        "max_shift=2 (images)", "max_shift=2 (images, MLP)", "backbone='conv' (images)"]
    assert result["machine"]["torch_threads"] == 1
    for row in result["rows"]:
        assert row["epochs"] == 2
        assert 0.0 <= row["test_error"] <= 100.0 and 0.0 <= row["test_error_last"] <= 100.0
    text = out.with_suffix(".md").read_text()
    # the learning curve: both scores after each epoch, the last one as in the table
    assert ("default (mlp discriminator on rows of pixels): test error (%) averaged / last "
            "weights after 1 epochs ") in text
    # backbone "auto" makes images convolutional
    assert "max_shift=2 (images) (conv discriminator on images): " in text
    assert "max_shift=2 (images, MLP) (mlp discriminator on images): " in text
    assert "backbone='conv' (images) (conv discriminator on images): " in text
    assert "max_shift=0 (rows of pixels) (mlp discriminator on rows of pixels): " in text
    last = result["rows"][0]
    assert f"2 epochs {last['test_error']:.2f} / {last['test_error_last']:.2f}" in text
    apart = re.search(r"default \(.*; training rows the two class apart \(%\) after 1 epochs "
                      r"([\d.]+), 2 epochs ([\d.]+)", text)
    assert apart and all(0.0 <= float(share) <= 100.0 for share in apart.groups())
    bad = run_script("gan_ablation.py", "--dataset", "digits", "--variants", "dropout",
                     "--output", tmp_path / "x")
    assert bad.returncode == 1 and "unknown variants ['dropout']" in bad.stderr


class _TwoHeads(torch.nn.Module):
    """``class_logits`` (the averaged weights) reads column 0 as class 1, ``discriminate``
    (the last weights) reads column 1 as class 1."""

    def __init__(self):
        super().__init__()
        self.unused = torch.nn.Linear(1, 1)

    def class_logits(self, x):
        return torch.stack([-x[:, 0], x[:, 0]], 1)

    def discriminate(self, x):
        return torch.stack([-x[:, 1], x[:, 1]], 1)


def test_gan_ablation_disagreement_is_the_share_of_rows_the_weights_class_apart():
    disagreement = from_benchmarks("gan_ablation", "disagreement")
    X = np.array([[1, 1], [1, -1], [-1, -1], [-1, 1]], dtype=np.float32)
    assert disagreement(_TwoHeads(), "cpu", X) == 50.0
    assert disagreement(_TwoHeads(), "cpu", X[[0, 2]]) == 0.0


def test_gan_ablation_set_gives_every_variant_a_parameter(tmp_path):
    out = tmp_path / "gan"
    done = run_script("gan_ablation.py", "--dataset", "digits", "--epochs", "1",
                      "--labels", "50", "--variants", "default", "max_shift=2 (images, MLP)",
                      "--set", "max_shift=1.0", "--set", "backbone=mlp", "--threads", "1",
                      "--output", out)
    assert done.returncode == 0, done.stderr
    text = out.with_suffix(".md").read_text()
    assert "; for every variant max_shift=1.0, backbone='mlp'" in text
    # the set shift makes "default" take images; the variant's own max_shift=2 wins
    assert "default (mlp discriminator on images): " in text
    assert "max_shift=2 (images, MLP) (mlp discriminator on images): " in text
    assert "ema_guard" not in text
    bad = run_script("gan_ablation.py", "--dataset", "digits", "--set", "max_shift")
    assert bad.returncode == 2 and "expected NAME=VALUE" in bad.stderr


def test_gan_ablation_notes_the_epochs_whose_averaging_the_guard_undid(tmp_path):
    out = tmp_path / "gan"
    done = run_script("gan_ablation.py", "--dataset", "digits", "--epochs", "2",
                      "--labels", "50", "--variants", "default", "--set", "ema_guard=0.99",
                      "--threads", "1", "--output", out)
    assert done.returncode == 0, done.stderr
    text = out.with_suffix(".md").read_text()
    assert "; ema_guard undid the average's updates of no epoch" in text


def test_semi_supervised_script_on_digits(tmp_path):
    out = tmp_path / "semi"
    done = run_script("semi_supervised.py", "--dataset", "digits", "--labels", "50",
                      "--epochs", "2", "--eval-every", "1", "--quiet", "--models",
                      "AAEClassifier", "LabelSpreading", "--no-cuda-graphs", "--threads", "1",
                      "--output", out)
    assert done.returncode == 0, done.stderr
    result = json.loads(out.with_suffix(".json").read_text())
    assert result["machine"]["torch_threads"] == 1
    rows = result["rows"]
    assert {row["model"] for row in rows} == {"AAEClassifier", "LabelSpreading"}
    text = out.with_suffix(".md").read_text()
    assert re.search(r"AAEClassifier, 50 labels, seed 0: test error \(%\) after 1 epochs "
                     r"\(\d+ s of training\) \d+\.\d\d, 2 epochs", text)
    assert "trained with cuda_graphs=False" in text
    bad = run_script("semi_supervised.py", "--dataset", "digits", "--models", "LabelSpreading",
                     "--set", "lr_schedule=constant", "--output", out)
    assert bad.returncode == 1 and "has the parameters ['lr_schedule']" in bad.stderr


def test_semi_supervised_script_sets_a_parameter(tmp_path):
    out = tmp_path / "semi"
    done = run_script("semi_supervised.py", "--dataset", "digits", "--labels", "50",
                      "--epochs", "1", "--quiet", "--models", "AAEClassifier",
                      "--set", "lr_schedule=constant", "--set", "vat_epsilon=(0.3, 0.1)",
                      "--output", out)
    assert done.returncode == 0, done.stderr
    text = out.with_suffix(".md").read_text()
    assert "for every model that has them: lr_schedule='constant', vat_epsilon=(0.3, 0.1)" in text


def test_overhead_script_on_digits_with_the_old_option_names(tmp_path):
    # --data / --out are the spellings of the commands recorded in docs/benchmarks
    done = run_script("overhead.py", "--data", "digits", "--epochs", "1", "--repeats", "1",
                      "--batch-size", "256", "--hidden", "32", "--n-components", "4",
                      "--out", tmp_path / "overhead.md")
    assert done.returncode == 0, done.stderr
    result = json.loads((tmp_path / "overhead.json").read_text())
    assert result["config"]["dataset"] == "digits"
    variants = {row["variant"] for row in result["rows"]}
    assert {"skae", "hand (Adam)"} <= variants
    assert "| skae |" in (tmp_path / "overhead.md").read_text()


def test_transformers_script_on_digits(tmp_path):
    out = tmp_path / "transformers"
    done = run_script("transformers.py", "--dataset", "digits", "--models", "pca", "ae",
                      "--n-components", "2", "--epochs", "1", "--no-pixels", "--seed", "1",
                      "--output", out)
    assert done.returncode == 0, done.stderr
    result = json.loads(out.with_suffix(".json").read_text())
    assert result["config"]["random_state"] == 1
    assert {row["model"] for row in result["rows"]} == {"pca", "ae"}
    for row in result["rows"]:
        assert row["test_mse"] > 0 and 0.0 < row["logreg_acc"] <= 1.0


def test_result_paths_take_the_name_with_or_without_suffix():
    result_paths = from_benchmarks("_common", "result_paths")
    expected = (Path("out", "a.md"), Path("out", "a.json"))
    assert result_paths("out/a") == expected
    assert result_paths("out/a.md") == expected
    assert result_paths("out/a.json") == expected
    assert result_paths("out/a.v2") == (Path("out", "a.v2.md"), Path("out", "a.v2.json"))


@pytest.mark.parametrize("model, vendor", [("AMD EPYC 7B13", "amd"),
                                           ("Intel(R) Xeon(R) CPU @ 2.20GHz", "intel"),
                                           ("Apple M2", "other")])
def test_output_path_writes_the_cpu_vendor_for_cpu(monkeypatch, model, vendor):
    output_path = from_benchmarks("_common", "output_path")
    monkeypatch.setitem(output_path.__globals__, "_cpu_model", lambda: model)
    assert output_path("docs/benchmarks/a_<cpu>_cpu") == f"docs/benchmarks/a_{vendor}_cpu"
    assert output_path("results/a") == "results/a"


def test_output_path_refuses_a_page_named_for_the_other_cpu(monkeypatch):
    output_path = from_benchmarks("_common", "output_path")
    monkeypatch.setitem(output_path.__globals__, "_cpu_model", lambda: "AMD EPYC 7B13")
    assert output_path("docs/benchmarks/a_amd_cpu") == "docs/benchmarks/a_amd_cpu"
    message = "a_intel_cpu names an Intel CPU, but this machine's is 'AMD EPYC 7B13'; write <cpu>"
    with pytest.raises(argparse.ArgumentTypeError, match=message):
        output_path("docs/benchmarks/a_intel_cpu")


@pytest.mark.parametrize("vendor, cpu", sorted(from_benchmarks("_common", "CPU_VENDORS").items()))
def test_a_benchmark_page_named_for_a_cpu_ran_on_it(vendor, cpu):
    for path in (BENCHMARKS.parent / "docs" / "benchmarks").glob(f"*_{vendor}_cpu.json"):
        ran_on = json.loads(path.read_text())["machine"]["cpu"]
        assert cpu in ran_on, f"{path.name} ran on {ran_on}"


def test_a_script_refuses_an_output_for_another_cpu_before_it_fits(tmp_path):
    vendor = from_benchmarks("_common", "cpu_vendor")()
    other = "intel" if vendor == "amd" else "amd"
    done = run_script("aae_ablation.py", "--dataset", "digits", "--epochs", "1", "--labels",
                      "50", "--variants", "default", "--output", tmp_path / f"a_{other}_cpu")
    assert done.returncode == 2 and "argument --output/--out" in done.stderr
    assert "write <cpu> for its vendor" in done.stderr
    assert not [*tmp_path.iterdir()]


def test_label_draws_scores_each_draw_with_one_nearest_neighbour(tmp_path):
    out = tmp_path / "draws"
    done = run_script("label_draws.py", "--dataset", "digits", "--labels", "30", "--seeds", "3",
                      "--pair", "1", "8", "--output", out)
    assert done.returncode == 0, done.stderr
    result = json.loads(out.with_suffix(".json").read_text())
    assert [row["seed"] for row in result["rows"]] == [0, 1, 2]
    n_test = int(re.search(r"scored on the (\d+) test rows", result["notes"][0])[1])
    for row in result["rows"]:
        errors = round(row["test_error"] / 100 * n_test)
        assert 0 <= row["pair_errors"] <= errors
        counts = [int(pair.split()[1]) for pair in row["top_confusions"].split(", ")]
        assert counts == sorted(counts, reverse=True) and sum(counts) <= errors
    assert "| 1<->8 errors |" in out.with_suffix(".md").read_text()
    # the draws differ, so their scores do
    assert len({row["test_error"] for row in result["rows"]}) > 1


def test_aae_ablation_model_seed_and_warmup(tmp_path):
    out = tmp_path / "x"
    variant = "lr warming up linearly over the first epoch"
    done = run_script("aae_ablation.py", "--dataset", "digits", "--epochs", "2", "--labels",
                      "50", "--variants", variant, "--model-seed", "3", "--threads", "1",
                      "--output", out)
    assert done.returncode == 0, done.stderr
    result = json.loads(out.with_suffix(".json").read_text())
    assert [row["variant"] for row in result["rows"]] == [variant]
    assert result["notes"][0].endswith("the models seeded with 3 (initialization, batches)")
    # the same draw of labels, the models of seed 0: another fit
    done = run_script("aae_ablation.py", "--dataset", "digits", "--epochs", "2", "--labels",
                      "50", "--variants", variant, "--threads", "1", "--output", out)
    assert done.returncode == 0, done.stderr
    (seed0,) = json.loads(out.with_suffix(".json").read_text())["rows"]
    assert seed0["confidence"] != result["rows"][0]["confidence"]


def test_aae_ablation_warmup_raises_the_rate_over_the_first_epoch():
    _warmup = from_benchmarks("aae_ablation", "_warmup")
    from sklearn.datasets import load_digits
    from skorch.callbacks import Callback

    from skae import AAEClassifier
    from skae.datasets import make_semi_supervised

    class BatchLr(Callback):
        def initialize(self):
            self.seen = []
            return self

        def on_batch_begin(self, net, training=False, **kwargs):
            if training:
                self.seen.append(net.optimizer_.param_groups[0]["lr"])

    X, y = load_digits(return_X_y=True)
    X, y = X[:200] / 16.0, make_semi_supervised(y[:200], 20, random_state=0)
    clf = AAEClassifier(hidden_layer_sizes=(16,), discriminator_hidden_sizes=(8,),
                        max_epochs=2, batch_size=50, lr=0.01, lr_schedule="constant",
                        random_state=0, callbacks=[_warmup(2, 4), BatchLr()]).fit(X, y)
    (record,) = [cb for _, cb in clf.net_.callbacks_ if isinstance(cb, BatchLr)]  # fit's clone
    # 4 batches an epoch: from lr / 4 up by equal steps, lr from the second epoch on
    np.testing.assert_allclose(record.seen, [0.0025, 0.004375, 0.00625, 0.008125] + [0.01] * 4)


def test_aae_ablation_reconstruction_from_decay_adds_the_encoder_when_the_rate_decays(
        weights_per_epoch):
    from_decay = from_benchmarks("aae_ablation", "_reconstruction_from_decay")
    from sklearn.datasets import load_digits

    from skae import AAEClassifier
    from skae.datasets import make_semi_supervised

    X, y = load_digits(return_X_y=True)
    X, y = X[:200] / 16.0, make_semi_supervised(y[:200], 20, random_state=0)

    def fit(*callbacks):
        clf = AAEClassifier(hidden_layer_sizes=(16,), discriminator_hidden_sizes=(8,),
                            max_epochs=4, batch_size=50, reconstruction_lr_scale=0.0,
                            random_state=0, callbacks=[*callbacks, weights_per_epoch]).fit(X, y)
        record = dict(clf.net_.callbacks_)["WeightsPerEpoch"]
        return clf, [record.part(epoch, "encoder") for epoch in range(1, 5)]

    switched, seen = fit(from_decay(4, 4))
    kept, seen_kept = fit()
    # the linear schedule decays from epoch 4 of 4 on: up to it the same fit as scale 0
    for epoch in range(3):
        torch.testing.assert_close(seen[epoch], seen_kept[epoch], rtol=0, atol=0)
    assert not torch.equal(seen[3], seen_kept[3])
    recon = switched.net_.optimizer_recon_.param_groups
    assert len(recon) == 2 and recon[1]["lr"] == recon[0]["lr"] == 0.0005  # half of lr
    assert {id(p) for p in recon[1]["params"]} == {
        id(p) for p in switched.net_.module_.encoder.parameters()}
    assert len(kept.net_.optimizer_recon_.param_groups) == 1
