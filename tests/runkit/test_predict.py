"""trainlab-predict writes predictions.csv for a data split or a folder of images, and refuses bad paths clearly."""

import csv
from pathlib import Path

import pytest
import torch
from torchvision.io import write_jpeg, write_png

from runkit.config import ConfigError
from runkit.evaluation import evaluate, predict
from runkit.training import train
from tests.runkit.helpers.config import compose_config
from tests.runkit.helpers.process import run_script

SMALL = [
    "data.num_train=256",
    "data.num_val=64",
    "data.num_test=48",
    "data.batch_size=32",
    "trainer.max_epochs=2",
    "logger=none",
    "callbacks.progress_bar=null",
]


def read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with open(path, newline="") as file:
        reader = csv.DictReader(file)
        return list(reader.fieldnames), list(reader)


@pytest.fixture(scope="module")
def classifier_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small CNN trained on synthetic digits; returns its run folder (holding last.ckpt)."""
    run_dir = tmp_path_factory.mktemp("classifier") / "logs" / "run"
    train(compose_config("train", SMALL, run_dir))
    return run_dir


def predict_dir(tmp_path: Path, overrides: list[str]) -> Path:
    return predict(compose_config("predict", overrides, tmp_path / "logs" / "predict"))


def test_predicts_the_test_split_with_class_probabilities(classifier_run: Path, tmp_path: Path) -> None:
    ckpt = classifier_run / "checkpoints" / "last.ckpt"
    path = predict_dir(tmp_path, [f"ckpt_path={ckpt}"])
    assert path == tmp_path / "logs" / "predict" / "predictions.csv"
    header, rows = read_csv(path)
    assert header == ["id", "target", "prediction", *(f"prob_{k}" for k in range(10))]
    assert [row["id"] for row in rows] == [str(i) for i in range(48)]
    probabilities = torch.tensor([[float(row[f"prob_{k}"]) for k in range(10)] for row in rows])
    assert torch.allclose(probabilities.sum(dim=1), torch.ones(48), atol=1e-5)
    predicted = torch.tensor([int(row["prediction"]) for row in rows])
    assert torch.equal(predicted, probabilities.argmax(dim=1))
    # The CSV's accuracy is the checkpoint's test accuracy as trainlab-eval measures it.
    tested = evaluate(compose_config("eval", [f"ckpt_path={ckpt}"], tmp_path / "logs" / "eval"))
    accuracy = (predicted == torch.tensor([int(row["target"]) for row in rows])).float().mean().item()
    assert accuracy == pytest.approx(tested["test/acc"], abs=1e-6)


def test_image_files_are_converted_like_the_training_data(classifier_run: Path, tmp_path: Path) -> None:
    """PNGs of test images, written back in pixel scale, get the predictions of the test split itself."""
    ckpt = classifier_run / "checkpoints" / "last.ckpt"
    split_rows = read_csv(predict_dir(tmp_path / "split", [f"ckpt_path={ckpt}"]))[1]

    checkpoint = torch.load(ckpt, weights_only=True)
    mean, std = checkpoint["SyntheticImagesDataModule"]["pixel_mean_std"]
    from trainlab.data.synthetic import SyntheticImagesDataModule

    datamodule = SyntheticImagesDataModule(num_train=256, num_val=64, num_test=48, batch_size=32, seed=12345)
    datamodule.setup()
    test_images = datamodule.splits["test"][0][:12]
    folder = tmp_path / "images"
    folder.mkdir()
    for index, image in enumerate(test_images):
        pixels = (image * std + mean).clamp(0, 1).mul(255).round().to(torch.uint8)
        write_png(pixels, str(folder / f"digit_{index:02d}.png"))
    # Other sizes and colour files are resized and converted to the model's one 28x28 channel.
    big_rgb = torch.nn.functional.interpolate(pixels[None].float(), size=(56, 56)).to(torch.uint8)[0].repeat(3, 1, 1)
    write_png(big_rgb, str(folder / "zz_big_rgb.png"))
    write_jpeg(big_rgb, str(folder / "zz_photo.JPG"))
    (folder / "notes.txt").write_text("not an image")

    header, rows = read_csv(predict_dir(tmp_path / "files", [f"ckpt_path={ckpt}", f"input={folder}"]))
    assert header == ["id", "prediction", *(f"prob_{k}" for k in range(10))]
    assert [row["id"] for row in rows] == [*(f"digit_{i:02d}.png" for i in range(12)), "zz_big_rgb.png", "zz_photo.JPG"]
    for index, row in enumerate(rows[:12]):
        expected = split_rows[index]
        assert row["prediction"] == expected["prediction"]
        for k in range(10):  # 8-bit rounding of the pixels moves the probabilities only slightly
            assert float(row[f"prob_{k}"]) == pytest.approx(float(expected[f"prob_{k}"]), abs=0.02)
    for row in rows[12:]:
        assert sum(float(row[f"prob_{k}"]) for k in range(10)) == pytest.approx(1.0, abs=1e-5)


def test_regression_predictions_match_the_test_error(tmp_path: Path) -> None:
    run_dir = tmp_path / "logs" / "run"
    overrides = [
        "data=synthetic_regression",
        "model=linear",
        "optimizer=gd",
        "data.num_train=256",
        "data.num_val=64",
        "data.num_test=40",
        "trainer.max_epochs=2",
        "logger=none",
        "callbacks.progress_bar=null",
    ]
    train(compose_config("train", overrides, run_dir))
    ckpt = run_dir / "checkpoints" / "last.ckpt"
    header, rows = read_csv(predict_dir(tmp_path, [f"ckpt_path={ckpt}"]))
    assert header == ["id", "target", "prediction"]
    assert len(rows) == 40
    errors = [abs(float(row["prediction"]) - float(row["target"])) for row in rows]
    tested = evaluate(compose_config("eval", [f"ckpt_path={ckpt}"], tmp_path / "logs" / "eval"))
    assert sum(errors) / len(errors) == pytest.approx(tested["test/mae"], rel=1e-5)


def test_image_folder_for_a_feature_vector_model_is_a_clear_error(tmp_path: Path) -> None:
    run_dir = tmp_path / "logs" / "run"
    overrides = [
        "data=synthetic_classification",
        "model=logistic",
        "data.num_train=128",
        "data.num_val=32",
        "data.num_test=32",
        "trainer.max_epochs=1",
        "logger=none",
        "callbacks.progress_bar=null",
    ]
    train(compose_config("train", overrides, run_dir))
    folder = tmp_path / "images"
    folder.mkdir()
    write_png(torch.zeros(1, 28, 28, dtype=torch.uint8), str(folder / "a.png"))
    with pytest.raises(ConfigError, match=r"the model takes inputs of shape \[20\]"):
        predict_dir(tmp_path, [f"ckpt_path={run_dir / 'checkpoints' / 'last.ckpt'}", f"input={folder}"])


def test_bad_input_folders_are_clear_errors(classifier_run: Path, tmp_path: Path) -> None:
    ckpt = classifier_run / "checkpoints" / "last.ckpt"
    with pytest.raises(ConfigError, match=r"input=.*no_such_dir is not a folder"):
        predict_dir(tmp_path, [f"ckpt_path={ckpt}", f"input={tmp_path / 'no_such_dir'}"])
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "truncated.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    with pytest.raises(
        ConfigError, match=r"input image .*truncated.png is damaged or not an image: torchvision could not decode it"
    ) as error:
        predict_dir(tmp_path, [f"ckpt_path={ckpt}", f"input={tmp_path / 'broken'}"])
    assert ".cpp" not in str(error.value)  # torchvision's reason, without the C++ file it was raised in
    (tmp_path / "garbled").mkdir()
    (tmp_path / "garbled" / "noise.png").write_bytes(bytes(range(256)))  # not an image at all
    with pytest.raises(ConfigError) as error:
        predict_dir(tmp_path, [f"ckpt_path={ckpt}", f"input={tmp_path / 'garbled'}"])
    assert str(error.value) == (
        f"input image {tmp_path / 'garbled' / 'noise.png'} is damaged or not an image: torchvision could not decode "
        "it (Unsupported image file.); give PNG or JPEG files."
    )
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match=r"input=.*empty holds no .png, .jpg or .jpeg files"):
        predict_dir(tmp_path, [f"ckpt_path={ckpt}", f"input={tmp_path / 'empty'}"])


def test_missing_checkpoint_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"ckpt_path=.*nope.ckpt does not exist"):
        predict_dir(tmp_path, [f"ckpt_path={tmp_path / 'nope.ckpt'}"])


@pytest.mark.slow  # a whole trainlab process (~5 s)
def test_cli_bad_input_exits_with_one_line(classifier_run: Path, tmp_path: Path) -> None:
    ckpt = classifier_run / "checkpoints" / "last.ckpt"
    result = run_script(
        "predict", [f"ckpt_path={ckpt}", "input=missing_folder", f"paths.log_dir={tmp_path}"], cwd=tmp_path
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        "Error: input=missing_folder is not a folder; give a folder of PNG or JPEG images, or leave input unset."
    )
    assert "Traceback" not in result.stderr
