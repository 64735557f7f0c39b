"""Shipped checkpoints: a manifest entry per checkpoint, training in dependency order, ``load_or_train``.

Every checkpoint the lectures show has a :class:`~arflow.train.recipe.Recipe` (listed in
:mod:`arflow.train.recipes`) and two files in ``checkpoints/``:

- ``<name>.pt``: the model's ``state_dict``;
- ``<name>.json``: its manifest entry: model, both configs, what it requires, data, the command
  that trained it, training time, its training history, the measured test metric (on the whole
  test split and on the first ``check_n`` test examples, which the test suite re-measures) and
  the sha256 of the ``.pt``.

``make checkpoints`` (``python -m arflow.train.checkpoints train``) retrains them all, each after
the checkpoints it requires (a prior after its autoencoder); ``... train NAME`` retrains one.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from arflow.train.loop import History
from arflow.train.recipe import Inputs, Recipe
from arflow.utils import fast_mode, pick_device, seed_everything

CHECKPOINT_DIR = Path(__file__).resolve().parents[2] / "checkpoints"
CHECK_N = 200  # test examples re-measured by tests/test_checkpoints.py

RECIPES: dict[str, Recipe] = {}


def load_recipes() -> dict[str, Recipe]:
    """Every recipe by name (the explicit list :data:`arflow.train.recipes.RECIPES`)."""
    if not RECIPES:
        from arflow.train.recipes import RECIPES as listed

        names = [recipe.name for recipe in listed]
        if len(set(names)) != len(names):
            raise ValueError(f"two recipes share a name: {sorted(n for n in names if names.count(n) > 1)}")
        RECIPES.update({recipe.name: recipe for recipe in listed})
    return RECIPES


def get_recipe(name: str) -> Recipe:
    recipes = load_recipes()
    if name not in recipes:
        raise KeyError(f"no checkpoint recipe named {name!r}; known: {sorted(recipes)}")
    return recipes[name]


def training_order(names: list[str] | None = None) -> list[str]:
    """``names`` (default: every recipe) ordered so that each comes after the checkpoints it requires.

    Only the names asked for are returned (a requirement not among them is used as shipped);
    raises ``ValueError`` on a requirement that no recipe provides or on a cycle.
    """
    recipes = load_recipes()
    wanted = list(names) if names else sorted(recipes)
    order, state = [], {}  # state: "visiting" / "done"

    def visit(name: str, chain: tuple[str, ...]) -> None:
        if name not in recipes:
            raise ValueError(f"{chain[-1] if chain else name!r} requires {name!r}, which no recipe provides")
        if state.get(name) == "done":
            return
        if state.get(name) == "visiting":
            raise ValueError(f"recipes require each other in a cycle: {' -> '.join((*chain, name))}")
        state[name] = "visiting"
        for required in recipes[name].requires:
            visit(required, (*chain, name))
        state[name] = "done"
        order.append(name)

    for name in wanted:
        visit(name, ())
    return [name for name in order if name in wanted]


def sha256_of(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def paths(name: str, directory: Path = CHECKPOINT_DIR) -> tuple[Path, Path]:
    return directory / f"{name}.pt", directory / f"{name}.json"


def read_manifest(name: str, directory: Path = CHECKPOINT_DIR) -> dict:
    return json.loads(paths(name, directory)[1].read_text())


def all_manifests(directory: Path = CHECKPOINT_DIR) -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in sorted(directory.glob("*.json"))}


def required_inputs(recipe: Recipe, directory: Path = CHECKPOINT_DIR, device: str | torch.device = "cpu") -> Inputs:
    """The shipped models that ``recipe`` requires, loaded (strict, sha256 checked) onto ``device``, by name."""
    return {name: load_checkpoint(name, device, directory) for name in recipe.requires}


def measure(recipe: Recipe, model: torch.nn.Module, limit: int | None, inputs: Inputs | None = None) -> float:
    """The recipe's metric of ``model`` on the first ``limit`` test examples, in eval mode, without gradients."""
    model.eval()
    torch.manual_seed(recipe.seed)
    with torch.no_grad():
        return float(recipe.evaluate(model, limit, required_inputs(recipe) if inputs is None else inputs))


def judge(recipe: Recipe, model: torch.nn.Module, inputs: Inputs | None = None) -> dict | None:
    """What the model's samples show (the recipe's ``judge``, fixed seeds), or None if it has no judge."""
    if recipe.judge is None:
        return None
    model.eval()
    torch.manual_seed(recipe.seed)
    with torch.no_grad():
        return recipe.judge(model, required_inputs(recipe) if inputs is None else inputs)


def check_trains_on(names: list[str], device: torch.device) -> None:
    """Raise ``ValueError`` naming the recipes among ``names`` that cannot train on ``device``
    (all can on the CPU; elsewhere only those marked ``any_device``)."""
    if device.type == "cpu":
        return
    refused = [name for name in names if not get_recipe(name).any_device]
    if refused:
        ready = sorted(name for name, recipe in load_recipes().items() if recipe.any_device)
        raise ValueError(f"{refused} train on the CPU only (their recipes are not marked any_device); "
                         f"recipes that can train on {device.type}: {ready}")


def train_and_save(name: str, directory: Path = CHECKPOINT_DIR, progress: bool = True,
                   device: str | torch.device = "cpu") -> dict:
    """Train the recipe ``name`` with its full settings, measure it, and write ``.pt`` and ``.json``.

    ``device``: where to train (``"cuda"`` for a GPU; only recipes marked ``any_device``). The model
    is measured and judged on the CPU afterwards, as the tests re-measure it.
    """
    recipe = get_recipe(name)
    device = torch.device(device)
    check_trains_on([name], device)
    seed_everything(recipe.seed)
    model = recipe.build(recipe.model_config).to(device)
    began = time.perf_counter()
    history = recipe.train(model, recipe.training_config, required_inputs(recipe, directory, device), False)
    seconds = time.perf_counter() - began
    manifest = save_checkpoint(name, model.cpu(), history, seconds, directory, trained_on=device.type)
    if progress:
        print(f"{name}: {recipe.metric} {manifest['value']:.4f} in {seconds:.0f} s ({manifest['bytes'] / 1e6:.2f} MB)")
    return manifest


def save_checkpoint(name: str, model: torch.nn.Module, history: History | None, seconds: float,
                    directory: Path = CHECKPOINT_DIR, inputs: Inputs | None = None, trained_on: str = "cpu") -> dict:
    """Write a model trained by the recipe ``name`` (its ``.pt``) and its manifest: the configs, the
    training time and history given, the device type it trained on, the metric measured now, what
    its samples show, the sha256."""
    recipe = get_recipe(name)
    inputs = required_inputs(recipe, directory) if inputs is None else inputs
    model.eval()
    directory.mkdir(parents=True, exist_ok=True)
    weights, manifest_path = paths(name, directory)
    torch.save(model.state_dict(), weights)
    manifest = {
        "name": name,
        "model": f"{type(model).__module__}.{type(model).__qualname__}",
        "config": recipe.config,
        "requires": list(recipe.requires),
        "data": recipe.data,
        "command": recipe.command,
        "train_seconds": round(seconds, 1),
        "torch_threads": torch.get_num_threads(),
        "trained_on": trained_on,
        "metric": recipe.metric,
        "value": measure(recipe, model, None, inputs),
        "check_n": CHECK_N,
        "check_value": measure(recipe, model, CHECK_N, inputs),
        "parameters": sum(p.numel() for p in model.parameters()),
        "history": history.as_dict() if isinstance(history, History) else None,
        "bytes": weights.stat().st_size,
        "sha256": sha256_of(weights),
    }
    judged = judge(recipe, model, inputs)
    if judged is not None:
        manifest["samples"] = judged
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def remeasure(name: str, directory: Path = CHECKPOINT_DIR) -> dict:
    """Measure a shipped checkpoint again and update its manifest's metric and samples' judgement
    (for example after the test data or the judge changed); the weights are not touched."""
    recipe = get_recipe(name)
    model = load_checkpoint(name, directory=directory)
    inputs = required_inputs(recipe, directory)
    manifest = read_manifest(name, directory)
    manifest.update(value=measure(recipe, model, None, inputs), check_n=CHECK_N,
                    check_value=measure(recipe, model, CHECK_N, inputs))
    judged = judge(recipe, model, inputs)
    if judged is not None:
        manifest["samples"] = judged
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
    model = recipe.build(manifest["config"]["model"])
    state = torch.load(weights, map_location="cpu", weights_only=True)
    model.load_state_dict(state, strict=True)
    return model.to(device).eval()


@functools.cache
def digit_classifier() -> torch.nn.Module:
    """The shipped digit classifier that judges every image model's samples, loaded once."""
    return load_checkpoint("digit_classifier")


@dataclass
class Trained:
    """What :func:`load_or_train` gives a lecture: the model, its manifest entry and its history.

    ``manifest`` is the shipped entry, or after training now the same fields measured on this run
    (``"trained_now": True``); ``history`` is the run's :class:`History` (empty when the shipped
    checkpoint was saved without one).
    """

    model: torch.nn.Module
    manifest: dict
    history: History

    def summary(self) -> str:
        """One line: the metric, where the model comes from, how long it trained."""
        m = self.manifest
        origin = "trained now" if m.get("trained_now") else f"shipped checkpoint (`{m['command']}`)"
        return (f"{m['name']}: {m['metric']} {m['value']:.3f}; {origin}; trained in {m['train_seconds']:.0f} s, "
                f"{m['parameters']:,} parameters")


def load_or_train(name: str, train: bool = False, device: str | torch.device = "cpu") -> Trained:
    """The lectures' "load or train": the shipped model, or a freshly trained one when ``train``.

    With ``train=True`` the model is trained with the recipe's settings (a few steps in fast
    mode, then measured on the first ``CHECK_N`` test examples) and returned without overwriting
    the shipped checkpoint (``make checkpoints`` does that).
    """
    recipe = get_recipe(name)
    if not train:
        manifest = read_manifest(name)
        history = History.from_dict(manifest["history"]) if manifest.get("history") else History()
        return Trained(load_checkpoint(name, device), manifest, history)
    inputs = required_inputs(recipe)
    seed_everything(recipe.seed)
    model = recipe.build(recipe.model_config).to(device)
    fast = fast_mode()
    history = recipe.train(model, recipe.training_config, inputs, fast)
    if not isinstance(history, History):
        history = History()
    model.eval()
    manifest = {"name": name, "config": recipe.config, "requires": list(recipe.requires), "data": recipe.data,
                "command": recipe.command, "trained_now": True, "train_seconds": history.seconds,
                "metric": recipe.metric + (f" (first {CHECK_N})" if fast else ""),
                "value": measure(recipe, model, CHECK_N if fast else None, inputs),
                "parameters": sum(p.numel() for p in model.parameters())}
    return Trained(model, manifest, history)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m arflow.train.checkpoints", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="(re)train checkpoints with their full settings, in dependency order")
    train.add_argument("names", nargs="*", help="recipes to train (default: all)")
    train.add_argument("--device", default="cpu",
                       help="where to train: cpu (default) or cuda, for the recipes marked any_device")
    again = sub.add_parser("remeasure", help="re-measure shipped checkpoints and update their manifests")
    again.add_argument("names", nargs="*", help="checkpoints to re-measure (default: all)")
    sub.add_parser("list", help="list recipes and their manifest entries")
    args = parser.parse_args(argv)
    recipes = load_recipes()
    if args.command == "list":
        manifests = all_manifests()
        for name in training_order():
            entry = manifests.get(name)
            status = f"{entry['metric']} {entry['value']:.4f}, {entry['train_seconds']} s" if entry else "not trained"
            needs = f" (requires {', '.join(recipes[name].requires)})" if recipes[name].requires else ""
            print(f"{name:28s} {status}{needs}")
        return
    names = training_order(args.names)
    if args.command == "train":
        try:  # refuse before training anything: a device that is absent, a recipe that cannot use it
            device = pick_device(args.device)
            check_trains_on(names, device)
        except (RuntimeError, ValueError) as err:
            parser.error(str(err))
    for name in names:
        if args.command == "remeasure":
            entry = remeasure(name)
            print(f"{name}: {entry['metric']} {entry['value']:.4f} "
                  f"(first {entry['check_n']}: {entry['check_value']:.4f})"
                  + (f"; samples {entry['samples']}" if "samples" in entry else ""))
        else:
            train_and_save(name, device=device)


if __name__ == "__main__":
    main()
