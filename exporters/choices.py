"""The choices `gantx export` offers, torch-free so that the CLI checks them (settings.one_of) before PyTorch loads."""

from __future__ import annotations

from typing import Literal

Direction = Literal["AtoB", "BtoA"]  # which generator of a two-way model; for a .pth, which way it translates
BatchNormMode = Literal["auto", "eval", "batch-stats"]  # auto: batch-stats for public pix2pix files, eval for gantx's
CalibrationName = Literal["minmax", "entropy", "percentile"]  # int8 calibration methods of ONNX Runtime
