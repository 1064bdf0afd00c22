"""The transfer scores zoo select ranks backbones by: linear probe, kNN and LogME on synthetic features
whose right order is known, LogME against an independent reference, and the stratified subsample."""

from __future__ import annotations

import math

import pytest
import torch
from zoo_classification.transfer import (
    LOGME_EPSILON,
    knn_accuracy,
    linear_probe,
    logme,
    stratified_subsample,
    transfer_scores,
)

from modelzoo.sdk import Task, ZooError

pytestmark = pytest.mark.usefixtures("one_thread")


def features(n: int, d: int, classes: int, separation: float, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Gaussian noise plus ``separation`` times a random centre per class (0: pure noise)."""
    gen = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % classes
    centres = torch.randn(classes, d, generator=gen)
    return torch.randn(n, d, generator=gen) + separation * centres[y], y


def test_every_score_orders_noise_below_weak_below_strong_separation():
    scored = [transfer_scores(*features(120, 16, 3, s), seed=0) for s in (0.0, 0.5, 3.0)]
    for name in ("probe", "knn", "logme"):
        values = [s[name] for s in scored]
        assert values[0] < values[1] < values[2], (name, values)
    noise, strong = scored[0], scored[2]
    assert noise["probe"] < 0.5 and noise["knn"] < 0.5  # chance is 1/3
    assert strong["probe"] > 0.95 and strong["knn"] > 0.95
    assert list(scored[0]) == ["probe", "knn", "logme"]  # the most trusted first


def test_scores_are_deterministic_for_a_seed():
    f, y = features(90, 12, 3, 0.5)
    assert transfer_scores(f, y, seed=3) == transfer_scores(f, y, seed=3)


def test_scores_ignore_an_irrelevant_feature_scale_only_where_they_should():
    # the probe standardises and kNN normalises: both see the same features at any scale
    f, y = features(90, 12, 3, 1.0)
    assert linear_probe(f * 100, y) == pytest.approx(linear_probe(f, y), abs=0.02)
    assert knn_accuracy(f * 100, y) == knn_accuracy(f, y)


def logme_reference(f: torch.Tensor, y: torch.Tensor) -> float:
    """LogME written straight from the paper's Algorithm 1: eigenvalues of FᵀF, the posterior mean from
    an explicit solve with A = alpha I + beta FᵀF, the alpha/beta updates (with the reference code's
    epsilon in the denominators) to convergence, then the log evidence with log|A| from A itself; the
    mean over classes of the evidence per example."""
    f = f.double()
    n, d = f.shape
    ftf = f.T @ f
    sigma = torch.linalg.eigvalsh(ftf).clamp(min=0)
    eye = torch.eye(d, dtype=torch.float64)
    evidences = []
    for c in range(int(y.max()) + 1):
        t = (y == c).double()
        alpha, beta = 1.0, 1.0
        for _ in range(10_000):
            m = beta * torch.linalg.solve(alpha * eye + beta * ftf, f.T @ t)
            gamma = float((beta * sigma / (alpha + beta * sigma)).sum())
            new_alpha = gamma / (float(m @ m) + LOGME_EPSILON)
            new_beta = (n - gamma) / (float(((t - f @ m) ** 2).sum()) + LOGME_EPSILON)
            done = abs(new_alpha - alpha) <= 1e-12 * alpha and abs(new_beta - beta) <= 1e-12 * beta
            alpha, beta = new_alpha, new_beta
            if done:
                break
        a = alpha * eye + beta * ftf
        m = beta * torch.linalg.solve(a, f.T @ t)
        evidence = (
            d / 2 * math.log(alpha)
            + n / 2 * math.log(beta)
            - 0.5 * float(torch.linalg.slogdet(a)[1])
            - beta / 2 * float(((t - f @ m) ** 2).sum())
            - alpha / 2 * float(m @ m)
            - n / 2 * math.log(2 * math.pi)
        )
        evidences.append(evidence / n)
    return sum(evidences) / len(evidences)


@pytest.mark.parametrize(
    ("n", "d", "separation"),
    [(80, 10, 0.7), (24, 40, 0.7), (18, 30, 4.0)],
    ids=["more-examples-than-dims", "fewer", "fewer-and-separable"],
)
def test_logme_matches_an_independent_evidence_maximisation(n, d, separation):
    f, y = features(n, d, 3, separation, seed=1)
    assert logme(f, y) == pytest.approx(logme_reference(f, y), rel=1e-6, abs=1e-8)


def test_logme_prefers_features_that_explain_the_classes():
    assert logme(*features(120, 16, 4, 2.0)) > logme(*features(120, 16, 4, 0.0))


def test_stratified_subsample_keeps_every_class_in_proportion():
    y = torch.tensor([0] * 60 + [1] * 30 + [2] * 6 + [3] * 2)
    idx = stratified_subsample(y, 40, seed=0)
    counts = torch.bincount(y[idx], minlength=4).tolist()
    assert len(idx) == 40 and counts[3] == 2 and counts[2] >= 2
    assert counts[0] > counts[1] > counts[2]
    assert torch.equal(idx, stratified_subsample(y, 40, seed=0))
    assert not torch.equal(idx, stratified_subsample(y, 40, seed=1))
    assert torch.equal(stratified_subsample(y, 500, seed=0), torch.arange(len(y)))
    assert idx.unique().numel() == len(idx)


def test_the_classification_task_provides_the_select_hooks():
    from zoo_classification.task import ImageClassification

    from modelzoo.sdk import get

    task = ImageClassification(get("image-classification", kind="task"))
    f, y = features(60, 8, 3, 3.0)
    assert set(task.transfer_scores(f, y)) == {"probe", "knn", "logme"}
    assert len(task.transfer_subsample(y, 30)) == 30
    with pytest.raises(ZooError, match="at least two classes"):
        task.transfer_scores(f[y == 0], y[y == 0])
    # the base class says, in one line, that a task without the hook does not support zoo select
    with pytest.raises(ZooError, match="does not support zoo select"):
        Task.transfer_scores(task, f, y)
