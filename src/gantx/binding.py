"""How a batch goes through a session: IO binding on a GPU, a plain run on the CPU.

GPU sessions get IO binding (one copy to the device and one back per batch)
and, on request, CUDA graphs, which need buffers that keep their addresses.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from gantx.extras import ort
from gantx.providers import GPU_PROVIDERS
from gantx.settings import RunSettings

if TYPE_CHECKING:
    from gantx.session import ModelSession


@dataclass
class _Binding:
    binding: ort.IOBinding
    input: ort.OrtValue
    output: ort.OrtValue
    run_options: ort.RunOptions


class BoundRunner:
    """Runs `input` -> `output` through IO binding with buffers kept on `device`, one set per input shape.

    Each batch is copied into device memory once and read back once. With
    `graphs`, each shape gets its own CUDA graph id, so after the first batch of
    a shape ONNX Runtime replays the captured graph (buffers keep their
    addresses, which graphs require). The lock makes one runner safe to share.
    """

    def __init__(self, session: ort.InferenceSession, device: str = "cuda", graphs: bool = False) -> None:
        self.session, self.device, self.graphs = session, device, graphs
        self.slots: dict[tuple[int, ...], _Binding] = {}
        self.lock = threading.Lock()

    def _bind(self, batch: np.ndarray) -> _Binding:
        binding = self.session.io_binding()
        # a copy: on the CPU the value would alias the caller's array
        value = ort.OrtValue.ortvalue_from_numpy(batch.copy(), self.device, 0)
        binding.bind_ortvalue_input("input", value)
        binding.bind_output("output", self.device)
        first_run = ort.RunOptions()
        first_run.add_run_config_entry("gpu_graph_id", "-1")  # allocate the output without capturing a graph
        self.session.run_with_iobinding(binding, first_run)
        output = binding.get_outputs()[0]
        binding.bind_ortvalue_output("output", output)  # fixed address from now on
        run_options = ort.RunOptions()
        run_options.add_run_config_entry("gpu_graph_id", str(len(self.slots) + 1) if self.graphs else "-1")
        return _Binding(binding, value, output, run_options)

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        with self.lock:
            slot = self.slots.get(batch.shape)
            if slot is None:
                slot = self.slots[batch.shape] = self._bind(batch)
            else:
                slot.input.update_inplace(batch)
                self.session.run_with_iobinding(slot.binding, slot.run_options)
            output = slot.output.numpy()
            # on the CPU, numpy() is a view of the reused buffer
            return output.copy() if self.device == "cpu" else output


def batch_runner(session: ModelSession, settings: RunSettings) -> Callable[[np.ndarray], np.ndarray]:
    """How a batch goes through `session`: IO binding on a GPU provider (unless turned off), else a plain run."""
    if settings.io_binding and session.get_providers()[0] in GPU_PROVIDERS:
        return BoundRunner(session, "cuda", settings.cuda_graph)
    return lambda batch: session.run(["output"], {"input": batch})[0]
