"""zoo compare: MACs counted by FlopCounterMode against hand counts (a tiny conv net, an attention block
that runs PyTorch's fused CPU attention kernel), measured speeds, and the table/JSON of real backbones."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from modelzoo.cli.main import main
from modelzoo.errors import ZooError
from modelzoo.select.compare import compare, compare_backbone, count_flops, count_macs, format_table, throughput

pytestmark = pytest.mark.usefixtures("one_thread")


def test_macs_of_a_tiny_conv_net_match_a_hand_count():
    net = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),  # 8 outputs x 3*3*3 weights per output pixel, 16x16 pixels
        nn.ReLU(),
        nn.Conv2d(8, 4, 1, stride=2),  # 4 x 8 per pixel, 8x8 pixels
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(4, 10),  # 4 x 10
    )
    hand = 8 * 27 * 16 * 16 + 4 * 8 * 8 * 8 + 4 * 10
    assert count_macs(net, torch.randn(1, 3, 16, 16)) == hand
    assert count_macs(net, torch.randn(2, 3, 16, 16)) == 2 * hand


class Attention(nn.Module):
    """One multi-head self-attention block through F.scaled_dot_product_attention (the fused kernel)."""

    def __init__(self, dim: int = 16, heads: int = 2) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, c = x.shape
        q, k, v = self.qkv(x).reshape(b, t, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(b, t, c))


def test_fused_cpu_attention_is_counted_like_a_hand_count():
    b, t, c, heads = 2, 10, 16, 2
    block = Attention(c, heads)
    x = torch.randn(b, t, c)
    linear = b * t * c * 3 * c + b * t * c * c  # qkv and the output projection
    attention = 2 * b * heads * t * t * (c // heads)  # q @ kᵀ and softmax(.) @ v
    assert count_macs(block, x) == linear + attention
    # what the extra formula is for: PyTorch's own table counts the fused CPU kernel as free
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as plain:
        block(x)
    assert plain.get_total_flops() // 2 == linear


def test_count_flops_of_a_function():
    a, b = torch.randn(4, 5), torch.randn(5, 6)
    assert count_flops(torch.mm, a, b) == 2 * 4 * 5 * 6


def test_throughput_runs_at_least_twice_and_counts_examples():
    calls = []
    rate = throughput(lambda: calls.append(1), examples=8, seconds=0.0)
    assert len(calls) == 3 and rate > 0  # one warm-up, two timed


def test_compare_measures_a_real_backbone(real_catalog):
    row = compare_backbone("timm:test_efficientnet", image_size=32, seconds=0.05, batch_size=2)
    assert row.error is None and row.backbone == "timm:test_efficientnet"
    assert row.params == sum(
        p.numel() for p in __import__("timm").create_model("test_efficientnet", num_classes=0).parameters()
    )
    assert row.macs > 0 and row.forward_per_s > 0 and row.train_per_s > 0
    assert row.tag and row.license and row.source.startswith("hf-hub:")
    assert "pooled" in row.outputs and "image-classification" in row.tasks
    # a transformer: its attention runs the fused CPU kernel, and it is counted
    vit = compare_backbone("timm:test_vit", image_size=32, seconds=0)
    assert vit.error is None and vit.forward_per_s is None
    from torch.utils.flop_counter import FlopCounterMode

    from modelzoo.model.assembly import create_backbone

    model = create_backbone("timm:test_vit", pretrained=False).eval()
    with torch.no_grad(), FlopCounterMode(display=False) as plain:
        model(torch.randn(1, 3, 32, 32))
    assert vit.macs > plain.get_total_flops() // 2
    table = format_table([row, vit])
    assert table.splitlines()[0].split()[:5] == ["NAME", "PARAMS", "GMACS@32", "FWD/S", "TRAIN/S"]
    assert "timm:test_vit" in table


def test_compare_cli_json_and_one_line_errors(real_catalog, capsys):
    assert main(["compare", "timm:test_convnext", "--image-size", "32", "--seconds", "0", "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["backbone"] == "timm:test_convnext" and row["macs"] > 0 and row["input_size"] == [3, 32, 32]
    assert main(["compare", "timm:test_convnxt"]) == 2
    assert "did you mean: test_convnext" in capsys.readouterr().err
    with pytest.raises(ZooError, match="--image-size 2"):
        compare(["timm:test_convnext"], image_size=2)
