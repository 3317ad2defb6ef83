"""Fine-tuning: start from a pre-trained network's weights, train the head first, then the whole net.

The weights come from a checkpoint (``pretrained_ckpt``), loaded into ``net`` when fitting starts.
``backbone`` (the CNN's feature extractor, ``net.features``) is what Lightning's ``BackboneFinetuning``
callback freezes for the first epochs and then unfreezes with a lower learning rate.
"""

import torch
from torch import nn

from trainlab.models.classification import ClassificationModule


class FineTuningClassifier(ClassificationModule):
    """A classifier whose network starts from the weights of the ``net`` in ``pretrained_ckpt``."""

    def __init__(self, net: nn.Module, *args, pretrained_ckpt: str | None = None, **kwargs) -> None:
        super().__init__(net, *args, **kwargs)
        if not hasattr(self.net, "features"):
            raise ValueError(
                f"fine-tuning needs a net with a `features` part to freeze, and {type(self.net).__name__} "
                "has none; use model.net of the CNN."
            )
        self.pretrained_ckpt = pretrained_ckpt

    @property
    def backbone(self) -> nn.Module:
        """The part BackboneFinetuning freezes; a property, so its weights are not saved twice."""
        return self.net.features

    def setup(self, stage: str) -> None:
        # Only when fitting: a resumed fit then restores its own checkpoint over these weights, and
        # trainlab-eval, which loads a finished fine-tuning checkpoint, never needs the pre-trained file.
        if stage == "fit":
            self.load_pretrained_net()

    def load_pretrained_net(self) -> None:
        if not self.pretrained_ckpt:
            raise ValueError(
                "pretrained_ckpt is not set; pass pretrained_ckpt=PATH, a .ckpt file written by "
                "`trainlab-train experiment=pretrain`."
            )
        state = torch.load(self.pretrained_ckpt, map_location="cpu", weights_only=True)["state_dict"]
        net_state = {key.removeprefix("net."): value for key, value in state.items() if key.startswith("net.")}
        try:
            self.net.load_state_dict(net_state)
        except RuntimeError as error:
            reason = str(error).splitlines()[-1].strip()
            raise ValueError(
                f"pretrained_ckpt={self.pretrained_ckpt} holds a network that does not fit "
                f"model.net ({reason}); fine-tune with the model.net settings of the pre-training run."
            ) from None

    def on_train_epoch_start(self) -> None:
        # 0 while the feature extractor is frozen, 1 once it trains: marks the two phases in TensorBoard.
        trainable = any(p.requires_grad for p in self.backbone.parameters())
        self.log(
            "finetune/backbone_trainable", torch.tensor(float(trainable)), on_step=False, on_epoch=True, sync_dist=True
        )
