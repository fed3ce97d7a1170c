"""What skae's benchmark scripts share: data, the machine, tables and result files.

Each script builds a list of rows (dicts) and a list of columns, then calls
:func:`print_table` and :func:`write_results`. A column is a key of the rows, or a
``(key, title)`` or ``(key, title, format_spec)`` tuple.
"""

import argparse
import ast
import datetime
import json
import math
import os
import platform
import shlex
import sys
from pathlib import Path

import numpy as np

__all__ = [
    "BenchmarkError",
    "add_io_arguments",
    "add_set_argument",
    "add_threads_argument",
    "command_line",
    "cpu_vendor",
    "curve_text",
    "load_data",
    "machine_info",
    "main_guard",
    "output_path",
    "print_table",
    "result_paths",
    "settings_text",
    "write_results",
]


class BenchmarkError(Exception):
    """An error to report to the user in one line (no traceback)."""


def main_guard(main):
    """Run ``main()``; a :class:`BenchmarkError` becomes a one-line message and exit status 1."""
    try:
        return main()
    except BenchmarkError as exc:
        sys.exit(f"error: {exc}")


def parameter(text):
    """``NAME=VALUE`` from the command line (``--set``): VALUE a Python literal, or else a
    string."""
    name, sep, value = text.partition("=")
    if not sep or not name.isidentifier():
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    try:
        return name, ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return name, value


def add_set_argument(parser, what):
    """``--set NAME=VALUE``, repeatable, into ``args.set`` (a list of pairs): parameters of
    ``what`` (the help's words, e.g. "an AAEClassifier parameter for every variant")."""
    parser.add_argument("--set", type=parameter, action="append", default=[],
                        metavar="NAME=VALUE", help=f"{what}, e.g. --set lr_schedule=constant; "
                        "repeat for more")


class _TorchThreads(argparse.Action):
    """Sets torch's CPU threads when the option is given (at least 1)."""

    def __call__(self, parser, namespace, values, option_string=None):
        import torch

        if values < 1:
            parser.error(f"{option_string} must be at least 1, got {values}")
        setattr(namespace, self.dest, values)
        torch.set_num_threads(values)


def add_threads_argument(parser):
    """``--threads N``: torch's CPU threads, set as the arguments are parsed (torch's default
    when the option is left out)."""
    parser.add_argument("--threads", type=int, default=None, action=_TorchThreads,
                        help="torch CPU threads")


def add_ablation_arguments(parser, estimator, *, epochs, eval_every=None, eval_help):
    """Add the options the ablation scripts share: ``--labels``, ``--epochs`` (default
    ``epochs``), ``--eval-every`` (default ``eval_every``, help ``eval_help``), ``--seed``,
    ``--variants``, ``--set`` (parameters of ``estimator``, the help's words, e.g.
    "an AAEClassifier") and ``--threads``."""
    parser.add_argument("--labels", type=int, default=100, help="labeled training rows")
    parser.add_argument("--epochs", type=int, default=epochs,
                        help=f"epochs of each fit (default: {epochs})")
    parser.add_argument("--eval-every", type=int, default=eval_every, metavar="N",
                        help=eval_help)
    parser.add_argument("--seed", type=int, default=0, help="seed of the draw and the models")
    parser.add_argument("--variants", nargs="+", default=None, metavar="NAME",
                        help="run only these variants (default: all)")
    add_set_argument(parser, f"{estimator} parameter for every variant (a variant's own "
                     "settings take precedence)")
    add_threads_argument(parser)


def selected_variants(variants, names):
    """The entries of ``variants`` (tuples, each starting with its name) whose names are in
    ``names``, in their order; all of them when ``names`` is None or empty. An unknown name is a
    :class:`BenchmarkError`."""
    known = [variant[0] for variant in variants]
    unknown = sorted(set(names or ()) - set(known))
    if unknown:
        raise BenchmarkError(f"unknown variants {unknown}; choose from {known}")
    return [variant for variant in variants if not names or variant[0] in names]


def settings_text(settings):
    """``--set``'s pairs as ``"name=value, ..."`` (a note of the results)."""
    return ", ".join(f"{name}={value!r}" for name, value in settings)


def confusions_text(y_true, y_pred):
    """The three most frequent errors as ``"true>predicted count, ..."`` (a table cell)."""
    from skae.benchmark import top_confusions

    return ", ".join(f"{true}>{predicted} {count}"
                     for true, predicted, count in top_confusions(y_true, y_pred))


def command_line():
    """The command that is running, as it can be pasted into a shell."""
    return shlex.join([Path(sys.executable).name, *sys.argv])


def add_io_arguments(parser, output):
    """Add the options every script shares: ``--dataset``, ``--data-dir`` and ``--output``.

    ``output`` is the default results path (without suffix). The older spellings ``--data``
    and ``--out`` are kept as aliases, so the commands recorded in ``docs/benchmarks`` still run.
    """
    parser.add_argument("--dataset", "--data", dest="dataset", choices=("mnist", "digits"),
                        default="mnist",
                        help="data set (default: mnist; digits: scikit-learn's 8x8 digits)")
    parser.add_argument("--data-dir", default=None,
                        help="folder of the MNIST gzip IDX files (default: "
                        "../shared/data/mnist or $SKAE_MNIST_DIR)")
    parser.add_argument("--output", "--out", dest="output", default=output, type=output_path,
                        help="results path; its .md and .json versions are written "
                        f"(default: {output}, git-ignored); <cpu> in it becomes this "
                        "machine's CPU vendor (amd, intel), and a name for the other vendor's "
                        "CPU (_amd_cpu, _intel_cpu) is refused")


def output_path(text):
    """``--output``'s type: ``<cpu>`` becomes :func:`cpu_vendor`; a name for another CPU is refused.

    A page named ``..._intel_cpu`` must have run on an Intel CPU: refusing the name before a
    fit of an hour starts is cheaper than renaming its page after (tests/test_benchmark_scripts.py
    checks the pages).
    """
    vendor = cpu_vendor()
    text = str(text).replace("<cpu>", vendor)
    for other, name in CPU_VENDORS.items():
        if other != vendor and f"_{other}_cpu" in Path(text).name:
            raise argparse.ArgumentTypeError(
                f"{text} names an {name} CPU, but this machine's is {_cpu_model()!r}; "
                "write <cpu> for its vendor")
    return text


def result_paths(output):
    """``(markdown, json)`` paths of the results named ``output`` (with or without suffix)."""
    path = Path(output)
    if path.suffix in (".md", ".json"):
        path = path.with_suffix("")
    return path.with_name(path.name + ".md"), path.with_name(path.name + ".json")


def _cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


CPU_VENDORS = {"amd": "AMD", "intel": "Intel"}


def cpu_vendor():
    """``"amd"`` or ``"intel"`` (as page names say it), or ``"other"``: who made this CPU."""
    model = _cpu_model()
    return next((vendor for vendor, name in CPU_VENDORS.items() if name in model), "other")


def machine_info(device="cpu"):
    """A dict describing the machine: platform, CPU, cores, torch version and threads, GPU."""
    import torch

    info = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
    }
    if str(device).startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(torch.device(device))
    try:
        import skae

        info["skae"] = skae.__version__
    except ImportError:
        pass
    return info


def load_data(name, data_dir=None, *, rows=None, test=False, flatten=True):
    """``(X_train, y_train, X_test, y_test)`` float32 in [0, 1], or ``test=False``: no test part.

    ``name`` is ``"mnist"`` (the original files in ``data_dir``) or ``"digits"``
    (scikit-learn's 8x8 digits), split as :func:`skae.benchmark.load_split` does. ``rows``
    keeps the first rows of the training set. Raises :class:`BenchmarkError` when the data
    cannot be read.
    """
    from skae.benchmark import load_split

    if name not in ("mnist", "digits"):
        raise BenchmarkError(f"unknown data set {name!r}: use 'mnist' or 'digits'")
    if data_dir is not None and not Path(data_dir).is_dir():
        raise BenchmarkError(f"MNIST folder {data_dir} does not exist (see --data-dir)")
    try:
        X_train, y_train, X_test, y_test = load_split(name, data_dir, flatten=flatten)
    except (FileNotFoundError, ValueError) as exc:
        raise BenchmarkError(f"{exc} (see --data-dir)") from None
    if rows is not None:
        if rows > len(X_train):
            raise BenchmarkError(
                f"--rows {rows} but the {name} training set has {len(X_train)} rows"
            )
        X_train, y_train = X_train[:rows], y_train[:rows]
    return (X_train, y_train, X_test, y_test) if test else (X_train, y_train)


def square_images(*arrays):
    """Each array of rows of pixels (n, side * side) as square images (n, side, side)."""
    side = math.isqrt(arrays[0].shape[1])
    return tuple(X.reshape(-1, side, side) for X in arrays)


def _columns(columns):
    out = []
    for col in columns:
        col = (col,) if isinstance(col, str) else tuple(col)
        key = col[0]
        title = col[1] if len(col) > 1 else key
        fmt = col[2] if len(col) > 2 else None
        out.append((key, title, fmt))
    return out


def _cell(value, fmt):
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    if fmt:
        return format(value, fmt)
    if isinstance(value, (float, np.floating)):
        return f"{value:.4g}"
    return str(value)


def _cells(rows, columns):
    columns = _columns(columns)
    header = [title for _, title, _ in columns]
    body = [[_cell(row.get(key), fmt) for key, _, fmt in columns] for row in rows]
    return header, body


def curve_text(curve, seconds=None):
    """A learning curve ``[(epoch, test error %)]`` in words, for a results page's notes;
    ``seconds``, the training time up to each of its epochs, is written beside them."""
    times = [""] * len(curve) if seconds is None else [f" ({s:.0f} s of training)" for s in seconds]
    return "test error (%) after " + ", ".join(f"{epoch} epochs{time} {error:.2f}"
                                                for (epoch, error), time in zip(curve, times))


def print_table(rows, columns, file=None):
    """Print rows as an aligned text table (numbers right-aligned)."""
    header, body = _cells(rows, columns)
    widths = [max(len(c) for c in col) for col in zip(header, *body)]
    numeric = [all(_is_number(r[i]) for r in body if r[i]) for i in range(len(header))]

    def line(cells):
        return "  ".join(
            c.rjust(w) if num else c.ljust(w) for c, w, num in zip(cells, widths, numeric)
        ).rstrip()

    print(line(header), file=file)
    print("  ".join("-" * w for w in widths), file=file)
    for cells in body:
        print(line(cells), file=file)


def _is_number(text):
    try:
        float(text.rstrip("x%"))
    except ValueError:
        return False
    return True


def markdown_table(rows, columns):
    """Rows as a GitHub Markdown table (a string)."""
    header, body = _cells(rows, columns)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cells) + " |" for cells in body]
    return "\n".join(lines)


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    return value


def write_results(rows, columns, path_md, path_json, command, notes=(), *, title=None,
                  machine=None, extra=None):
    """Write the results as Markdown (``path_md``) and JSON (``path_json``); either may be None.

    Both record ``command``, the machine (``machine``, default :func:`machine_info`) and the
    date. ``notes`` (a string or a list of strings) are printed under the table; ``extra`` (a
    dict, e.g. the raw timings) goes into the JSON only. Folders are created as needed.
    """
    notes = [notes] if isinstance(notes, str) else list(notes)
    machine = machine_info() if machine is None else machine
    date = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    if path_json is not None:
        data = {
            "title": title,
            "command": command,
            "date": date,
            "machine": machine,
            "notes": notes,
            "columns": [key for key, _, _ in _columns(columns)],
            "rows": rows,
            **(extra or {}),
        }
        path_json = Path(path_json)
        path_json.parent.mkdir(parents=True, exist_ok=True)
        path_json.write_text(json.dumps(_jsonable(data), indent=1) + "\n")
    if path_md is not None:
        parts = [f"# {title}\n"] if title else []
        parts.append(markdown_table(rows, columns) + "\n")
        parts += [f"- {note}" for note in notes]
        if notes:
            parts.append("")
        parts.append("Command:\n\n```\n" + command + "\n```\n")
        parts.append(f"Date: {date}\n")
        parts.append("Machine: " + ", ".join(f"{k} {v}" for k, v in machine.items()) + "\n")
        path_md = Path(path_md)
        path_md.parent.mkdir(parents=True, exist_ok=True)
        path_md.write_text("\n".join(parts))
