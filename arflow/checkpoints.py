"""Shipped checkpoints: recipes, a manifest entry per checkpoint, and ``load_or_train``.

Every checkpoint the lectures show has a :class:`Recipe` (how to build, train and evaluate
it) registered from a module in :mod:`arflow.recipes`, and two files in ``checkpoints/``:

- ``<name>.pt``: the model's ``state_dict``;
- ``<name>.json``: its manifest entry: model, config, data, the command that trained it,
  training time, the measured test metric (on the whole test split and on the first
  ``check_n`` test examples, which the test suite re-measures) and the sha256 of the ``.pt``.

``make checkpoints`` (``python -m arflow.checkpoints train``) retrains them all;
``python -m arflow.checkpoints train NAME`` retrains one.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import json
import pkgutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from arflow.utils import fast_mode, seed_everything

CHECKPOINT_DIR = Path(__file__).resolve().parents[1] / "checkpoints"
CHECK_N = 200  # test examples re-measured by tests/test_checkpoints.py


@dataclass
class Recipe:
    """How one shipped model is built, trained and evaluated.

    ``build(config) -> nn.Module``; ``train(model, config, fast) -> History`` trains in place
    (``fast``: a few steps on tiny data, for CI); ``evaluate(model, limit) -> float`` measures
    ``metric`` deterministically on the first ``limit`` test examples (all when None).
    """

    name: str
    build: Callable[[dict], torch.nn.Module]
    train: Callable[[torch.nn.Module, dict, bool], object]
    evaluate: Callable[[torch.nn.Module, int | None], float]
    config: dict = field(default_factory=dict)
    metric: str = "test bits/dim"
    data: str = "embedded MNIST subset (4,000 train / 1,000 test)"
    seed: int = 0
    tolerance: float = 1e-3  # absolute, on the re-measured metric

    @property
    def command(self) -> str:
        return f"python -m arflow.checkpoints train {self.name}"


RECIPES: dict[str, Recipe] = {}


def register(recipe: Recipe) -> Recipe:
    if recipe.name in RECIPES:
        raise ValueError(f"a recipe named {recipe.name!r} is already registered")
    RECIPES[recipe.name] = recipe
    return recipe


def load_recipes() -> dict[str, Recipe]:
    """Import every module of :mod:`arflow.recipes` (each registers its recipes)."""
    import arflow.recipes as package

    for info in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"arflow.recipes.{info.name}")
    return RECIPES


def get_recipe(name: str) -> Recipe:
    recipes = load_recipes()
    if name not in recipes:
        raise KeyError(f"no checkpoint recipe named {name!r}; known: {sorted(recipes)}")
    return recipes[name]


def sha256_of(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def paths(name: str, directory: Path = CHECKPOINT_DIR) -> tuple[Path, Path]:
    return directory / f"{name}.pt", directory / f"{name}.json"


def read_manifest(name: str, directory: Path = CHECKPOINT_DIR) -> dict:
    return json.loads(paths(name, directory)[1].read_text())


def all_manifests(directory: Path = CHECKPOINT_DIR) -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in sorted(directory.glob("*.json"))}


def train_and_save(name: str, directory: Path = CHECKPOINT_DIR, progress: bool = True) -> dict:
    """Train the recipe ``name`` with its full settings, measure it, and write ``.pt`` and ``.json``."""
    recipe = get_recipe(name)
    seed_everything(recipe.seed)
    model = recipe.build(recipe.config)
    began = time.perf_counter()
    recipe.train(model, recipe.config, False)
    seconds = time.perf_counter() - began
    model.eval()
    directory.mkdir(parents=True, exist_ok=True)
    weights, manifest_path = paths(name, directory)
    torch.save(model.state_dict(), weights)
    manifest = {
        "name": name,
        "model": f"{type(model).__module__}.{type(model).__qualname__}",
        "config": recipe.config,
        "data": recipe.data,
        "command": recipe.command,
        "train_seconds": round(seconds, 1),
        "torch_threads": torch.get_num_threads(),
        "metric": recipe.metric,
        "value": measure(recipe, model, None),
        "check_n": CHECK_N,
        "check_value": measure(recipe, model, CHECK_N),
        "parameters": sum(p.numel() for p in model.parameters()),
        "bytes": weights.stat().st_size,
        "sha256": sha256_of(weights),
    }
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
    if progress:
        print(f"{name}: {recipe.metric} {manifest['value']:.4f} in {seconds:.0f} s ({manifest['bytes'] / 1e6:.2f} MB)")
    return manifest


def measure(recipe: Recipe, model: torch.nn.Module, limit: int | None) -> float:
    """The recipe's metric of ``model`` on the first ``limit`` test examples, in eval mode, without gradients."""
    model.eval()
    torch.manual_seed(recipe.seed)
    with torch.no_grad():
        return float(recipe.evaluate(model, limit))


def remeasure(name: str, directory: Path = CHECKPOINT_DIR) -> dict:
    """Measure a shipped checkpoint again and update its manifest's metric (for example after the
    test data changed); the weights are not touched."""
    recipe = get_recipe(name)
    model = load_checkpoint(name, directory=directory)
    manifest = read_manifest(name, directory)
    manifest.update(value=measure(recipe, model, None), check_n=CHECK_N, check_value=measure(recipe, model, CHECK_N))
    paths(name, directory)[1].write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def load_checkpoint(name: str, device: str | torch.device = "cpu", directory: Path = CHECKPOINT_DIR):
    """Build the recipe's model and load its shipped weights (strict, sha256 checked)."""
    recipe = get_recipe(name)
    weights, _ = paths(name, directory)
    if not weights.exists():
        raise FileNotFoundError(f"checkpoint {weights} is missing; run `{recipe.command}` to train it")
    manifest = read_manifest(name, directory)
    if sha256_of(weights) != manifest["sha256"]:
        raise ValueError(f"{weights}: sha256 differs from its manifest; retrain with `{recipe.command}`")
    model = recipe.build(manifest["config"])
    state = torch.load(weights, map_location="cpu", weights_only=True)
    model.load_state_dict(state, strict=True)
    return model.to(device).eval()


def load_or_train(name: str, train: bool = False, device: str | torch.device = "cpu"):
    """The lectures' "load or train": the shipped model, or a freshly trained one when ``train``.

    With ``train=True`` the model is trained with the recipe's settings (a few steps in fast
    mode) and returned without overwriting the shipped checkpoint (``make checkpoints`` does that).
    Returns ``(model, info)``; ``info`` is the manifest entry or, after training, the history.
    """
    recipe = get_recipe(name)
    if not train:
        return load_checkpoint(name, device), read_manifest(name)
    seed_everything(recipe.seed)
    model = recipe.build(recipe.config).to(device)
    history = recipe.train(model, recipe.config, fast_mode())
    return model.eval(), {"history": history, "name": name}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m arflow.checkpoints", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="(re)train checkpoints with their full settings")
    train.add_argument("names", nargs="*", help="recipes to train (default: all)")
    again = sub.add_parser("remeasure", help="re-measure shipped checkpoints and update their manifests")
    again.add_argument("names", nargs="*", help="checkpoints to re-measure (default: all)")
    sub.add_parser("list", help="list recipes and their manifest entries")
    args = parser.parse_args(argv)
    recipes = load_recipes()
    if args.command == "list":
        manifests = all_manifests()
        for name in sorted(recipes):
            entry = manifests.get(name)
            status = f"{entry['metric']} {entry['value']:.4f}, {entry['train_seconds']} s" if entry else "not trained"
            print(f"{name:32s} {status}")
        return
    for name in args.names or sorted(recipes):
        if args.command == "remeasure":
            entry = remeasure(name)
            print(f"{name}: {entry['metric']} {entry['value']:.4f} "
                  f"(first {entry['check_n']}: {entry['check_value']:.4f})")
        else:
            train_and_save(name)


if __name__ == "__main__":
    # Under `python -m` this file runs as `__main__`, a second copy of the module whose RECIPES
    # the recipe modules (which import `arflow.checkpoints`) never fill: run the imported one.
    from arflow.checkpoints import main as _main

    _main()
