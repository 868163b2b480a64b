"""The edge extractor shipped for fashion-edges2item, against scikit-image's Sobel filter on real photos."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from real_images import real_photo

from gantx.edges import THRESHOLD, edge_map, edges

filters = pytest.importorskip("skimage.filters")


def test_edge_map_marks_the_outline_of_a_square_and_nothing_else():
    square = np.zeros((12, 12), np.uint8)
    square[3:9, 3:9] = 255
    expected = np.zeros((12, 12), bool)
    expected[2:10, 2:10] = True
    expected[4:8, 4:8] = False  # flat inside: no gradient
    np.testing.assert_array_equal(edge_map(square) == 255, expected)
    assert set(np.unique(edge_map(square))) == {0, 255}


@pytest.mark.parametrize("name", ["astronaut.png", "china.jpg"])
def test_edges_of_a_real_photo_equal_scikit_image_sobel_thresholded(name):
    photo = real_photo(name)
    grey = np.asarray(photo.convert("L"))
    # scikit-image's magnitude is sqrt(gx^2 + gy^2) / (4 sqrt 2): the same normalisation; zero padding as ours.
    reference = filters.sobel(grey.astype(np.float32) / 255, mode="constant", cval=0) > THRESHOLD
    result = edges(photo)
    assert result.mode == "L" and result.size == photo.size
    np.testing.assert_array_equal(np.asarray(result) == 255, reference)
    assert 0.01 < reference.mean() < 0.5  # a real photo has some edges, not everywhere


def test_a_stack_of_items_is_the_same_as_one_at_a_time():
    stack = np.stack(
        [
            np.asarray(real_photo("astronaut.png").convert("L").resize((28, 28), Image.Resampling.BOX)),
            np.zeros((28, 28), np.uint8),
        ]
    )
    np.testing.assert_array_equal(edge_map(stack), np.stack([edge_map(stack[0]), edge_map(stack[1])]))
    assert not edge_map(stack[1]).any()


def test_a_uint8_array_gives_the_same_edges_as_an_array():
    photo = real_photo("astronaut.png")
    expected = np.asarray(edges(photo))
    for array in (
        np.asarray(photo),
        np.asarray(photo.convert("RGBA")),
        np.asarray(photo.convert("L")),
        np.asarray(photo.convert("L"))[:, :, None],
    ):
        result = edges(array)
        assert isinstance(result, np.ndarray) and result.dtype == np.uint8
        np.testing.assert_array_equal(result, expected)


def test_an_array_edges_cannot_read_is_an_input_error():
    from gantx.errors import InputError

    with pytest.raises(InputError, match="numpy images must be uint8, got float64"):
        edges(np.zeros((4, 4)))
