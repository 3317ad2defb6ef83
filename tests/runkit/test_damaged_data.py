"""A data file cut short or garbled is one line naming the file and what its reader said, with exit code 2 and
no numpy or torch traceback; the file is left as it was. A bug elsewhere keeps its traceback.

The end-to-end case is docs/extending.md's own .npy data module run by `trainlab-train`; the others read files
with torch.load, PIL and torchvision inside a real Lightning Trainer's fit."""

import os
import subprocess
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from runkit.config import ConfigError
from runkit.unreadable_files import naming_unreadable_files, unreadable_file_message
from tests.runkit.helpers.examples import project_with_examples
from tests.runkit.helpers.process import BIN
from tests.runkit.test_plain_lightning import write_npy


def cut_short(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def garble_header(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[6:10] = b"\x07\x07\x07\x07"  # the format version and header length
    path.write_bytes(bytes(data))


def empty(path: Path) -> None:
    path.write_bytes(b"")


def text(path: Path) -> None:
    path.write_text("split,x\ntrain,1\n")


@pytest.mark.slow  # one whole trainlab-train process on a copy of the project (~15 s)
def test_a_damaged_npy_file_of_the_docs_data_module_is_one_line(tmp_path: Path) -> None:
    src = project_with_examples(tmp_path / "project")
    npy = write_npy(tmp_path / "npy")
    damaged = npy / "val_y.npy"
    cut_short(damaged)
    before = damaged.read_bytes()
    run = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(src), "PYTHONUNBUFFERED": "1", "HYDRA_FULL_ERROR": "0"}
    args = ["experiment=npy_lit", f"data.data_dir={npy}", "trainer.max_epochs=1", f"hydra.run.dir={run}"]
    done = subprocess.run(
        [str(BIN / "trainlab-train"), *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 2, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    line = done.stderr.strip().splitlines()[-1]
    assert line.startswith(f"Error: The data file {damaged} could not be read (numpy: Failed to read all data")
    assert line.endswith("copy it again or write it anew.")
    assert damaged.read_bytes() == before
    assert not run.exists()  # a mistake before any training leaves no folder that looks like a result


# --- a real Trainer's fit, with data modules that read their files in each way a researcher might --------------


class TinyModel(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(4, 2)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        inputs, targets = batch
        return torch.nn.functional.cross_entropy(self.layer(inputs.flatten(1)[:, :4].float()), targets)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


class NpyData(pl.LightningDataModule):
    """Reads everything in setup, as docs/extending.md's data module does."""

    def __init__(self, folder: Path) -> None:
        super().__init__()
        self.folder = folder

    def setup(self, stage: str) -> None:
        inputs = torch.from_numpy(np.load(self.folder / "x.npy"))
        targets = torch.from_numpy(np.load(self.folder / "y.npy"))
        self.train_set = torch.utils.data.TensorDataset(inputs, targets)

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.train_set, batch_size=4)


class FilePerSample(Dataset):
    """One file per sample, read when the sample is asked for: torch.load, a PIL image, or torchvision's decoder."""

    def __init__(self, paths: list[Path], reader: str) -> None:
        self.paths, self.reader = paths, reader

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        path = self.paths[index]
        if self.reader == "torch":
            return torch.load(path), 0
        if self.reader == "pil":
            from PIL import Image

            with Image.open(path) as image:
                return torch.tensor(np.asarray(image.convert("L")), dtype=torch.float32), 0
        from torchvision.io import decode_image

        return decode_image(str(path)).float(), 0


class LazyData(pl.LightningDataModule):
    def __init__(self, dataset: Dataset) -> None:
        super().__init__()
        self.dataset = dataset

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.dataset, batch_size=2)


def fit(datamodule: pl.LightningDataModule, root: Path) -> None:
    trainer = pl.Trainer(
        max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False, default_root_dir=root
    )
    with naming_unreadable_files():
        trainer.fit(TinyModel(), datamodule=datamodule)


def write_npy_pair(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "x.npy", np.random.default_rng(0).standard_normal((16, 4)).astype(np.float32))
    np.save(folder / "y.npy", np.arange(16) % 2)
    return folder


@pytest.mark.parametrize("damage", [cut_short, garble_header, empty, text])
@pytest.mark.parametrize("name", ["x.npy", "y.npy"])
def test_each_damage_to_an_npy_file_names_that_file(tmp_path: Path, damage, name: str) -> None:
    folder = write_npy_pair(tmp_path / "data")
    damage(folder / name)
    with pytest.raises(ConfigError) as error:
        fit(NpyData(folder), tmp_path)
    message = str(error.value)
    assert message.startswith(f"The data file {folder / name} could not be read (")
    assert "\n" not in message


def write_images(folder: Path) -> list[Path]:
    """Four small PNG files, written by torchvision's own encoder."""
    from torchvision.io import write_png

    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{index}.png" for index in range(4)]
    for index, path in enumerate(paths):
        write_png(torch.full((1, 2, 2), 60 * index, dtype=torch.uint8), str(path))
    return paths


@pytest.mark.parametrize("reader", ["pil", "torchvision"])
def test_a_garbled_image_read_per_sample_names_the_image(tmp_path: Path, reader: str) -> None:
    paths = write_images(tmp_path / "images")
    paths[2].write_bytes(paths[2].read_bytes()[:20] + b"\x00garbled" * 8)
    with pytest.raises(ConfigError) as error:
        fit(LazyData(FilePerSample(paths, reader)), tmp_path)
    assert str(error.value).startswith(f"The data file {paths[2]} could not be read (")
    assert ".cpp" not in str(error.value)


def test_a_torch_file_cut_short_names_the_file(tmp_path: Path) -> None:
    paths = [tmp_path / f"{index}.pt" for index in range(4)]
    for path in paths:
        torch.save(torch.zeros(4), path)
    cut_short(paths[1])
    with pytest.raises(ConfigError) as error:
        fit(LazyData(FilePerSample(paths, "torch")), tmp_path)
    assert str(error.value).startswith(f"The data file {paths[1]} could not be read (torch: ")


class BuggyData(NpyData):
    """Reads whole files, then indexes them wrongly: a bug, not a damaged file."""

    def setup(self, stage: str) -> None:
        path = self.folder / "x.npy"
        inputs = torch.from_numpy(np.load(path))
        self.train_set = torch.utils.data.TensorDataset(inputs, inputs[100])


def test_a_bug_in_a_data_module_beside_its_files_keeps_its_traceback(tmp_path: Path) -> None:
    folder = write_npy_pair(tmp_path / "data")
    with pytest.raises(IndexError):
        fit(BuggyData(folder), tmp_path)


def test_an_error_outside_the_data_code_is_not_blamed_on_a_file(tmp_path: Path) -> None:
    path = write_npy_pair(tmp_path / "data") / "x.npy"
    try:
        np.load(path).reshape(3, 5)  # a file read whole, then a shape mistake outside any data module
    except ValueError as error:
        assert unreadable_file_message(error) is None


class NpyReadInInit(pl.LightningDataModule):
    """Reads its file as it is built, inside Hydra's instantiate."""

    def __init__(self, folder: str, input_shape: list[int], num_classes: int) -> None:
        super().__init__()
        self.inputs = np.load(Path(folder) / "x.npy")


def test_a_file_read_while_hydra_builds_the_data_module_is_named_too(tmp_path: Path) -> None:
    from omegaconf import OmegaConf, open_dict

    from runkit.training import train
    from tests.runkit.helpers.config import compose_config
    from tests.runkit.helpers.runs import TINY_MLP

    folder = write_npy_pair(tmp_path / "data")
    cut_short(folder / "x.npy")
    cfg = compose_config("train", [*TINY_MLP, "logger=none"], tmp_path / "run")
    with open_dict(cfg):
        data = {"_target_": f"{__name__}.NpyReadInInit", "folder": str(folder), "input_shape": [4], "num_classes": 2}
        cfg.data = OmegaConf.create(data)
    with pytest.raises(ConfigError) as error:
        train(cfg)
    assert str(error.value).startswith(f"The data file {folder / 'x.npy'} could not be read (numpy: ")
