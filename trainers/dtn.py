"""Domain Transfer Network (Taigman et al.): G = g(f(x)) maps source S to target T while keeping f's code.

Phase "pretrain": f learns to classify S (a linear head on its code), as the
paper pretrains f on the source domain; with --pretrain-tid, f and g also learn
g(f(t)) = t there, so the code keeps an item's look beside its class.
Phase "gan": f stays frozen (or is fine-tuned with --finetune-f); g learns so
that a three-way discriminator cannot tell g(f(s)) or g(f(t)) from real t, with
    L_CONST = alpha * |f(g(f(s))) - f(s)|^2   (the code survives translation;
                                               --const-features 4x4: f's last feature map)
    L_TID   = beta  * |g(f(t)) - t|^2          (target samples map to themselves)
    L_TV    = gamma * TV(g(f(s)))              (smoothness)
Grey images go through f as three equal channels.
"""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F
from torch import nn

from gantx.errors import GantxError
from gantx.model import ModelInfo
from gantx.trainers.config import DTNConfig
from gantx.trainers.loop import (
    Batch,
    Family,
    Phase,
    adam,
    add_moving_averages,
    adversarial_optimisers,
    evaluate,
    fit_name,
    gan_phase,
    load_images,
    optimise,
    pick_device,
    set_requires_grad,
)
from gantx.trainers.losses import classes_adversarial, total_variation
from gantx.trainers.networks import create_model

GRID = 16
CONST_DEPTH = {"code": None, "4x4": 9}  # --const-features: how many of f.net's layers L_CONST reads (None: all)
FAKE_SOURCE, FAKE_TARGET, REAL_TARGET = 0, 1, 2  # the discriminator's three classes


class DTN(Family):
    name = "dtn"

    def __init__(self, config: DTNConfig) -> None:
        self.config, self.device = config, pick_device(config.device)
        if config.size != 32:
            raise GantxError("dtn networks take 32x32 images: keep --size 32 (28x28 items are padded)")
        source = load_images(config.data, config, 3, labels=True)
        target = load_images(config.data_b, config, config.channels)
        self.G = create_model(
            "dtn_translator",
            channels_in=3,
            channels_out=config.channels,
            conv_dim=config.conv_dim,
            code_dim=config.code_dim,
        )
        self.D = create_model("dtn_discriminator", channels_in=config.channels, conv_dim=config.conv_dim)
        self.head = nn.Linear(config.code_dim, len(source.classes))
        self.G.to(self.device), self.D.to(self.device), self.head.to(self.device)
        self.f, self.g = self.G.f, self.G.g
        self.networks = {"G": self.G, "D": self.D}
        pretrained = [self.f, self.head, self.g] if config.pretrain_tid else [self.f, self.head]
        self.optimisers = {
            "f": adam(config, itertools.chain(*(n.parameters() for n in pretrained)), lr=config.pretrain_lr),
            **adversarial_optimisers(config, [self.g, self.f] if config.finetune_f else [self.g], [self.D]),
        }
        pretrain = [(source.images, source.labels)] + ([(target.images,)] if config.pretrain_tid else [])
        gan = [(source.images,), (target.images,)]
        self.phases = [
            Phase(
                "pretrain",
                config.pretrain_epochs,
                pretrain,
                self.pretrain_step,
                ("f_cls", "f_accuracy", "L_TID"),
                samples=False,
            ),
            gan_phase(
                config,
                gan,
                self.train_step,
                ("D", "G_gan", "L_CONST", "L_TID", "L_TV"),
                {name: self.optimisers[name] for name in ("G", "D")},
            ),
        ]
        self.fixed = source.images[:GRID].to(self.device)
        self.generators = add_moving_averages(self, {"AtoB": "G"})
        self.contract = ModelInfo(
            kind="image2image",
            arch=self.G.arch,
            size=(32, 32),
            channels_in=3,
            channels_out=config.channels,
            domains=(source.name, target.name),
            fit=fit_name(config),
        )

    def pretrain_step(self, batch: Batch) -> dict[str, float]:
        images, labels, *target = batch
        self.f.train()
        logits = self.head(self.f(images).flatten(1))
        loss = F.cross_entropy(logits, labels)
        losses = {"f_cls": loss.item(), "f_accuracy": (logits.argmax(1) == labels).float().mean().item()}
        if target:  # --pretrain-tid: the target batch rides along
            loss_tid = F.mse_loss(self.g(self._encode(target[0])), target[0]) * self.config.pretrain_tid
            loss, losses["L_TID"] = loss + loss_tid, loss_tid.item()
        optimise(self.optimisers["f"], loss)
        return losses

    def _encode(self, images: torch.Tensor, depth: int | None = None) -> torch.Tensor:
        """f's code of `images` (grey ones as three equal channels), or its features after `depth` layers."""
        return self.f.net[:depth](images.expand(-1, 3, -1, -1) if images.shape[1] == 1 else images)

    def train_step(self, batch: Batch) -> dict[str, float]:
        source, target = batch
        config, kind = self.config, self.config.gan_loss
        self.f.train(config.finetune_f)  # frozen f keeps its batch-norm statistics too
        set_requires_grad([self.f], config.finetune_f)
        depth = CONST_DEPTH[config.const_features]
        kept = self._encode(source, depth)  # what L_CONST keeps; f's code too, or one pass on to it
        code_s, code_t = kept if depth is None else self.f.net[depth:](kept), self._encode(target)
        fake_s, fake_t = self.g(code_s), self.g(code_t)

        set_requires_grad([self.D], True)
        loss_d = (
            classes_adversarial(kind, self.D(fake_s.detach()), FAKE_SOURCE)
            + classes_adversarial(kind, self.D(fake_t.detach()), FAKE_TARGET)
            + classes_adversarial(kind, self.D(target), REAL_TARGET)
        )
        optimise(self.optimisers["D"], loss_d)

        set_requires_grad([self.D], False)
        loss_gan = classes_adversarial(kind, self.D(fake_s), REAL_TARGET) + classes_adversarial(
            kind, self.D(fake_t), REAL_TARGET
        )
        loss_const = F.mse_loss(self._encode(fake_s, depth), kept.detach()) * config.alpha
        loss_tid = F.mse_loss(fake_t, target) * config.beta
        loss_tv = total_variation(fake_s) * config.gamma
        optimise(self.optimisers["G"], loss_gan + loss_const + loss_tid + loss_tv)
        return {
            "D": loss_d.item(),
            "G_gan": loss_gan.item(),
            "L_CONST": loss_const.item(),
            "L_TID": loss_tid.item(),
            "L_TV": loss_tv.item(),
        }

    def sample_grid(self) -> tuple[torch.Tensor, int]:
        """Rows: source, translation."""
        return torch.cat([self.fixed, evaluate(self.sampler("G"), self.fixed).expand(-1, 3, -1, -1)]), GRID

    def extra_state(self) -> dict:
        return {"head": self.head.state_dict()}

    def load_extra_state(self, state: dict) -> None:
        self.head.load_state_dict(state["head"])
