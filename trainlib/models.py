"""Model registry: the seed tutorial's Net and ResNet34 (chapter 2.1), and torchvision classifiers by name."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from trainlib import entry_checks
from trainlib.errors import ConfigError
from trainlib.signatures import MODELS


def list_models() -> list[str]:
    return MODELS.names()


def build_model(spec: dict, num_classes: int, in_channels: int = 3) -> nn.Module:
    return MODELS.build(spec, num_classes, in_channels)


class Net(nn.Module):
    """The seed's LeNet-style Net, layer for layer (32x32 inputs)."""

    def __init__(self, num_classes: int = 10, in_channels: int = 3):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 6, 5)
        self.pool1 = nn.MaxPool2d(2, 2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.pool2 = nn.MaxPool2d(2, 2)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool1(F.relu(self.conv1(x)))
        x = self.pool2(F.relu(self.conv2(x)))
        x = x.reshape(-1, 16 * 5 * 5)  # the seed has .view: reshape also takes channels_last maps
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


class ResidualBlock(nn.Module):
    """The seed's residual block: a conv-bn-relu-conv-bn `left` path plus a `right` shortcut."""

    def __init__(self, inchannel: int, outchannel: int, stride: int = 1, shortcut: nn.Module | None = None):
        super().__init__()
        self.left = nn.Sequential(
            nn.Conv2d(inchannel, outchannel, 3, stride, 1, bias=False),
            nn.BatchNorm2d(outchannel),
            nn.ReLU(inplace=True),
            nn.Conv2d(outchannel, outchannel, 3, 1, 1, bias=False),
            nn.BatchNorm2d(outchannel),
        )
        self.right = shortcut

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.left(x)
        residual = x if self.right is None else self.right(x)
        out = out + residual
        return F.relu(out)


class ResNet34(nn.Module):
    """The seed's ResNet34 (3-4-6-3 residual blocks built by `_make_layer`).

    The seed's ImageNet stem (7x7 stride-2 conv + max-pool) and fixed `avg_pool2d(x, 7)`
    only fit 224x224 inputs. `stem="cifar"` (default) uses a 3x3 stride-1 conv and no pool,
    and the head pools adaptively, so 32x32 and any other size work.
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 3, stem: str = "cifar"):
        super().__init__()
        if stem == "imagenet":
            self.pre = nn.Sequential(
                nn.Conv2d(in_channels, 64, 7, 2, 3, bias=False),
                nn.BatchNorm2d(64),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(3, 2, 1),
            )
        else:
            self.pre = nn.Sequential(
                nn.Conv2d(in_channels, 64, 3, 1, 1, bias=False),
                nn.BatchNorm2d(64),
                nn.ReLU(inplace=True),
            )
        self.layer1 = self._make_layer(64, 128, 3)
        self.layer2 = self._make_layer(128, 256, 4, stride=2)
        self.layer3 = self._make_layer(256, 512, 6, stride=2)
        self.layer4 = self._make_layer(512, 512, 3, stride=2)
        self.fc = nn.Linear(512, num_classes)

    def _make_layer(self, inchannel: int, outchannel: int, block_num: int, stride: int = 1) -> nn.Sequential:
        shortcut = nn.Sequential(
            nn.Conv2d(inchannel, outchannel, 1, stride, bias=False),
            nn.BatchNorm2d(outchannel),
        )
        layers = [ResidualBlock(inchannel, outchannel, stride, shortcut)]
        for _ in range(1, block_num):
            layers.append(ResidualBlock(outchannel, outchannel))
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pre(x)
        x = self.layer1(x)
        x = self.layer2(x)
        x = self.layer3(x)
        x = self.layer4(x)
        x = F.adaptive_avg_pool2d(x, 1)
        x = x.reshape(x.size(0), -1)  # the seed has .view: reshape also takes channels_last maps
        return self.fc(x)


@MODELS.register("net", input_size=32)
def net(num_classes: int, in_channels: int) -> nn.Module:
    """The seed tutorial's LeNet-style Net (2 conv + 3 fc), 32x32 inputs."""
    return Net(num_classes, in_channels)


@MODELS.register("resnet34", check=entry_checks.stem)
def resnet34(num_classes: int, in_channels: int, *, stem: str = "cifar") -> nn.Module:
    """The seed's ResNet34 (ResidualBlock, _make_layer, 3-4-6-3); any input size."""
    return ResNet34(num_classes, in_channels, stem)


# torchvision classifiers, built with random weights (nothing is ever downloaded): real
# pretrained weights come in through `finetune.source` (e.g. a resnet18-f37072fd.pth file).
TORCHVISION_CLASSIFIERS = (
    "resnet18", "resnet34", "resnet50", "mobilenet_v2", "mobilenet_v3_small", "mobilenet_v3_large",
    "efficientnet_b0", "shufflenet_v2_x1_0", "squeezenet1_1", "densenet121", "regnet_y_400mf",
)


def _register_torchvision(arch: str) -> None:
    def build(num_classes: int, in_channels: int) -> nn.Module:
        from torchvision import models

        if in_channels != 3:
            raise ConfigError(f"model 'tv:{arch}' takes 3-channel images; this dataset has {in_channels}")
        return models.get_model(arch, weights=None, num_classes=num_classes)

    MODELS.register(f"tv:{arch}", summary=f"torchvision {arch}, random init (load real weights with finetune.source)",
                    torchvision=arch)(build)


for _arch in TORCHVISION_CLASSIFIERS:
    _register_torchvision(_arch)
