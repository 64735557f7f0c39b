"""The registry of shipped checkpoints: an explicit list of recipes, one module per lecture topic.

Each recipe declares its model and training configs and the checkpoints it requires;
:func:`arflow.train.checkpoints.training_order` trains them in dependency order.
"""

from arflow.train.recipes import classifier, convolutional, flows, transformers, vqvae

RECIPES = [*classifier.RECIPES, *convolutional.RECIPES, *vqvae.RECIPES, *transformers.RECIPES, *flows.RECIPES]
