"""Metrics of the course, each on one batched evaluation helper (:mod:`~arflow.evaluate.batched`)."""
