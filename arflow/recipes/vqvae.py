"""Checkpoints of the VQ-VAE lecture (``lectures/04_vqvae.ipynb``), and its precomputed curves.

- ``vae_factorized``, ``vae_pixelcnn``: VAEs on binarized MNIST with a weak and an autoregressive
  decoder (posterior collapse); each carries its KL / reconstruction trace in a buffer.
- ``vqvae_mnist``: VQ-VAE, 7x7 grid of 64 codes (EMA codebook, dead codes re-seeded).
- ``prior_vqvae_mnist``: Gated PixelCNN prior over its 7x7 code grids.
- ``vqvae2_mnist``: two-level VQ-VAE-2 (top 4x4, bottom 7x7).
- ``prior_vqvae2_mnist``: p(top) and p(bottom | top), two Gated PixelCNNs.

The priors are trained on the codes of the *shipped* autoencoders: retrain an autoencoder, then
retrain its prior. ``python -m arflow.recipes.vqvae curves`` reruns the stage-1 experiments (the
commitment cost sweep, codebook loss against EMA, dead-code re-seeding) and writes their curves
to ``checkpoints/vqvae_curves/stage1.json`` (a sub-folder: not a checkpoint manifest).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader, TensorDataset

from arflow.checkpoints import CHECKPOINT_DIR, Recipe, load_checkpoint, register
from arflow.data import binarize, make_loader, mnist, to_float
from arflow.models.gated_pixelcnn import GatedPixelCNN
from arflow.models.vae import VAE
from arflow.models.vqvae import VQVAE, reconstruction_mse, train_vqvae
from arflow.models.vqvae2 import VQVAE2, HierarchicalPrior
from arflow.training import fit
from arflow.utils import LN2

DATA = "embedded MNIST subset (4,000 train / 1,000 test)"
CURVES_PATH = CHECKPOINT_DIR / "vqvae_curves" / "stage1.json"


def _images(split: str, limit: int | None = None, binary: bool = False) -> torch.Tensor:
    images, _ = mnist(split, source="embedded", limit=limit)
    return binarize(images) if binary else to_float(images)


def _cosine(optimizer, steps: int):
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps)))


# ----------------------------------------------------------------------------- VAEs (posterior collapse)
VAE_CONFIG = {"latent_dim": 16, "hidden": 16, "cond_channels": 8, "pixelcnn_channels": 16, "pixelcnn_layers": 4,
              "trace_len": 50, "steps": 400, "batch_size": 16, "lr": 1e-3}


def _build_vae(decoder: str):
    def build(config: dict) -> VAE:
        return VAE(config["latent_dim"], decoder, config["hidden"], config["cond_channels"],
                   config["pixelcnn_channels"], config["pixelcnn_layers"], config["trace_len"])
    return build


def train_vae(model: VAE, config: dict, fast: bool):
    """Adam on the negative ELBO; the mean KL and reconstruction since the last row go to ``model.trace``."""
    steps = 10 if fast else config["steps"]
    x = _images("train", 64 if fast else None, binary=True)
    loader = make_loader(x, batch_size=config["batch_size"], seed=0)
    rows, every = len(model.trace), max(1, steps // len(model.trace))
    sums, logged = [0.0, 0.0, 0], []
    model.trace.zero_()

    def negative_elbo(net, batch):
        out = net(batch[0])
        sums[0] += out["kl"].item()
        sums[1] += out["recon"].item()
        sums[2] += 1
        if sums[2] == every and len(logged) < rows:
            logged.append((len(logged) + 1) * every)
            net.trace[len(logged) - 1] = torch.tensor([logged[-1], sums[0] / every, sums[1] / every])
            sums[:] = [0.0, 0.0, 0]
        return out["loss"]

    optimizer = torch.optim.Adam(model.parameters(), lr=config["lr"])
    return fit(model, negative_elbo, loader, steps, optimizer=optimizer, desc=f"VAE ({model.decoder_kind} decoder)")


def vae_negative_elbo(model: VAE, limit: int | None = None, batch_size: int = 100) -> float:
    """Test negative ELBO in nats per image (one z sample per image from a fixed generator)."""
    x = _images("test", limit, binary=True)
    generator = torch.Generator().manual_seed(0)
    total = 0.0
    model.eval()
    with torch.no_grad():
        for i in range(0, len(x), batch_size):
            total += model(x[i:i + batch_size], generator=generator)["loss"].item() * len(x[i:i + batch_size])
    return total / len(x)


for _kind in ("factorized", "pixelcnn"):
    register(Recipe(name=f"vae_{_kind}", build=_build_vae(_kind), train=train_vae, evaluate=vae_negative_elbo,
                    config=VAE_CONFIG, metric="test negative ELBO (nats/image)",
                    data="embedded MNIST subset, binarized (pixel >= 128)", tolerance=0.01))


# ----------------------------------------------------------------------------- VQ-VAE
VQVAE_CONFIG = {"num_embeddings": 64, "embedding_dim": 16, "hidden": 32, "commitment_cost": 0.25, "ema": True,
                "decay": 0.99, "reseed_threshold": 0.1, "steps": 800, "batch_size": 32, "lr": 2e-3}


def build_vqvae(config: dict) -> VQVAE:
    return VQVAE(config["num_embeddings"], config["embedding_dim"], config["hidden"], config["commitment_cost"],
                 config["ema"], config["decay"], config["reseed_threshold"])


def train_vqvae_recipe(model: VQVAE, config: dict, fast: bool) -> dict:
    x = _images("train", 256 if fast else None)
    return train_vqvae(model, x, 10 if fast else config["steps"], config["batch_size"], config["lr"])


def vqvae_mse(model: VQVAE, limit: int | None = None) -> float:
    return reconstruction_mse(model, _images("test", limit))


register(Recipe(name="vqvae_mnist", build=build_vqvae, train=train_vqvae_recipe, evaluate=vqvae_mse,
                config=VQVAE_CONFIG, metric="test reconstruction MSE per pixel (intensities in [0, 1])",
                data=DATA, tolerance=1e-4))


# ----------------------------------------------------------------------------- prior over the 7x7 codes
PRIOR_CONFIG = {"autoencoder": "vqvae_mnist", "channels": 32, "n_layers": 5, "kernel_size": 3, "steps": 800,
                "batch_size": 64, "lr": 3e-3}


@torch.no_grad()
def encode_split(vqvae, split: str, limit: int | None = None, batch_size: int = 500):
    """Codes of the embedded split: (N, 7, 7) for a VQ-VAE, (top (N, 4, 4), bottom (N, 7, 7)) for a VQ-VAE-2."""
    x = _images(split, limit)
    parts = [vqvae.encode(x[i:i + batch_size]) for i in range(0, len(x), batch_size)]
    if isinstance(parts[0], tuple):
        return tuple(torch.cat(p) for p in zip(*parts))
    return torch.cat(parts)


def build_prior(config: dict) -> GatedPixelCNN:
    return GatedPixelCNN(VQVAE_CONFIG["num_embeddings"], config["channels"], config["n_layers"],
                         config["kernel_size"], input="index")


def train_prior(model: GatedPixelCNN, config: dict, fast: bool):
    codes = encode_split(load_checkpoint(config["autoencoder"]), "train", 256 if fast else None)
    steps = 10 if fast else config["steps"]
    loader = make_loader(codes, batch_size=config["batch_size"], seed=0)
    optimizer = torch.optim.Adam(model.parameters(), lr=config["lr"])
    return fit(model, lambda net, batch: net.nll(batch[0]), loader, steps, optimizer=optimizer,
               scheduler=_cosine(optimizer, steps), desc="PixelCNN prior over codes")


def prior_bits_per_code(model: GatedPixelCNN, limit: int | None = None) -> float:
    """Test NLL of the codes of the first ``limit`` test digits, in bits per code."""
    codes = encode_split(load_checkpoint(PRIOR_CONFIG["autoencoder"]), "test", limit)
    model.eval()
    with torch.no_grad():
        return model.nll(codes).item() / LN2


register(Recipe(name="prior_vqvae_mnist", build=build_prior, train=train_prior, evaluate=prior_bits_per_code,
                config=PRIOR_CONFIG, metric="test bits per code (7x7 grid of 64 codes)",
                data=DATA + ", encoded by vqvae_mnist"))


# ----------------------------------------------------------------------------- VQ-VAE-2
VQVAE2_CONFIG = {"num_embeddings_top": 32, "num_embeddings_bottom": 32, "embedding_dim": 16, "hidden": 32,
                 "commitment_cost": 0.25, "decay": 0.99, "reseed_threshold": 0.1, "steps": 800,
                 "batch_size": 32, "lr": 2e-3}


def build_vqvae2(config: dict) -> VQVAE2:
    return VQVAE2(config["num_embeddings_top"], config["num_embeddings_bottom"], config["embedding_dim"],
                  config["hidden"], config["commitment_cost"], config["decay"], config["reseed_threshold"])


def train_vqvae2(model: VQVAE2, config: dict, fast: bool):
    x = _images("train", 256 if fast else None)
    loader = make_loader(x, batch_size=config["batch_size"], seed=0)
    return fit(model, lambda net, batch: net(batch[0])["total_loss"], loader, 10 if fast else config["steps"],
               lr=config["lr"], desc="VQ-VAE-2")


def vqvae2_mse(model: VQVAE2, limit: int | None = None, batch_size: int = 500) -> float:
    x = _images("test", limit)
    model.eval()
    total = 0.0
    with torch.no_grad():
        for i in range(0, len(x), batch_size):
            batch = x[i:i + batch_size]
            total += torch.nn.functional.mse_loss(model.decode(*model.encode(batch)), batch, reduction="sum").item()
    return total / x.numel()


register(Recipe(name="vqvae2_mnist", build=build_vqvae2, train=train_vqvae2, evaluate=vqvae2_mse,
                config=VQVAE2_CONFIG, metric="test reconstruction MSE per pixel (intensities in [0, 1])",
                data=DATA, tolerance=1e-4))

PRIOR2_CONFIG = {"autoencoder": "vqvae2_mnist", "channels": 32, "n_layers": 4, "kernel_size": 3, "steps": 800,
                 "batch_size": 64, "lr": 3e-3}


def build_prior2(config: dict) -> HierarchicalPrior:
    return HierarchicalPrior(VQVAE2_CONFIG["num_embeddings_top"], VQVAE2_CONFIG["num_embeddings_bottom"],
                             config["channels"], config["n_layers"], config["kernel_size"])


def train_prior2(model: HierarchicalPrior, config: dict, fast: bool):
    top, bottom = encode_split(load_checkpoint(config["autoencoder"]), "train", 256 if fast else None)
    steps = 10 if fast else config["steps"]
    loader = DataLoader(TensorDataset(top, bottom), batch_size=config["batch_size"], shuffle=True,
                        generator=torch.Generator().manual_seed(0))
    optimizer = torch.optim.Adam(model.parameters(), lr=config["lr"])
    return fit(model, lambda net, batch: sum(net.nll(batch[0], batch[1])), loader, steps, optimizer=optimizer,
               scheduler=_cosine(optimizer, steps), desc="VQ-VAE-2 priors")


def prior2_bits_per_image(model: HierarchicalPrior, limit: int | None = None) -> float:
    """Test -log2 p(top, bottom) per image, in bits (16 top codes + 49 bottom codes)."""
    top, bottom = encode_split(load_checkpoint(PRIOR2_CONFIG["autoencoder"]), "test", limit)
    model.eval()
    with torch.no_grad():
        return model.bits_per_image(top, bottom).item()


register(Recipe(name="prior_vqvae2_mnist", build=build_prior2, train=train_prior2, evaluate=prior2_bits_per_image,
                config=PRIOR2_CONFIG, metric="test bits per image (top 4x4 + bottom 7x7 codes)",
                data=DATA + ", encoded by vqvae2_mnist", tolerance=0.01))


# ----------------------------------------------------------------------------- stage-1 experiments (curves)
def stage1_experiments(steps: int = 300, fast: bool = False, progress: bool = True) -> dict:
    """Short VQ-VAE runs that the lecture compares; returns {run name: {"config": ..., "curves": ...}}.

    - ``beta=...``: the commitment cost sweep (EMA codebook, re-seeding on);
    - ``codebook loss`` / ``EMA``: the two ways of learning the codebook (no re-seeding);
    - ``EMA + re-seeding``: the dead-code remedy (compare with ``EMA``).
    """
    x = _images("train", 256 if fast else None)
    base = {**VQVAE_CONFIG, "reseed_threshold": 0.0}
    runs = {
        "codebook loss": {**base, "ema": False},
        "EMA": base,
        "EMA + re-seeding": {**base, "reseed_threshold": 0.1},
        **{f"beta={b:g}": {**base, "reseed_threshold": 0.1, "commitment_cost": b} for b in (0.05, 1.0)},
    }
    results = {}
    for name, config in runs.items():
        torch.manual_seed(0)
        model = build_vqvae(config)
        began = time.perf_counter()
        curves = train_vqvae(model, x, steps, config["batch_size"], config["lr"],
                             log_every=max(1, steps // 40), progress=progress, desc=name)
        curves["seconds"] = round(time.perf_counter() - began, 1)
        curves["test_mse"] = reconstruction_mse(model, _images("test", 200 if fast else None))
        results[name] = {"config": config, "curves": curves}
    # beta=0.25 is the "EMA + re-seeding" run
    results["beta=0.25"] = results["EMA + re-seeding"]
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m arflow.recipes.vqvae")
    parser.add_argument("what", choices=["curves"], help="curves: rerun the stage-1 experiments")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--out", type=Path, default=CURVES_PATH)
    args = parser.parse_args(argv)
    results = stage1_experiments(args.steps)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    command = f"python -m arflow.recipes.vqvae curves --steps {args.steps}"
    args.out.write_text(json.dumps({"command": command, "torch_threads": torch.get_num_threads(),
                                    "runs": results}, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
