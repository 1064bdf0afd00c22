"""Registers the object-detection task, torchvision's detectors as heads for any ``pyramid`` backbone,
and the demo detection set.

Plain data only (no torch import): the task class in ``zoo_detection.task`` and the builders in
``zoo_detection.heads`` / ``zoo_detection.demo`` are imported when something is built or run. Each
head's ``options`` are its defaults, recorded in a model's ``config.json`` so the detector is rebuilt
exactly. The task's ``zoo predict`` flags are declared here, so ``zoo predict --help`` lists them
without importing anything.
"""

from __future__ import annotations

from modelzoo.sdk import Spec, hookimpl

TASK = "object-detection"
COMMON = {"levels": None, "min_stride": 8, "max_stride": None, "min_size": 512, "max_size": 853}


def _head(name: str, description: str, options: dict) -> Spec:
    return Spec(
        name=name,
        kind="head",
        tasks=[TASK],
        consumes=["pyramid"],
        builder=f"zoo_detection.heads:build_{name}",
        options={k: v for k, v in options.items() if v is not None},
        license="bsd-3-clause",
        description=description,
        meta={"library": "torchvision", "labels": "1..K, 0 = background (handled internally)"},
    )


def _task() -> Spec:
    return Spec(
        name=TASK,
        kind="task",
        builder="zoo_detection.task:ObjectDetection",
        modality="image",
        description="Find objects in an image: a box, a class and a score each (COCO JSON, Pascal VOC or registered datasets)",
        meta={
            "aliases": ["detection"],
            "pipeline_tag": "object-detection",
            "metric": "map",
            "higher_is_better": True,
            "inputs": "image files (JPEG, PNG, ...)",
            "predict_options": [
                {"name": "score_threshold", "type": "float", "default": 0.5, "help": "lowest score of a reported box"},
                {"name": "max_detections", "type": "int", "help": "at most this many boxes per image"},
                {
                    "name": "out",
                    "type": "path",
                    "help": "draw the boxes into this image file (one input) or folder",
                },
            ],
        },
    )


@hookimpl
def modelzoo_specs() -> list[Spec]:
    return [
        _task(),
        _head(
            "fasterrcnn",
            "torchvision Faster R-CNN (RPN + RoIAlign box head) on an FPN over the backbone's pyramid levels;"
            " anchors from the levels' strides",
            {
                **COMMON,
                "fpn": True,
                "out_channels": 256,
                "representation_size": 1024,
                "roi_output_size": 7,
                "roi_sampling_ratio": 2,
                "aspect_ratios": [0.5, 1.0, 2.0],
            },
        ),
        _head(
            "retinanet",
            "torchvision RetinaNet (focal loss) on an FPN over the backbone's pyramid levels plus P6/P7",
            {**COMMON, "fpn": True, "out_channels": 256, "extra_levels": 2, "aspect_ratios": [0.5, 1.0, 2.0]},
        ),
        _head(
            "fcos",
            "torchvision FCOS (anchor-free, centre-ness) on an FPN over the backbone's pyramid levels plus P6/P7",
            {**COMMON, "fpn": True, "out_channels": 256, "extra_levels": 2},
        ),
        _head(
            "ssdlite",
            "torchvision SSDlite heads on the backbone's last pyramid levels plus SSDlite extra blocks (fixed square input)",
            {"levels": None, "min_stride": 16, "extra_levels": 2, "size": 320, "min_ratio": 0.2, "max_ratio": 0.95},
        ),
        Spec(
            name="fashion-mnist-scenes",
            kind="dataset",
            tasks=[TASK],
            builder="zoo_detection.demo:fashion_mnist_scenes",
            license="mit",
            description=(
                "SYNTHETIC scenes composed from REAL Fashion-MNIST items: 1-4 items pasted at random scales and"
                " places onto 160 px canvases, exact boxes, deterministic from a seed, written once as COCO JSON + PNGs"
                " to the modelzoo cache (train scenes use train items, val scenes use test items)"
            ),
            meta={
                "num_classes": 10,
                "format": "coco",
                "license": "mit",
                "hub_id": "zalando-datasets/fashion_mnist",
                "composed_from": "Fashion-MNIST (Debian dataset-fashion-mnist)",
            },
        ),
    ]
