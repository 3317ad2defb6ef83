"""torchvision's MNIST family read from IDX files that the tests write; nothing is downloaded."""

import shutil
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
import torchvision
from hydra.utils import instantiate

from tests.trainlab.idx import LAYOUTS, missing_message, offline, write_fake_dataset, write_layout
from tests.trainlab.plain_run import QUIET
from trainlab.data.vision import MNISTFamilyDataModule

STANDARD = {
    "mnist": (0.1307, 0.3081),
    "fashion_mnist": (0.2860, 0.3530),
    "kmnist": (0.1918, 0.3483),
    "emnist": (0.1751, 0.3332),
}


@pytest.mark.parametrize(
    ("option", "packed"),
    [("mnist", False), ("mnist", True), ("fashion_mnist", False), ("kmnist", True), ("emnist", False)],
)
def test_idx_files_load_as_normalised_tensors(option: str, packed: bool, tmp_path: Path, compose_train) -> None:
    written = write_layout(tmp_path / "data", option, packed)
    dm = instantiate(compose_train(f"data={option}", *offline(tmp_path / "data")).data)
    dm.setup()
    num_classes = LAYOUTS[option][3]
    assert {name: tuple(x.shape) for name, (x, _) in dm.splits.items()} == {
        "train": (160, 1, 28, 28),
        "val": (40, 1, 28, 28),
        "test": (60, 1, 28, 28),
    }
    for images, labels in dm.splits.values():
        assert images.dtype == torch.float32 and labels.dtype == torch.int64
    labels = torch.cat([dm.splits["train"][1], dm.splits["val"][1]])
    assert sorted(labels.unique().tolist()) == list(range(num_classes))
    # The test split is the official test file, in file order, normalised with the standard mean and std.
    pixels, test_labels = written["test"]
    if option == "emnist":
        pixels = pixels.transpose(1, 2)  # EMNIST stores images transposed; the datamodule turns them upright
    mean, std = STANDARD[option]
    torch.testing.assert_close(dm.splits["test"][0], ((pixels.float() / 255 - mean) / std).unsqueeze(1))
    assert torch.equal(dm.splits["test"][1], test_labels.long())


def test_validation_is_a_seeded_carve_of_the_training_file(tmp_path: Path) -> None:
    written = write_layout(tmp_path, "mnist")

    def val_labels(seed: int) -> torch.Tensor:
        dm = MNISTFamilyDataModule(data_dir=str(tmp_path), download=False, num_val=50, seed=seed)
        dm.setup()
        return dm.splits["val"][1]

    assert torch.equal(val_labels(1), val_labels(1))
    assert not torch.equal(val_labels(1), val_labels(2))
    dm = MNISTFamilyDataModule(data_dir=str(tmp_path), download=False, num_val=50, seed=1)
    dm.setup()
    pool = torch.cat([dm.splits["train"][1], dm.splits["val"][1]])
    assert torch.equal(pool.sort().values, written["train"][1].long().sort().values)


def test_missing_files_without_download_is_one_sentence(tmp_path: Path) -> None:
    with pytest.raises(ValueError) as error:
        MNISTFamilyDataModule(data_dir=str(tmp_path / "empty"), download=False)
    assert str(error.value) == missing_message(tmp_path / "empty")


def test_failed_download_is_one_sentence_with_the_fixes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A mirror that does not exist, on the local file system: the download fails without the network.
    monkeypatch.setattr(torchvision.datasets.MNIST, "mirrors", [(tmp_path / "no_mirror").as_uri() + "/"])
    dm = MNISTFamilyDataModule(data_dir=str(tmp_path / "data"), download=True)
    with pytest.raises(ValueError) as error:
        dm.prepare_data()
    message = str(error.value)
    assert message.startswith(f"Downloading MNIST into {tmp_path / 'data' / 'MNIST' / 'raw'} failed (")
    assert message.endswith(
        "); check the internet connection, or put the four IDX files (raw or .gz) there and set data.download=false."
    )
    assert "\n" not in message


def test_download_with_the_files_present_reads_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_layout(tmp_path, "mnist", packed=True)
    monkeypatch.setattr(torchvision.datasets.MNIST, "mirrors", [(tmp_path / "no_mirror").as_uri() + "/"])
    dm = MNISTFamilyDataModule(data_dir=str(tmp_path), download=True, num_val=40)
    dm.prepare_data()  # no download is tried: a try would fail on the missing mirror
    dm.setup()
    assert len(dm.splits["train"][1]) == 160


def test_unknown_dataset_and_wrong_split_are_refused() -> None:
    with pytest.raises(
        ValueError,
        match=r"^data.dataset=CIFAR10 is not one of MNIST, FashionMNIST, KMNIST, "
        r"EMNIST; pick one of them.$",
    ):
        MNISTFamilyDataModule(dataset="CIFAR10")
    with pytest.raises(ValueError, match=r"^data.split=None does not fit data.dataset=EMNIST"):
        MNISTFamilyDataModule(dataset="EMNIST", download=False)


class BatchRecorder(pl.Callback):
    """Keeps the inputs of every batch as the model receives them, by stage."""

    def __init__(self) -> None:
        self.seen: dict[str, list[torch.Tensor]] = {"train": [], "val": []}

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.seen["train"].append(batch[0].clone())

    def on_validation_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0) -> None:
        self.seen["val"].append(batch[0].clone())


@pytest.mark.parametrize("augment", [False, True])
def test_augmentation_moves_training_batches_only(augment: bool, tmp_path: Path, compose_train) -> None:
    write_layout(tmp_path / "data", "mnist")
    cfg = compose_train(
        "data=mnist", *offline(tmp_path / "data"), f"data.augment={augment}", "data.batch_size=32", "test=false"
    )
    dm, recorder = instantiate(cfg.data), BatchRecorder()
    trainer = instantiate(
        cfg.trainer, max_epochs=1, limit_train_batches=2, num_sanity_val_steps=0, callbacks=[recorder], **QUIET
    )
    trainer.fit(instantiate(cfg.model), datamodule=dm)
    # The batches the loaders hand out, in the order of epoch 0.
    loader = dm.train_dataloader()
    loader.sampler.set_epoch(0)
    served = [x for x, _ in loader][:2]
    assert len(recorder.seen["train"]) == 2
    same = [torch.equal(seen, batch) for seen, batch in zip(recorder.seen["train"], served, strict=True)]
    assert same == [not augment, not augment]
    if augment:  # still images of the same size and value range, just moved
        assert recorder.seen["train"][0].shape == served[0].shape
        assert recorder.seen["train"][0].min() >= served[0].min() - 1e-5
    assert torch.equal(torch.cat(recorder.seen["val"]), dm.splits["val"][0])


@pytest.mark.parametrize("experiment", ["mnist_cnn", "seed_cnn"])
def test_mnist_experiments_compose_and_build(experiment: str, tmp_path: Path, compose_train) -> None:
    write_layout(tmp_path / "data", "mnist")
    cfg = compose_train(f"experiment={experiment}", *offline(tmp_path / "data"))
    dm, model = instantiate(cfg.data), instantiate(cfg.model)
    dm.setup()
    images, _ = next(iter(dm.train_dataloader()))
    assert model(images).shape == (len(images), 10)
    convs = [m for m in model.net.features if isinstance(m, torch.nn.Conv2d)]
    linears = [m for m in model.net.head if isinstance(m, torch.nn.Linear)]
    optimizer = model.optimizer_factory(params=model.parameters())
    if experiment == "mnist_cnn":
        assert [(c.out_channels, c.kernel_size) for c in convs] == [(24, (5, 5)), (32, (3, 3))]
        assert [lin.out_features for lin in linears] == [256, 10]
        assert cfg.data.batch_size == 256 and optimizer.defaults["betas"] == (0.7, 0.9)
        assert cfg.scheduler.scheduler.max_lr == cfg.optimizer.lr == 0.01
        # The one-cycle schedule moves the learning rate only; beta1 stays at the recipe's 0.7.
        scheduler = instantiate(cfg.scheduler).scheduler(optimizer=optimizer, total_steps=10)
        optimizer.step()
        scheduler.step()
        assert optimizer.param_groups[0]["betas"] == (0.7, 0.9)
        assert optimizer.param_groups[0]["lr"] > optimizer.param_groups[0]["initial_lr"]
        assert cfg.optimized_metric == cfg.monitor.metric == "val/acc"
    else:
        assert [(c.out_channels, c.kernel_size) for c in convs] == [(32, (3, 3)), (64, (3, 3))]
        # 28 -> conv 26 -> pool 13 -> conv 11 -> pool 5: the net computes 64*5*5, not a hard-coded 64*6*6.
        assert [(lin.in_features, lin.out_features) for lin in linears] == [(64 * 5 * 5, 128), (128, 10)]
        assert optimizer.defaults["lr"] == 0.001


REFETCH = "copy the file again, or delete it and run once with data.download=true to download it again"


def damaged_copy(tmp_path: Path, damage: str) -> tuple[MNISTFamilyDataModule, Path]:
    """Small MNIST files with one of them damaged as named; the datamodule reading them, offline."""
    write_fake_dataset(tmp_path, num_train=200, num_test=50, packed=damage == "not_gzip")
    raw = tmp_path / "MNIST" / "raw"
    images, labels = raw / "train-images-idx3-ubyte", raw / "train-labels-idx1-ubyte"
    if damage == "truncated":
        images.write_bytes(images.read_bytes()[:-100])
    elif damage == "wrong_header":
        labels.write_bytes(b"GIF89a" + labels.read_bytes()[6:])
    elif damage == "not_gzip":
        (raw / "train-images-idx3-ubyte.gz").write_bytes(b"these bytes were never compressed")
    elif damage == "count_mismatch":
        write_fake_dataset(tmp_path / "other", num_train=150, num_test=50)
        shutil.copy(tmp_path / "other" / "MNIST" / "raw" / "train-labels-idx1-ubyte", labels)
    return MNISTFamilyDataModule(data_dir=str(tmp_path), download=False, num_val=20), raw


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("truncated", "{raw}/train-images-idx3-ubyte is cut short: 156716 bytes where its header promises 156816"),
        (
            "wrong_header",
            "{raw}/train-labels-idx1-ubyte is not an IDX file of 1-dimensional unsigned bytes "
            "(it starts with 47494638, not 00000801)",
        ),
        (
            "count_mismatch",
            "{raw}/train-images-idx3-ubyte holds 200 images but {raw}/train-labels-idx1-ubyte "
            "holds 150 labels: the two files come from different copies",
        ),
    ],
)
def test_a_damaged_idx_file_is_named_with_the_fix(damage: str, message: str, tmp_path: Path) -> None:
    datamodule, raw = damaged_copy(tmp_path, damage)
    with pytest.raises(ValueError) as error:
        datamodule.setup()
    assert str(error.value) == f"{message.format(raw=raw)}; {REFETCH}."


def test_a_gz_file_that_does_not_decompress_is_named_and_leaves_nothing_half_written(tmp_path: Path) -> None:
    raw = tmp_path / "MNIST" / "raw"
    with pytest.raises(ValueError) as error:
        damaged_copy(tmp_path, "not_gzip")  # the constructor unpacks what it needs when download=false
    assert str(error.value).startswith(f"{raw}/train-images-idx3-ubyte.gz does not decompress (")
    assert str(error.value).endswith(f"); {REFETCH}.")
    assert sorted(path.name for path in raw.iterdir() if not path.name.endswith(".gz")) == []
