"""Registers the image-classification task, the linear and MLP classifier heads, and Fashion-MNIST.

Plain data only (no torch import): ``zoo list`` stays instant. The heads serve every task whose
backbone emits ``pooled`` features and whose head outputs class logits (image and text classification).
"""

from __future__ import annotations

from modelzoo.sdk import Spec, hookimpl

TASK = "image-classification"
#: the tasks whose models end in class logits over pooled features (text classification lives in zoo-text)
POOLED_CLASSIFIER_TASKS = [TASK, "text-classification"]


@hookimpl
def modelzoo_specs() -> list[Spec]:
    return [
        Spec(
            name=TASK,
            kind="task",
            builder="zoo_classification.task:ImageClassification",
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
