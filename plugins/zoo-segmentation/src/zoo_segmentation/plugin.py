"""Registers the semantic-segmentation task, its decoder heads and the demo scenes.

Plain data only (no torch import): the task class in ``zoo_segmentation.task`` and the builders in
``zoo_segmentation.heads`` / ``zoo_segmentation.demo`` are imported when something is built or run.
No backbone is listed here: every backbone that emits a ``pyramid`` serves this task through the
heads below (timm's and torchvision's convolutional nets, with their pretrained weights).
"""

from __future__ import annotations

from modelzoo.sdk import Spec, hookimpl

TASK = "semantic-segmentation"
#: the classes of the demo scenes (Fashion-MNIST names), after "background": distinct silhouettes
DEMO_CLASSES = ["T-shirt/top", "Trouser", "Sandal", "Bag", "Ankle boot"]


def _task() -> Spec:
    return Spec(
        name=TASK,
        kind="task",
        builder="zoo_segmentation.task:SemanticSegmentation",
        modality="image",
        description="Label every pixel of an image with a class (images + PNG masks of class indices, or COCO)",
        meta={
            "aliases": ["segmentation"],
            "pipeline_tag": "image-segmentation",
            "metric": "miou",
            "higher_is_better": True,
            "inputs": "image files (JPEG, PNG, ...)",
            "predict_options": [
                {
                    "name": "out",
                    "type": "path",
                    "help": "write <name>_mask.png (colour mask) and <name>_overlay.png per input into this folder",
                },
            ],
        },
    )


@hookimpl
def modelzoo_specs() -> list[Spec]:
    return [
        _task(),
        Spec(
            name="fpn",
            kind="head",
            tasks=[TASK],
            consumes=["pyramid"],
            builder="zoo_segmentation.heads:build_fpn",
            options={"channels": 64, "min_stride": 4, "max_stride": 32, "dropout": 0.1},
            description="FPN-style decoder: lateral 1x1 convs, top-down sum, 3x3 convs, all levels summed at the finest",
        ),
        Spec(
            name="lraspp",
            kind="head",
            tasks=[TASK],
            consumes=["pyramid"],
            builder="zoo_segmentation.heads:build_lraspp",
            options={"inter_channels": 128, "low_stride": 8},
            license="bsd-3-clause",
            description="torchvision's LR-ASPP head (MobileNetV3 paper) on the deepest level and one low-level map",
        ),
        Spec(
            name="deeplabv3",
            kind="head",
            tasks=[TASK],
            consumes=["pyramid"],
            builder="zoo_segmentation.heads:build_deeplabv3",
            options={"rates": [6, 12, 18]},
            license="bsd-3-clause",
            description="torchvision's DeepLabV3 head (ASPP) on the deepest pyramid level",
        ),
        Spec(
            name="fashion-mnist-segments",
            kind="dataset",
            tasks=[TASK],
            builder="zoo_segmentation.demo:fashion_mnist_segments",
            license="mit",
            description=(
                "SYNTHETIC scenes composed from REAL Fashion-MNIST items (T-shirt/top, trouser, sandal, bag, ankle"
                " boot) pasted onto 96 px canvases; exact masks from each item's own thresholded silhouette;"
                " written once as PNG images + masks to the modelzoo cache (train scenes use train items)"
            ),
            meta={
                "num_classes": 1 + len(DEMO_CLASSES),
                "format": "folder",
                "license": "mit",
                "hub_id": "zalando-datasets/fashion_mnist",
                "composed_from": "Fashion-MNIST (Debian dataset-fashion-mnist)",
            },
        ),
    ]
