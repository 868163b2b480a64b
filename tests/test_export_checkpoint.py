"""Self-describing checkpoints: what is saved comes back, safely, and bad files are one-line errors."""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from torch_helpers import RESNET_CONTRACT  # noqa: E402

from gantx.errors import GantxError  # noqa: E402
from gantx.trainers.checkpoint import (  # noqa: E402
    load_checkpoint,
    read_torch_file,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from gantx.trainers.networks import create_model  # noqa: E402


@dataclass
class TinyConfig:
    lr: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    data: Path = Path("data/horse2zebra")


GENERATORS = {"AtoB": "G_A", "BtoA": "G_B"}


def _save(path: Path, **extra) -> dict:
    torch.manual_seed(0)
    networks = {
        "G_A": create_model("resnet", n_blocks=1, ngf=4),
        "G_B": create_model("resnet", n_blocks=1, ngf=4, norm="batch"),
    }
    save_checkpoint(
        path,
        family="cyclegan",
        config=TinyConfig(),
        networks=networks,
        contract=RESNET_CONTRACT,
        generators=GENERATORS,
        meta={"epoch": 3},
        **extra,
    )
    return networks


def test_round_trip_rebuilds_each_network_with_its_weights(tmp_path):
    networks = _save(tmp_path / "latest.pt")
    checkpoint = load_checkpoint(tmp_path / "latest.pt")
    assert checkpoint.family == "cyclegan" and checkpoint.meta == {"epoch": 3}
    assert checkpoint.config == {"lr": 2e-4, "betas": (0.5, 0.999), "data": "data/horse2zebra"}
    assert checkpoint.contract == RESNET_CONTRACT and checkpoint.generators == GENERATORS
    role, entry = checkpoint.generator("BtoA")
    assert role == "G_B" and entry.options["norm"] == "batch"
    rebuilt = entry.build()
    x = torch.rand(2, 3, 16, 16)
    assert torch.equal(rebuilt(x), networks["G_B"].eval()(x))
    assert not list(tmp_path.glob("*.part"))  # the temporary file was renamed into place


def test_train_state_resumes_optimiser_and_random_streams(tmp_path):
    model = create_model("resnet", n_blocks=1, ngf=4)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    model(torch.rand(1, 3, 8, 8)).mean().backward()
    optimiser.step()
    state = rng_state()
    _save(tmp_path / "c.pt", train_state={"optimizer": optimiser.state_dict(), "rng": state, "step": 1})
    set_rng_state(state)  # the streams as they were when saved (building networks drew from them since)
    expected = (random.random(), np.random.rand(), torch.rand(3))
    loaded = load_checkpoint(tmp_path / "c.pt").train_state
    set_rng_state(loaded["rng"])
    again = (random.random(), np.random.rand(), torch.rand(3))
    assert expected[:2] == again[:2] and torch.equal(expected[2], again[2])
    fresh = torch.optim.Adam(model.parameters(), lr=1e-3)
    fresh.load_state_dict(loaded["optimizer"])
    assert torch.equal(fresh.state_dict()["state"][0]["exp_avg"], optimiser.state_dict()["state"][0]["exp_avg"])


def test_values_weights_only_cannot_read_are_refused_when_saving(tmp_path):
    with pytest.raises(TypeError, match=r"train_state.*\['hook'\] is a function"):
        _save(tmp_path / "c.pt", train_state={"hook": lambda: None})
    assert list(tmp_path.iterdir()) == []


def test_files_needing_unpickling_are_refused(tmp_path):
    torch.save({"config": TinyConfig()}, tmp_path / "pickled.pt")
    with pytest.raises(GantxError, match="needs arbitrary unpickling"):
        read_torch_file(tmp_path / "pickled.pt")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"hello", "not a checkpoint"),
        (b"", "not a checkpoint"),
        (b"PK\x03\x04 but no archive", "not a PyTorch checkpoint"),
        (None, "checkpoint not found"),
        ("state_dict", "not a gantx checkpoint"),
    ],
)
def test_non_checkpoints_are_one_line_errors(tmp_path, content, message):
    path = tmp_path / "file.pt"
    if content == "state_dict":
        torch.save(create_model("resnet", n_blocks=1, ngf=4).state_dict(), path)
    elif content is not None:
        path.write_bytes(content)
    with pytest.raises(GantxError, match=message) as caught:
        load_checkpoint(path)
    assert "\n" not in str(caught.value)


def test_weights_that_do_not_fit_name_the_network(tmp_path):
    _save(tmp_path / "c.pt")
    checkpoint = load_checkpoint(tmp_path / "c.pt")
    checkpoint.networks["G_A"].options["ngf"] = 8
    with pytest.raises(GantxError, match="G_A: weights do not fit 'resnet'"):
        checkpoint.networks["G_A"].build("G_A")
