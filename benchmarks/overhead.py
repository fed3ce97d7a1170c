"""How much slower is ``skae.AutoEncoder.fit`` than a hand-written torch loop of the same network?

Three variants train the same MLP autoencoder (``n_features -> hidden... -> n_components ->
reversed(hidden)... -> n_features``, ReLU, MSE loss, Adam) on the same rows, for the same
epochs and batch size, shuffling every epoch:

- ``hand (Adam)``: a plain loop with torch's default Adam: the data as one tensor in memory,
  batches sliced from a permuted index;
- ``hand (Adam fused)``: the same loop with ``Adam(fused=True)``, what skae uses itself;
- ``skae``: ``AutoEncoder(backbone="mlp", ...).fit(X)`` on the numpy array.

Both hand loops and skae flush denormal floats during training (skae does it in ``fit``).
Each timing covers everything from the numpy array to a trained model (building the network,
the optimizer, the tensors, validation for skae). The runs of the variants are interleaved,
their order rotated each repeat, after one untimed warm-up of each; the ratio reported is the
median over repeats of ``skae time / hand time`` within a repeat.

Example::

    python benchmarks/overhead.py --rows 20000 --epochs 3 --batch-size 128 512 --repeats 5 \\
        --output docs/benchmarks/overhead_cpu
"""

import argparse
import statistics
import sys
import time

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from _common import (
    BenchmarkError,
    add_io_arguments,
    command_line,
    load_data,
    machine_info,
    main_guard,
    print_table,
    result_paths,
    write_results,
)

VARIANTS = ("hand (Adam)", "hand (Adam fused)", "skae")


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _mlp_autoencoder(n_features, hidden, n_components):
    sizes = [n_features, *hidden, n_components, *reversed(hidden), n_features]
    layers = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(n_in, n_out))
        if i < len(sizes) - 2 and i != len(hidden):  # no activation on the code or the output
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def fit_hand(X, cfg, seed, fused):
    """A hand-written training loop. Returns ``(wall_s, cpu_s, loop_wall_s, last_epoch_loss)``."""
    device = cfg["device"]
    start, cpu_start = time.perf_counter(), time.process_time()
    torch.manual_seed(seed)
    model = _mlp_autoencoder(X.shape[1], cfg["hidden"], cfg["n_components"]).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg["lr"], fused=fused or None)
    X_t = torch.from_numpy(X).to(device)
    generator = torch.Generator(device=device).manual_seed(seed)
    n, batch_size = len(X_t), cfg["batch_size"]
    torch.set_flush_denormal(True)
    try:
        loop_start = time.perf_counter()
        model.train()
        for _ in range(cfg["epochs"]):
            order = torch.randperm(n, device=device, generator=generator)
            total = torch.zeros((), device=device)
            for i in range(0, n, batch_size):
                xb = X_t[order[i:i + batch_size]]
                optimizer.zero_grad(set_to_none=True)
                loss = F.mse_loss(model(xb), xb)
                loss.backward()
                optimizer.step()
                total += loss.detach() * len(xb)
            last_loss = float(total) / n  # one read-back an epoch, as skae does
        _sync(device)
        end, cpu_end = time.perf_counter(), time.process_time()
    finally:
        torch.set_flush_denormal(False)
    return end - start, cpu_end - cpu_start, end - loop_start, last_loss


def fit_skae(X, cfg, seed):
    """``skae.AutoEncoder.fit``. Returns ``(wall_s, cpu_s, loop_wall_s, last_epoch_loss)``."""
    from skae import AutoEncoder

    ae = AutoEncoder(
        n_components=cfg["n_components"], hidden_layer_sizes=cfg["hidden"], backbone="mlp",
        max_epochs=cfg["epochs"], batch_size=cfg["batch_size"], lr=cfg["lr"],
        device=str(cfg["device"]), random_state=seed,
    )
    start, cpu_start = time.perf_counter(), time.process_time()
    ae.fit(X)
    _sync(cfg["device"])
    end, cpu_end = time.perf_counter(), time.process_time()
    history = ae.net_.history
    # "recon_loss" is the epoch's size-weighted mean batch loss, like the hand loops' value
    loop = float(sum(history[:, "dur"]))
    return end - start, cpu_end - cpu_start, loop, float(history[-1, "recon_loss"])


def run_variant(name, X, cfg, seed):
    if name == "skae":
        return fit_skae(X, cfg, seed)
    return fit_hand(X, cfg, seed, fused=name.endswith("fused)"))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description="Time skae.AutoEncoder.fit against a hand-written torch loop of the same "
        "MLP autoencoder (interleaved repeats, median ratio).",
    )
    parser.add_argument("--device", default="cpu", help="torch device: cpu or cuda (default: cpu)")
    add_io_arguments(parser, "results/overhead_<device>")
    parser.add_argument("--rows", type=int, default=20000,
                        help="training rows (default: 20000; digits has 1437)")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per fit (default: 3)")
    parser.add_argument("--batch-size", type=int, nargs="+", default=[128, 512],
                        help="one or more batch sizes (default: 128 512)")
    parser.add_argument("--repeats", type=int, default=5,
                        help="timed runs of each variant (default: 5)")
    parser.add_argument("--hidden", default="512,256",
                        help="encoder hidden sizes, comma-separated; the decoder mirrors them "
                        "(default: 512,256)")
    parser.add_argument("--n-components", type=int, default=32, help="code size (default: 32)")
    parser.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (default: 1e-3)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch.set_num_threads (default: 1)")
    args = parser.parse_args(argv)
    for name in ("rows", "epochs", "repeats", "threads", "n_components"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if min(args.batch_size) < 1:
        parser.error("--batch-size must be at least 1")
    try:
        args.hidden = tuple(int(h) for h in args.hidden.split(",") if h.strip())
    except ValueError:
        parser.error(f"--hidden must be comma-separated integers, got {args.hidden!r}")
    return args


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    try:
        device = torch.device(args.device)
    except RuntimeError:
        raise BenchmarkError(f"--device {args.device!r} is not a torch device") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise BenchmarkError("--device cuda but CUDA is not available on this machine")
    X, _ = load_data(args.dataset, args.data_dir,
                     rows=args.rows if args.dataset == "mnist" else None)
    X = np.ascontiguousarray(X[: args.rows], dtype=np.float32)
    n = len(X)
    hidden = args.hidden
    net = "-".join(map(str, [X.shape[1], *hidden, args.n_components, *hidden[::-1], X.shape[1]]))
    print(f"{args.dataset}: {n} rows x {X.shape[1]} features; network {net}; "
          f"{args.epochs} epochs; {args.repeats} repeats; device {device}; "
          f"{torch.get_num_threads()} thread(s)", flush=True)

    def config(batch_size, epochs=args.epochs):
        return dict(device=device, hidden=hidden, n_components=args.n_components, lr=args.lr,
                    epochs=epochs, batch_size=batch_size)

    # warm-up: first calls pay for allocator growth, kernel selection, imports
    for batch_size in args.batch_size:
        for name in VARIANTS:
            run_variant(name, X[: min(n, 4 * batch_size)], config(batch_size, epochs=1), 0)

    times = {(bs, v): [] for bs in args.batch_size for v in VARIANTS}
    wall_start = time.perf_counter()
    for r in range(args.repeats):
        for batch_size in args.batch_size:
            order = VARIANTS[r % 3:] + VARIANTS[: r % 3]
            for name in order:
                wall, cpu, loop, loss = run_variant(name, X, config(batch_size), seed=r)
                times[batch_size, name].append(
                    {"wall_s": wall, "cpu_s": cpu, "loop_wall_s": loop, "loss": loss}
                )
                print(f"  repeat {r + 1}/{args.repeats} batch {batch_size:>4} {name:<18} "
                      f"{wall:7.3f} s wall, {cpu:7.3f} s CPU (epochs {loop:.3f} s wall), "
                      f"last-epoch loss {loss:.4f}", flush=True)
    total_wall = time.perf_counter() - wall_start

    def median(runs, key):
        return statistics.median(run[key] for run in runs)

    rows = []
    for batch_size in args.batch_size:
        n_batches = args.epochs * -(-n // batch_size)
        skae_runs = times[batch_size, "skae"]
        for name in VARIANTS:
            runs = times[batch_size, name]
            row = {
                "batch_size": batch_size,
                "variant": name,
                "wall_s": median(runs, "wall_s"),
                "cpu_s": median(runs, "cpu_s"),
                "cpu_us_per_batch": 1e6 * median(runs, "cpu_s") / n_batches,
                "outside_epochs_s": statistics.median(
                    run["wall_s"] - run["loop_wall_s"] for run in runs
                ),
                "loss": median(runs, "loss"),
            }
            if name != "skae":
                for key in ("wall_s", "cpu_s"):
                    row[f"skae_ratio_{key[:-2]}"] = statistics.median(
                        s[key] / h[key] for s, h in zip(skae_runs, runs)
                    )
            rows.append(row)
    columns = [
        ("batch_size", "batch"), ("variant", "variant"),
        ("wall_s", "fit s wall", ".3f"), ("cpu_s", "fit s CPU", ".3f"),
        ("cpu_us_per_batch", "CPU µs/batch", ".0f"),
        ("outside_epochs_s", "s outside epochs", ".3f"),
        ("loss", "last-epoch loss", ".4f"),
        ("skae_ratio_wall", "skae ÷ this (wall)", ".3f"),
        ("skae_ratio_cpu", "skae ÷ this (CPU)", ".3f"),
    ]
    print()
    print_table(rows, columns)
    print(f"\ntimed runs: {total_wall:.1f} s wall")

    notes = [
        f"Data: {args.dataset}, {n} rows x {X.shape[1]} features (float32 in [0, 1]); network "
        f"{net} (ReLU, MSE, Adam lr={args.lr}); {args.epochs} epochs; device {device}; "
        f"{torch.get_num_threads()} torch thread(s).",
        f"{args.repeats} interleaved repeats per variant (order rotated each repeat) after one "
        "untimed warm-up each; every number is a median over repeats. `fit s`: from the numpy "
        "array to a trained model, wall-clock and CPU time of the process (CPU time does not "
        "count the time other processes hold the core, so it is the steadier measure on a "
        "shared machine). `CPU µs/batch`: fit CPU time / batches. `s outside epochs`: fit wall "
        "time minus the epochs' wall time (for skae, skorch's per-epoch `dur`): validation, "
        "building the network and the tensors.",
        "`skae ÷ this`: median over repeats of skae's time divided by this variant's time in "
        "the same repeat (skae trains with `Adam(fused=True)`, so the fused hand loop is the "
        "like-for-like comparison). Both hand loops also flush denormals, as skae does.",
        f"Timed runs took {total_wall:.0f} s wall in all.",
    ]
    path_md, path_json = result_paths(args.output.replace("<device>", device.type))
    raw = {f"batch {bs} / {v}": runs for (bs, v), runs in times.items()}
    write_results(
        rows, columns, path_md, path_json, command_line(), notes,
        title=f"skae.AutoEncoder.fit against a hand-written torch loop: {net}, {device.type}",
        machine=machine_info(device),
        extra={"config": {**vars(args), "rows": n}, "runs": raw, "wall_s": total_wall},
    )
    print(f"wrote {path_md} and {path_json}")


if __name__ == "__main__":
    sys.exit(main_guard(main))
