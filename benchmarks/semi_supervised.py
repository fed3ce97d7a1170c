"""Semi-supervised benchmark: skae's classifiers beside sklearn's baselines, on MNIST or digits.

Fits each model on the training set with all but ``--labels`` labels (a class-balanced draw per
seed) set to -1 and reports the test error, beside the published numbers. Examples::

    python benchmarks/semi_supervised.py --data-dir ../shared/data/mnist --labels 100 --seeds 3 \\
        --device cuda
    python benchmarks/semi_supervised.py --dataset digits --labels 100 --quiet

A long run that survives being stopped (the GAN's 50 epochs on a CPU, or a GPU session whose
commands are time-limited): train in chunks of 10 epochs, each saved, and run the same command
again to go on::

    python benchmarks/semi_supervised.py --data-dir ../shared/data/mnist --labels 100 \\
        --models GANClassifier --eval-every 10 --checkpoint-dir results/checkpoints
"""

import argparse
from pathlib import Path

from _common import BenchmarkError, add_io_arguments, command_line, machine_info, main_guard
from _common import add_set_argument, add_threads_argument, curve_text, print_table
from _common import result_paths, settings_text, write_results

from skae.benchmark import MODELS, run_semi_supervised, summarize

COLUMNS = [
    ("model", "model"), ("n_labeled", "labels"), ("seeds", "seeds"),
    ("test_error", "test error (%)", ".2f"), ("test_error_std", "std", ".2f"),
    ("published", "published (%)", ".2f"), ("fit_seconds", "fit time (s)", ".0f"),
]


def _title(args):
    dataset = "MNIST" if args.dataset == "mnist" else args.dataset
    labels = " and ".join(map(str, args.labels)) + " labels"
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    if seeds != [0]:
        labels += f", seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))}"
    epochs = f"{args.epochs} epochs" if args.epochs else "default epochs"
    return (f"{dataset}, {labels}: {', '.join(args.models)} "
            f"({epochs}, {args.device}), test error")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_io_arguments(parser, "results/semi_supervised")
    parser.add_argument("--labels", type=int, nargs="+", default=[100],
                        help="numbers of labeled training rows (default: 100)")
    parser.add_argument("--seeds", type=int, default=1, help="labeled draws per setting")
    parser.add_argument("--first-seed", type=int, default=0,
                        help="seed of the first draw (the others follow it)")
    parser.add_argument("--device", default="cpu", help="'cpu', 'cuda', 'cuda:1'")
    parser.add_argument("--epochs", type=int, default=None,
                        help="override the deep models' epochs (short CPU runs)")
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS),
                        metavar="MODEL", help=f"models to run (default: all of {list(MODELS)})")
    parser.add_argument("--eval-every", type=int, default=None, metavar="N",
                        help="also score skae's models on the test set every N epochs of the "
                        "same run (a learning curve in the results)")
    parser.add_argument("--checkpoint-dir", default=None, metavar="DIR",
                        help="train skae's models in chunks of --eval-every epochs, saved here "
                        "after each; the same command run again resumes (long CPU runs, "
                        "time-limited GPU sessions)")
    parser.add_argument("--no-cuda-graphs", action="store_true",
                        help="train skae's models with cuda_graphs=False (on a GPU: the step "
                        "launched kernel by kernel, to compare)")
    add_set_argument(parser, "a parameter for every model that has it (the others keep their "
                     "configuration)")
    add_threads_argument(parser)
    parser.add_argument("--quiet", action="store_true", help="no per-epoch progress")
    args = parser.parse_args()
    if args.data_dir is not None and not Path(args.data_dir).is_dir():
        raise BenchmarkError(f"MNIST folder {args.data_dir} does not exist (see --data-dir)")

    try:
        rows = run_semi_supervised(
            dataset=args.dataset, data_dir=args.data_dir, n_labeled=args.labels,
            seeds=args.seeds, device=args.device, models=args.models,
            max_epochs=args.epochs, quiet=args.quiet, first_seed=args.first_seed,
            eval_every=args.eval_every, checkpoint_dir=args.checkpoint_dir,
            cuda_graphs=not args.no_cuda_graphs, params=dict(args.set),
            callback=lambda r: print(
                f"{r['model']} labels={r['n_labeled']} seed={r['seed']}: "
                f"{r['test_error']:.2f}% in {r['fit_seconds']:.0f}s", flush=True),
        )
    except (FileNotFoundError, ValueError) as exc:
        raise BenchmarkError(str(exc)) from None
    summary = summarize(rows)
    print_table(summary, COLUMNS)
    notes = [f"dataset {args.dataset}; deep-model epochs: "
             f"{args.epochs if args.epochs else 'the documented defaults'}"]
    if args.set:
        notes.append("for every model that has them: " + settings_text(args.set))
    if args.no_cuda_graphs:
        notes.append("skae's models trained with cuda_graphs=False")
    if args.checkpoint_dir:
        notes.append(f"skae's models trained in chunks of {args.eval_every} epochs "
                     "(warm_start=True, fresh optimizers each chunk), checkpointed; fit time "
                     "summed over the chunks")
    notes += [f"{r['model']}, {r['n_labeled']} labels, seed {r['seed']}: "
              + curve_text(r["curve"], r.get("curve_seconds"))
              for r in rows if r.get("curve")]
    notes += [f"{r['model']}, {r['n_labeled']} labels, seed {r['seed']}: most frequent errors "
              + ", ".join(f"{true} read as {pred} ({count} times)"
                          for true, pred, count in r["confusions"])
              for r in rows if r["confusions"]]
    write_results(summary, COLUMNS, *result_paths(args.output), command_line(),
                  notes, title=_title(args),
                  machine=machine_info(args.device), extra={"runs": rows})


if __name__ == "__main__":
    main_guard(main)
