"""Transferability scores of frozen features for a classification task (what ``zoo select`` ranks by).

Three estimators of "how well will this backbone fine-tune on my classes?", each computed on cached
features in seconds, none needing a fine-tune:

* ``probe``: the cross-validated accuracy of a multinomial logistic regression on standardised
  features (a linear probe). Large studies find it a strong, simple baseline.
* ``knn``: the leave-one-out accuracy of a cosine k-nearest-neighbour vote; it needs no training at
  all and says whether same-class examples are already close together.
* ``logme``: LogME, the log marginal evidence of a Bayesian linear model from features to one-hot
  targets, maximised over its prior and noise precisions (You, Liu, Wang, Long: "LogME: Practical
  Assessment of Pre-trained Models for Transfer Learning", ICML 2021). Re-implemented here in torch
  from the paper's fixed-point updates (with the small epsilon of the authors' code that keeps them
  finite when a class is fitted exactly), iterated to convergence, with log|A| over all D eigenvalues
  of FᵀF (also when N < D) and the evidence evaluated at the converged precisions.

Every score is higher-is-better and deterministic for a seed. zoo-text's text classification
inherits them through :class:`~zoo_classification.classify.ClassificationTask`: its features are
pooled embeddings, scored the same way.
"""

from __future__ import annotations

import math

import torch

#: the L2 penalty of the probe, as sklearn's default C=1: sum of losses + ||W||²/2
PROBE_C = 1.0
#: 3 folds and at most 50 L-BFGS steps: the probe runs once per candidate and subsample, so it must
#: take about a second on a thousand examples of a thousand dimensions; on EfficientNet-Lite0 features of
#: Fashion-MNIST, 5 folds and 100 steps took about twice as long for the same accuracy (0.790 vs 0.789)
PROBE_FOLDS = 3
PROBE_STEPS = 50
KNN_K = 10


def stratified_subsample(targets: torch.Tensor, n: int, seed: int = 0) -> torch.Tensor:
    """Sorted indices of ``n`` examples (all, when there are fewer), drawn per class in proportion to
    the class's share, with at least two per class where the class has them (so a cross-validation
    fold and a leave-one-out neighbour can see every class)."""
    targets = torch.as_tensor(targets).long().cpu()
    total = len(targets)
    if n >= total:
        return torch.arange(total)
    gen = torch.Generator().manual_seed(seed)
    classes, counts = torch.unique(targets, return_counts=True)
    quota = {int(c): min(int(k), max(2, round(n * int(k) / total))) for c, k in zip(classes, counts)}
    # trim (or top up) the largest quotas until they add up to n
    order = sorted(quota, key=lambda c: -quota[c])
    i = 0
    while sum(quota.values()) > n and any(q > 2 for q in quota.values()):
        c = order[i % len(order)]
        if quota[c] > 2:
            quota[c] -= 1
        i += 1
    spare = {int(c): int(k) - quota[int(c)] for c, k in zip(classes, counts)}
    i = 0
    while sum(quota.values()) < n and any(spare.values()):
        c = order[i % len(order)]
        if spare[c]:
            quota[c] += 1
            spare[c] -= 1
        i += 1
    picked = []
    for c in sorted(quota):
        members = torch.nonzero(targets == c).flatten()
        picked.append(members[torch.randperm(len(members), generator=gen)[: quota[c]]])
    return torch.cat(picked).sort().values


def _folds(targets: torch.Tensor, k: int, seed: int) -> torch.Tensor:
    """A fold number per example, each class dealt round-robin over the folds in a random order."""
    gen = torch.Generator().manual_seed(seed)
    fold = torch.empty(len(targets), dtype=torch.long)
    for c in torch.unique(targets):
        members = torch.nonzero(targets == c).flatten()
        members = members[torch.randperm(len(members), generator=gen)]
        fold[members] = torch.arange(len(members)) % k
    return fold


def fit_logistic(x: torch.Tensor, y: torch.Tensor, num_classes: int, c: float = PROBE_C) -> torch.Tensor:
    """Multinomial logistic regression weights ``(D + 1, C)`` (last row: bias), L-BFGS on the full
    batch, minimising ``sum(cross-entropy) + ||W||² / (2c)`` (the bias is not penalised)."""
    x1 = torch.cat([x, torch.ones(len(x), 1, dtype=x.dtype)], 1)
    w = torch.zeros(x1.shape[1], num_classes, dtype=x.dtype, requires_grad=True)
    opt = torch.optim.LBFGS([w], lr=1.0, max_iter=PROBE_STEPS, tolerance_grad=1e-5, line_search_fn="strong_wolfe")
    n = len(x)

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(x1 @ w, y, reduction="sum") + (w[:-1] ** 2).sum() / (2 * c)
        loss = loss / n
        loss.backward()
        return loss

    opt.step(closure)
    return w.detach()


def linear_probe(feats: torch.Tensor, targets: torch.Tensor, folds: int = PROBE_FOLDS, seed: int = 0) -> float:
    """Stratified k-fold cross-validated accuracy of a logistic-regression probe on standardised
    features (mean and scale from each training fold only)."""
    x, y = feats.float(), torch.as_tensor(targets).long()  # float32: as accurate here, several times faster
    num_classes = int(y.max()) + 1
    counts = torch.bincount(y)
    k = max(2, min(folds, int(counts[counts > 0].min())))
    fold = _folds(y, k, seed)
    correct = 0
    for f in range(k):
        train, test = fold != f, fold == f
        mean = x[train].mean(0)
        std = x[train].std(0).clamp(min=1e-6)
        w = fit_logistic((x[train] - mean) / std, y[train], num_classes)
        xt = (x[test] - mean) / std
        pred = (torch.cat([xt, torch.ones(len(xt), 1, dtype=xt.dtype)], 1) @ w).argmax(1)
        correct += int((pred == y[test]).sum())
    return correct / len(y)


def knn_accuracy(feats: torch.Tensor, targets: torch.Tensor, k: int = KNN_K) -> float:
    """Leave-one-out accuracy of a k-nearest-neighbour vote by cosine similarity (each neighbour votes
    with its similarity, so ties are practically impossible)."""
    x = torch.nn.functional.normalize(feats.double() - feats.double().mean(0), dim=1)
    y = torch.as_tensor(targets).long()
    n = len(y)
    k = max(1, min(k, n - 1))
    num_classes = int(y.max()) + 1
    correct = 0
    for start in range(0, n, 1024):
        sim = x[start : start + 1024] @ x.T
        rows = torch.arange(start, min(n, start + 1024))
        sim[rows - start, rows] = -math.inf  # leave the example itself out
        top, idx = sim.topk(k, dim=1)
        votes = torch.zeros(len(rows), num_classes, dtype=sim.dtype)
        votes.scatter_add_(1, y[idx], top)
        correct += int((votes.argmax(1) == y[rows]).sum())
    return correct / n


#: the small constant the LogME reference code adds to both denominators of the fixed point: it keeps
#: the precisions finite when the features fit a class exactly (N <= D, or perfectly separable classes)
LOGME_EPSILON = 1e-5


def spectrum(feats: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The non-zero eigenvalues ``s`` of FᵀF (k,), the squared projections of each one-hot target column
    on F's matching left singular vectors (k, C), and each column's squared norm outside F's span (C,).

    From an eigendecomposition of the smaller Gram matrix (N x N or D x D), several times faster than
    an SVD of F and all that LogME needs."""
    f = feats.double()
    y = torch.nn.functional.one_hot(torch.as_tensor(targets).long()).double()  # (N, C)
    n, d = f.shape
    if n <= d:
        s, u = torch.linalg.eigh(f @ f.T)
        proj = u.T @ y
    else:
        s, v = torch.linalg.eigh(f.T @ f)
        proj = (v.T @ (f.T @ y)) / s.clamp(min=1e-300).sqrt()[:, None]
    keep = s > s.max().clamp(min=1e-300) * 1e-10  # numerically zero eigenvalues carry no signal
    s, x2 = s[keep], proj[keep] ** 2
    return s, x2, (y**2).sum(0) - x2.sum(0)


def logme(feats: torch.Tensor, targets: torch.Tensor, max_iter: int = 10_000, tol: float = 1e-8) -> float:
    """LogME (You et al., ICML 2021): the maximum log evidence per example of Bayesian linear regression
    from features ``F`` (N, D) to each class's one-hot column, averaged over classes.

    For one target column ``y``, with prior precision ``alpha`` on the weights and noise precision
    ``beta``: ``A = alpha I + beta FᵀF``, ``m = beta A⁻¹ Fᵀ y`` and the log evidence is
    ``D/2 log alpha + N/2 log beta - 1/2 log|A| - beta/2 ||F m - y||² - alpha/2 mᵀm - N/2 log 2π``.
    The paper's fixed point ``gamma = sum(beta s_i / (alpha + beta s_i))``, ``alpha = gamma / mᵀm``,
    ``beta = (N - gamma) / ||F m - y||²`` (s_i: eigenvalues of FᵀF; the reference code adds
    :data:`LOGME_EPSILON` to both denominators) is iterated for all classes at once, in the eigenbasis
    of FᵀF, until ``alpha / beta`` changes by less than ``tol`` (relative): convergence can take
    hundreds of steps when N < D, where the reference code's fixed 11 steps stop early.
    """
    n, d = feats.shape
    s, x2, rest = spectrum(feats, targets)
    sigma = s[:, None]
    alpha = torch.ones(x2.shape[1], dtype=torch.float64)
    beta = torch.ones_like(alpha)

    def fit(alpha: torch.Tensor, beta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        t = alpha / beta
        gamma = (sigma / (sigma + t)).sum(0)
        m2 = (sigma * x2 / (sigma + t) ** 2).sum(0)  # mᵀm
        res2 = (x2 * (t / (sigma + t)) ** 2).sum(0) + rest.clamp(min=0)  # ||F m - y||²
        return gamma, m2, res2

    for _ in range(max_iter):
        gamma, m2, res2 = fit(alpha, beta)
        new_alpha, new_beta = gamma / (m2 + LOGME_EPSILON), (n - gamma) / (res2 + LOGME_EPSILON)
        change = ((new_alpha / new_beta) / (alpha / beta) - 1).abs()
        alpha, beta = new_alpha, new_beta
        if bool((change <= tol).all()):
            break
    _, m2, res2 = fit(alpha, beta)
    log_det = torch.log(alpha + beta * sigma).sum(0) + (d - len(s)) * torch.log(alpha)
    evidence = (
        d / 2 * torch.log(alpha)
        + n / 2 * torch.log(beta)
        - log_det / 2
        - beta / 2 * res2
        - alpha / 2 * m2
        - n / 2 * math.log(2 * math.pi)
    )
    return float((evidence / n).mean())


def transfer_scores(feats: torch.Tensor, targets: torch.Tensor, seed: int = 0) -> dict[str, float]:
    """The three scores, the most trusted first (the probe is what the head stage itself trains)."""
    feats = torch.as_tensor(feats).float().cpu()
    targets = torch.as_tensor(targets).long().cpu()
    if len(torch.unique(targets)) < 2:
        from modelzoo.sdk import ZooError

        raise ZooError("transfer scores need examples of at least two classes; raise the number of examples")
    return {
        "probe": linear_probe(feats, targets, seed=seed),
        "knn": knn_accuracy(feats, targets),
        "logme": logme(feats, targets),
    }
