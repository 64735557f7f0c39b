"""Shared test settings: one torch thread (the machine has 2 cores, and notebooks run beside tests)."""

import os

import matplotlib
import pytest
import torch

matplotlib.use("Agg")
os.environ.setdefault("ARFLOW_FAST", "1")
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    import matplotlib.pyplot as plt

    plt.close("all")
