"""The scripts of ``benchmarks/`` run end to end on the embedded digits (tiny settings)."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


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
                      "Adam eps=1e-4", "--threads", "1", "--output", out)
    assert done.returncode == 0, done.stderr
    result = json.loads(out.with_suffix(".json").read_text())
    assert [row["variant"] for row in result["rows"]] == [
        "default", "data_init=True", "Adam eps=1e-4",
        "lr decaying linearly to 0 over the second half"]
    for row in result["rows"]:
        assert row["epochs"] == 2
        assert 0.0 <= row["test_error"] <= 100.0 and 0.0 <= row["test_error_last"] <= 100.0
    text = out.with_suffix(".md").read_text()
    # the learning curve: both scores after each epoch, the last one as in the table
    assert "default: test error (%) averaged / last weights after 1 epochs " in text
    last = result["rows"][0]
    assert f"2 epochs {last['test_error']:.2f} / {last['test_error_last']:.2f}" in text
    bad = run_script("gan_ablation.py", "--dataset", "digits", "--variants", "dropout",
                     "--output", tmp_path / "x")
    assert bad.returncode == 1 and "unknown variants ['dropout']" in bad.stderr


def test_semi_supervised_script_on_digits(tmp_path):
    out = tmp_path / "semi"
    done = run_script("semi_supervised.py", "--dataset", "digits", "--labels", "50",
                      "--epochs", "2", "--eval-every", "1", "--quiet", "--models",
                      "AAEClassifier", "LabelSpreading", "--no-cuda-graphs", "--output", out)
    assert done.returncode == 0, done.stderr
    rows = json.loads(out.with_suffix(".json").read_text())["rows"]
    assert {row["model"] for row in rows} == {"AAEClassifier", "LabelSpreading"}
    text = out.with_suffix(".md").read_text()
    assert "AAEClassifier, 50 labels, seed 0: test error (%) after 1 epochs " in text
    assert "trained with cuda_graphs=False" in text


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
    sys.path.insert(0, str(BENCHMARKS))
    try:
        from _common import result_paths
    finally:
        sys.path.remove(str(BENCHMARKS))
    expected = (Path("out", "a.md"), Path("out", "a.json"))
    assert result_paths("out/a") == expected
    assert result_paths("out/a.md") == expected
    assert result_paths("out/a.json") == expected
    assert result_paths("out/a.v2") == (Path("out", "a.v2.md"), Path("out", "a.v2.json"))
