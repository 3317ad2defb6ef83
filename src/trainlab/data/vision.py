"""torchvision's MNIST family (MNIST, FashionMNIST, KMNIST, EMNIST) as in-memory tensors.

torchvision reads the IDX files into one uint8 tensor per split; this module turns that into
normalised float images once, so batches are slices of a tensor (no per-sample PIL images).
"""

import gzip
import logging
import math
import os
import shutil
import struct
import tempfile
import zlib
from pathlib import Path
from typing import Any
from urllib.error import URLError

import torch
import torchvision

from trainlab.data.tensor_datamodule import Split, TensorDataModule

log = logging.getLogger(__name__)

# Pixel mean and std (on the 0-1 scale) of each training set, the usual normalisation constants.
STANDARD_MEAN_STD = {
    "MNIST": (0.1307, 0.3081),
    "FashionMNIST": (0.2860, 0.3530),
    "KMNIST": (0.1918, 0.3483),
    "EMNIST": (0.1751, 0.3332),  # the balanced split; the other splits are close
}


class MNISTFamilyDataModule(TensorDataModule):
    """One of torchvision's 28x28 grey-scale datasets, read from ``<data_dir>/<dataset>/raw/``.

    The official test split is the test set; validation is carved from the training split
    (or is one fold of it, see TensorDataModule). ``augment=True`` moves every training batch by
    a small random affine transform on the device, after the batch has been transferred.
    """

    def __init__(
        self,
        dataset: str = "MNIST",
        data_dir: str = "data",
        download: bool = True,
        split: str | None = None,
        input_shape: tuple[int, ...] = (1, 28, 28),
        num_classes: int = 10,
        num_val: int = 5000,
        mean: float | None = None,
        std: float | None = None,
        augment: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(input_shape, num_val=num_val, **kwargs)
        if dataset not in STANDARD_MEAN_STD:
            raise ValueError(f"data.dataset={dataset} is not one of {', '.join(STANDARD_MEAN_STD)}; pick one of them.")
        if (dataset == "EMNIST") != (split is not None):
            raise ValueError(
                f"data.split={split} does not fit data.dataset={dataset}: EMNIST needs a split "
                "(byclass, bymerge, balanced, letters, digits, mnist) and the other datasets take none."
            )
        self.dataset = dataset
        self.data_dir = Path(data_dir)
        self.download = download
        self.split = split
        self.num_classes = num_classes
        standard_mean, standard_std = STANDARD_MEAN_STD[dataset]
        self.mean = standard_mean if mean is None else mean
        self.std = standard_std if std is None else std
        self.augment = augment
        self._augmentation = None
        if not download:
            self.require_files()  # fail before any model or trainer is built
        elif self.missing_files():
            self.require_writable_raw_folder()  # a download that could not be saved fails now, not after building

    # --- files ------------------------------------------------------------------------------------
    @property
    def raw_folder(self) -> Path:
        """Where torchvision keeps this dataset's IDX files."""
        return self.data_dir / self.dataset / "raw"

    def file_names(self) -> list[str]:
        """The four IDX files torchvision reads, as torchvision names them."""
        if self.dataset == "EMNIST":
            return [
                f"emnist-{self.split}-{part}-{kind}-ubyte"
                for part in ("train", "test")
                for kind in ("images-idx3", "labels-idx1")
            ]
        return [f"{part}-{kind}-ubyte" for part in ("train", "t10k") for kind in ("images-idx3", "labels-idx1")]

    def missing_files(self) -> list[str]:
        """The IDX files that are neither in the raw folder nor there as .gz (those are unpacked)."""
        missing = []
        for name in self.file_names():
            path, packed = self.raw_folder / name, self.raw_folder / f"{name}.gz"
            if not path.is_file() and packed.is_file():
                unpack(packed, path)  # torchvision reads the unpacked file; the .gz is kept
            if not path.is_file():
                missing.append(name)
        return missing

    def require_files(self) -> None:
        missing = self.missing_files()
        if missing:
            raise ValueError(
                f"{self.dataset} files not found in {self.raw_folder} (missing {', '.join(missing)}) and "
                f"data.download=false: set data.download=true while online, or put the four IDX files "
                f"(raw or .gz) in {self.raw_folder}/."
            )

    def require_writable_raw_folder(self) -> None:
        """Make the raw folder and write a scratch file there, as the download will: a read-only mount or a folder
        without write permission says so by name, before anything is built."""
        try:
            self.raw_folder.mkdir(parents=True, exist_ok=True)
            tempfile.TemporaryFile(dir=self.raw_folder).close()
        except OSError as error:
            raise ValueError(
                f"{self.dataset} must be downloaded into {self.raw_folder}, which cannot be written ({error.strerror}); "
                f"set data.data_dir to a folder you can write, or put the four IDX files (raw or .gz) there and set "
                f"data.download=false."
            ) from None

    # --- Lightning hooks --------------------------------------------------------------------------
    def prepare_data(self) -> None:
        """Download the files once (on one process per machine) when they are missing and download is on."""
        if not self.download or not self.missing_files():
            return
        log.info("Downloading %s into %s", self.dataset, self.raw_folder)
        try:
            self.torchvision_dataset(train=True, download=True)
        except (RuntimeError, URLError, OSError) as error:
            # torchvision lists every mirror it tried; the last line holds the underlying cause.
            lines = [line.strip() for line in str(error).splitlines() if line.strip()]
            reason = lines[-1] if lines else type(error).__name__
            raise ValueError(
                f"Downloading {self.dataset} into {self.raw_folder} failed ({reason}); check the internet "
                f"connection, or put the four IDX files (raw or .gz) there and set data.download=false."
            ) from None

    def load_train_pool(self) -> Split:
        return self.load_split(train=True)

    def load_test(self) -> Split:
        return self.load_split(train=False)

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """Augment training batches (not validation or test) on the device they were moved to."""
        if not self.augment or self.trainer is None or not self.trainer.training:
            return batch
        images, targets = batch
        return self.augmentation()(images), targets

    # --- decoding ---------------------------------------------------------------------------------
    def torchvision_dataset(self, train: bool, download: bool = False) -> torchvision.datasets.MNIST:
        dataset_class = getattr(torchvision.datasets, self.dataset)
        options = {"split": self.split} if self.split is not None else {}
        return dataset_class(root=str(self.data_dir), train=train, download=download, **options)

    def load_split(self, train: bool) -> Split:
        """One split decoded by torchvision, as normalised float images (N, 1, 28, 28) and int64 labels."""
        self.require_files()
        images_file, labels_file = (self.raw_folder / name for name in self.file_names()[0 if train else 2 :][:2])
        count, labels_count = check_idx(images_file, dimensions=3), check_idx(labels_file, dimensions=1)
        if count != labels_count:
            raise ValueError(
                f"{images_file} holds {count} images but {labels_file} holds {labels_count} labels: the two files "
                f"come from different copies; {REFETCH}."
            )
        dataset = self.torchvision_dataset(train=train)
        pixels, labels = dataset.data, dataset.targets.long()
        if self.dataset == "EMNIST":
            pixels = pixels.transpose(1, 2)  # EMNIST's files store each image transposed
        images = pixels.unsqueeze(1).float().div_(255).sub_(self.mean).div_(self.std)
        self.check_labels(labels, "training" if train else "test")
        return images, labels

    def pixel_normalization(self) -> tuple[float, float]:
        return self.mean, self.std

    def check_labels(self, labels: torch.Tensor, split: str) -> None:
        largest = int(labels.max()) if len(labels) else -1
        if largest >= self.num_classes:
            raise ValueError(
                f"{self.dataset} {split} labels go up to {largest} but data.num_classes={self.num_classes}; "
                f"set data.num_classes={largest + 1}."
            )

    def augmentation(self) -> torch.nn.Module:
        """A small random affine move; torchvision draws one move per call, so one per batch."""
        if self._augmentation is None:
            from torchvision.transforms import v2

            background = (0.0 - self.mean) / self.std  # the value of a black pixel after normalisation
            self._augmentation = v2.RandomAffine(degrees=10, translate=(0.1, 0.1), scale=(0.9, 1.1), fill=background)
        return self._augmentation


# The fix for any damaged data file.
REFETCH = "copy the file again, or delete it and run once with data.download=true to download it again"


def unpack(packed: Path, target: Path) -> None:
    """Write the contents of a .gz file to ``target``, atomically, so parallel processes never see half a file."""
    try:
        handle, partial = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    except OSError as error:  # a read-only data folder holding only the .gz files
        raise ValueError(
            f"{packed} must be unpacked beside it, but {target.parent} cannot be written ({error.strerror}); unpack "
            "it there (gunzip -k), or copy the files to a folder you can write and set data.data_dir to it."
        ) from None
    try:
        with gzip.open(packed, "rb") as source, os.fdopen(handle, "wb") as sink:
            shutil.copyfileobj(source, sink)
        os.replace(partial, target)
    except (OSError, EOFError, zlib.error) as error:  # not gzip, cut short, or corrupted
        raise ValueError(f"{packed} does not decompress ({error}); {REFETCH}.") from None
    finally:
        Path(partial).unlink(missing_ok=True)


def check_idx(path: Path, dimensions: int) -> int:
    """The number of items in an IDX file of unsigned bytes, once its header and length are found whole.

    The format: two zero bytes, the type code 0x08 (unsigned byte), the number of dimensions, one
    big-endian 32-bit size per dimension, then the data.
    """
    with open(path, "rb") as file:
        header = file.read(4 + 4 * dimensions)
    if len(header) < 4 or header[:3] != b"\x00\x00\x08" or header[3] != dimensions:
        raise ValueError(
            f"{path} is not an IDX file of {dimensions}-dimensional unsigned bytes (it starts with "
            f"{header[:4].hex() or 'nothing'}, not 000008{dimensions:02x}); {REFETCH}."
        )
    if len(header) < 4 + 4 * dimensions:
        raise ValueError(f"{path} is cut short inside its header; {REFETCH}.")
    sizes = struct.unpack(f">{dimensions}I", header[4:])
    expected, actual = len(header) + math.prod(sizes), path.stat().st_size
    if actual != expected:
        kind = "cut short" if actual < expected else "longer than its header says"
        raise ValueError(f"{path} is {kind}: {actual} bytes where its header promises {expected}; {REFETCH}.")
    return sizes[0]
