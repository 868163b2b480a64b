"""The small loop every family shares: batches, schedules, logs, pictures, checkpoints, Ctrl-C and exact resume.

A family (trainers/{dcgan,cgan,pix2pix,cyclegan,dtn}.py) builds its networks
and optimisers and lists its phases; each phase is epochs over in-memory data
with one flat `step(batch) -> losses`. The loop owns everything else:

    RUN_DIR/config.json        the family config, every value
    RUN_DIR/latest.pt          self-describing checkpoint (trainers/checkpoint.py) with train_state
    RUN_DIR/epoch_NNNN.pt      every `save_every` epochs
    RUN_DIR/losses.csv         phase, epoch, step and one column per loss, every `log_every` steps and at the last
    RUN_DIR/losses.png         the loss curves
    RUN_DIR/samples/*.png      a sample grid per epoch
    RUN_DIR/timelapse.gif      the grids in order, at the end

Resume is exact: batches come from a permutation seeded by (seed, phase,
epoch), so a run can restart mid-epoch; the checkpoint holds optimisers,
schedulers, RNG states, image pools and the position. Ctrl-C only raises a
flag: the current step finishes, a checkpoint is written, and the run exits.
"""

from __future__ import annotations

import copy
import csv
import dataclasses
import json
import math
import random
import signal
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from PIL import Image
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Column
from rich.text import Text
from torch import nn

from gantx.errors import GantxError
from gantx.images import atomic_write, save_image
from gantx.model import ModelInfo, to_pixels
from gantx.trainers.checkpoint import (
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from gantx.trainers.config import PATH_FIELDS, STOP_FIELDS, TrainConfig, check, from_dict
from gantx.trainers.data import (
    Images,
    builtin,
    fit,
    is_builtin,
    load_classes,
    load_folder,
    load_pairs,
)

Batch = list[torch.Tensor]
Group = tuple[torch.Tensor, ...]  # tensors indexed together (images and labels, or an aligned pair)


@dataclass
class Phase:
    """Epochs of one `step` over `data`: groups that are shuffled separately; shorter ones cycle (unpaired domains)."""

    name: str
    epochs: int
    data: list[Group]
    step: Callable[[Batch], dict[str, float]]
    losses: tuple[str, ...]
    schedulers: dict[str, torch.optim.lr_scheduler.LRScheduler] = field(default_factory=dict)
    samples: bool = True
    averages: bool = False  # update the generators' moving averages after each step (the adversarial phase)


class Family:
    """What a family module provides to the loop. Subclasses set these in __init__(config)."""

    name: ClassVar[str]
    config: TrainConfig
    device: torch.device
    networks: dict[str, nn.Module]
    optimisers: dict[str, torch.optim.Optimizer]
    phases: list[Phase]
    contract: ModelInfo  # what an exported generator's metadata says (the exporter sets direction and precision)
    generators: dict[str, str]  # direction (AtoB, BtoA) -> role in `networks`
    last_rate: float = 0.0  # images/s of the last phase, for the summary line

    def sample_grid(self) -> tuple[torch.Tensor, int]:
        """Images in [-1, 1] (N x C x H x W) and how many go in a row."""
        raise NotImplementedError

    def sampler(self, role: str) -> nn.Module:
        """The network that samples and exports for `role`: its moving average where there is one (ROLE_ema)."""
        return self.networks.get(f"{role}{EMA_SUFFIX}", self.networks[role])

    def extra_state(self) -> dict[str, Any]:
        """Anything else exact resume needs (image pools, a classifier head)."""
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        pass


# -- helpers the families share ----------------------------------------------------------------------

EMA_SUFFIX = "_ema"


def add_moving_averages(family: Family, generators: dict[str, str]) -> dict[str, str]:
    """With config.ema > 0, a moving-average copy of each generator in `generators` (direction -> role) as ROLE_ema.

    The copies are networks of the run like any other (checkpointed, restored
    on resume); the loop updates them after every step of the adversarial
    phase, and they are what is sampled and exported: the returned mapping
    points each direction at its average.
    """
    if not family.config.ema:
        return generators
    for role in generators.values():
        average = copy.deepcopy(family.networks[role]).eval()
        average.requires_grad_(False)
        family.networks[f"{role}{EMA_SUFFIX}"] = average
    return {direction: f"{role}{EMA_SUFFIX}" for direction, role in generators.items()}


@torch.no_grad()
def evaluate(network: nn.Module, *inputs: torch.Tensor) -> torch.Tensor:
    """`network(*inputs)` in eval mode (batch norm on its running statistics, no dropout), its mode left as it was."""
    training = network.training
    network.eval()
    try:
        return network(*inputs)
    finally:
        network.train(training)


@torch.no_grad()
def update_moving_averages(family: Family, steps: int) -> None:
    """ema <- decay * ema + (1 - decay) * weights, with the decay ramping up from 0 over the phase's first steps.

    The ramp (decay = min(ema, steps / (steps + 10))) makes the first update a
    copy, so the average starts from the weights the phase starts with (DTN's
    pretrained encoder included), not from the initial ones. Buffers (batch-norm
    statistics) are copied.
    """
    decay = min(family.config.ema, (steps - 1) / (steps + 9))
    for role, average in family.networks.items():
        if role.endswith(EMA_SUFFIX):
            network = family.networks[role.removesuffix(EMA_SUFFIX)]
            torch._foreach_lerp_(list(average.parameters()), list(network.parameters()), 1 - decay)
            for kept, current in zip(average.buffers(), network.buffers()):
                kept.copy_(current)


def seed_everything(config: TrainConfig) -> None:
    """Seed Python, numpy and torch before the networks are built, so a run (its initial weights too) repeats."""
    random.seed(config.seed)
    np.random.seed(config.seed)
    torch.manual_seed(config.seed)
    torch.use_deterministic_algorithms(config.deterministic)
    torch.backends.cudnn.benchmark = not config.deterministic


def pick_device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise GantxError("--device cuda: no CUDA device is available (use auto or cpu)")
    return torch.device("cuda" if name in ("auto", "cuda") and torch.cuda.is_available() else "cpu")


def adam(config: TrainConfig, parameters, lr: float | None = None) -> torch.optim.Adam:
    """Adam as GAN papers use it (beta1 0.5); the fused kernel where this torch has it (same maths, fewer passes)."""
    return torch.optim.Adam(parameters, lr=lr or config.lr, betas=(config.beta1, config.beta2), fused=True)


def adversarial_optimisers(
    config: TrainConfig, generators: list[nn.Module], discriminators: list[nn.Module]
) -> dict[str, torch.optim.Adam]:
    """Adam for the generators ("G", at lr) and the discriminators ("D", at lr-d where set: two time-scale updates)."""

    def parameters(networks: list[nn.Module]) -> list[nn.Parameter]:
        return [parameter for network in networks for parameter in network.parameters()]

    return {
        "G": adam(config, parameters(generators)),
        "D": adam(config, parameters(discriminators), config.lr_d or None),
    }


def lr_factor(config: TrainConfig, progress: float, epochs: int) -> float:
    """Learning-rate multiplier at `progress` epochs (fractional) of a phase of `epochs`."""
    if config.lr_policy == "linear":
        if not config.decay_epochs:
            return 1.0
        return max(0.0, 1.0 - max(0.0, progress - config.epochs) / config.decay_epochs)
    if config.lr_policy == "step":
        return 0.1 ** int(progress // config.lr_step_epochs)
    if config.lr_policy == "cosine":
        return 0.5 * (1 + math.cos(math.pi * min(progress / epochs, 1.0)))
    return 1.0


def scheduler(
    config: TrainConfig, optimiser: torch.optim.Optimizer, steps_per_epoch: int, epochs: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """Stepped after every optimiser step, so short runs decay smoothly too."""
    return torch.optim.lr_scheduler.LambdaLR(optimiser, lambda step: lr_factor(config, step / steps_per_epoch, epochs))


def gan_phase(
    config: TrainConfig,
    data: list[Group],
    step: Callable[[Batch], dict[str, float]],
    losses: tuple[str, ...],
    optimisers: dict,
) -> Phase:
    """The adversarial phase: epochs + decay_epochs over `data`, every optimiser on the config's schedule."""
    epochs = config.epochs + config.decay_epochs
    per_epoch = steps_per_epoch(data, config.batch_size)
    schedulers = {name: scheduler(config, opt, per_epoch, epochs) for name, opt in optimisers.items()}
    return Phase("gan", epochs, data, step, losses, schedulers, averages=True)


def batch_size_of(data: list[Group], batch_size: int) -> int:
    """The configured batch size, or the whole of a smaller data set."""
    return min(batch_size, max(len(group[0]) for group in data))


def steps_per_epoch(data: list[Group], batch_size: int) -> int:
    return max(len(group[0]) for group in data) // batch_size_of(data, batch_size)


def init_weights(module: nn.Module, std: float = 0.02) -> nn.Module:
    """N(0, 0.02) convolution weights, N(1, 0.02) norm scales, zero biases: DCGAN/pix2pix/CycleGAN initialisation."""
    for layer in module.modules():
        if isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            parametrised = nn.utils.parametrize.is_parametrized(
                layer, "weight"
            )  # spectral norm: the weight it normalises
            nn.init.normal_(layer.parametrizations.weight.original if parametrised else layer.weight, 0.0, std)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
        elif isinstance(layer, (nn.BatchNorm2d, nn.BatchNorm1d, nn.InstanceNorm2d)) and layer.weight is not None:
            nn.init.normal_(layer.weight, 1.0, std)
            nn.init.zeros_(layer.bias)
    return module


def load_images(spec: str, config: TrainConfig, channels: int, labels: bool = False) -> Images:
    """One domain from a SPEC, fitted to `config.size` (folders: resized to load_size for random crops)."""
    if is_builtin(spec):
        images, paired = builtin(spec, "train", config.limit or None, config.seed)
        if paired is not None:
            raise GantxError(f"{spec} is a paired dataset (for pix2pix)")
    else:
        load = load_classes if labels else load_folder
        images = load(Path(spec), channels, config.load_size or config.size, config.limit or None, config.seed)
    if labels and images.labels is None:
        raise GantxError(f"{spec}: this family needs labelled data (class sub-folders or a fashion-mnist selection)")
    images.images = fit(images.images, max(config.size, images.images.shape[-1]), channels)
    return images


def load_pair_images(spec: str, config: TrainConfig, channels: int) -> tuple[Images, Images]:
    if is_builtin(spec):
        source, target = builtin(spec, "train", config.limit or None, config.seed)
        if target is None:
            raise GantxError(f"{spec} is not a paired dataset; pix2pix takes fashion-mnist-edges or a folder of pairs")
    else:
        source, target = load_pairs(
            Path(spec), channels, channels, config.load_size or config.size, config.limit or None, config.seed
        )
    for images in (source, target):
        images.images = fit(images.images, max(config.size, images.images.shape[-1]), channels)
    return source, target


def fit_name(config: TrainConfig) -> str:
    """'pad' when 28x28 items were padded to size (the runtime crops them back), else 'resize'."""
    return "pad" if is_builtin(config.data) and config.size > 28 else "resize"


# -- pictures and logs ---------------------------------------------------------------------------------


def grid_image(images: torch.Tensor, columns: int, border: int = 2) -> Image.Image:
    """Tile [-1, 1] images into one picture (grey images shown as RGB when mixed with colour)."""
    images = images.detach().float().cpu().clamp(-1, 1)
    if images.shape[1] == 1:
        images = images.expand(-1, 3, -1, -1)
    n, _, h, w = images.shape
    rows = math.ceil(n / columns)
    canvas = np.full((rows * (h + border) + border, columns * (w + border) + border, 3), 255, np.uint8)
    pixels = to_pixels(images.numpy())
    for index in range(n):
        y, x = border + (index // columns) * (h + border), border + (index % columns) * (w + border)
        canvas[y : y + h, x : x + w] = pixels[index]
    return Image.fromarray(canvas, "RGB")


def plot_losses(csv_path: Path, png_path: Path) -> None:
    """One curve per loss column against the step, via matplotlib (headless)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with csv_path.open() as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        return
    names = [name for name in rows[0] if name not in ("phase", "epoch", "step")]
    figure, axes = plt.subplots(figsize=(8, 4.5))
    steps = [int(row["step"]) for row in rows]
    for name in names:
        points = [(s, float(row[name])) for s, row in zip(steps, rows) if row[name]]
        if points:
            axes.plot(*zip(*points), label=name, linewidth=1)
    axes.set_xlabel("step")
    axes.set_ylabel("loss")
    axes.legend(fontsize=8)
    axes.grid(alpha=0.3)
    figure.tight_layout()
    atomic_write(png_path, lambda tmp: figure.savefig(tmp, format="png", dpi=100))
    plt.close(figure)


def write_timelapse(frames: list[Path], gif_path: Path) -> None:
    if not frames:
        return
    images = [Image.open(path).convert("P", palette=Image.ADAPTIVE) for path in frames]
    atomic_write(
        gif_path,
        lambda tmp: images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:], duration=400, loop=0),
    )


def _csv_columns(family: Family) -> list[str]:
    columns = ["phase", "epoch", "step"]
    for phase in family.phases:
        columns += [name for name in phase.losses if name not in columns]
    return columns


def _truncate_log(csv_path: Path, step: int) -> None:
    """On resume, drop rows logged after the checkpoint (a crash between checkpoints), so the log has no repeats."""
    if not csv_path.exists():
        return
    with csv_path.open() as handle:
        rows = list(csv.reader(handle))
    kept = rows[:1] + [row for row in rows[1:] if int(row[2]) <= step]
    atomic_write(csv_path, lambda tmp: tmp.write_text("".join(",".join(row) + "\n" for row in kept)))


# -- the loop ------------------------------------------------------------------------------------------


@dataclass
class Position:
    phase: int = 0
    epoch: int = 0
    step_in_epoch: int = 0
    phase_steps: int = 0
    step: int = 0  # optimiser steps over the whole run
    seconds: float = (
        0.0  # wall-clock time the run has trained so far, pictures and checkpoints included, over every resume
    )

    def epoch_label(self, epochs: int) -> str:
        """'epoch 3/10': the epoch of the last step, counted from 1.

        The progress bar and `gantx train`'s summary both say this.
        """
        return f"epoch {max(self.epoch + (1 if self.step_in_epoch else 0), 1)}/{epochs}"


class LossLog:
    """losses.csv: a row every `log_every` steps, at each epoch's end, and always the last step, however a run stops."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.pending: list[Any] | None = None  # the last step's row, until it is written

    def __enter__(self) -> LossLog:
        self.handle = self.path.open("a", newline="")
        self.writer = csv.writer(self.handle)
        return self

    def __exit__(self, *exc: object) -> None:
        self.write()  # max_steps, Ctrl-C, an exception: the last step is in the log
        self.handle.close()

    def add(self, row: list[Any], due: bool) -> None:
        self.pending = row
        if due:
            self.write()

    def write(self) -> None:
        """Write the last step's row unless it is in the file already."""
        if self.pending is not None:
            self.writer.writerow(self.pending)
            self.handle.flush()
            self.pending = None


class LossesColumn(ProgressColumn):
    """The last step's losses, cut with an ellipsis: rich narrows it first, so bar, counts and img/s fit 80 columns."""

    def __init__(self) -> None:
        super().__init__(table_column=Column(overflow="ellipsis"))  # wrappable, hence the one rich shrinks

    def render(self, task: Task) -> Text:
        return Text(task.fields["losses"], no_wrap=True, overflow="ellipsis")


def progress_bar(quiet: bool = False, console: Console | None = None) -> Progress:
    """One line a phase: name, bar, steps done of all, time, epoch, img/s and the losses (`progress_fields`)."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[epoch]}"),
        TextColumn("{task.fields[rate]}"),
        LossesColumn(),
        disable=quiet,
        console=console,
    )


def progress_fields(position: Position, epochs: int, losses: Mapping[str, float], rate: float) -> dict[str, str]:
    """What the bar shows after a step."""
    return {
        "epoch": position.epoch_label(epochs),
        "rate": f"{rate:.0f} img/s",
        "losses": " ".join(f"{k} {v:.3f}" for k, v in losses.items()),
    }


class Stop:
    """Ctrl-C sets a flag; the loop checks it between steps, so a checkpoint never holds half a step."""

    def __init__(self) -> None:
        self.requested = False
        self.previous: Any = None

    def __enter__(self) -> Stop:
        try:
            self.previous = signal.signal(signal.SIGINT, self._handle)
        except ValueError:  # not the main thread: no handler, Ctrl-C behaves as usual
            self.previous = None
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:  # a second Ctrl-C stops at once
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc: object) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)


def _save(family: Family, path: Path, position: Position, grids: list[str]) -> None:
    train_state = {
        "position": dataclasses.asdict(position),
        "optimizers": {
            name: optimiser.state_dict() for name, optimiser in family.optimisers.items()
        },  # key as gantx 0.1 saved it: older runs resume
        "schedulers": {
            f"{phase.name}/{name}": s.state_dict() for phase in family.phases for name, s in phase.schedulers.items()
        },
        "rng": rng_state(),
        "cuda_rng": torch.cuda.get_rng_state_all() if family.device.type == "cuda" else [],
        "extra": family.extra_state(),
        "grids": grids,
    }
    meta = {
        "epoch": position.epoch,
        "step": position.step,
        "phase": family.phases[position.phase].name,
        "minutes": round(position.seconds / 60, 2),
    }
    save_checkpoint(
        path,
        family=family.name,
        config=family.config,
        networks=family.networks,
        contract=family.contract,
        generators=family.generators,
        meta=meta,
        train_state=train_state,
    )


def _restore(family: Family, state: dict[str, Any], networks: dict[str, Any]) -> tuple[Position, list[str]]:
    for role, entry in networks.items():
        family.networks[role].load_state_dict(entry.state_dict)
    for name, optimiser in family.optimisers.items():
        optimiser.load_state_dict(state["optimizers"][name])
    for phase in family.phases:
        for name, s in phase.schedulers.items():
            s.load_state_dict(state["schedulers"][f"{phase.name}/{name}"])
    family.load_extra_state(state["extra"])
    set_rng_state(state["rng"])
    if state["cuda_rng"] and family.device.type == "cuda":
        torch.cuda.set_rng_state_all(state["cuda_rng"])
    return Position(**state["position"]), list(state["grids"])


def _augment(group: Group, config: TrainConfig) -> Group:
    """Random crop (load_size -> size) and horizontal flip, the same for every image tensor of a group.

    Pairs stay aligned.
    """
    images = [t for t in group if t.ndim == 4]
    if not images or (not config.flip and images[0].shape[-1] <= config.size):
        return group
    n, size, full = len(images[0]), config.size, images[0].shape[-1]
    if full > size:
        y, x = (int(v) for v in torch.randint(full - size + 1, (2,)))
    flips = torch.rand(n) < 0.5 if config.flip else None
    out = []
    for tensor in group:
        if tensor.ndim == 4:
            if full > size:
                tensor = tensor[..., y : y + size, x : x + size]
            if flips is not None:
                tensor = torch.where(flips[:, None, None, None], tensor.flip(-1), tensor)
        out.append(tensor)
    return tuple(out)


def _epoch_order(data: list[Group], seed: int, phase: int, epoch: int) -> list[torch.Tensor]:
    """One permutation per group, cycled to the longest group's length; seeded by position, so resume rebuilds it."""
    generator = torch.Generator().manual_seed(seed * 1_000_003 + phase * 10_007 + epoch)
    n = max(len(group[0]) for group in data)
    orders = []
    for group in data:
        m = len(group[0])
        orders.append(torch.cat([torch.randperm(m, generator=generator) for _ in range(math.ceil(n / m))])[:n])
    return orders


def prepare_run(family_name: str, out: Path, resume: bool, options: Mapping[str, Any]) -> tuple[TrainConfig, Any]:
    """The config to train with (`options` over the defaults, or on resume the saved one) and the checkpoint, if any."""
    latest = out / "latest.pt"
    if not resume:
        if latest.exists():
            choices = "add --resume to continue it, or choose another --out"
            raise GantxError(f"{out} already holds a run (latest.pt): {choices}")
        return check(from_dict(family_name, options)), None
    checkpoint = load_checkpoint(latest) if latest.exists() else None
    if checkpoint is None:
        raise GantxError(f"--resume: {latest} does not exist")
    if checkpoint.family != family_name:
        raise GantxError(f"--resume: {out} holds a {checkpoint.family} run, not {family_name}")
    if checkpoint.train_state is None:
        raise GantxError(f"--resume: {latest} has no train_state (an exported or stripped checkpoint)")
    from_dict(family_name, options)  # unknown fields: GantxError
    saved = from_dict(family_name, checkpoint.config)
    changed = [name for name in options if not _same_value(name, getattr(saved, name), options[name])]
    refused = [name for name in changed if name not in STOP_FIELDS]
    if refused:
        changes = "; ".join(f"{name}: saved {getattr(saved, name)!r}, given {options[name]!r}" for name in refused)
        raise GantxError(f"--resume keeps the saved config; only {', '.join(STOP_FIELDS)} may change ({changes})")
    return check(dataclasses.replace(saved, **{name: options[name] for name in changed})), checkpoint


def _same_value(name: str, saved: Any, given: Any) -> bool:
    """Whether a value given with --resume repeats the saved one; folders count as the same when they resolve alike.

    A relative folder resolves from here, where the resumed run reads it.
    """
    if name in PATH_FIELDS and saved and given and not is_builtin(saved) and not is_builtin(given):
        return Path(saved).expanduser().resolve() == Path(given).expanduser().resolve()
    return saved == given


def phase_over(config: TrainConfig, phase: Phase, position: Position) -> bool:
    """Whether `position` has done the phase's epochs, or max_steps of them."""
    return position.epoch >= phase.epochs or bool(config.max_steps and position.phase_steps >= config.max_steps)


def run_complete(family: Family, position: Position) -> bool:
    """Whether `position` is the end of the family's last phase: resuming there would train nothing."""
    return position.phase == len(family.phases) - 1 and phase_over(family.config, family.phases[-1], position)


def batches(phase: Phase, config: TrainConfig, position: Position, device: torch.device) -> Iterator[Batch]:
    """The phase's batches from `position` on, until the phase is over; the caller advances `position` after each.

    Each epoch's order is seeded by the position (`_epoch_order`), so a resumed run draws the batches that the
    uninterrupted run draws. Batches are made lazily, so augmentation draws from the RNG between steps, as always.
    """
    batch_size = batch_size_of(phase.data, config.batch_size)
    orders, ordered_epoch = [], None
    while not phase_over(config, phase, position):
        if ordered_epoch != position.epoch:
            ordered_epoch = position.epoch
            orders = _epoch_order(phase.data, config.seed, position.phase, ordered_epoch)
        rows = slice(position.step_in_epoch * batch_size, (position.step_in_epoch + 1) * batch_size)
        batch = []
        for group, order in zip(phase.data, orders):
            picked = tuple(t[order[rows]] for t in group)
            batch += [t.to(device, non_blocking=True) for t in _augment(picked, config)]
        if config.channels_last:
            batch = [t.contiguous(memory_format=torch.channels_last) if t.ndim == 4 else t for t in batch]
        yield batch


class StepClock:
    """Wall time into `position.seconds` (batching, pictures and checkpoints too); the img/s counts steps alone."""

    def __init__(self, position: Position) -> None:
        self.position = position
        self.last = time.perf_counter()
        self.started = self.last
        self.busy, self.images = 0.0, 0

    def start(self) -> None:
        self.started = time.perf_counter()
        self.position.seconds += self.started - self.last  # since the last step: batching, pictures, checkpoints

    def stop(self, images: int) -> None:
        self.last = time.perf_counter()
        self.busy += self.last - self.started
        self.position.seconds += self.last - self.started
        self.images += images

    @property
    def rate(self) -> float:
        return self.images / max(self.busy, 1e-9)


@dataclass
class Run:
    """The run directory as training fills it: the position, the sample grids, losses.csv and its plot, checkpoints."""

    family: Family
    out: Path
    position: Position
    grids: list[str]
    log: LossLog
    columns: list[str]

    def log_step(self, phase: Phase, losses: Mapping[str, float], due: bool) -> None:
        position = self.position
        values = [f"{losses[name]:.6g}" if name in losses else "" for name in self.columns[3:]]
        self.log.add([phase.name, position.epoch + 1, position.step, *values], due=due)

    def save(self) -> None:
        """latest.pt and the loss plot, with the last step logged."""
        self.log.write()
        _save(self.family, self.out / "latest.pt", self.position, self.grids)
        plot_losses(self.log.path, self.out / "losses.png")

    def save_epoch(self, phase: Phase) -> None:
        """At an epoch's end (or where max_steps stops one): a sample grid, then checkpoints and the loss plot."""
        position = self.position
        if phase.samples:
            images, per_row = self.family.sample_grid()
            # After epoch N: PHASE_epoch_N; stopped by max_steps during epoch N (counted as the bar and the log
            # count): PHASE_epoch_N_step_S.
            partial = f"_step_{position.step:06d}" if position.step_in_epoch else ""
            name = f"samples/{phase.name}_epoch_{position.epoch + bool(partial):04d}{partial}.png"
            save_image(grid_image(images, per_row), self.out / name)
            self.grids.append(name)
        self.save()
        save_every = self.family.config.save_every
        if save_every and position.epoch % save_every == 0:
            _save(self.family, self.out / f"{phase.name}_epoch_{position.epoch:04d}.pt", position, self.grids)

    def end_epoch(self, phase: Phase) -> None:
        self.position.epoch += 1
        self.position.step_in_epoch = 0
        self.save_epoch(phase)

    def interrupt(self, progress: Progress) -> None:
        """Ctrl-C was pressed during the step just finished: checkpoint it, say how to continue, and leave."""
        self.save()
        progress.stop()
        print(f"interrupted: saved {self.out / 'latest.pt'} at step {self.position.step}; continue with --resume")
        raise KeyboardInterrupt


def _open_run(family: Family, out: Path, checkpoint: Any) -> tuple[Position, list[str]]:
    """Write config.json and the log's header; on resume, restore the checkpoint and drop log rows logged after it."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "samples").mkdir(exist_ok=True)
    config = {"family": family.name, **dataclasses.asdict(family.config)}
    atomic_write(out / "config.json", lambda tmp: tmp.write_text(json.dumps(config, indent=2) + "\n"))
    csv_path = out / "losses.csv"
    position, grids = Position(), []
    if checkpoint is not None:
        position, grids = _restore(family, checkpoint.train_state, checkpoint.networks)
        _truncate_log(csv_path, position.step)
    if not csv_path.exists():
        atomic_write(csv_path, lambda tmp: tmp.write_text(",".join(_csv_columns(family)) + "\n"))
    return position, grids


def _train_phase(run: Run, phase: Phase, progress: Progress, stop: Stop) -> None:
    """The phase's steps from the run's position on; each epoch's end leaves a grid and a checkpoint."""
    family, config, position = run.family, run.family.config, run.position
    per_epoch = steps_per_epoch(phase.data, config.batch_size)
    batch_size = batch_size_of(phase.data, config.batch_size)
    total = phase.epochs * per_epoch if not config.max_steps else min(config.max_steps, phase.epochs * per_epoch)
    fields = progress_fields(position, phase.epochs, {}, 0.0)
    task = progress.add_task(phase.name, total=total, completed=min(position.phase_steps, total), **fields)
    if position.step_in_epoch == per_epoch:  # saved by a Ctrl-C in an epoch's last step, before its end was written
        run.end_epoch(phase)
    clock = StepClock(position)
    for batch in batches(phase, config, position, family.device):
        clock.start()
        losses = phase.step(batch)
        for schedule in phase.schedulers.values():
            schedule.step()
        position.step_in_epoch += 1
        position.phase_steps += 1
        if phase.averages:
            update_moving_averages(family, position.phase_steps)
        position.step += 1
        clock.stop(batch_size)
        run.log_step(phase, losses, due=position.step % config.log_every == 0 or position.step_in_epoch == per_epoch)
        progress.update(task, advance=1, **progress_fields(position, phase.epochs, losses, clock.rate))
        if position.step_in_epoch == per_epoch:
            run.end_epoch(phase)
        if stop.requested:
            run.interrupt(progress)
    if position.step_in_epoch and clock.images:  # stopped by max_steps mid-epoch: still leave a grid and a checkpoint
        run.save_epoch(phase)
    family.last_rate = clock.rate


def train(family: Family, out: Path, checkpoint: Any = None, quiet: bool = False) -> Position:
    """Run the family's phases to the end (or max_steps), writing the run artefacts into `out`."""
    position, grids = _open_run(family, out, checkpoint)
    if family.config.channels_last:
        for network in family.networks.values():
            network.to(memory_format=torch.channels_last)
    with Stop() as stop, progress_bar(quiet) as progress, LossLog(out / "losses.csv") as log:
        run = Run(family, out, position, grids, log, _csv_columns(family))
        _train_phase(run, family.phases[run.position.phase], progress, stop)
        while run.position.phase + 1 < len(family.phases):
            run.position = Position(phase=run.position.phase + 1, step=run.position.step, seconds=run.position.seconds)
            _train_phase(run, family.phases[run.position.phase], progress, stop)
    write_timelapse([out / name for name in run.grids if (out / name).exists()], out / "timelapse.gif")
    return run.position


def image_generator(
    name: str, ngf: int, norm: str, dropout: bool, channels_in: int, channels_out: int, size: int
) -> nn.Module:
    """A ResNet or U-Net translator from the registry, checked against the training size."""
    from gantx.trainers.networks import create_model

    model = create_model(
        name, ngf=ngf, norm=norm, dropout=dropout, channels_in=channels_in, channels_out=channels_out, size=size
    )
    multiple = model.size_multiple
    if (multiple and size % multiple) or (not multiple and (size, size) != tuple(model.size)):
        raise GantxError(
            f"generator {name} cannot take {size}x{size} images (needs a multiple of {multiple}); "
            "use --size 32 or another --generator"
        )
    return init_weights(model)


def patch_discriminator(config: TrainConfig, norm: str, channels_in: int) -> nn.Module:
    """pix2pix's PatchGAN for `channels_in` channels, initialised: the judge of pix2pix, CycleGAN and the upscaler."""
    from gantx.trainers.networks import create_model

    model = create_model(
        "patchgan", n_layers=config.n_layers, ndf=config.ndf, norm=norm, channels_in=channels_in, size=config.size
    )
    return init_weights(model)


def optimise(optimiser: torch.optim.Optimizer, loss: torch.Tensor) -> None:
    """One optimiser step on `loss`."""
    optimiser.zero_grad(set_to_none=True)
    loss.backward()
    optimiser.step()


def set_requires_grad(networks: list[nn.Module], flag: bool) -> None:
    """Freeze the discriminators while the generators learn, so their backward pass skips D's weights."""
    for network in networks:
        for parameter in network.parameters():
            parameter.requires_grad_(flag)
