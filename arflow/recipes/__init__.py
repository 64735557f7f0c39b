"""Checkpoint recipes, one module per lecture topic; each module calls ``arflow.checkpoints.register``."""
