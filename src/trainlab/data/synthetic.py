"""Synthetic datasets made from a seed: nothing to download, every run can use them."""

from collections.abc import Sequence

import torch

from trainlab.data.glyphs import render_digits
from trainlab.data.tensor_datamodule import Split, TensorDataModule


def seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


class SyntheticDataModule(TensorDataModule):
    """Data drawn from the seed by ``draw``; the training pool and the test set have seeds of their own,
    so changing num_train leaves the test set unchanged."""

    pool_seed, test_seed = 1, 2  # offsets from ``seed``

    def __init__(self, input_shape: Sequence[int], num_train: int, num_val: int, num_test: int, **kwargs) -> None:
        super().__init__(input_shape, num_val=num_val, **kwargs)
        self.num_train = num_train
        self.num_test = num_test

    def draw(self, count: int, generator: torch.Generator) -> Split:
        raise NotImplementedError

    def load_train_pool(self) -> Split:
        return self.draw(self.limited(self.num_train) + self.limited(self.num_val), seeded(self.seed + self.pool_seed))

    def load_test(self) -> Split:
        return self.draw(self.limited(self.num_test), seeded(self.seed + self.test_seed))

    def require_feature_vectors(self, name: str) -> None:
        if len(self.input_shape) != 1:
            raise ValueError(
                f"{name} makes feature vectors; input_shape must be [num_features], got {list(self.input_shape)}."
            )


class SyntheticImagesDataModule(SyntheticDataModule):
    """MNIST-shaped digit-like glyphs drawn with random shift, rotation, scale, stroke width and noise."""

    def __init__(
        self,
        input_shape: Sequence[int] = (1, 28, 28),
        num_classes: int = 10,
        num_train: int = 20000,
        num_val: int = 2000,
        num_test: int = 4000,
        **kwargs,
    ) -> None:
        super().__init__(input_shape, num_train, num_val, num_test, **kwargs)
        channels, height, width = self.input_shape
        if num_classes != 10 or channels != 1 or height != width:
            raise ValueError(
                f"synthetic_images draws 10 digit classes on one square channel, got num_classes={num_classes} "
                f"and input_shape={list(self.input_shape)}."
            )
        self.num_classes = num_classes
        self._mean_std: tuple[float, float] | None = None

    pool_seed, test_seed = 0, 1

    def draw(self, count: int, generator: torch.Generator) -> Split:
        labels = torch.randint(0, self.num_classes, (count,), generator=generator)
        images = render_digits(labels, generator, image_size=self.input_shape[-1])
        return images, labels

    def load_train_pool(self) -> Split:
        images, labels = super().load_train_pool()
        # Standardise with the pool's statistics, as one would with MNIST's mean and std.
        self._mean_std = (images.mean().item(), images.std().item())
        return self._standardise(images), labels

    def load_test(self) -> Split:
        images, labels = super().load_test()
        return self._standardise(images), labels

    def _standardise(self, images: torch.Tensor) -> torch.Tensor:
        mean, std = self._mean_std
        return images.sub_(mean).div_(std)  # in place: a temporary copy would double the data's peak memory

    def pixel_normalization(self) -> tuple[float, float]:
        if self._mean_std is None:
            self.setup()  # the statistics are those of the training pool
        return self._mean_std

    # Lightning stores these in every checkpoint, so prediction needs no data to standardise images.
    def state_dict(self) -> dict[str, list[float]]:
        return {"pixel_mean_std": list(self._mean_std)} if self._mean_std is not None else {}

    def load_state_dict(self, state_dict: dict[str, list[float]]) -> None:
        if "pixel_mean_std" in state_dict:
            self._mean_std = tuple(state_dict["pixel_mean_std"])


class SyntheticClassificationDataModule(SyntheticDataModule):
    """Gaussian clusters in feature space, one per class, with centres ``separation`` apart from the origin."""

    def __init__(
        self,
        input_shape: Sequence[int] = (20,),
        num_classes: int = 4,
        num_train: int = 5000,
        num_val: int = 1000,
        num_test: int = 1000,
        separation: float = 3.0,
        cluster_spread: float = 1.0,
        **kwargs,
    ) -> None:
        super().__init__(input_shape, num_train, num_val, num_test, **kwargs)
        self.require_feature_vectors("synthetic_classification")
        self.num_classes = num_classes
        self.separation = separation
        self.cluster_spread = cluster_spread
        generator = torch.Generator().manual_seed(self.seed)
        directions = torch.randn(num_classes, self.input_shape[0], generator=generator)
        self.centres = separation * directions / directions.norm(dim=1, keepdim=True)

    def draw(self, count: int, generator: torch.Generator) -> Split:
        labels = torch.randint(0, self.num_classes, (count,), generator=generator)
        noise = torch.randn(count, self.input_shape[0], generator=generator)
        return self.centres[labels] + self.cluster_spread * noise, labels


class SyntheticRegressionDataModule(SyntheticDataModule):
    """y = X w* + b* + noise, with the true weights ``true_weight`` (w*) and ``true_bias`` (b*) kept for checking."""

    task = "regression"

    def __init__(
        self,
        input_shape: Sequence[int] = (8,),
        num_train: int = 2000,
        num_val: int = 500,
        num_test: int = 500,
        noise_std: float = 0.1,
        **kwargs,
    ) -> None:
        super().__init__(input_shape, num_train, num_val, num_test, **kwargs)
        self.require_feature_vectors("synthetic_regression")
        self.noise_std = noise_std
        generator = torch.Generator().manual_seed(self.seed)
        self.true_weight = torch.randn(self.input_shape[0], generator=generator)
        self.true_bias = torch.randn((), generator=generator)

    def draw(self, count: int, generator: torch.Generator) -> Split:
        inputs = torch.randn(count, self.input_shape[0], generator=generator)
        noise = self.noise_std * torch.randn(count, generator=generator)
        targets = inputs @ self.true_weight + self.true_bias + noise
        return inputs, targets.unsqueeze(1)  # (N, 1), like the model's output
