"""Temporal consistency for translated video, without training: `--deflicker`.

A translator changes its mind from frame to frame, so textures crawl and
colours pulse. `Deflicker` follows the input frames' optical flow (OpenCV's
DIS, at most `flow_width` pixels wide) from each frame back to the one before,
warps the previous smoothed output along it and blends it into the current
output wherever the motion is reliable: a forward-backward check, motion
boundaries, a photometric check on the input frames and the frame's edges
mark where it is not (occlusions, flow errors), and there the current output
stands alone. When too little of a frame is reliable (a scene cut) the state
resets and the frame is its per-frame output exactly.

It works on finished frames, so it runs after batched inference, for any model
kind: an output of another size than its input (an upscaler) has the flow
scaled to it. OpenCV comes with the `flow` extra and is imported when a
Deflicker is made.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

import numpy as np

from gantx.errors import GantxError
from gantx.extras import import_extra

if TYPE_CHECKING:
    from gantx.translator import Translator

DEFAULT_STRENGTH = 0.5  # benchmarks/results/deflicker.md: the strongest keeping every clip's worst frame >= 28 dB
FLOW_WIDTH = 640  # flow is computed at most this wide: DIS's cost grows with pixels, the flow field is smooth
CUT_RELIABLE = 0.3  # below this share of reliable pixels, a frame starts a new scene
PHOTOMETRIC_LEVELS = 24.0  # an input pixel that its flow maps to one this many grey levels away is not followed


def check_strength(strength: float) -> float:
    """`strength` is the previous output's weight where motion is reliable: 0 is off, 1 would freeze the picture."""
    if not 0 <= strength < 1:
        raise GantxError(f"--deflicker-strength {strength}: must be at least 0 and below 1")
    return strength


class Deflicker:
    """Smooths translated frames in order: `smoothed = deflicker(source_frame, translated_frame)`, frame after frame.

    Frames are uint8 arrays, HxW or HxWxC; the translated frame may be larger
    or smaller than its source. One Deflicker follows one sequence: make a new
    one (or call `reset`) for the next.
    """

    def __init__(self, strength: float = DEFAULT_STRENGTH, flow_width: int = FLOW_WIDTH) -> None:
        self.strength = check_strength(strength)
        self.flow_width = flow_width
        self.cv2 = import_extra("cv2", "flow")
        self.flow = self.cv2.DISOpticalFlow_create(self.cv2.DISOPTICAL_FLOW_PRESET_FAST)
        self.grids: dict[tuple[int, int], np.ndarray] = {}
        self.cuts = 0  # frames that started a new scene, the first one included
        self.reset()

    def reset(self) -> None:
        """Forget the previous frame: the next one starts a new scene."""
        self.previous_grey: np.ndarray | None = None
        self.previous_output: np.ndarray | None = None

    def __call__(self, source: np.ndarray, output: np.ndarray) -> np.ndarray:
        grey = self._flow_input(source)
        previous_grey, previous_output = self.previous_grey, self.previous_output
        self.previous_grey = grey
        if previous_grey is None or previous_grey.shape != grey.shape or previous_output.shape != output.shape:
            return self._start_scene(output)
        flow, reliable = self._motion(previous_grey, grey)
        if reliable.mean() < CUT_RELIABLE:
            return self._start_scene(output)
        height, width = output.shape[:2]
        to_output = np.array([width / grey.shape[1], height / grey.shape[0]], np.float32)
        flow = self.cv2.resize(flow * to_output, (width, height))
        weight = self.cv2.resize(reliable * np.float32(self.strength), (width, height))
        alpha = output.ndim == 3 and output.shape[2] == 4  # the source's own alpha, carried over: not smoothed
        colour, previous_colour = (_colour(output), _colour(previous_output)) if alpha else (output, previous_output)
        warped = self.cv2.remap(
            previous_colour, self._grid(height, width) + flow, None, self.cv2.INTER_LINEAR, self.cv2.BORDER_REPLICATE
        )
        smoothed = self.cv2.blendLinear(warped, colour, weight, 1 - weight)
        if alpha:
            smoothed = np.dstack([smoothed, output[:, :, 3]])
        self.previous_output = smoothed
        return smoothed

    def _start_scene(self, output: np.ndarray) -> np.ndarray:
        self.cuts += 1
        self.previous_output = output
        return output

    def _flow_input(self, source: np.ndarray) -> np.ndarray:
        """The grey image the flow is computed on: at most `flow_width` wide."""
        if source.ndim == 3:
            grey = (
                source[:, :, 0]
                if source.shape[2] == 1
                else self.cv2.cvtColor(source[:, :, :3], self.cv2.COLOR_RGB2GRAY)
            )
        else:
            grey = source
        height, width = grey.shape
        if width > self.flow_width:
            size = (self.flow_width, max(1, round(height * self.flow_width / width)))
            grey = self.cv2.resize(grey, size, interpolation=self.cv2.INTER_AREA)
        return np.ascontiguousarray(grey)

    def _motion(self, previous: np.ndarray, current: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Where each pixel of `current` was in `previous` (HxWx2, pixels), and how far to trust it (HxW, 0..1).

        Unreliable (Ruder et al., "Artistic style transfer for videos", 2016):
        the forward flow does not lead back, the flow changes sharply (a motion
        boundary), the pixel it leads to looks different, or it leads off the frame.
        """
        cv2 = self.cv2
        backward = self.flow.calc(current, previous, None)
        forward = self.flow.calc(previous, current, None)
        height, width = current.shape
        where = self._grid(height, width) + backward
        forward_there = cv2.remap(forward, where, None, cv2.INTER_LINEAR, cv2.BORDER_REPLICATE)
        looks = cv2.remap(previous, where, None, cv2.INTER_LINEAR, cv2.BORDER_REPLICATE)
        length = _squared_length(backward)
        reliable = (
            (_squared_length(backward + forward_there) <= 0.01 * (length + _squared_length(forward_there)) + 0.5)
            & (_squared_gradient(cv2, backward) <= 0.01 * length + 0.002)
            & (cv2.absdiff(looks, current) <= PHOTOMETRIC_LEVELS)
            & cv2.inRange(where, (0, 0), (width - 1, height - 1)).astype(bool)
        )
        return backward, cv2.blur(reliable.astype(np.float32), (3, 3))

    def _grid(self, height: int, width: int) -> np.ndarray:
        """Each pixel's own (x, y), the base that remap's maps add a flow to."""
        grid = self.grids.get((height, width))
        if grid is None:
            ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
            grid = self.grids[(height, width)] = np.dstack([xs, ys])
        return grid


def _colour(image: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(image[:, :, :3])


def _squared_length(flow: np.ndarray) -> np.ndarray:
    return flow[..., 0] * flow[..., 0] + flow[..., 1] * flow[..., 1]


def _squared_gradient(cv2, flow: np.ndarray) -> np.ndarray:
    """|grad u|^2 + |grad v|^2, central differences."""
    dx = cv2.Sobel(flow, cv2.CV_32F, 1, 0, ksize=1, scale=0.5)
    dy = cv2.Sobel(flow, cv2.CV_32F, 0, 1, ksize=1, scale=0.5)
    return _squared_length(dx) + _squared_length(dy)


def translate_smoothly(
    translator: Translator, frames: Iterable[np.ndarray], strength: float = DEFAULT_STRENGTH
) -> Iterator[np.ndarray]:
    """Translate video frames (uint8 arrays, in order) in batches, deflickered: for apps with their own video I/O.

    Frames are read from `frames` a couple of batches ahead of the model, so
    only those are held; each smoothed output comes back in order.
    """
    deflicker = Deflicker(strength)
    sources: deque[np.ndarray] = deque()

    def remembered() -> Iterator[np.ndarray]:
        for frame in frames:
            frame = np.asarray(frame)
            sources.append(frame)
            yield frame

    for output in translator.translate_stream(remembered()):
        yield deflicker(sources.popleft(), output)


def warping_error(
    previous: np.ndarray, current: np.ndarray, backward_flow: np.ndarray, valid: np.ndarray | None = None
) -> float:
    """E_warp (Lai et al., ECCV 2018): mean squared difference, in [0, 1] pixel units, between `current` and
    `previous` warped along `backward_flow` (where each pixel of `current` was in `previous`), over `valid` pixels.

    Measures flicker: the lower, the steadier. The flow should come from the
    input frames (or be known), not from the frames being measured.
    """
    cv2 = import_extra("cv2", "flow")
    height, width = current.shape[:2]
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    warped = cv2.remap(
        previous, xs + backward_flow[..., 0], ys + backward_flow[..., 1], cv2.INTER_LINEAR, cv2.BORDER_REPLICATE
    )
    difference = np.square(warped.astype(np.float64) / 255 - current.astype(np.float64) / 255)
    difference = difference.mean(axis=2) if difference.ndim == 3 else difference
    return float(difference[valid].mean() if valid is not None else difference.mean())
