"""Write small MNIST-style data sets in the official IDX format, laid out as torchvision expects."""

import gzip
import struct
from pathlib import Path

import torch

UBYTE = 0x08  # the IDX type code of unsigned bytes


def idx_bytes(array: torch.Tensor) -> bytes:
    """An uint8 tensor as an IDX file: zero, zero, type code, rank, big-endian sizes, then the data."""
    header = struct.pack(">BBBB", 0, 0, UBYTE, array.dim()) + struct.pack(f">{array.dim()}I", *array.shape)
    return header + array.contiguous().numpy().tobytes()


def write_idx(path: Path, array: torch.Tensor, packed: bool = False) -> Path:
    """Write ``array`` to ``path`` (or ``path.gz``, gzip-compressed, when packed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if packed:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(idx_bytes(array)))
    else:
        path.write_bytes(idx_bytes(array))
    return path


def fake_split(count: int, num_classes: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Random 28x28 uint8 images and labels in which every class occurs (count >= num_classes)."""
    labels = torch.arange(count) % num_classes
    labels = labels[torch.randperm(count, generator=generator)].to(torch.uint8)
    images = torch.randint(0, 256, (count, 28, 28), generator=generator, dtype=torch.uint8)
    return images, labels


def write_fake_dataset(
    root: Path,
    folder: str = "MNIST",
    num_train: int = 200,
    num_test: int = 50,
    num_classes: int = 10,
    packed: bool = False,
    prefix: str = "",
    test_part: str = "t10k",
) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Write train and test IDX files into ``root/folder/raw/`` and return what was written, by part."""
    generator = torch.Generator().manual_seed(0)
    raw = root / folder / "raw"
    written = {}
    for part, count in (("train", num_train), (test_part, num_test)):
        images, labels = fake_split(count, num_classes, generator)
        write_idx(raw / f"{prefix}{part}-images-idx3-ubyte", images, packed)
        write_idx(raw / f"{prefix}{part}-labels-idx1-ubyte", labels, packed)
        written[part] = (images, labels)
    return written


# option -> (torchvision folder, file prefix, name of the test part, number of classes)
LAYOUTS = {
    "mnist": ("MNIST", "", "t10k", 10),
    "fashion_mnist": ("FashionMNIST", "", "t10k", 10),
    "kmnist": ("KMNIST", "", "t10k", 10),
    "emnist": ("EMNIST", "emnist-balanced-", "test", 47),
}


def write_layout(root: Path, option: str, packed: bool = False) -> dict:
    """A small copy of data=<option>'s files (200 training and 60 test images); their pixels and labels."""
    folder, prefix, test_part, num_classes = LAYOUTS[option]
    written = write_fake_dataset(
        root,
        folder,
        num_train=200,
        num_test=60,
        num_classes=num_classes,
        packed=packed,
        prefix=prefix,
        test_part=test_part,
    )
    return {"train": written["train"], "test": written[test_part]}


def offline(data_dir: Path, *overrides: str) -> list[str]:
    """The overrides that read those files and never download."""
    return [f"data.data_dir={data_dir}", "data.download=false", "data.num_val=40", *overrides]


def missing_message(data_dir: Path) -> str:
    """What data=mnist says when its files are not in data_dir and it may not download them."""
    raw = data_dir / "MNIST" / "raw"
    return (
        f"MNIST files not found in {raw} (missing train-images-idx3-ubyte, train-labels-idx1-ubyte, "
        f"t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte) and data.download=false: set data.download=true "
        f"while online, or put the four IDX files (raw or .gz) in {raw}/."
    )
