"""Training: the loop with callbacks (:mod:`~arflow.train.loop`, :mod:`~arflow.train.callbacks`),
learning-rate schedules, the shipped checkpoints and the recipes that train them."""
