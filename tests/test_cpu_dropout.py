"""The cheaper CPU dropout mask: rate, scale, independence, reproducibility, gradients."""

import pytest
import torch
from torch.nn import functional as fn

from mlpgraph.models.cpu_dropout import LANES, dropout, keep_mask


@pytest.mark.parametrize("p", [0.1, 0.2, 0.5, 0.9])
def test_drop_rate_matches_p(p: float):
    torch.manual_seed(0)
    keep = keep_mask(torch.Size([1_000_003]), p, torch.device("cpu"))
    expected = 1 - round(p * LANES) / LANES
    assert abs(expected - (1 - p)) <= 2**-17
    # 1e6 Bernoulli draws: standard error below 5e-4; 6 sigma
    assert abs(keep.double().mean().item() - expected) < 6 * (expected * (1 - expected) / keep.numel()) ** 0.5


def test_lanes_are_independent_and_unbiased():
    torch.manual_seed(1)
    keep = keep_mask(torch.Size([400_000, 4]), 0.5, torch.device("cpu")).double()
    # each of the four lanes of a 64-bit draw keeps at the same rate (a sign-bit lane would not)
    torch.testing.assert_close(keep.mean(dim=0), torch.full((4,), 0.5, dtype=torch.float64), atol=5e-3, rtol=0)
    # neighbours (lanes of one draw) are uncorrelated
    corr = torch.corrcoef(keep.T)
    assert (corr - torch.eye(4, dtype=torch.float64)).abs().max().item() < 0.01


def test_kept_values_scaled_dropped_zero_and_gradient_is_the_mask():
    torch.manual_seed(2)
    x = (torch.rand(64, 33) + 0.5).requires_grad_()  # no zeros in the input
    out = dropout(x, 0.2, training=True)
    kept = out != 0
    assert 0 < kept.sum() < kept.numel()
    torch.testing.assert_close(out[kept], x[kept] / 0.8)
    out.sum().backward()
    torch.testing.assert_close(x.grad, kept.float() / 0.8)


def test_seeded_runs_repeat_and_eval_is_identity():
    x = torch.randn(1000)
    torch.manual_seed(3)
    a = dropout(x, 0.3, training=True)
    torch.manual_seed(3)
    b = dropout(x, 0.3, training=True)
    assert torch.equal(a, b)
    assert dropout(x, 0.3, training=False) is x
    assert dropout(x, 0.0, training=True) is x
    assert torch.equal(dropout(x, 1.0, training=True), fn.dropout(x, 1.0, training=True))
