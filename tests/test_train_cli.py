"""`gantx train`'s options, generated from the family configs: help, parsing, validation and the recorded command line.

None of this needs torch: the configs and the option parser are torch-free.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import subprocess
import sys
from typing import get_args

import pytest
from helpers import parsed

from gantx.cli import train as train_cli
from gantx.errors import GantxError
from gantx.trainers.config import (
    CONFIGS,
    CycleGANConfig,
    DCGANConfig,
    FamilyName,
    Pix2PixConfig,
    check,
    command_line,
    settings,
)


def _help_entries(run_cli, monkeypatch, *args) -> list[str]:
    """The option entries of `gantx ARGS... --help` in an 80-column terminal, each with its wrapped lines joined."""
    monkeypatch.setenv("COLUMNS", "80")
    code, out, err = run_cli(*args, "--help")
    assert code == 0, err
    entries: list[str] = []
    for line in out.split("\nOptions:\n")[1].splitlines():
        if line.startswith("  -"):
            entries.append(line)
        elif line.startswith("   "):
            entries[-1] += "\n" + line
    return entries


def _names(entry: str) -> list[str]:
    """The option names an entry starts with: `-o, --out <path> ...` gives -o and --out."""
    return [
        token.rstrip(",")
        for token in itertools.takewhile(lambda token: token.startswith("-") or token == "/", entry.split())
        if token != "/"
    ]


def _entry_of(entries: list[str], flag: str) -> str:
    [entry] = [entry for entry in entries if flag in _names(entry)]
    return entry


def _squeezed(text: str) -> str:
    """Without whitespace: the help wraps lines (and breaks words after hyphens) at any width."""
    return "".join(text.split())


@pytest.mark.parametrize("family", CONFIGS)
def test_family_help_lists_every_config_option_with_its_type_default_and_help(family, run_cli, monkeypatch):
    """In 80 columns, every option is named in full, with its whole help and default; a flag takes no value."""
    entries = _help_entries(run_cli, monkeypatch, "train", family)
    for item in settings(CONFIGS[family]):
        flag = "--" + item.name.replace("_", "-")
        entry = _entry_of(entries, flag)
        if item.kind is bool:
            metavar, default = "", ("" if item.default else "no-") + flag[2:]
            assert _names(entry)[-2:] == [flag, f"--no-{flag[2:]}"] and "<" not in entry.splitlines()[0], entry
        elif item.choices:
            metavar, default = "<" + "|".join(map(str, item.choices)) + ">", item.default
        else:
            metavar, default = f"<{item.kind.__name__}>", item.default
        assert metavar in entry and _squeezed(item.help) in _squeezed(entry), entry
        assert (_squeezed(f"[default: {default}]") in _squeezed(entry)) == (default != ""), entry
    assert "[required]" in _entry_of(entries, "--out") and "<" not in _entry_of(entries, "--resume").splitlines()[0]


def test_help_shows_a_family_option_as_written_in_its_config(run_cli, monkeypatch):
    """An independent reference: the pool size line as trainers/config.py describes it."""
    entries = _help_entries(run_cli, monkeypatch, "train", "cyclegan")
    assert _entry_of(entries, "--pool-size").split() == [
        "--pool-size",
        "<int>",
        *"Image pool per discriminator (0: off) [default: 50]".split(),
    ]
    entry = _entry_of(entries, "--gan-loss")
    assert entry.splitlines()[0].split() == ["--gan-loss", "<vanilla|lsgan|focal|hinge>"] and entry.endswith(
        "[default: lsgan]"
    )


def test_train_without_a_family_lists_the_families(run_cli, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    code, out, err = run_cli("train", "--help")
    assert code == 0, err
    commands = out.split("\nCommands:\n")[1].splitlines()
    for family, cls in CONFIGS.items():
        assert any(line.split()[:1] == [family] and cls.__doc__.splitlines()[0][:40] in line for line in commands), (
            family
        )


def test_family_help_works_without_torch():
    code = (
        "import sys; sys.modules['torch'] = None; sys.argv = ['gantx', 'train', 'dtn', '--help']; "
        "from gantx.cli import main; main()"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, "COLUMNS": "250"}
    )
    assert result.returncode == 0, result.stderr
    assert "--pretrain-epochs" in result.stdout and "--finetune-f" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("dcgan", "--ngf", "abc"), "Invalid value for '--ngf': Input should be a valid integer"),
        (("cyclegan", "--lr", "fast"), "Invalid value for '--lr': Input should be a valid number"),
        (("pix2pix", "--norm", "group"), "'group' is not one of 'instance', 'instance_affine', 'batch', 'none'"),
        (
            ("cyclegan", "--generator", "unet_64"),
            "'unet_64' is not one of 'resnet_6blocks', 'resnet_9blocks', 'unet_32', 'unet_128', 'unet_256'",
        ),
        (("dcgan", "--nope", "1"), "No such option: --nope"),
        (("gan",), "No such command 'gan'"),
    ],
)
def test_bad_options_are_one_line_usage_errors(args, message, tmp_path, run_cli):
    code, _, err = run_cli("train", *args, "--out", tmp_path / "run")
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "run").exists()


def test_only_typed_options_reach_the_trainer(run_cli, monkeypatch):
    """Defaults are not changes: --resume --max-steps 5 must arrive as max_steps alone, or resume would refuse it."""
    seen = {}
    monkeypatch.setattr(
        train_cli,
        "train_family",
        lambda family, out, options, resume, quiet: seen.update(options=options, resume=resume),
    )
    assert run_cli("train", "cgan", "-o", "run", "--resume", "--max-steps", "5")[0] == 0
    assert seen == {"options": {"max_steps": 5}, "resume": True}
    assert run_cli("train", "cgan", "-o", "run", "--no-flip", "--ngf", "128", "--channels", "3", "-b", "4")[0] == 0
    assert seen["options"] == {
        "flip": False,
        "ngf": 128,
        "channels": 3,
        "batch_size": 4,
    }  # typed, even where equal to the default


@pytest.mark.parametrize(
    "values",
    [
        {
            "data": "/tmp/my photos",
            "data_b": "",
            "flip": True,
            "identity_weight": 0.0,
            "lr": 1e-05,
            "cycle_weight": 0.1 + 0.2,
        },
        {
            "data": "fashion-mnist:sneaker,bag",
            "data_b": "-odd",
            "norm": "batch",
            "pool_size": 0,
            "channels_last": True,
            "d_half": False,
        },
        {
            "channels": 3,
            "generator": "unet_32",
            "size": 32,
            "gan_loss": "focal",
            "lr_policy": "cosine",
            "device": "cpu",
        },
    ],
)
def test_train_command_round_trips_awkward_values_through_the_cli_parser(values, run_cli, monkeypatch):
    config = CycleGANConfig(**values)
    assert parsed(run_cli, monkeypatch, command_line("cyclegan", dataclasses.asdict(config))) == config


def test_train_command_of_an_unknown_config_is_a_one_line_error():
    with pytest.raises(GantxError, match="unknown fields warp"):
        command_line("cyclegan", {"warp": 1})
    with pytest.raises(GantxError) as refused:
        command_line("stylegan", {})
    assert str(refused.value) == "family 'stylegan': choose one of dcgan, cgan, pix2pix, cyclegan, dtn, upscale"


def test_the_family_names_are_the_configs():
    assert get_args(FamilyName) == tuple(CONFIGS)


def test_check_takes_the_choices_from_the_literal_types():
    """What the Python API gets (no option parser in between): every field's choices and minimum, in one message."""
    with pytest.raises(GantxError) as refused:
        check(Pix2PixConfig(norm="group", generator="unet_64", gan_loss="wasserstein", epochs=0, lr="fast", channels=2))
    message = str(refused.value)
    for expected in (
        "norm 'group' is not one of instance, instance_affine, batch, none",
        "generator 'unet_64' is not one of resnet_6blocks, resnet_9blocks, unet_32, unet_128, unet_256",
        "gan_loss 'wasserstein' is not one of vanilla, lsgan, focal, hinge",
        "epochs must be >= 1",
        "lr 'fast' is not a number",
        "channels 2 is not one of 1, 3",
    ):
        assert expected in message
    assert check(DCGANConfig(lr=1, device="cpu")).lr == 1  # an integer is a fine learning rate


def test_every_family_option_has_help():
    for family, cls in CONFIGS.items():
        assert all(item.help for item in settings(cls)), family
