"""C-S DisMo against a β-VAE and a plain autoencoder split post hoc: swap error and leakage.

Issue 15's benchmark. Every model trains through the one loop for the same number of steps
(batch 64): C-S DisMo ``--latent-steps`` of latent optimisation then ``--encoder-steps`` of
encoder training; the baselines ``latent + encoder`` steps. All have 16 code dims. Then each is
scored by ``untwine.metrics.swap.content_style_scores`` (probe, mapping found, swap error against
the true rendering, leakage) under the dataset's declared split (``untwine.data.split``):

- ``csdismo``: its own content and style encoders and generator (8 + 8 dims).
- ``betavae-mi``: β-VAE (β = 4, 16 latents); its dims are split post hoc by mutual information
  with the factors (``split_codes_by_mi``: each dim goes with its most informative factor, content
  if that factor is declared content). This split *uses the factor labels*: an advantage the
  unsupervised methods do not have.
- ``ae-half``: a deterministic autoencoder with the same dlib nets and Bernoulli loss (the β-VAE
  without KL or noise), code split in two halves (dims 0–7 content, 8–15 style), no labels.
- ``ae-mi``: the same trained autoencoder, split by MI like the β-VAE (no extra training).

A swap decodes [content of a, style of b] (the baselines reassemble their latent vector dim by
dim). Swap error is the mean absolute pixel error against the true rendering (images in [0, 1]);
the references beside it: reconstruction error (floor), and copying the content or style source.
Leakage: probe accuracy of the style factors from content codes and of the content factors from
style codes, with chance. Top-level scores use the factor mapping the probe finds; ``declared``
the declared split. Each (seed, model) run writes ``<data>-s<seed>-<model>.json`` under ``--out``
(the two AE rows come from one training run); ``--aggregate`` writes csdismo.md / csdismo.json
(mean ± std over seeds). Runs are independent, so a budget can be spent in pieces:

    python benchmarks/bench_csdismo.py --seeds 0 --latent-steps 2000 --encoder-steps 600
    python benchmarks/bench_csdismo.py --aggregate
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch

from untwine import runs
from untwine._version import versions
from untwine.config import make_run_config
from untwine.data.split import content_style_split
from untwine.metrics.swap import content_style_scores, encode_all, split_codes_by_mi
from untwine.models import regularisers as R
from untwine.models.base import Model, register_model
from untwine.models.vae import check_number
from untwine.nets.conv import Decoder, Encoder, check_image_shape
from untwine.train import train

MODELS = ("csdismo", "betavae-mi", "ae-half", "ae-mi")
TRAINED = {"csdismo": "csdismo", "betavae-mi": "betavae", "ae-half": "benchae", "ae-mi": "benchae"}
CODE_DIMS = 16
SPLIT_POINTS = 3000


@dataclass
class BenchAEConfig:
    """Deterministic AE with the dlib nets and Bernoulli loss: the β-VAE without KL or noise."""

    model: ClassVar[str] = "benchae"
    latents: int = CODE_DIMS

    def __post_init__(self) -> None:
        check_number(self.model, "latents", self.latents, 2, integer=True)


class BenchAE(Model):
    """x -> mu of the dlib encoder -> dlib decoder logits; loss = Bernoulli reconstruction."""

    def __init__(self, config: BenchAEConfig, image_shape: tuple[int, int, int]) -> None:
        super().__init__()
        channels = check_image_shape(image_shape)
        self.config = config
        self.encoder = Encoder(channels, config.latents)
        self.decoder = Decoder(channels, config.latents)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)[0]

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    def decode_images(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.decode(z))

    @torch.no_grad()
    def represent(self, x: torch.Tensor, mode: str = "mean") -> torch.Tensor:
        return self.encode(x)

    def loss(self, batch: torch.Tensor, step: int) -> dict[str, torch.Tensor]:
        recon = R.reconstruction_loss(batch, self.decode(self.encode(batch)), "bernoulli")
        return {"loss": recon, "recon": recon.detach()}


register_model("benchae", BenchAEConfig, "bench only: deterministic dlib AE")(BenchAE)


def sets_of(name: str, args: argparse.Namespace) -> list[str]:
    """The model settings of a trained model (``--set`` strings)."""
    if name == "csdismo":
        return [f"latent_steps={args.latent_steps}", f"encoder_steps={args.encoder_steps}",
                f"train_images={args.train_images}", "content_dim=8", "style_dim=8"]
    return [f"latents={CODE_DIMS}"]


class SplitCodes:
    """content / style / combine of a single-code model whose dims are split in two sets."""

    def __init__(self, model: Model, content_dims: list[int], style_dims: list[int]) -> None:
        self.model, self.cd, self.sd = model, content_dims, style_dims

    @torch.no_grad()
    def codes(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.represent(x)

    def content(self, x: torch.Tensor) -> torch.Tensor:
        return self.codes(x)[:, self.cd]

    def style(self, x: torch.Tensor) -> torch.Tensor:
        return self.codes(x)[:, self.sd]

    @torch.no_grad()
    def combine(self, c: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        z = torch.empty(len(c), len(self.cd) + len(self.sd), device=c.device)
        z[:, self.cd], z[:, self.sd] = c, s
        return self.model.decode_images(z)


def scorers(name: str, model: Model, dataset, seed: int) -> tuple:
    """(content, style, combine, dims) of ``name``'s codes; dims None for C-S DisMo."""
    if name == "csdismo":
        return model.content_codes, model.style_codes, model.combine, None
    if name == "ae-half":
        half = CODE_DIMS // 2
        cd, sd = list(range(half)), list(range(half, CODE_DIMS))
    else:
        names = tuple(dataset.factor_names)
        factors = dataset.sample_factors(SPLIT_POINTS, np.random.RandomState(seed + 100))
        codes = encode_all(model.represent, dataset.images, factors)
        cd, sd = split_codes_by_mi(codes, factors, content_style_split(dataset).indices(names)[0])
    split = SplitCodes(model, cd, sd)
    return split.content, split.style, split.combine, {"content": cd, "style": sd}


def train_one(trained: str, data: str, seed: int, args: argparse.Namespace) -> tuple:
    """Train ``trained`` (a registered model) into ``--out``; (model, dataset, seconds, log)."""
    steps = args.latent_steps + args.encoder_steps
    config = make_run_config(
        trained,
        {"data.name": data, "train.steps": steps, "train.seed": seed, "train.lr": args.lr,
         "train.metrics": "none", "train.checkpoint_every": steps},
        sets_of(trained, args),
    )
    run_dir = args.out / f"{data}-s{seed}-{trained}"
    print(f"training {trained} on {data}, seed {seed}, {steps} steps", file=sys.stderr,
          flush=True)
    start = time.perf_counter()
    result = train(config, run_dir, force=True, quiet=True)
    seconds = time.perf_counter() - start
    return result.model.eval(), result.dataset, seconds, runs.read_log(run_dir)


def score(name: str, trained: tuple, data: str, seed: int, args: argparse.Namespace) -> dict:
    """The JSON record of one benchmark row."""
    model, dataset, seconds, log = trained
    start = time.perf_counter()
    content, style, combine, dims = scorers(name, model, dataset, seed)
    scores = content_style_scores(dataset, content, style, combine, content_style_split(dataset),
                                  seed=seed)
    steps = args.latent_steps + args.encoder_steps
    return {
        "model": name, "trained": TRAINED[name], "data": data, "seed": seed, "steps": steps,
        "latent_steps": args.latent_steps, "encoder_steps": args.encoder_steps,
        "train_images": args.train_images, "lr": args.lr,
        "sets": sets_of(TRAINED[name], args), "dims": dims,
        "train_seconds": seconds, "seconds_per_step": seconds / steps,
        "score_seconds": time.perf_counter() - start,
        "final_log": log[-1], "scores": scores, "versions": versions(),
    }


KEYS = (
    ("swap_error", "swap error (mapping found)"),
    ("declared.swap_error", "swap error (declared split)"),
    ("references.reconstruction_error", "reconstruction error"),
    ("references.copy_content_source", "copy content source (found)"),
    ("references.copy_style_source", "copy style source (found)"),
    ("references.copy_content_source_declared", "copy content source (declared)"),
    ("references.copy_style_source_declared", "copy style source (declared)"),
    ("leakage_content", "leakage: style factors from content codes"),
    ("leakage_content_chance", "  chance"),
    ("leakage_style", "leakage: content factors from style codes"),
    ("leakage_style_chance", "  chance"),
    ("declared.leakage_content", "leakage content (declared split)"),
    ("declared.leakage_style", "leakage style (declared split)"),
)


def _get(record: dict, key: str):
    value = record["scores"]
    for part in key.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _cell(values: list) -> str:
    values = [v for v in values if v is not None and np.isfinite(v)]
    if not values:
        return "–"
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{np.mean(values):.3f} ± {np.std(values):.3f}"


def aggregate(out: Path) -> str:
    """csdismo.md / .json from every row file under ``out``: one table per dataset."""
    rows = [json.loads(p.read_text()) for p in sorted(out.glob("*-s*-*.json"))]
    lines: list[str] = []
    summary: dict = {}
    for data in sorted({r["data"] for r in rows}):
        mine = [r for r in rows if r["data"] == data]
        models = [m for m in MODELS if any(r["model"] == m for r in mine)]
        by = {m: [r for r in mine if r["model"] == m] for m in models}
        seeds = sorted({r["seed"] for r in mine})
        budgets = sorted({f"{r['latent_steps']}+{r['encoder_steps']}" for r in mine})
        lines += [f"### {data} twin: steps {', '.join(budgets)} (latent+encoder; baselines the "
                  f"sum), seeds {seeds}", "",
                  "| score | " + " | ".join(models) + " |", "|---|" + "---|" * len(models)]
        for key, label in KEYS:
            lines.append(f"| {label} | " + " | ".join(_cell([_get(r, key) for r in by[m]])
                                                      for m in models) + " |")
        found = [" / ".join(",".join(n for n, side in r["scores"]["mapping"].items()
                                     if side == "content") or "∅" for r in by[m])
                 for m in models]
        lines.append("| content factors found, per seed | " + " | ".join(found) + " |")
        sided = [" / ".join("yes" if r["scores"]["mapping_one_sided"] else "no" for r in by[m])
                 for m in models]
        lines.append("| mapping one-sided (found scores trivial), per seed | "
                     + " | ".join(sided) + " |")
        speed = [_cell([r["seconds_per_step"] for r in by[m]]) for m in models]
        lines += ["| training s/step | " + " | ".join(speed) + " |", ""]
        summary[data] = {m: {"seeds": [r["seed"] for r in by[m]],
                             **{key: [_get(r, key) for r in by[m]] for key, _ in KEYS},
                             "mapping": [r["scores"]["mapping"] for r in by[m]]}
                         for m in models}
    markdown = "\n".join(lines)
    (out / "csdismo.md").write_text(markdown + "\n")
    (out / "csdismo.json").write_text(json.dumps(summary, indent=2) + "\n")
    return markdown


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", nargs="+", default=["shapes3d"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--latent-steps", type=int, default=2000)
    parser.add_argument("--encoder-steps", type=int, default=600)
    parser.add_argument("--train-images", type=int, default=2000,
                        help="C-S DisMo's latent-optimisation subset")
    parser.add_argument("--lr", type=float, default=1e-3, help="every model's learning rate")
    parser.add_argument("--out", type=Path, default=Path("bench-csdismo"))
    parser.add_argument("--aggregate", action="store_true", help="only build the table")
    args = parser.parse_args()

    args.out.mkdir(parents=True, exist_ok=True)
    if not args.aggregate:
        for data in args.data:
            for seed in args.seeds:
                cache: dict[str, tuple] = {}
                for name in args.models:
                    trained = TRAINED[name]
                    if trained not in cache:
                        cache[trained] = train_one(trained, data, seed, args)
                    result = score(name, cache[trained], data, seed, args)
                    path = args.out / f"{data}-s{seed}-{name}.json"
                    path.write_text(json.dumps(result, indent=2) + "\n")
                    print(json.dumps({k: result[k] for k in ("model", "data", "seed",
                                                             "train_seconds", "score_seconds")}
                                     | {"swap_error": result["scores"]["swap_error"]}),
                          flush=True)
    print(aggregate(args.out))


if __name__ == "__main__":
    main()
