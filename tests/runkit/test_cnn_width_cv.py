"""experiment=cnn_width_cv: three CNN sizes, each one builds and is larger than the last; the sweep covers k folds."""

from pathlib import Path

import pytest
import yaml

from runkit.building import build_model
from runkit.config import CONFIG_DIR
from runkit.loggers.hparams import whole_config_hyperparameters
from tests.runkit.helpers.config import compose_config

WIDTHS = ["small", "medium", "large"]


def params_total(width: str, run_dir: Path) -> int:
    cfg = compose_config("train", ["experiment=cnn_width_cv", f"width={width}"], run_dir)
    model = build_model(cfg)
    assert list(model.net.features[0].weight.shape)[0] == cfg.cnn_widths[width].channels[0]
    return whole_config_hyperparameters(cfg, model)["model/params_total"]  # as MLflow and W&B record it


def test_widths_build_models_of_growing_size(run_dir: Path) -> None:
    sizes = [params_total(width, run_dir) for width in WIDTHS]
    assert sizes == sorted(sizes) and len(set(sizes)) == 3


def test_sweep_crosses_every_width_with_every_fold() -> None:
    experiment = yaml.safe_load((Path(CONFIG_DIR) / "experiment" / "cnn_width_cv.yaml").read_text())
    params = experiment["hydra"]["sweeper"]["params"]
    assert params["width"].split(",") == WIDTHS
    assert params["data.fold"] == f"range({params['data.num_folds']})"


def test_unknown_width_is_an_error(run_dir: Path) -> None:
    cfg = compose_config("train", ["experiment=cnn_width_cv", "width=huge"], run_dir)
    with pytest.raises(Exception, match="huge"):
        build_model(cfg)
