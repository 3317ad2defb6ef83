"""The opt-in image callback writes a labelled grid of validation images and a confusion matrix to TensorBoard."""

import importlib.util
import io
from pathlib import Path

import pytest
from PIL import Image

from runkit.building import build_callbacks
from runkit.training import train
from tests.runkit.helpers.config import compose_config
from tests.runkit.helpers.tensorboard import read_images
from trainlab.callbacks.images import ValidationImages

SMALL = [
    "data.num_train=192",
    "data.num_val=64",
    "data.num_test=32",
    "data.batch_size=32",
    "trainer.max_epochs=3",
    "callbacks=default_images",
    "callbacks.progress_bar=null",
    "callbacks.early_stopping=null",
]


@pytest.mark.extras  # matplotlib
def test_images_are_logged_every_n_validation_epochs(run_dir: Path) -> None:
    overrides = [*SMALL, "callbacks.validation_images.every_n_epochs=2", "callbacks.validation_images.num_images=12"]
    train(compose_config("train", overrides, run_dir))
    images = read_images(run_dir)
    assert set(images) == {"val/predictions", "val/confusion_matrix"}
    steps_per_epoch = 192 // 32
    for tag, events in images.items():
        # 3 epochs, every 2nd: one image, logged after the second epoch's training steps.
        assert [step for step, _ in events] == [2 * steps_per_epoch], tag
        picture = Image.open(io.BytesIO(events[0][1]))
        assert picture.width > 100 and picture.height > 100


@pytest.mark.extras  # matplotlib
def test_default_callbacks_draw_no_images(run_dir: Path) -> None:
    cfg = compose_config("train", ["callbacks=default"], run_dir)
    assert not any(isinstance(callback, ValidationImages) for callback in build_callbacks(cfg.callbacks, loggers=[]))
    cfg = compose_config("train", ["callbacks=default_images"], run_dir)
    assert any(isinstance(callback, ValidationImages) for callback in build_callbacks(cfg.callbacks, loggers=[]))


def test_without_matplotlib_the_callback_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    """matplotlib is an optional extra, which .venv leaves out: choosing the callback there is a one-line error
    with the fix. In a venv that has matplotlib, it is hidden."""
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *args: None if name == "matplotlib" else real_find_spec(name, *args)
    )
    with pytest.raises(ValueError) as raised:
        ValidationImages()
    assert str(raised.value) == (
        "callbacks.validation_images draws its figures with the matplotlib package, which is not installed in this "
        "venv; run .venv-extras/bin/trainlab-train instead (`make install-extras` makes it), add it to this venv "
        "with pip install -e '.[images]', or choose callbacks=default."
    )
