"""Registers the image-classification and multi-label tasks, the linear and MLP heads, and Fashion-MNIST sets.

Plain data only (no torch import): ``zoo list`` stays instant. The heads serve every task whose
backbone emits ``pooled`` features and whose head outputs class logits (image and text classification).
"""

from __future__ import annotations

from modelzoo.sdk import Spec, hookimpl

TASK = "image-classification"
MULTILABEL = "multilabel-classification"
#: the tasks whose models end in class logits over pooled features (text classification lives in zoo-text)
POOLED_CLASSIFIER_TASKS = [TASK, MULTILABEL, "text-classification"]


@hookimpl
def modelzoo_specs() -> list[Spec]:
    return [
        Spec(
            name=TASK,
            kind="task",
            builder="zoo_classification.task:ImageClassification",
            modality="image",
            description="Classify an image into one of a fixed set of classes (ImageFolder or registered datasets)",
            meta={
                "aliases": ["classification"],
                "pipeline_tag": "image-classification",
                "metric": "accuracy",
                "higher_is_better": True,
                "inputs": "image files (JPEG, PNG, ...)",
                "predict_options": [{"name": "top_k", "type": "int", "default": 5, "help": "classes per input"}],
            },
        ),
        Spec(
            name=MULTILABEL,
            kind="task",
            builder="zoo_classification.multilabel:MultiLabelClassification",
            modality="image",
            description=(
                "Tag an image with every label that applies (sigmoid outputs, BCE loss, mAP; per-label thresholds"
                " tuned on validation travel with the model); data: a CSV/JSONL of image -> label list"
            ),
            meta={
                "aliases": ["multilabel", "multi-label"],
                "pipeline_tag": "image-classification",
                "metric": "map",
                "higher_is_better": True,
                "inputs": "image files (JPEG, PNG, ...)",
                "predict_options": [
                    {
                        "name": "threshold",
                        "type": "float",
                        "help": "one score cut for every label (default: the per-label thresholds tuned on validation)",
                    }
                ],
            },
        ),
        Spec(
            name="fashion-mnist-multilabel",
            kind="dataset",
            tasks=[MULTILABEL],
            builder="zoo_classification.multilabel_data:fashion_mnist_multilabel",
            license="mit",
            description=(
                "SYNTHETIC scenes of REAL Fashion-MNIST items: 1-4 items pasted at random scales, places and tints onto"
                " 96 px canvases, labelled with the set of classes present; built in memory from a seed (train scenes"
                " use train items, val scenes test items)"
            ),
            meta={
                "num_classes": 10,
                "license": "mit",
                "hub_id": "zalando-datasets/fashion_mnist",
                "composed_from": "Fashion-MNIST (Debian dataset-fashion-mnist)",
            },
        ),
        Spec(
            name="fashion-mnist",
            kind="dataset",
            tasks=[TASK],
            builder="zoo_classification.data:fashion_mnist",
            license="mit",
            description="Zalando Fashion-MNIST: 60k/10k 28x28 grey images, 10 classes (Debian dataset-fashion-mnist, else downloaded)",
            meta={"num_classes": 10, "hub_id": "zalando-datasets/fashion_mnist", "license": "mit"},
        ),
        Spec(
            name="linear",
            kind="head",
            tasks=POOLED_CLASSIFIER_TASKS,
            consumes=["pooled"],
            builder="zoo_classification.heads:build_linear",
            options={"dropout": 0.0},
            description="Dropout + linear classifier on pooled features",
        ),
        Spec(
            name="mlp",
            kind="head",
            tasks=POOLED_CLASSIFIER_TASKS,
            consumes=["pooled"],
            builder="zoo_classification.heads:build_mlp",
            options={"hidden": 512, "dropout": 0.1},
            description="Linear-GELU-Dropout-Linear classifier on pooled features",
        ),
    ]
