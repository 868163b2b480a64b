"""The training recipes of issue 16 against independent references.

Moving averages, projection, spectral norm, hinge, DTN's f.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")

from gantx.trainers.checkpoint import load_checkpoint  # noqa: E402
from gantx.trainers.data import FASHION_DIRS, blend_with_photos, fashion_mnist, to_tensor  # noqa: E402
from gantx.trainers.losses import discriminator_loss, generator_loss  # noqa: E402
from gantx.trainers.networks import create_model  # noqa: E402

fashion = pytest.mark.skipif(
    not any((d / "train-images-idx3-ubyte.gz").is_file() for d in FASHION_DIRS), reason="Fashion-MNIST not installed"
)
TINY_PIX2PIX = ("--limit", "32", "--batch-size", "8", "--ngf", "8", "--ndf", "8", "--quiet")


@fashion
def test_the_moving_average_is_what_is_saved_sampled_and_exported(tmp_path, run_cli):
    run_dir = tmp_path / "run"
    assert (
        run_cli(
            "train", "pix2pix", "--out", run_dir, *TINY_PIX2PIX, "--max-steps", "1", "--ema", "0.5", "--lr", "0.02"
        )[0]
        == 0
    )
    after_one = load_checkpoint(run_dir / "latest.pt")
    assert run_cli("train", "pix2pix", "--out", run_dir, "--resume", "--max-steps", "2")[0] == 0
    after_two = load_checkpoint(run_dir / "latest.pt")
    assert after_two.generators == {"AtoB": "G_ema"}
    # By hand: the first update copies the weights; the second keeps min(0.5, 1/11) of the average.
    decay = 1 / 11
    raw_one, raw_two = after_one.networks["G"].state_dict, after_two.networks["G"].state_dict
    average = after_two.networks["G_ema"].state_dict
    assert torch.equal(after_one.networks["G_ema"].state_dict["model.model.0.weight"], raw_one["model.model.0.weight"])
    for name, tensor in average.items():
        if tensor.is_floating_point() and "running" not in name:
            torch.testing.assert_close(
                tensor, decay * raw_one[name] + (1 - decay) * raw_two[name], rtol=1e-5, atol=1e-6
            )
    assert not torch.equal(average["model.model.0.weight"], raw_two["model.model.0.weight"])

    assert run_cli("export", run_dir / "latest.pt", "-o", tmp_path / "model.onnx")[0] == 0
    images = torch.rand(2, 1, 32, 32) * 2 - 1
    with torch.no_grad():
        expected = after_two.networks["G_ema"].build("G_ema")(images).numpy()
        raw = after_two.networks["G"].build("G")(images).numpy()
    actual = ort.InferenceSession(str(tmp_path / "model.onnx")).run(None, {"input": images.numpy()})[0]
    assert np.abs(actual - expected).max() < 1e-4 < np.abs(actual - raw).max()


def test_the_projection_discriminator_adds_the_label_embeddings_inner_product():
    torch.manual_seed(0)
    discriminator = create_model("cgan_discriminator", conditioning="projection").eval()
    images = torch.rand(3, 1, 28, 28) * 2 - 1
    features = discriminator.net(images)
    with torch.no_grad():
        for first, second in ((0, 1), (3, 9)):
            difference = discriminator(images, torch.full((3,), first)) - discriminator(
                images, torch.full((3,), second)
            )
            by_hand = features @ (discriminator.embed.weight[first] - discriminator.embed.weight[second])
            torch.testing.assert_close(difference[:, 0], by_hand)


def test_spectral_norm_makes_each_layers_largest_singular_value_one():
    torch.manual_seed(0)
    discriminator = create_model("dcgan_discriminator", spectral_norm=True).train()
    for _ in range(30):  # the power iteration converges as the network is used
        discriminator(torch.rand(4, 1, 28, 28))
    for layer in (discriminator.net[0], discriminator.net[7]):
        weight = layer.weight.detach().flatten(1)
        assert torch.linalg.matrix_norm(weight, ord=2).item() == pytest.approx(1.0, abs=0.02)


def test_hinge_losses_by_hand():
    real, fake = torch.tensor([[2.0], [0.5]]), torch.tensor([[-2.0], [0.0]])
    # D: mean(relu(1 - real)) + mean(relu(1 + fake)) = (0 + 0.5) / 2 + (0 + 1) / 2
    assert discriminator_loss("hinge", real, fake, half=False).item() == pytest.approx(0.75)
    assert generator_loss("hinge", fake).item() == pytest.approx(1.0)  # -mean(fake)
    assert generator_loss("vanilla", fake).item() == pytest.approx(np.mean(np.log1p(np.exp([2.0, 0.0]))), rel=1e-6)


@fashion
def test_dtn_pretrains_f_as_a_classifier_of_the_labelled_source(tmp_path, run_cli):
    run_dir = tmp_path / "run"
    code, _, err = run_cli(
        "train",
        "dtn",
        "--out",
        run_dir,
        "--limit",
        "1200",
        "--pretrain-epochs",
        "4",
        "--epochs",
        "1",
        "--conv-dim",
        "16",
        "--code-dim",
        "32",
        "--quiet",
    )  # fmt: skip  (--max-steps would cut the pretraining too)
    assert code == 0, err
    checkpoint = load_checkpoint(run_dir / "latest.pt")
    translator = checkpoint.networks["G"].build("G")
    head = torch.nn.Linear(32, 10)
    head.load_state_dict(checkpoint.train_state["extra"]["head"])
    items, labels = fashion_mnist("test")
    coloured = to_tensor(
        blend_with_photos(items[:1000], "test", seed=1)
    )  # test items on photo regions training never saw
    with torch.no_grad():
        predicted = head(translator.f(torch.nn.functional.pad(coloured, [2] * 4, value=-1)).flatten(1)).argmax(1)
    accuracy = (predicted.numpy() == labels[:1000]).mean()
    assert accuracy > 0.6, accuracy  # chance is 0.1


@fashion
def test_dtn_output_stays_in_the_target_domain_over_its_epochs(tmp_path, run_cli):
    """A DTN that collapses does so between epochs (run 10 fell to 0.28, 0.19, 0.05), so every epoch is checked.

    The reference is the real test items' pixel distribution: training items sit 0.011 from it (Wasserstein
    distance of pixel values), the grey source the DTN starts from 0.18. After its first adversarial epoch
    the translation of unseen source items must stay closer than 0.1 at every epoch, never drift back by more
    than 0.02, and keep the real items' variety (spread of per-item brightness), which a collapsed G loses.
    """
    run_dir = tmp_path / "run"
    code, _, err = run_cli(
        "train", "dtn", "--out", run_dir, "--limit", "1200", "--batch-size", "16", "--pretrain-epochs", "1",
        "--epochs", "2", "--decay-epochs", "2", "--lr", "0.0006", "--lr-d", "0.0006", "--conv-dim", "16",
        "--code-dim", "32", "--save-every", "1", "--quiet",
    )  # fmt: skip
    assert code == 0, err
    items, _ = fashion_mnist("test")
    real = items[:500] / 255
    source = torch.nn.functional.pad(to_tensor(blend_with_photos(items[:500], "test", seed=1)), [2] * 4, value=-1)
    grey_source = source.mean(1)[:, 2:30, 2:30].numpy() / 2 + 0.5

    def distance(images: np.ndarray) -> float:  # 1-D Wasserstein: equal counts, so sorted values pair up
        return float(np.abs(np.sort(images.ravel()) - np.sort(real.ravel())).mean())

    assert distance(grey_source) > 0.15  # the band below is a real constraint on where G starts
    distances = []
    for epoch in range(1, 5):
        generator = load_checkpoint(run_dir / f"gan_epoch_{epoch:04d}.pt").generator()[1].build("G").eval()
        with torch.no_grad():
            translated = generator(source)[:, 0, 2:30, 2:30].numpy() / 2 + 0.5
        distances.append(distance(translated))
        if epoch >= 2:
            assert distances[-1] < 0.1, distances
            assert distances[-1] < min(distances) + 0.02, distances
            assert translated.mean((1, 2)).std() > 0.5 * real.mean((1, 2)).std(), epoch


@pytest.mark.parametrize("twin", [False, True], ids=["ac-gan", "tac-gan"])
def test_the_auxiliary_classifier_losses_by_hand(twin):
    from types import SimpleNamespace

    from gantx.trainers.cgan import CGAN

    torch.manual_seed(0)
    discriminator = create_model(
        "cgan_discriminator", conditioning="projection", aux_classifier=True, twin_classifier=twin
    ).eval()
    real, fake = torch.rand(4, 1, 28, 28) * 2 - 1, torch.rand(4, 1, 28, 28) * 2 - 1
    labels, asked = torch.tensor([0, 3, 7, 9]), torch.tensor([1, 1, 5, 2])
    family = SimpleNamespace(D=discriminator, config=SimpleNamespace(gan_loss="vanilla", d_half=False, aux_weight=0.7))
    with torch.no_grad():
        loss_d = CGAN.discriminator_loss(family, real, [labels], fake, [asked]).item()
        loss_g = CGAN.generator_loss(family, fake, [asked]).item()
        # The heads by hand, from D's shared features.
        features = discriminator.net(torch.cat([real, fake]))
        logits = discriminator.logit(features) + (discriminator.embed(torch.cat([labels, asked])) * features).sum(
            1, keepdim=True
        )
        classes = discriminator.classify(features)
        twin_classes = discriminator.classify_twin(features) if twin else None
    real_logit, fake_logit = logits[:4, 0].numpy().astype(np.float64), logits[4:, 0].numpy().astype(np.float64)

    def softplus(x):
        return np.log1p(np.exp(x))

    def cross_entropy(logits, targets):
        logits = logits.numpy().astype(np.float64)
        return np.mean([np.log(np.exp(row).sum()) - row[target] for row, target in zip(logits, targets.numpy())])

    # vanilla: real called real is softplus(-logit), fake called fake softplus(logit). The class head learns the
    # real items' classes in D's loss and G is rewarded for the classes asked for; the twin head learns G's items'
    # classes, and G's loss subtracts that cross-entropy.
    by_hand_d = softplus(-real_logit).mean() + softplus(fake_logit).mean() + 0.7 * cross_entropy(classes[:4], labels)
    by_hand_g = softplus(-fake_logit).mean() + 0.7 * cross_entropy(classes[4:], asked)
    if twin:
        by_hand_d += 0.7 * cross_entropy(twin_classes[4:], asked)
        by_hand_g -= 0.7 * cross_entropy(twin_classes[4:], asked)
    assert loss_d == pytest.approx(by_hand_d, rel=1e-5)
    assert loss_g == pytest.approx(by_hand_g, rel=1e-5)


@pytest.mark.parametrize(
    ("options", "error"),
    [
        (
            ("--aux-weight", "1"),
            "aux-weight needs conditioning projection: with concat, D's features carry the label itself",
        ),
        (
            ("--conditioning", "projection", "--twin-classifier"),
            "twin-classifier needs aux-weight: the twin head pairs with the auxiliary classifier",
        ),
    ],
)
def test_the_class_heads_refuse_what_they_cannot_use(run_cli, tmp_path, options, error):
    code, _, err = run_cli("train", "cgan", "--out", tmp_path / "run", *options, "--quiet")
    assert (code, err.strip()) == (2, f"gantx: error: config: {error}")
    assert not (tmp_path / "run").exists()


@fashion
def test_an_auxiliary_classifier_run_saves_its_head_and_option_and_exports_g(tmp_path, run_cli):
    run_dir = tmp_path / "run"
    options = ("--limit", "64", "--batch-size", "16", "--ngf", "16", "--max-steps", "3", "--quiet")
    code, _, err = run_cli(
        "train", "cgan", "--out", run_dir, "--conditioning", "projection", "--aux-weight", "0.5", "--twin-classifier",
        *options,
    )  # fmt: skip
    assert code == 0, err
    checkpoint = load_checkpoint(run_dir / "latest.pt")
    entry = checkpoint.networks["D"]
    assert entry.options["aux_classifier"] is True and entry.options["twin_classifier"] is True
    for head in ("classify", "classify_twin"):  # ten classes from the 7x7x128 features
        assert entry.state_dict[f"{head}.weight"].shape == (10, 128 * 7 * 7)
    assert checkpoint.config["aux_weight"] == 0.5 and checkpoint.config["twin_classifier"] is True
    assert run_cli("export", run_dir / "latest.pt", "-o", tmp_path / "cgan.onnx")[0] == 0
    session = ort.InferenceSession(str(tmp_path / "cgan.onnx"))
    assert [node.name for node in session.get_inputs()] == ["z", "label"]  # G alone: D's head stays behind
    command = session.get_modelmeta().custom_metadata_map["gantx.train_command"]
    assert "--conditioning projection --aux-weight 0.5 --twin-classifier" in command


def test_dtn_pretraining_with_l_tid_by_hand():
    """--pretrain-tid adds weight * |g(f(t)) - t|^2 to f's classification loss, and its gradient reaches g."""
    from types import SimpleNamespace

    from gantx.trainers.dtn import DTN

    torch.manual_seed(0)
    translator = create_model("dtn_translator", conv_dim=8, code_dim=16).train()
    head = torch.nn.Linear(16, 10)
    source, labels = torch.rand(4, 3, 32, 32) * 2 - 1, torch.tensor([0, 3, 7, 9])
    target = torch.rand(4, 1, 32, 32) * 2 - 1
    with torch.no_grad():  # train mode, as the step: batch statistics in f's and g's batch norms
        logits = head(translator.f(source).flatten(1)).numpy().astype(np.float64)
        rebuilt = translator.g(translator.f(target.repeat(1, 3, 1, 1)))
    cross_entropy = np.mean([np.log(np.exp(row).sum()) - row[label] for row, label in zip(logits, labels.numpy())])
    by_hand_tid = 0.7 * ((rebuilt - target) ** 2).mean().item()

    g_before = [p.detach().clone() for p in translator.g.parameters()]
    optimiser = torch.optim.SGD([*translator.f.parameters(), *head.parameters(), *translator.g.parameters()], lr=0.1)
    family = SimpleNamespace(
        f=translator.f, g=translator.g, head=head, config=SimpleNamespace(pretrain_tid=0.7), optimisers={"f": optimiser}
    )
    family._encode = lambda images: DTN._encode(family, images)
    losses = DTN.pretrain_step(family, [source, labels, target])
    assert losses["f_cls"] == pytest.approx(cross_entropy, rel=1e-5)
    assert losses["L_TID"] == pytest.approx(by_hand_tid, rel=1e-5)
    assert all(not torch.equal(before, after) for before, after in zip(g_before, translator.g.parameters()))
    without = DTN.pretrain_step(family, [source, labels])  # the paper's pretraining: classes alone
    assert set(without) == {"f_cls", "f_accuracy"}


@pytest.mark.parametrize("features", ["code", "4x4"])
def test_dtn_l_const_by_hand(features):
    """L_CONST = alpha * |F(g(f(s))) - F(s)|^2, F being f's code or, with --const-features 4x4, f's 4x4 features."""
    from types import SimpleNamespace

    from gantx.trainers.dtn import DTN

    torch.manual_seed(0)
    translator = create_model("dtn_translator", conv_dim=8, code_dim=16)
    discriminator = create_model("dtn_discriminator", conv_dim=8)
    source, target = torch.rand(4, 3, 32, 32) * 2 - 1, torch.rand(4, 1, 32, 32) * 2 - 1
    f, g = translator.f.eval(), translator.g.train()  # f frozen with its statistics, as the adversarial step has it
    layers = f.net if features == "code" else f.net[:9]
    with torch.no_grad():
        translated = g(f(source)).repeat(1, 3, 1, 1)
        by_hand = 0.3 * ((layers(translated) - layers(source)) ** 2).mean().item()
    assert layers(source).shape[1:] == ((16, 1, 1) if features == "code" else (32, 4, 4))
    config = SimpleNamespace(
        gan_loss="vanilla", finetune_f=False, alpha=0.3, beta=1.0, gamma=0.0, const_features=features
    )
    optimisers = {name: torch.optim.SGD(net.parameters(), lr=0.0) for name, net in (("G", g), ("D", discriminator))}
    family = SimpleNamespace(f=f, g=g, D=discriminator, config=config, optimisers=optimisers)
    family._encode = lambda images, depth=None: DTN._encode(family, images, depth)
    losses = DTN.train_step(family, [source, target])
    assert losses["L_CONST"] == pytest.approx(by_hand, rel=1e-4)
