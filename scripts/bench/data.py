"""Section `data`: building the synthetic_images training set, and streaming one epoch of its batches,
which shows what the in-memory loader adds to an epoch."""

import time

from bench.common import Results, Run, median_of
from trainlab.data.synthetic import SyntheticImagesDataModule
from trainlab.data.tensor_datamodule import TensorDataModule

BUILD_IMAGES, QUICK_BUILD_IMAGES = 60_000, 6_000


def measure(run: Run) -> Results:
    """Medians over the repeats; --quick builds a tenth of the images (the entry keeps its name)."""
    images = QUICK_BUILD_IMAGES if run.quick else BUILD_IMAGES
    _, datamodule = run.template
    return {
        "data": {
            "build_synthetic_images_60k_s": round(
                median_of([build_synthetic_images(images) for _ in range(run.repeats)]), 2
            ),
            "stream_epoch_s": round(median_of([stream_epoch(datamodule) for _ in range(run.repeats)]), 4),
        }
    }


def build_synthetic_images(num_train: int) -> float:
    """Seconds to draw `num_train` training images (and 1,000 each for validation and test)."""
    start = time.perf_counter()
    SyntheticImagesDataModule(num_train=num_train, num_val=1000, num_test=1000, seed=0).setup()
    return time.perf_counter() - start


def stream_epoch(datamodule: TensorDataModule) -> float:
    """Seconds to draw every training batch once, with no model: the loader's own share of an epoch."""
    start = time.perf_counter()
    for _ in datamodule.train_dataloader():
        pass
    return time.perf_counter() - start
