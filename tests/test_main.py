"""``python -m skae``: help, one-line errors, the demo and the benchmark wiring (tiny settings)."""

import json
import os
import subprocess
import sys

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402

from skae.__main__ import MNIST_FILES, build_parser, main  # noqa: E402

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "skae", *args], capture_output=True, text=True,
                          env=ENV, timeout=120)


def one_line_error(capsys, argv, match):
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("python -m skae")
    assert ": error: " in lines[0]
    assert match in lines[0]


# --- help -------------------------------------------------------------------------------------
def test_help_from_the_command_line():
    proc = run_cli("--help")
    assert proc.returncode == 0
    assert "demo" in proc.stdout and "benchmark" in proc.stdout


@pytest.mark.parametrize("command, options", [
    ("demo", ["--output", "--labels", "--epochs", "--seed", "--device", "--threads", "--quiet"]),
    ("benchmark", ["--dataset", "--data-dir", "--labels", "--device", "--seeds", "--epochs",
                   "--models", "--output", "--quiet"]),
])
def test_help_documents_every_option(capsys, command, options):
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for option in options:
        assert option in out
    # every option of the parser has a help text
    sub = build_parser()._subparsers._group_actions[0].choices[command]
    for action in sub._actions:
        assert action.help, action.option_strings


def test_no_command_prints_help(capsys):
    assert main([]) == 2
    assert "demo" in capsys.readouterr().out


# --- one-line errors --------------------------------------------------------------------------
def test_unknown_dataset(capsys):
    one_line_error(capsys, ["benchmark", "--dataset", "cifar10"], "unknown dataset 'cifar10'")


def test_missing_data_dir(capsys, tmp_path):
    missing = tmp_path / "nope"
    one_line_error(capsys, ["benchmark", "--data-dir", str(missing)], "no such folder")


def test_data_dir_without_mnist_files(capsys, tmp_path):
    (tmp_path / MNIST_FILES[0]).write_bytes(b"")
    one_line_error(capsys, ["benchmark", "--data-dir", str(tmp_path)], MNIST_FILES[1])


def test_unknown_model(capsys, tmp_path):
    pytest.importorskip("skae.benchmark")
    one_line_error(capsys, ["benchmark", "--dataset", "digits", "--models", "SVM"],
                   "unknown model 'SVM'")


@pytest.mark.parametrize("argv, match", [
    (["benchmark", "--labels", "ten"], "--labels"),
    (["benchmark", "--seeds", "0"], "--seeds"),
    (["demo", "--labels", "1.5"], "--labels"),
    (["demo", "--frobnicate"], "unrecognized arguments"),
    (["train"], "invalid choice"),
    (["demo", "--device", "tpu"], "--device"),
])
def test_bad_arguments(capsys, argv, match):
    one_line_error(capsys, argv, match)


def test_cuda_without_cuda(capsys, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    one_line_error(capsys, ["benchmark", "--dataset", "digits", "--device", "cuda"],
                   "CUDA is not available")


def test_errors_from_the_command_line_have_no_traceback(tmp_path):
    proc = run_cli("benchmark", "--dataset", "mnist", "--data-dir", str(tmp_path / "none"))
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


# --- demo -------------------------------------------------------------------------------------
def test_demo_prints_the_table_and_writes_figures(capsys, tmp_path):
    out_dir = tmp_path / "figures"
    assert main(["demo", "--epochs", "1", "--quiet", "--output", str(out_dir)]) == 0
    out = capsys.readouterr().out
    table = out[out.index("model "):]
    for name in ["PCA", "AutoEncoder", "VAE", "LabelSpreading", "SelfTrainingClassifier",
                 "MLPClassifier (labeled only)", "AAEClassifier", "accuracy", "recon. MSE"]:
        assert name in table
    assert str(out_dir.resolve()) in out
    figures = sorted(p.name for p in out_dir.iterdir())
    assert figures == sorted([
        "reconstructions_autoencoder.png", "reconstructions_vae.png", "samples_vae.png",
        "samples_aae_per_class.png", "codes_autoencoder.png", "codes_aae_style.png",
        "training_curves_vae.png", "training_curves_aae.png",
    ])
    for name in figures:
        assert (out_dir / name).read_bytes()[:4] == b"\x89PNG"


# --- benchmark --------------------------------------------------------------------------------
def test_benchmark_passes_every_option(capsys, monkeypatch, tmp_path):
    benchmark = pytest.importorskip("skae.benchmark")

    calls = {}

    def fake_run(**kwargs):
        calls.update(kwargs)
        return [{"model": "AAEClassifier", "dataset": "digits", "n_labeled": 50, "seed": 0,
                 "test_error": 10.0, "fit_seconds": 1.0, "epochs": 2, "published": None}]

    monkeypatch.setattr(benchmark, "run_semi_supervised", fake_run)
    argv = ["benchmark", "--dataset", "digits", "--labels", "50", "--seeds", "2", "--epochs",
            "2", "--models", "aae", "--quiet", "--eval-every", "1", "--checkpoint-dir",
            str(tmp_path / "ckpt"), "--output", str(tmp_path)]
    assert main(argv) == 0
    assert calls == {"dataset": "digits", "data_dir": None, "n_labeled": 50, "seeds": 2,
                     "device": "cpu", "models": ["AAEClassifier"], "max_epochs": 2,
                     "quiet": True, "eval_every": 1, "checkpoint_dir": str(tmp_path / "ckpt")}
    out = capsys.readouterr().out
    assert "AAEClassifier" in out
    md = (tmp_path / "semi_supervised_digits_50.md").read_text()
    assert f"command: `python -m skae {' '.join(argv)}`" in md
    assert "machine:" in md and "date:" in md and "AAEClassifier" in md
    data = json.loads((tmp_path / "semi_supervised_digits_50.json").read_text())
    assert data["rows"][0]["test_error"] == 10.0


def test_benchmark_on_digits_runs(capsys):
    pytest.importorskip("skae.benchmark")
    argv = ["benchmark", "--dataset", "digits", "--labels", "50", "--epochs", "1",
            "--models", "AAEClassifier", "MLPClassifier", "--quiet"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "AAEClassifier" in out and "MLPClassifier" in out
