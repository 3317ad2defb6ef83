"""The recipe of `trainlab-train experiment=mnist_cnn`, written by hand in plain PyTorch, run as its own process:

    python scripts/bench/hand_loop.py --data-dir DIR --seed S [--out times.json] [--started-at UNIX_TIME]
                                      [--num-val N]

What one would write without a template, against which the `whole` section of the benchmark times the template
as a whole process. The recipe is the template's, step for step: MNIST's IDX files from DIR/MNIST/raw/ (raw or
.gz), pixels scaled to [0, 1] and standardised with MNIST's mean and std; 5,000 validation images (`--num-val`,
as the template's data.num_val) carved from the training file by a permutation seeded with S, the rest trained
on in an order drawn afresh each epoch from S + epoch; the CNN of configs/model/cnn.yaml with the experiment's
widths, channels-last; Adam (peak lr 0.01, betas 0.7 and 0.9) under a one-cycle schedule (a quarter warming up,
no momentum cycling) stepped every batch over 2 epochs of batch 256; validation accuracy after each epoch, the
best epoch's weights kept in memory (a later epoch must do strictly better, as for the template's checkpoint);
the test file evaluated with them. torch.manual_seed(S) just before the net is built gives it the template's
initial weights, so that both train alike, step for step.

Imports torch and numpy only, never trainlab or Lightning. Prints the test accuracy and where the time went
(`--out` writes the same as JSON): startup (process start to the first training batch: the interpreter, the
imports, the data and the net), data (reading, standardising and splitting the files: part of startup), fit (the
training passes), validation, test, total (process start to the test's end). The process start is
`--started-at` (the caller's time.time() as it started this process), else the moment this file began to run.
"""

import time

BEGAN, BEGAN_AT = time.perf_counter(), time.time()  # before the imports: they are part of the start-up

import argparse  # noqa: E402
import copy  # noqa: E402
import gzip  # noqa: E402
import json  # noqa: E402
import struct  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

MNIST_MEAN, MNIST_STD = 0.1307, 0.3081  # torchvision's MNIST: pixel mean and std on the 0-1 scale
NUM_VAL, BATCH_SIZE, EPOCHS = 5000, 256, 2  # NUM_VAL: the default of --num-val
PEAK_LR, BETAS, PCT_START = 0.01, (0.7, 0.9), 0.25  # configs/scheduler/onecycle.yaml: a quarter warming up
Split = tuple[torch.Tensor, torch.Tensor]


def read_idx(path: Path) -> np.ndarray:
    """An IDX file of unsigned bytes (or its .gz): 0, 0, type 0x08, the rank, big-endian sizes, then the bytes."""
    packed = path.with_name(path.name + ".gz")
    if not path.is_file() and not packed.is_file():
        raise SystemExit(f"{path} not found (nor {packed.name}): put MNIST's four IDX files in {path.parent}/.")
    data = path.read_bytes() if path.is_file() else gzip.decompress(packed.read_bytes())
    if data[:3] != b"\x00\x00\x08":
        raise SystemExit(f"{path} is not an IDX file of unsigned bytes.")
    rank = data[3]
    shape = struct.unpack(f">{rank}I", data[4 : 4 + 4 * rank])
    return np.frombuffer(data, np.uint8, offset=4 + 4 * rank).reshape(shape)


def read_split(raw: Path, part: str) -> Split:
    """Standardised images (N, 1, 28, 28) and int64 labels of one part ("train" or "t10k")."""
    images = torch.from_numpy(read_idx(raw / f"{part}-images-idx3-ubyte").copy())
    labels = torch.from_numpy(read_idx(raw / f"{part}-labels-idx1-ubyte").astype(np.int64))
    return images.unsqueeze(1).float().div_(255).sub_(MNIST_MEAN).div_(MNIST_STD), labels


def read_data(data_dir: Path, seed: int, num_val: int = NUM_VAL) -> tuple[Split, Split, Split]:
    """(train, val, test): validation is the first `num_val` of a permutation of the training file, seeded."""
    raw = data_dir / "MNIST" / "raw"
    (images, labels), test = read_split(raw, "train"), read_split(raw, "t10k")
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))
    train, val = order[num_val:], order[:num_val]
    return (images[train], labels[train]), (images[val], labels[val]), test


def build_net() -> nn.Sequential:
    """Conv 5x5 -> 24, ReLU, max pool 2; conv 3x3 -> 32, ReLU, max pool 2 (no padding); 256 hidden, 10 classes."""
    return nn.Sequential(
        nn.Sequential(
            nn.Conv2d(1, 24, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(24, 32, 3), nn.ReLU(), nn.MaxPool2d(2)
        ),
        nn.Sequential(nn.Flatten(), nn.Linear(32 * 5 * 5, 256), nn.ReLU(), nn.Linear(256, 10)),
    )


def channels_last(images: torch.Tensor) -> torch.Tensor:
    return images.contiguous(memory_format=torch.channels_last)


def train_epoch(
    net: nn.Module,
    optimizer: torch.optim.Optimizer,
    schedule: torch.optim.lr_scheduler.LRScheduler,
    train: Split,
    order: torch.Tensor,
) -> None:
    """One pass over the training images in `order`, a step of the optimizer and of the schedule each batch."""
    net.train()
    images, labels = train
    for start in range(0, len(order), BATCH_SIZE):
        batch = order[start : start + BATCH_SIZE]
        loss = F.cross_entropy(net(channels_last(images[batch])), labels[batch])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()


@torch.inference_mode()
def accuracy(net: nn.Module, split: Split) -> float:
    """The share of `split` classified right, in batches of BATCH_SIZE."""
    net.eval()
    images, labels = split
    correct = sum(
        int((net(channels_last(images[i : i + BATCH_SIZE])).argmax(1) == labels[i : i + BATCH_SIZE]).sum())
        for i in range(0, len(images), BATCH_SIZE)
    )
    return correct / len(images)


def run(data_dir: Path, seed: int, started_at: float, num_val: int = NUM_VAL) -> dict[str, float]:
    """The whole recipe; the test accuracy and the seconds of each phase (see the module's docstring)."""
    before_start = BEGAN_AT - started_at  # the interpreter's own start, before this file ran
    clock = time.perf_counter
    data_began = clock()
    train, val, test = read_data(data_dir, seed, num_val)
    data_s = clock() - data_began
    torch.manual_seed(seed)
    net = build_net().to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(net.parameters(), lr=PEAK_LR, betas=BETAS)
    steps = EPOCHS * -(-len(train[0]) // BATCH_SIZE)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=PEAK_LR, total_steps=steps, pct_start=PCT_START, cycle_momentum=False
    )
    first_batch = clock()
    fit_s = validation_s = 0.0
    best_acc, best_weights = -1.0, None
    for epoch in range(EPOCHS):
        began = clock()
        order = torch.randperm(len(train[0]), generator=torch.Generator().manual_seed(seed + epoch))
        train_epoch(net, optimizer, schedule, train, order)
        validated = clock()
        val_acc = accuracy(net, val)
        if val_acc > best_acc:  # as the template's checkpoint: a later epoch must do strictly better
            best_acc, best_weights = val_acc, copy.deepcopy(net.state_dict())
        fit_s, validation_s = fit_s + validated - began, validation_s + clock() - validated
    tested = clock()
    net.load_state_dict(best_weights)
    test_acc = accuracy(net, test)
    end = clock()
    return {
        "test_acc": test_acc,
        "best_val_acc": best_acc,
        "startup_s": before_start + first_batch - BEGAN,
        "data_s": data_s,
        "fit_s": fit_s,
        "validation_s": validation_s,
        "test_s": end - tested,
        "total_s": before_start + end - BEGAN,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, required=True, help="the folder holding MNIST/raw/")
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--out", type=Path, help="write the accuracy and the times here, as JSON")
    parser.add_argument("--started-at", type=float, default=BEGAN_AT, help="time.time() when the process started")
    parser.add_argument("--num-val", type=int, default=NUM_VAL, help="validation images (%(default)s)")
    args = parser.parse_args()
    results = run(args.data_dir, args.seed, args.started_at, args.num_val)
    print(", ".join(f"{name}={value:.4f}" for name, value in results.items()))
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
