"""Image files (PNG, JPEG) as model inputs: decoded, resized and standardised like the training images."""

from collections.abc import Sequence
from pathlib import Path

import lightning.pytorch as pl
import torch

from runkit.config.errors import ConfigError
from runkit.unreadable_files import first_line

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def list_images(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise ConfigError(f"input={folder} is not a folder; give a folder of PNG or JPEG images, or leave input unset.")
    paths = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise ConfigError(f"input={folder} holds no .png, .jpg or .jpeg files; put the images to predict there.")
    return paths


def read_images(paths: Sequence[Path], datamodule: pl.LightningDataModule) -> torch.Tensor:
    """Decode, resize and standardise images into the model's input shape (channels, height, width).

    The shape is the datamodule's `input_shape` (from the data config stored in the checkpoint); the
    standardisation its `pixel_normalization()`, where it has one (its pixel statistics are saved in the
    checkpoint), so files look like training data.
    """
    if getattr(datamodule, "input_shape", None) is None:
        raise ConfigError(
            f"input={paths[0].parent} holds images, but {type(datamodule).__name__} does not say its input_shape, "
            "so they cannot be sized for the model; predict on its own data splits (leave input unset)."
        )
    shape = tuple(datamodule.input_shape)
    if len(shape) != 3 or shape[0] not in (1, 3):
        raise ConfigError(
            f"input={paths[0].parent} holds images, but the model takes inputs of shape {list(shape)}; "
            "predict on images only with a model trained on 1- or 3-channel images."
        )
    images = torch.stack([read_image(path, shape) for path in paths])
    normalization = datamodule.pixel_normalization() if hasattr(datamodule, "pixel_normalization") else None
    if normalization is not None:
        mean, std = normalization
        images = (images - mean) / std
    return images


def read_image(path: Path, shape: tuple[int, int, int]) -> torch.Tensor:
    """One image file as floats in [0, 1] with the given (channels, height, width)."""
    from torchvision.io import ImageReadMode, decode_image  # torchvision only when images are read
    from torchvision.transforms.v2.functional import resize

    channels, height, width = shape
    mode = ImageReadMode.GRAY if channels == 1 else ImageReadMode.RGB
    try:
        image = decode_image(str(path), mode=mode)
    except RuntimeError as error:
        raise ConfigError(
            f"input image {path} is damaged or not an image: torchvision could not decode it ({decoder_reason(error)}); "
            "give PNG or JPEG files."
        ) from None
    if tuple(image.shape[1:]) != (height, width):
        image = resize(image, [height, width], antialias=True)
    return image.float() / 255.0


def decoder_reason(error: RuntimeError) -> str:
    """torchvision's reason, without the C++ source location it puts first (`decode_image, /.../x.cpp:67, ...`)
    and the advice about other formats after it: `Unsupported image file.`"""
    return first_line(error).split(". ")[0].rstrip(".)") + "."
