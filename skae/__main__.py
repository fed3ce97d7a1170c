"""The command line: ``python -m skae demo`` and ``python -m skae benchmark``.

``demo`` needs no data and no GPU (scikit-learn's embedded digits, about a minute on a CPU);
``benchmark`` runs the semi-supervised benchmark (MNIST with 100 labels, as in the papers) and
prints its table beside the published numbers. ``python -m skae <command> --help`` lists every
option. Errors in the arguments or the data are reported in one line (exit status 2).
"""

import argparse
import json
import os
import shlex
import sys
from pathlib import Path

__all__ = ["main"]

DATASETS = ("mnist", "digits")
MNIST_FILES = (
    "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz",
)


class UsageError(Exception):
    """A mistake of the user's, reported in one line."""


class _Parser(argparse.ArgumentParser):
    """argparse, but its errors are one line naming the command and pointing to ``--help``."""

    def error(self, message):
        raise UsageError(f"{message} (see: {self.prog} --help)")


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


def _labels(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if value >= 1:
        if value != int(value):
            raise argparse.ArgumentTypeError(f"{text!r}: a number of labels is an integer")
        return int(value)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be positive")
    return value


def build_parser():
    """The argument parser of ``python -m skae``."""
    parser = _Parser(
        prog="python -m skae",
        description="skae: scikit-learn compatible autoencoders and semi-supervised deep "
        "classifiers. Commands: 'demo' (no data needed) and 'benchmark'.",
    )
    sub = parser.add_subparsers(dest="command", metavar="{demo,benchmark}", parser_class=_Parser)

    demo = sub.add_parser(
        "demo",
        help="fit AutoEncoder, VAE and AAEClassifier on scikit-learn's digits beside "
        "scikit-learn baselines; print a table and write figures (no data or GPU needed)",
        description="Fit an AutoEncoder, a VAE and an AAEClassifier (10 % of the labels, the "
        "rest -1) on scikit-learn's embedded 8x8 digits; print one table beside PCA, "
        "LabelSpreading, SelfTrainingClassifier and an MLP fitted on the labeled rows; "
        "write the figures (reconstructions, samples, codes, training curves) as PNG files "
        "to the output folder. About half a minute on one CPU thread.",
    )
    demo.add_argument("--output", default="skae_demo_output", metavar="DIR",
                      help="folder for the figures, created if needed "
                      "(default: ./skae_demo_output)")
    demo.add_argument("--labels", type=_labels, default=0.1, metavar="N",
                      help="labeled training rows: a fraction in (0, 1) or a number "
                      "(default: 0.1)")
    demo.add_argument("--epochs", type=_positive_int, default=None, metavar="N",
                      help="epochs of every skae model (default: 60 for the AutoEncoder, "
                      "100 for the VAE and the AAEClassifier)")
    demo.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    demo.add_argument("--device", default="cpu", help="torch device: cpu, cuda, cuda:1 "
                      "(default: cpu)")
    demo.add_argument("--threads", type=_positive_int, default=1, metavar="N",
                      help="torch CPU threads (default: 1, the fastest for these small nets)")
    demo.add_argument("--quiet", action="store_true",
                      help="no progress bars or messages; print the table only")

    bench = sub.add_parser(
        "benchmark",
        help="the semi-supervised benchmark (MNIST, 100 labels) beside the published numbers",
        description="Fit the semi-supervised classifiers on a labeled subset of the training "
        "images (the rest -1), report their test error over several seeds, and print the "
        "table beside the numbers published in the papers. Example: python -m skae "
        "benchmark --dataset mnist --data-dir DIR --labels 100 --device cuda --seeds 3",
    )
    bench.add_argument("--dataset", default="mnist", metavar="{mnist,digits}",
                       help="mnist (read from --data-dir) or digits (scikit-learn's 8x8 "
                       "digits, built in; a quick check) (default: mnist)")
    bench.add_argument("--data-dir", default=None, metavar="DIR",
                       help="folder holding the four MNIST .gz files "
                       f"({', '.join(MNIST_FILES)}); default: $SKAE_MNIST_DIR, else "
                       "../shared/data/mnist")
    bench.add_argument("--labels", type=_positive_int, default=100, metavar="N",
                       help="number of labeled training images, class-balanced "
                       "(default: 100)")
    bench.add_argument("--device", default="cpu",
                       help="torch device: cpu, cuda, cuda:1 (default: cpu)")
    bench.add_argument("--seeds", type=_positive_int, default=1, metavar="N",
                       help="repetitions with seeds 0..N-1 (a different labeled draw and "
                       "initialization each); the table gives mean and std (default: 1)")
    bench.add_argument("--epochs", type=_positive_int, default=None, metavar="N",
                       help="epochs of every model (default: each model's benchmark setting)")
    bench.add_argument("--models", nargs="+", default=None, metavar="MODEL",
                       help="models to run, by name or its start, any case: AAEClassifier, "
                       "GANClassifier, AutoEncoderClassifier, LabelSpreading, "
                       "SelfTrainingClassifier, MLPClassifier (default: all of them)")
    bench.add_argument("--eval-every", type=_positive_int, default=None, metavar="N",
                       help="also score skae's models on the test set every N epochs (a "
                       "learning curve in the JSON rows)")
    bench.add_argument("--checkpoint-dir", default=None, metavar="DIR",
                       help="train skae's models in chunks of --eval-every epochs, saved "
                       "here; the same command run again after a stop goes on from the "
                       "last chunk")
    bench.add_argument("--output", default=None, metavar="DIR",
                       help="also write the table (Markdown, with the command, machine and "
                       "date) and the rows (JSON) to this folder")
    bench.add_argument("--quiet", action="store_true",
                       help="no progress output; print the table only")
    return parser


def _check_device(device):
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise UsageError(f"--device {device!r} is not a torch device (cpu, cuda, cuda:1)")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"--device {device}: CUDA is not available on this machine")
    return device


def _run_demo(args):
    import torch
    from threadpoolctl import threadpool_limits

    from ._demo import run_demo

    _check_device(args.device)
    torch.set_num_threads(args.threads)
    with threadpool_limits(args.threads):  # numpy/scipy BLAS of the scikit-learn baselines
        run_demo(args.output, epochs=args.epochs, seed=args.seed, device=args.device,
                 quiet=args.quiet, labeled=args.labels)
    return 0


def _check_benchmark_data(args):
    """The one-line errors checked before anything heavy is imported."""
    if args.dataset not in DATASETS:
        raise UsageError(f"unknown dataset {args.dataset!r}: choose one of "
                         f"{', '.join(DATASETS)}")
    if args.data_dir is not None:
        folder = Path(args.data_dir).expanduser()
        if not folder.is_dir():
            raise UsageError(f"--data-dir {args.data_dir}: no such folder")
        if args.dataset == "mnist":
            missing = [name for name in MNIST_FILES if not (folder / name).is_file()]
            if missing:
                raise UsageError(f"--data-dir {args.data_dir} lacks the MNIST file(s) "
                                 f"{', '.join(missing)}")


def _write_benchmark(rows, table, args, folder):
    import datetime
    import platform

    import torch

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"semi_supervised_{args.dataset}_{args.labels}"
    command = shlex.join(["python", "-m", "skae", *args.argv])
    machine = {
        "platform": platform.platform(), "python": platform.python_version(),
        "cpu_count": os.cpu_count(), "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
    }
    if args.device.startswith("cuda"):
        machine["gpu"] = torch.cuda.get_device_name(torch.device(args.device))
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    md = [
        f"# Semi-supervised benchmark: {args.dataset}, {args.labels} labels",
        "",
        f"- command: `{command}`",
        f"- machine: {', '.join(f'{k} {v}' for k, v in machine.items())}",
        f"- date: {date}",
        "",
        table,
        "",
    ]
    (folder / f"{stem}.md").write_text("\n".join(md))
    (folder / f"{stem}.json").write_text(json.dumps(
        {"command": command, "machine": machine, "date": date, "rows": rows},
        indent=2, default=str,
    ))
    return folder / f"{stem}.md"


def _model_name(name, known):
    """``name`` exactly, or the one model whose name starts with it (any case)."""
    if name in known:
        return name
    matches = [m for m in known if m.lower().startswith(name.lower())]
    if len(matches) != 1:
        what = "ambiguous" if matches else "unknown"
        raise UsageError(f"{what} model {name!r}: choose from {', '.join(known)}")
    return matches[0]


def _run_benchmark(args):
    _check_benchmark_data(args)
    _check_device(args.device)
    try:
        from . import benchmark
    except ImportError as exc:
        raise UsageError(f"the benchmark is not available in this version of skae ({exc})")
    models = None if args.models is None else [_model_name(m, benchmark.MODELS)
                                               for m in args.models]
    try:
        rows = benchmark.run_semi_supervised(
            dataset=args.dataset, data_dir=args.data_dir, n_labeled=args.labels,
            seeds=args.seeds, device=args.device, models=models,
            max_epochs=args.epochs, quiet=args.quiet, eval_every=args.eval_every,
            checkpoint_dir=args.checkpoint_dir,
        )
    except FileNotFoundError as exc:
        raise UsageError(str(exc).splitlines()[0])
    table = benchmark.format_table(rows)
    print(table)
    if args.output is not None:
        path = _write_benchmark(rows, table, args, args.output)
        print(f"Results written to {path.resolve()} (and .json)")
    return 0


def main(argv=None):
    """Run ``python -m skae`` with ``argv`` (default: ``sys.argv[1:]``); returns the exit status.

    Examples
    --------
    >>> from skae.__main__ import main
    >>> main(["benchmark", "--dataset", "cifar"])  # the error goes to standard error
    2
    """
    parser = build_parser()
    command = None
    try:
        argv = sys.argv[1:] if argv is None else list(argv)
        args = parser.parse_args(argv)
        args.argv = argv
        command = args.command
        if command is None:
            parser.print_help()
            return 2
        if command == "demo":
            return _run_demo(args)
        return _run_benchmark(args)
    except UsageError as exc:
        prog = parser.prog if command is None else f"{parser.prog} {command}"
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
