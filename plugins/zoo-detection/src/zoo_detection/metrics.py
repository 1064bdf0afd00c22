"""COCO mAP of detections against ground-truth records, by pycocotools' own COCOeval (the reference
implementation, so numbers compare with published ones)."""

from __future__ import annotations

import contextlib
import io
from typing import Any

import torch

from .data import Record


def coco_map(
    records: list[Record],
    detections: dict[int, dict[str, torch.Tensor]],
    labels: list[str],
    per_class: bool = False,
) -> dict[str, Any]:
    """COCO bbox mAP (pycocotools COCOeval) of ``detections`` (index -> boxes xyxy, scores, labels 0-based).

    Returns ``map`` (AP@[.5:.95]), ``map_50``, ``map_75``; with ``per_class`` also ``per_class_ap``
    (label, AP, AP@.5, number of objects; AP None for a class without objects).
    """
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    images, anns = [], []
    for i, rec in enumerate(records):
        images.append({"id": i, "width": rec.width, "height": rec.height})
        for box, label, crowd in zip(rec.boxes, rec.labels, rec.crowd):
            w, h = box[2] - box[0], box[3] - box[1]
            anns.append(
                {
                    "id": len(anns) + 1,
                    "image_id": i,
                    "category_id": label + 1,
                    "bbox": [box[0], box[1], w, h],
                    "area": w * h,
                    "iscrowd": int(crowd),
                }
            )
    cats = [{"id": k + 1, "name": n} for k, n in enumerate(labels)]
    dets = []
    for i in sorted(detections):  # in image order: the result never depends on how they were gathered
        d = detections[i]
        for box, score, label in zip(d["boxes"].tolist(), d["scores"].tolist(), d["labels"].tolist()):
            dets.append(
                {
                    "image_id": int(i),
                    "category_id": int(label) + 1,
                    "bbox": [box[0], box[1], box[2] - box[0], box[3] - box[1]],
                    "score": float(score),
                }
            )
    num_objects = [0] * len(labels)
    for rec in records:
        for label, crowd in zip(rec.labels, rec.crowd):
            num_objects[label] += 0 if crowd else 1
    out: dict[str, Any] = {"map": 0.0, "map_50": 0.0, "map_75": 0.0}
    precision = None
    if dets and anns:
        with contextlib.redirect_stdout(io.StringIO()):
            gt = COCO()
            gt.dataset = {"images": images, "annotations": anns, "categories": cats}
            gt.createIndex()
            dt = gt.loadRes(dets)
            ev = COCOeval(gt, dt, "bbox")
            ev.evaluate()
            ev.accumulate()
            ev.summarize()
        out = {
            "map": max(0.0, float(ev.stats[0])),
            "map_50": max(0.0, float(ev.stats[1])),
            "map_75": max(0.0, float(ev.stats[2])),
        }
        precision = ev.eval["precision"]  # [iou, recall, class, area, max dets]
    if per_class:
        rows = []
        for k, name in enumerate(labels):
            ap = ap50 = None
            if num_objects[k]:
                ap = ap50 = 0.0
                if precision is not None:
                    p = precision[:, :, k, 0, -1]
                    valid = p[p > -1]
                    ap = float(valid.mean()) if valid.size else 0.0
                    p50 = precision[0, :, k, 0, -1]
                    ap50 = float(p50[p50 > -1].mean()) if (p50 > -1).any() else 0.0
            rows.append(
                {
                    "label": name,
                    "ap": None if ap is None else round(ap, 4),
                    "ap_50": None if ap50 is None else round(ap50, 4),
                    "num_objects": num_objects[k],
                }
            )
        out["per_class_ap"] = rows
    return out
