"""torchvision's detectors as modelzoo heads on any ``pyramid`` backbone (imported only when building).

The object-detection task talks to a head through one declared contract, :class:`DetectionHead`:
``losses, detections = head.detect(backbone, images, targets)``. Any head that subclasses it (a
third-party plugin's too) can be trained, evaluated and used by ``zoo predict``; the task checks
``isinstance(model.head, DetectionHead)`` when it builds or is handed a model, instead of probing for
methods, so a head that does not fit fails at once with one line, not mid-epoch with an AttributeError.

The heads here (:class:`TorchvisionHead` and its four families) keep the modelzoo backbone in
``TaskModel.backbone``: the engine freezes, unfreezes and decays it by its layer groups, and its
parameters appear once in the state dict. The head owns everything after it:

* ``neck``: the chosen pyramid levels mapped to the detector's channels (an FPN, or 1x1 convs, or the
  raw maps for SSDlite) plus extra stride-doubling levels (max-pool, P6/P7 convs or SSDlite blocks);
* ``net``: the torchvision detector (its ``backbone`` slot left empty) that supplies the RPN + RoI
  heads / RetinaNet / FCOS / SSDlite heads, anchors, losses, post-processing and the
  resize-and-normalise transform.

All glue (channels, strides, anchor sizes per level) is derived from ``backbone.info.levels``.
``TaskModel.forward(x)`` also works on an already normalised batch: ``head(backbone(x))`` returns
losses (training) or detections (eval) in ``x``'s pixels.
"""

from __future__ import annotations

import abc
import inspect
from collections import OrderedDict
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from modelzoo.sdk import Backbone, Level, ZooError, option_rule

# -- the neck: chosen levels -> detector channels, plus extra levels ----------------------------


class PyramidNeck(nn.Module):
    """Selected backbone levels as an ``OrderedDict`` of maps for a torchvision detector.

    ``mode``: ``"fpn"`` (top-down FPN to ``out_channels``), ``"conv1x1"`` (one 1x1 projection per level)
    or ``"none"`` (the raw maps). ``extra`` levels each halve the last map: ``"pool"`` (parameter-free
    max-pool, as Faster R-CNN's FPN), ``"conv"`` (3x3 stride-2 convs, as RetinaNet's P6/P7) or
    ``"dwconv"`` (SSDlite's depthwise-separable blocks, channels from ``extra_channels``).
    """

    def __init__(
        self,
        levels: list[Level],
        use: list[int],
        mode: str = "fpn",
        out_channels: int = 256,
        extra_levels: int = 0,
        extra: str = "pool",
        extra_channels: list[int] | None = None,
    ) -> None:
        super().__init__()
        from torchvision.ops import FeaturePyramidNetwork

        self.use = list(use)
        in_channels = [levels[i].channels for i in use]
        strides = [levels[i].stride for i in use]
        if mode == "fpn":
            self.fpn = FeaturePyramidNetwork(in_channels, out_channels)
            channels = [out_channels] * len(use)
        elif mode == "conv1x1":
            self.proj = nn.ModuleList(nn.Conv2d(c, out_channels, 1) for c in in_channels)
            channels = [out_channels] * len(use)
        elif mode == "none":
            channels = list(in_channels)
        else:
            raise ZooError(f"neck mode {mode!r} is not fpn, conv1x1 or none")
        self.mode = mode
        self.extra = extra
        self.extras = nn.ModuleList()
        for i in range(extra_levels):
            prev = channels[-1]
            if extra == "pool":
                ch = prev
            elif extra == "conv":
                ch = (extra_channels or [prev] * extra_levels)[i]
                self.extras.append(nn.Conv2d(prev, ch, 3, 2, 1))
                nn.init.kaiming_uniform_(self.extras[-1].weight, a=1)
                nn.init.constant_(self.extras[-1].bias, 0)
            elif extra == "dwconv":
                ch = (extra_channels or [256, 256, 128, 128, 64, 64])[i]
                self.extras.append(_dw_block(prev, ch))
            else:
                raise ZooError(f"extra level kind {extra!r} is not pool, conv or dwconv")
            channels.append(ch)
            strides.append(strides[-1] * 2)
        self.channels = channels
        self.strides = strides
        self.names = [str(i) for i in range(len(channels))]
        #: the maps that come from the backbone (RoI pooling uses these, not the extra levels)
        self.base_names = self.names[: len(use)]

    def forward(self, features: list[Tensor]) -> OrderedDict[str, Tensor]:
        maps = [features[i] for i in self.use]
        if self.mode == "fpn":
            maps = list(self.fpn(OrderedDict((str(i), m) for i, m in enumerate(maps))).values())
        elif self.mode == "conv1x1":
            maps = [proj(m) for proj, m in zip(self.proj, maps)]
        n_extra = len(self.names) - len(self.use)
        for i in range(n_extra):
            last = maps[-1]
            if self.extra == "pool":
                maps.append(F.max_pool2d(last, 1, 2, 0))
            elif self.extra == "conv":
                maps.append(self.extras[i](F.relu(last) if i else last))
            else:
                maps.append(self.extras[i](last))
        return OrderedDict(zip(self.names, maps))


def _dw_block(in_channels: int, out_channels: int) -> nn.Module:
    """SSDlite's extra block: 1x1 to half the channels -> 3x3 depthwise stride 2 -> 1x1 (each BN + ReLU6).

    The same modules, in the same order and with the same names, as torchvision's SSDlite extra
    block (a private helper there), so state dicts and initialisation match the torchvision model.
    """
    from torchvision.ops import Conv2dNormActivation

    norm, act, mid = _ssd_norm(), nn.ReLU6, out_channels // 2
    return nn.Sequential(
        Conv2dNormActivation(in_channels, mid, kernel_size=1, norm_layer=norm, activation_layer=act),
        Conv2dNormActivation(mid, mid, kernel_size=3, stride=2, groups=mid, norm_layer=norm, activation_layer=act),
        Conv2dNormActivation(mid, out_channels, kernel_size=1, norm_layer=norm, activation_layer=act),
    )


def _ssd_norm():
    from functools import partial

    return partial(nn.BatchNorm2d, eps=0.001, momentum=0.03)


# -- the head modules ---------------------------------------------------------------------------


class DetectionHead(nn.Module, abc.ABC):
    """The contract between the object-detection task and a head: subclass it and implement ``detect``.

    ``detect(backbone, images, targets=None) -> (losses, detections)`` where

    * ``images`` is a list of float CHW tensors in [0, 1], each in its own size: the head resizes and
      normalises them itself (its options decide how), so the task never needs to know how;
    * ``targets`` (one per image) hold ``boxes`` (float N x 4, xyxy in the image's pixels) and
      ``labels`` (int64 N, 1..K; 0 is background);
    * ``losses`` is a dict of scalar tensors: the training loss is their sum. In training mode only
      losses are computed (``detections`` may be empty); in eval mode the head returns detections and,
      when targets are given, the same losses (the validation loss);
    * ``detections`` (one per image) hold ``boxes`` (xyxy in the ORIGINAL image's pixels), ``scores``
      and ``labels`` (1..K).
    """

    @abc.abstractmethod
    def detect(
        self, backbone: nn.Module, images: list[Tensor], targets: list[dict[str, Tensor]] | None = None
    ) -> tuple[dict[str, Tensor], list[dict[str, Tensor]]]:
        """Run ``backbone`` and this head on ``images``: ``(losses, detections)``, as the class describes."""


class TorchvisionHead(DetectionHead):
    """Neck + a torchvision detector's parts, run on features of a modelzoo backbone."""

    family = ""

    def __init__(self, neck: PyramidNeck, net: nn.Module, input_stride: int) -> None:
        super().__init__()
        self.neck = neck
        net.backbone = None  # the modelzoo backbone lives in TaskModel.backbone, registered once
        self.net = net
        self.input_stride = input_stride

    @property
    def transform(self) -> nn.Module:
        """torchvision's GeneralizedRCNNTransform: resize to min/max size, normalise, batch."""
        return self.net.transform

    def detect(self, backbone: nn.Module, images: list[Tensor], targets: list[dict[str, Tensor]] | None = None):
        """Transform, run the backbone and the head; ``(losses, detections)`` in the original pixels."""
        original_sizes = [(int(img.shape[-2]), int(img.shape[-1])) for img in images]
        image_list, targets = self.net.transform(images, targets)
        return self.run(backbone(image_list.tensors), image_list, targets, original_sizes)

    def forward(self, features: list[Tensor], images=None, targets=None, original_sizes=None):
        losses, detections = self.run(features, images, targets, original_sizes)
        return losses if self.training else detections

    def run(self, features: list[Tensor], images=None, targets=None, original_sizes=None):
        if images is None:  # head(backbone(x)) on a normalised batch: sizes from the first map's stride
            from torchvision.models.detection.image_list import ImageList

            b, _, h, w = features[0].shape
            size = (int(h * self.input_stride), int(w * self.input_stride))
            images = ImageList(torch.empty((b, 3, *size), device="meta"), [size] * b)
            original_sizes = [size] * b
        if self.training and targets is None:
            raise ZooError("a detection head in training mode needs targets (boxes and labels per image)")
        return self._run(list(features), images, targets, original_sizes)

    def _run(self, features, images, targets, original_sizes):
        raise NotImplementedError


def _split(head_outputs: dict[str, Tensor], anchors: list[Tensor], per_level: list[int]):
    split_outputs = {k: list(v.split(per_level, dim=1)) for k, v in head_outputs.items()}
    split_anchors = [list(a.split(per_level)) for a in anchors]
    return split_outputs, split_anchors


class FasterRCNNHead(TorchvisionHead):
    family = "fasterrcnn"

    def _run(self, features, images, targets, original_sizes):
        net = self.net
        feats = self.neck(features)
        if self.training:
            proposals, rpn_losses = net.rpn(images, feats, targets)
            _, roi_losses = net.roi_heads(feats, proposals, images.image_sizes, targets)
            return {**rpn_losses, **roi_losses}, []
        losses: dict[str, Tensor] = {}
        if targets is not None:
            # validation loss = the training computation; it samples proposals: a fixed seed makes it
            # repeatable, and the forked RNG leaves the caller's random stream untouched
            devices = [features[0].device.index or 0] if features[0].is_cuda else []
            with torch.random.fork_rng(devices=devices):
                torch.manual_seed(0)
                net.rpn.train()
                net.roi_heads.train()
                try:
                    proposals, rpn_losses = net.rpn(images, feats, targets)
                    _, roi_losses = net.roi_heads(feats, proposals, images.image_sizes, targets)
                finally:
                    net.rpn.eval()
                    net.roi_heads.eval()
            losses = {**rpn_losses, **roi_losses}
        proposals, _ = net.rpn(images, feats)
        detections, _ = net.roi_heads(feats, proposals, images.image_sizes)
        return losses, net.transform.postprocess(detections, images.image_sizes, original_sizes)


class _DenseHead(TorchvisionHead):
    """RetinaNet / FCOS / SSD: one dense head over all levels, anchors, loss, post-processing."""

    def _run(self, features, images, targets, original_sizes):
        net = self.net
        feats = list(self.neck(features).values())
        head_outputs = net.head(feats)
        anchors = net.anchor_generator(images, feats)
        losses = self._loss(targets, head_outputs, anchors, feats) if targets is not None else {}
        if self.training:
            return losses, []
        detections = self._postprocess(head_outputs, anchors, feats, images)
        return losses, net.transform.postprocess(detections, images.image_sizes, original_sizes)


class RetinaNetHead(_DenseHead):
    family = "retinanet"

    def _loss(self, targets, head_outputs, anchors, feats):
        return self.net.compute_loss(targets, head_outputs, anchors)

    def _postprocess(self, head_outputs, anchors, feats, images):
        hw = [x.size(2) * x.size(3) for x in feats]
        a = head_outputs["cls_logits"].size(1) // sum(hw)
        outputs, split_anchors = _split(head_outputs, anchors, [n * a for n in hw])
        return self.net.postprocess_detections(outputs, split_anchors, images.image_sizes)


class FCOSHead(_DenseHead):
    family = "fcos"

    def _loss(self, targets, head_outputs, anchors, feats):
        per_level = [x.size(2) * x.size(3) for x in feats]
        return self.net.compute_loss(targets, head_outputs, anchors, per_level)

    def _postprocess(self, head_outputs, anchors, feats, images):
        outputs, split_anchors = _split(head_outputs, anchors, [x.size(2) * x.size(3) for x in feats])
        return self.net.postprocess_detections(outputs, split_anchors, images.image_sizes)


class SSDLiteHead(_DenseHead):
    family = "ssdlite"

    def _loss(self, targets, head_outputs, anchors, feats):
        from torchvision.ops import boxes as box_ops

        matched = []
        for anchors_per_image, t in zip(anchors, targets):
            if t["boxes"].numel() == 0:
                matched.append(
                    torch.full((anchors_per_image.size(0),), -1, dtype=torch.int64, device=t["boxes"].device)
                )
                continue
            matched.append(self.net.proposal_matcher(box_ops.box_iou(t["boxes"], anchors_per_image)))
        return self.net.compute_loss(targets, head_outputs, anchors, matched)

    def _postprocess(self, head_outputs, anchors, feats, images):
        return self.net.postprocess_detections(head_outputs, anchors, images.image_sizes)


# -- builders: glue derived from the backbone's levels ------------------------------------------


def _pyramid_levels(backbone: Backbone, head: str) -> list[Level]:
    info = getattr(backbone, "info", None)
    if info is None or info.output_kind != "pyramid" or not info.levels:
        kind = getattr(info, "output_kind", type(backbone).__name__)
        raise ZooError(
            f"head {head!r} consumes a pyramid (multi-scale maps with channels and strides); the backbone emits"
            f" {kind}; build it with output='pyramid' or pick a backbone that offers one (zoo list --task detection)"
        )
    return list(info.levels)


def _select(levels: list[Level], head: str, strides: list[int] | None, min_stride: int, max_stride: int | None):
    """Indices of the levels to use: ``strides`` explicitly, else those within [min_stride, max_stride]."""
    have = [lv.stride for lv in levels]
    if strides:
        missing = [s for s in strides if s not in have]
        if missing:
            raise ZooError(f"head {head!r}: levels {missing} are not strides of the backbone (it has {have})")
        return [have.index(s) for s in strides]
    use = [i for i, s in enumerate(have) if s >= min_stride and (max_stride is None or s <= max_stride)]
    if not use:
        raise ZooError(
            f"head {head!r}: no backbone level has a stride in [{min_stride}, {max_stride or 'any'}]"
            f" (the backbone's strides: {have}); set head_options.levels"
        )
    return use


def _split_kwargs(cls, options: dict[str, Any], head: str, own: set[str]) -> dict[str, Any]:
    """Options left for the torchvision class; unknown ones are an error naming the valid ones."""
    allowed = set(inspect.signature(cls.__init__).parameters) - {"self", "backbone", "num_classes", "kwargs"}
    unknown = sorted(k for k in options if k not in allowed)
    if unknown:
        raise ZooError(f"head {head!r}: unknown option(s) {unknown}; valid: {', '.join(sorted(allowed | own))}")
    return dict(options)


def _common(backbone: Backbone) -> dict[str, Any]:
    cfg = backbone.pretrained_cfg
    return {
        "image_mean": list(cfg.get("mean", (0.485, 0.456, 0.406))),
        "image_std": list(cfg.get("std", (0.229, 0.224, 0.225))),
    }


def _anchor_sizes(strides: list[int], anchor_sizes, per_level) -> tuple[tuple[float, ...], ...]:
    if anchor_sizes is not None:
        if len(anchor_sizes) != len(strides):
            raise ZooError(
                f"anchor_sizes has {len(anchor_sizes)} entries for {len(strides)} levels (strides {strides})"
            )
        return tuple(tuple(float(s) for s in sizes) for sizes in anchor_sizes)
    return tuple(tuple(float(round(x, 2)) for x in per_level(s)) for s in strides)


FASTERRCNN_OWN = {
    "levels",
    "min_stride",
    "max_stride",
    "fpn",
    "out_channels",
    "extra_levels",
    "anchor_sizes",
    "aspect_ratios",
    "representation_size",
    "roi_output_size",
    "roi_sampling_ratio",
}


def _detector_option(name: str) -> str | None:
    """The detector options forwarded to torchvision's constructors (box sampling, NMS, thresholds...):
    numbers that size the detector, checked against its signature by :func:`_split_kwargs`; none loads a file."""
    if name.startswith(("weights", "pretrained")) or name.endswith(("_path", "_file", "_url", "_dir")):
        return "it would load weights or files; set model.pretrained instead"
    return None


@option_rule(_detector_option)
def build_fasterrcnn(
    backbone: Backbone,
    num_classes: int,
    levels: list[int] | None = None,
    min_stride: int = 8,
    max_stride: int | None = None,
    fpn: bool = True,
    out_channels: int = 256,
    extra_levels: int | None = None,
    anchor_sizes: list[list[float]] | None = None,
    aspect_ratios: list[float] = (0.5, 1.0, 2.0),
    representation_size: int = 1024,
    roi_output_size: int = 7,
    roi_sampling_ratio: int = 2,
    min_size: int = 512,
    max_size: int = 853,
    **options: Any,
) -> FasterRCNNHead:
    """Faster R-CNN: RPN + RoIAlign box head over an FPN (or 1x1 projections) of the chosen levels.

    Anchors: one size per level, 8x the level's stride, with a max-pooled extra level (as torchvision's
    FPN detectors); a single level without FPN gets four octaves (1, 2, 4, 8 x stride) instead.
    RoIAlign pools each box to ``roi_output_size`` squared bins of ``roi_sampling_ratio`` squared samples
    (0: adaptive, as torchvision); its backward pass was ~40% of a CPU training step at 2 x 2 samples,
    and on a coarse map (stride 16 and up) one sample per bin reads the same cells, faster.
    """
    from torchvision.models.detection.anchor_utils import AnchorGenerator
    from torchvision.models.detection.faster_rcnn import FasterRCNN, FastRCNNPredictor, TwoMLPHead
    from torchvision.ops import MultiScaleRoIAlign

    for name, value, low in (("roi_output_size", roi_output_size, 1), ("roi_sampling_ratio", roi_sampling_ratio, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= 16:
            raise ZooError(f"head 'fasterrcnn': {name} = {value!r:.40} must be a whole number in [{low}, 16]")
    kw = _split_kwargs(
        FasterRCNN, {**options, "min_size": min_size, "max_size": max_size}, "fasterrcnn", FASTERRCNN_OWN
    )
    pyr = _pyramid_levels(backbone, "fasterrcnn")
    use = _select(pyr, "fasterrcnn", levels, min_stride, max_stride)
    if extra_levels is None:
        extra_levels = 1 if fpn and len(use) > 1 else 0
    neck = PyramidNeck(pyr, use, "fpn" if fpn else "conv1x1", out_channels, extra_levels, "pool")
    single = len(neck.strides) == 1
    sizes = _anchor_sizes(
        neck.strides, anchor_sizes, (lambda s: (s, 2 * s, 4 * s, 8 * s)) if single else (lambda s: (8 * s,))
    )
    ratios = tuple(float(r) for r in aspect_ratios)
    anchors = AnchorGenerator(sizes, (ratios,) * len(sizes))
    roi_pool = MultiScaleRoIAlign(neck.base_names, output_size=roi_output_size, sampling_ratio=roi_sampling_ratio)
    box_head = TwoMLPHead(out_channels * roi_output_size**2, representation_size)
    predictor = FastRCNNPredictor(representation_size, num_classes + 1)
    neck.out_channels = out_channels  # torchvision checks its backbone slot has it
    net = FasterRCNN(
        neck,
        num_classes=None,
        rpn_anchor_generator=anchors,
        box_roi_pool=roi_pool,
        box_head=box_head,
        box_predictor=predictor,
        **{**_common(backbone), **kw},
    )
    return FasterRCNNHead(neck, net, pyr[0].stride)


DENSE_OWN = {
    "levels",
    "min_stride",
    "max_stride",
    "fpn",
    "out_channels",
    "extra_levels",
    "anchor_sizes",
    "aspect_ratios",
}


@option_rule(_detector_option)
def build_retinanet(
    backbone: Backbone,
    num_classes: int,
    levels: list[int] | None = None,
    min_stride: int = 8,
    max_stride: int | None = None,
    fpn: bool = True,
    out_channels: int = 256,
    extra_levels: int = 2,
    anchor_sizes: list[list[float]] | None = None,
    aspect_ratios: list[float] = (0.5, 1.0, 2.0),
    min_size: int = 512,
    max_size: int = 853,
    **options: Any,
) -> RetinaNetHead:
    """RetinaNet: focal-loss dense head over an FPN of the chosen levels plus P6/P7 convs.

    Anchors: 4x the level's stride at three scales per octave (2^0, 2^1/3, 2^2/3), as in the paper.
    """
    from torchvision.models.detection.anchor_utils import AnchorGenerator
    from torchvision.models.detection.retinanet import RetinaNet
    from torchvision.models.detection.retinanet import RetinaNetHead as TVRetinaNetHead

    kw = _split_kwargs(RetinaNet, {**options, "min_size": min_size, "max_size": max_size}, "retinanet", DENSE_OWN)
    pyr = _pyramid_levels(backbone, "retinanet")
    use = _select(pyr, "retinanet", levels, min_stride, max_stride)
    neck = PyramidNeck(pyr, use, "fpn" if fpn else "conv1x1", out_channels, extra_levels, "conv")
    sizes = _anchor_sizes(neck.strides, anchor_sizes, lambda s: tuple(4 * s * 2 ** (k / 3) for k in range(3)))
    ratios = tuple(float(r) for r in aspect_ratios)
    anchors = AnchorGenerator(sizes, (ratios,) * len(sizes))
    head = TVRetinaNetHead(out_channels, anchors.num_anchors_per_location()[0], num_classes + 1)
    neck.out_channels = out_channels
    net = RetinaNet(neck, num_classes + 1, anchor_generator=anchors, head=head, **{**_common(backbone), **kw})
    return RetinaNetHead(neck, net, pyr[0].stride)


@option_rule(_detector_option)
def build_fcos(
    backbone: Backbone,
    num_classes: int,
    levels: list[int] | None = None,
    min_stride: int = 8,
    max_stride: int | None = None,
    fpn: bool = True,
    out_channels: int = 256,
    extra_levels: int = 2,
    min_size: int = 512,
    max_size: int = 853,
    **options: Any,
) -> FCOSHead:
    """FCOS: anchor-free centre-ness head over an FPN of the chosen levels plus P6/P7 convs.

    Each level's "anchor" is one point of the level's stride, which FCOS's loss uses to assign
    objects to levels by size; ``out_channels`` must be a multiple of 32 (its GroupNorm).
    """
    from torchvision.models.detection.anchor_utils import AnchorGenerator
    from torchvision.models.detection.fcos import FCOS
    from torchvision.models.detection.fcos import FCOSHead as TVFCOSHead

    if out_channels % 32:
        raise ZooError(f"head 'fcos': out_channels {out_channels} must be a multiple of 32 (FCOS uses GroupNorm(32))")
    kw = _split_kwargs(FCOS, {**options, "min_size": min_size, "max_size": max_size}, "fcos", DENSE_OWN)
    pyr = _pyramid_levels(backbone, "fcos")
    use = _select(pyr, "fcos", levels, min_stride, max_stride)
    neck = PyramidNeck(pyr, use, "fpn" if fpn else "conv1x1", out_channels, extra_levels, "conv")
    anchors = AnchorGenerator(tuple((float(s),) for s in neck.strides), ((1.0,),) * len(neck.strides))
    head = TVFCOSHead(out_channels, 1, num_classes + 1)
    neck.out_channels = out_channels
    net = FCOS(neck, num_classes + 1, anchor_generator=anchors, head=head, **{**_common(backbone), **kw})
    return FCOSHead(neck, net, pyr[0].stride)


SSD_OWN = {
    "levels",
    "min_stride",
    "max_stride",
    "extra_levels",
    "extra_channels",
    "aspect_ratios",
    "min_ratio",
    "max_ratio",
}


def build_ssdlite(
    backbone: Backbone,
    num_classes: int,
    levels: list[int] | None = None,
    min_stride: int = 16,
    max_stride: int | None = None,
    extra_levels: int = 2,
    extra_channels: list[int] | None = None,
    aspect_ratios: list[list[int]] | None = None,
    min_ratio: float = 0.2,
    max_ratio: float = 0.95,
    size: int = 320,
    **options: Any,
) -> SSDLiteHead:
    """SSDlite: depthwise-separable box/class heads on the raw chosen levels plus SSDlite extra blocks.

    Default boxes scale linearly from ``min_ratio`` to ``max_ratio`` of the (fixed, square) input
    ``size`` across the levels, with aspect ratios 2 and 3 per level.
    """
    from torchvision.models.detection.anchor_utils import DefaultBoxGenerator
    from torchvision.models.detection.ssd import SSD
    from torchvision.models.detection.ssdlite import SSDLiteHead as TVSSDLiteHead

    defaults = {"score_thresh": 0.001, "nms_thresh": 0.55, "detections_per_img": 300, "topk_candidates": 300}
    kw = _split_kwargs(SSD, {**defaults, **options}, "ssdlite", SSD_OWN | {"size"})
    pyr = _pyramid_levels(backbone, "ssdlite")
    use = _select(pyr, "ssdlite", levels, min_stride, max_stride)
    neck = PyramidNeck(pyr, use, "none", 0, extra_levels, "dwconv", extra_channels)
    n = len(neck.channels)
    ratios = aspect_ratios or [[2, 3]] * n
    if len(ratios) != n:
        raise ZooError(f"head 'ssdlite': aspect_ratios has {len(ratios)} entries for {n} levels")
    anchors = DefaultBoxGenerator(ratios, min_ratio=min_ratio, max_ratio=max_ratio)
    head = TVSSDLiteHead(neck.channels, anchors.num_anchors_per_location(), num_classes + 1, _ssd_norm())
    net = SSD(neck, anchors, (size, size), num_classes + 1, head=head, **{**_common(backbone), **kw})
    return SSDLiteHead(neck, net, pyr[0].stride)


def describe(head: TorchvisionHead) -> str:
    """One line: family, levels used, channels and strides (for logs and tests)."""
    n = head.neck
    return f"{head.family}: levels {n.use} -> channels {n.channels}, strides {n.strides}"


__all__ = [
    "DetectionHead",
    "FCOSHead",
    "FasterRCNNHead",
    "PyramidNeck",
    "RetinaNetHead",
    "SSDLiteHead",
    "TorchvisionHead",
    "build_fasterrcnn",
    "build_fcos",
    "build_retinanet",
    "build_ssdlite",
    "describe",
]
