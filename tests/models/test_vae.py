import dataclasses

import pytest
import torch

from untwine.errors import UntwineError
from untwine.models import MODELS, VAE
from untwine.models import regularisers as R
from untwine.models.vae import BetaTCVAEConfig, BetaVAEConfig

STUDY_DEFAULTS = {
    "betavae": {"beta": 4.0},
    "annealedvae": {"gamma": 1000.0, "c_max": 25.0, "iteration_threshold": 100_000},
    "betatcvae": {"beta": 6.0, "estimator": "mws", "dataset_size": None},
    "factorvae": {
        "gamma": 10.0,
        "disc_lr": 1e-4,
        "disc_beta1": 0.5,
        "disc_beta2": 0.9,
        "shuffle": "second_batch",
    },
    "dipvae1": {"lambda_od": 10.0, "lambda_d_factor": 10.0},
    "dipvae2": {"lambda_od": 10.0, "lambda_d_factor": 1.0},
}
COMMON = {"latents": 10, "architecture": "dlib", "reconstruction": "bernoulli"}
VAE_NAMES = ["betavae", "annealedvae", "betatcvae", "dipvae1", "dipvae2"]


def _build(name: str, image_shape=(1, 64, 64), **fields) -> VAE:
    entry = MODELS[name]
    if name == "betatcvae":
        fields.setdefault("dataset_size", 1000)
    return entry.build(entry.config_class(**fields), image_shape)


def _images(n: int, channels: int = 1, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, channels, 64, 64, generator=torch.Generator().manual_seed(seed))


def test_registry_holds_the_six_baselines_with_study_defaults():
    assert set(STUDY_DEFAULTS) <= set(MODELS)
    for name, own in STUDY_DEFAULTS.items():
        fields = dataclasses.asdict(MODELS[name].config_class())
        assert fields == {**COMMON, **own}, name
        assert MODELS[name].summary


@pytest.mark.parametrize(
    ("name", "fields", "mentions"),
    [
        ("betavae", {"beta": -1.0}, "beta"),
        ("betavae", {"latents": 0}, "latents"),
        ("betavae", {"latents": 2.5}, "latents"),
        ("betavae", {"architecture": "resnet"}, "dlib, burgess"),
        ("betavae", {"reconstruction": "laplace"}, "bernoulli, gaussian"),
        ("annealedvae", {"iteration_threshold": 0}, "iteration_threshold"),
        ("annealedvae", {"c_max": -5.0}, "c_max"),
        ("betatcvae", {"estimator": "exact"}, "mws, mss"),
        ("betatcvae", {"dataset_size": 1}, "dataset_size"),
        ("dipvae1", {"lambda_od": -1.0}, "lambda_od"),
        ("factorvae", {"shuffle": "none"}, "second_batch, same_batch"),
        ("factorvae", {"disc_beta2": 1.0}, "disc_beta2"),
        ("factorvae", {"disc_lr": 0.0}, "disc_lr"),
    ],
)
def test_invalid_config_names_the_field_and_allowed_values(name, fields, mentions):
    with pytest.raises(UntwineError, match=mentions):
        MODELS[name].config_class(**fields)


def test_replace_revalidates_configs():
    with pytest.raises(UntwineError, match="beta"):
        dataclasses.replace(BetaVAEConfig(), beta=-2.0)


@pytest.mark.parametrize("architecture", ["dlib", "burgess"])
@pytest.mark.parametrize("channels", [1, 3])
def test_shapes_of_encode_decode_represent_reconstruct(architecture, channels):
    model = _build("betavae", (channels, 64, 64), latents=6, architecture=architecture)
    x = _images(3, channels)
    mu, logvar = model.encode(x)
    assert mu.shape == logvar.shape == (3, 6)
    assert model.decode(mu).shape == (3, channels, 64, 64)
    assert model.represent(x).shape == (3, 6)
    rec = model.reconstruct(x)
    assert rec.shape == (3, channels, 64, 64) and 0 <= rec.min() and rec.max() <= 1
    assert model.kl_per_latent(x).shape == (6,)


@pytest.mark.parametrize("shape", [(1, 32, 32), (4, 64, 64)])
def test_build_rejects_other_image_shapes(shape):
    with pytest.raises(UntwineError, match="64"):
        _build("betavae", shape)


@pytest.mark.parametrize("name", VAE_NAMES)
def test_loss_is_recon_plus_the_models_regulariser(name):
    torch.manual_seed(0)
    model = _build(name, latents=4)
    out = model.loss(_images(6), step=30_000)
    recon, kl = out["recon"], out["kl"]
    cfg = model.config
    expected = {
        "betavae": lambda: recon + cfg.beta * kl,
        "annealedvae": lambda: recon + cfg.gamma * (kl - out["capacity"]).abs(),
        "betatcvae": lambda: recon + kl + (cfg.beta - 1) * out["tc"],
        "dipvae1": lambda: recon + kl + 10 * out["dip_od"] + 100 * out["dip_d"],
        "dipvae2": lambda: recon + kl + 10 * out["dip_od"] + 10 * out["dip_d"],
    }[name]()
    assert out["loss"].item() == pytest.approx(expected.item(), rel=1e-5)
    assert out["loss"].requires_grad
    assert all(not v.requires_grad for k, v in out.items() if k != "loss")
    assert all(v.ndim == 0 for v in out.values())


def test_logged_kl_is_the_analytic_kl_of_the_batch():
    torch.manual_seed(0)
    model = _build("betavae", latents=5)
    x = _images(4)
    out = model.loss(x, 0)
    assert out["kl"].item() == pytest.approx(R.gaussian_kl(*model.encode(x)).sum(1).mean().item())
    assert model.kl_per_latent(x).sum().item() == pytest.approx(out["kl"].item(), rel=1e-5)


@pytest.mark.parametrize(("step", "capacity"), [(0, 0.0), (50_000, 12.5), (250_000, 25.0)])
def test_annealed_capacity_is_logged_at_its_step(step, capacity):
    out = _build("annealedvae").loss(_images(2), step)
    assert out["capacity"].item() == pytest.approx(capacity)


def test_betatcvae_without_dataset_size_says_how_to_set_it():
    model = MODELS["betatcvae"].build(BetaTCVAEConfig(), (1, 64, 64))
    with pytest.raises(UntwineError, match="dataset_size"):
        model.loss(_images(4), 0)


def test_betatcvae_mss_runs_in_float64_on_the_batch_device():
    model = _build("betatcvae", estimator="mss", latents=3).double()
    out = model.loss(_images(4).double(), 0)
    assert out["tc"].dtype == torch.float64 and torch.isfinite(out["loss"])


def test_represent_mean_is_deterministic_and_sampled_follows_the_seed():
    model = _build("betavae")
    x = _images(4)
    assert torch.equal(model.represent(x), model.represent(x, mode="mean"))
    assert torch.equal(model.represent(x), model.encode(x)[0].detach())
    torch.manual_seed(1)
    a = model.represent(x, mode="sampled")
    torch.manual_seed(1)
    b = model.represent(x, mode="sampled")
    torch.manual_seed(2)
    c = model.represent(x, mode="sampled")
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert not a.requires_grad and not model.represent(x).requires_grad


def test_represent_rejects_unknown_mode():
    with pytest.raises(UntwineError, match="mean, sampled"):
        _build("betavae").represent(_images(1), mode="median")


@pytest.mark.parametrize("name", VAE_NAMES)
def test_objective_reaches_encoder_and_decoder(name):
    torch.manual_seed(0)
    model = _build(name, latents=3)
    model.loss(_images(4), 10)["loss"].backward()
    for part in (model.encoder, model.decoder):
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in part.parameters())


def _blobs(n: int, seed: int) -> torch.Tensor:
    """dSprites-like images: one white square of random size at a random place."""
    g = torch.Generator().manual_seed(seed)
    x = torch.zeros(n, 1, 64, 64)
    for i in range(n):
        size = int(torch.randint(8, 20, (1,), generator=g))
        r, c = torch.randint(0, 64 - size, (2,), generator=g).tolist()
        x[i, 0, r : r + size, c : c + size] = 1.0
    return x


def test_betavae_learns_on_dsprites_like_squares():
    torch.manual_seed(0)
    model = _build("betavae")
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    data = _blobs(64, seed=0)
    losses = []
    for step in range(200):
        batch = data[torch.randint(0, 64, (8,))]
        out = model.loss(batch, step)
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        losses.append(out["loss"].item())
    first, last = sum(losses[:20]) / 20, sum(losses[-20:]) / 20
    assert last < 0.6 * first  # measured: 1807 → 753
