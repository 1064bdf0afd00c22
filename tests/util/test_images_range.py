"""Images keep their dynamic range: 16-bit and float images are scaled to 8 bits, never clipped."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from modelzoo.sdk import read_image, read_image_tensor

pytestmark = pytest.mark.attack("images")


def test_a_dark_16_bit_png_stays_dark(tmp_path):
    values = np.linspace(0, 12000, 32 * 32).reshape(32, 32).astype(np.uint16)  # dark: under a fifth of the range
    path = tmp_path / "dark16.png"
    Image.fromarray(values).save(path)
    assert Image.open(path).mode.startswith("I")
    pixels = np.asarray(read_image(path, "L"))
    assert pixels.max() == round(12000 / 257) and pixels.min() == 0
    assert (pixels == 255).mean() == 0  # clipping made 93.6% of such an image white
    rgb = read_image_tensor(path)
    assert rgb.shape == (3, 32, 32) and int(rgb.max()) == round(12000 / 257)


@pytest.mark.parametrize(
    ("values", "expected_max"),
    [(np.linspace(0.0, 0.5, 64), 128), (np.linspace(-3.0, 5.0, 64), 255)],
    ids=["unit-float", "any-float"],
)
def test_float_images_are_scaled_not_clipped(tmp_path, values, expected_max):
    path = tmp_path / "float.tif"
    Image.fromarray(values.reshape(8, 8).astype(np.float32), mode="F").save(path)
    pixels = np.asarray(read_image(path, "L"))
    assert int(pixels.max()) == expected_max and len(np.unique(pixels)) > 32
