"""The probes' plain Adam (``arflow.checks.steps``): the arithmetic of ``torch.optim.Adam``, and
no ``torch._dynamo`` import in the box (what it is there to avoid)."""

from __future__ import annotations

import subprocess
import sys

import torch

from arflow.checks.steps import adam_steps


def _pair(seed: int) -> tuple[torch.nn.Module, torch.nn.Module]:
    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 3, padding=1), torch.nn.Tanh(), torch.nn.Conv2d(3, 1, 1))
    twin = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 3, padding=1), torch.nn.Tanh(), torch.nn.Conv2d(3, 1, 1))
    twin.load_state_dict(net.state_dict())
    return net, twin


def test_adam_steps_match_torch_optim():
    x, g = torch.randn(4, 2, 5, 6), torch.randn(4, 1, 5, 6)
    for lr, steps in ((0.5, 3), (1e-3, 7)):
        net, twin = _pair(steps)
        adam_steps(net.parameters(), lambda net=net: (net(x) * g).sum(), steps, lr)
        optimizer = torch.optim.Adam(twin.parameters(), lr=lr)
        for _ in range(steps):
            optimizer.zero_grad()
            (twin(x) * g).sum().backward()
            optimizer.step()
        for mine, theirs in zip(net.parameters(), twin.parameters()):
            torch.testing.assert_close(mine, theirs, rtol=1e-5, atol=1e-6)
        moved = [float((p - q).abs().max()) for p, q in zip(net.parameters(), _pair(steps)[0].parameters())]
        assert min(moved) > 0.1 * lr  # every parameter moved: the steps were taken


def test_unused_parameters_are_left_alone():
    used, unused = torch.nn.Parameter(torch.ones(3)), torch.nn.Parameter(torch.ones(2))
    adam_steps([used, unused], lambda: (used * torch.arange(3.0)).sum(), 2, 0.1)
    assert torch.equal(unused.detach(), torch.ones(2))
    assert used[0] == 1 and used[2] < 1  # a zero gradient leaves a weight; a positive one lowers it


def test_no_dynamo_import():
    code = ("import sys, torch\nfrom arflow.checks.steps import adam_steps\n"
            "p = torch.nn.Parameter(torch.ones(3))\nadam_steps([p], lambda: (p * p).sum(), 3, 0.5)\n"
            "assert 'torch._dynamo' not in sys.modules, 'torch._dynamo was imported'\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
