"""How hard is each draw of labels: a 1-nearest-neighbour classifier on the labeled rows alone.

The benchmarks draw ``--labels`` class-balanced labels per seed
(:func:`skae.datasets.make_semi_supervised`). Some draws are harder than others: when the
few labeled rows of two similar classes (MNIST's 4s and 9s) are untypical of them, the
semi-supervised models can split those classes across each other. This script scores, for
each seed's draw, a 1-nearest-neighbour classifier (raw features, Euclidean) fitted on the
labeled rows alone, and lists its most frequent errors: a cheap look at each draw before
any model is fitted.

Example::

    python benchmarks/label_draws.py --data-dir ../shared/data/mnist --labels 100 --seeds 8
"""

import argparse

import numpy as np
from _common import add_io_arguments, command_line, confusions_text, load_data, machine_info
from _common import main_guard, print_table, result_paths, write_results
from sklearn.neighbors import KNeighborsClassifier

from skae.datasets import make_semi_supervised


def columns(pair):
    """The table's columns, the pair's errors named by its classes."""
    return [("seed", "seed"), ("test_error", "1-NN test error (%)", ".2f"),
            ("pair_errors", f"{pair[0]}<->{pair[1]} errors"),
            ("top_confusions", "top confusions")]


def score_draw(X, y, X_test, y_test, n_labeled, seed, pair):
    """The 1-NN test error (%), errors between the classes of ``pair`` and top confusions."""
    y_semi = make_semi_supervised(y, n_labeled, random_state=seed)
    labeled = y_semi != -1
    pred = KNeighborsClassifier(n_neighbors=1).fit(X[labeled], y_semi[labeled]).predict(X_test)
    a, b = pair
    return {
        "seed": seed,
        "test_error": 100.0 * float(np.mean(pred != y_test)),
        "pair_errors": int(np.sum((y_test == a) & (pred == b)) +
                           np.sum((y_test == b) & (pred == a))),
        "top_confusions": confusions_text(y_test, pred),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_io_arguments(parser, "results/label_draws")
    parser.add_argument("--labels", type=int, default=100, help="labeled training rows")
    parser.add_argument("--seeds", type=int, default=10, help="draws scored: seeds 0 to N-1")
    parser.add_argument("--pair", type=int, nargs=2, default=(4, 9), metavar=("A", "B"),
                        help="two classes whose errors into each other are counted "
                        "(default: 4 9)")
    args = parser.parse_args()
    X, y, X_test, y_test = load_data(args.dataset, args.data_dir, test=True)
    rows = [score_draw(X, y, X_test, y_test, args.labels, seed, args.pair)
            for seed in range(args.seeds)]
    print_table(rows, columns(args.pair))
    data = "MNIST" if args.dataset == "mnist" else args.dataset
    notes = [f"1-nearest-neighbour (Euclidean, raw features) fitted on the {args.labels} "
             f"labeled rows of each seed's class-balanced draw from the {len(X)} training rows "
             f"(skae.datasets.make_semi_supervised); scored on the {len(X_test)} test rows"]
    write_results(rows, columns(args.pair), *result_paths(args.output), command_line(), notes,
                  title=f"Draws of {args.labels} labels, {data}: 1-NN on the labeled rows",
                  machine=machine_info())


if __name__ == "__main__":
    main_guard(main)
