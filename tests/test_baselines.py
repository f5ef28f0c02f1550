"""Graph baselines: layers against loop references, parameter counts, shapes, training, rebuild."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from mlpgraph.errors import UserInputError
from mlpgraph.layouts import SkeletonLayout, get_layout
from mlpgraph.models.baselines import (
    HighOrderGCN,
    ModulatedGCN,
    SemGCN,
    WeightUnsharingGCN,
    modulated_base_adjacency,
    semgcn_groups,
)
from mlpgraph.models.graph_layers import (
    DecouplePreAggGraphConv,
    GraphNonLocal,
    HGraphConv,
    ModulatedGraphConv,
    SemGraphConv,
    group_index,
    walk_support_masks,
)

# A 5-joint chain a-b-c-d-e, for hand-checkable graphs.
CHAIN = SkeletonLayout(name="chain5", joint_names=("a", "b", "c", "d", "e"), parents=(-1, 0, 1, 2, 3))

MODELS = [
    (SemGCN, {}),
    (SemGCN, {"non_local": True}),
    (HighOrderGCN, {}),
    (WeightUnsharingGCN, {}),
    (ModulatedGCN, {}),
]
MODEL_IDS = ["semgcn", "semgcn_nonlocal", "hgcn", "weight_unsharing", "modulated"]

# (published figure, exact count at J=16, exact count at J=17)
PARAM_COUNTS = {
    "semgcn": (0.267e6, 267_343, 267_373),
    "semgcn_nonlocal": (0.43e6, 434_703, 434_733),
    "hgcn": (1.20e6, 1_197_055, 1_197_195),
    "weight_unsharing": (4.218e6, 4_218_243, 4_481_667),
    "modulated": (0.288e6, 287_923, 289_408),
}


def _count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _row_softmax_on_mask(mask: np.ndarray, logits: dict[tuple[int, int], float]) -> np.ndarray:
    """Loop reference: softmax over each row restricted to the mask's entries."""
    n = mask.shape[0]
    out = np.zeros((n, n))
    for i in range(n):
        cols = [j for j in range(n) if mask[i, j]]
        denom = sum(math.exp(logits[(i, j)]) for j in cols)
        for j in cols:
            out[i, j] = math.exp(logits[(i, j)]) / denom
    return out


def _decoupled_reference(a: np.ndarray, h0: np.ndarray, h1: np.ndarray, b: np.ndarray) -> np.ndarray:
    """out_i = a_ii h0_i + sum_{j != i} a_ij h1_j + b, with loops; h0, h1 (B, J, C)."""
    out = np.zeros_like(h0)
    n = a.shape[0]
    for i in range(n):
        out[:, i] = a[i, i] * h0[:, i] + b
        for j in range(n):
            if j != i:
                out[:, i] += a[i, j] * h1[:, j]
    return out


# ---------------------------------------------------------------- parameter counts


@pytest.mark.parametrize(("cls", "kwargs"), MODELS, ids=MODEL_IDS)
def test_parameter_counts(cls: type, kwargs: dict, request: pytest.FixtureRequest) -> None:
    published, exact16, exact17 = PARAM_COUNTS[request.node.callspec.id]
    n16 = _count(cls(layout="h36m16", **kwargs))
    assert abs(n16 - published) / published < 0.02
    assert n16 == exact16
    assert _count(cls(layout="h36m17", **kwargs)) == exact17


# ---------------------------------------------------------------- layers


def test_semgraphconv_matches_hand_computation() -> None:
    torch.manual_seed(0)
    chain3 = SkeletonLayout(name="chain3", joint_names=("a", "b", "c"), parents=(-1, 0, 1))
    adj = chain3.adjacency(self_loops=True)
    mask = adj > 0
    layer = SemGraphConv(2, 4, adj)
    assert layer.e.numel() == 3 + 2 * 2  # J self-loops + both directions of each bone
    with torch.no_grad():
        layer.e.copy_(torch.linspace(-1.0, 1.5, layer.e.numel()).view(1, -1))
    rows, cols = np.nonzero(mask)  # row-major order of the mask
    logits = {(int(i), int(j)): float(v) for i, j, v in zip(rows, cols, layer.e.view(-1).tolist(), strict=True)}
    a = _row_softmax_on_mask(mask, logits)
    np.testing.assert_allclose(layer.affinity().detach().numpy(), a, rtol=1e-6, atol=1e-7)

    x = torch.randn(2, 3, 2)
    w = layer.W.detach().numpy()
    xn = x.numpy()
    expected = _decoupled_reference(a, xn @ w[0], xn @ w[1], layer.bias.detach().numpy())
    np.testing.assert_allclose(layer(x).detach().numpy(), expected, rtol=1e-5, atol=1e-5)


def test_semgraphconv_initial_affinity_is_uniform_over_neighbourhood() -> None:
    lay = get_layout("h36m16")
    a = SemGraphConv(3, 3, lay.adjacency(self_loops=True)).affinity().detach().numpy()
    degree_plus_one = lay.adjacency(self_loops=True).sum(axis=1)
    expected = lay.adjacency(self_loops=True) / degree_plus_one[:, None]
    np.testing.assert_allclose(a, expected, rtol=1e-6, atol=1e-7)


def _chain_distances(n: int) -> np.ndarray:
    idx = np.arange(n)
    return np.abs(idx[:, None] - idx[None, :])


def test_hgcn_walk_support_masks_on_chain() -> None:
    masks = walk_support_masks(CHAIN.row_normalised_adjacency(self_loops=False)).numpy()
    dist = _chain_distances(5)
    np.testing.assert_array_equal(masks[0], dist == 0)
    np.testing.assert_array_equal(masks[1], dist == 1)
    np.testing.assert_array_equal(masks[2], (dist == 0) | (dist == 2))
    np.testing.assert_array_equal(masks[3], (dist == 1) | (dist == 3))


@pytest.mark.parametrize("aggregate", ["concat", "sum"])
def test_hgraphconv_matches_loop_reference(aggregate: str) -> None:
    torch.manual_seed(1)
    layer = HGraphConv(3, 2, CHAIN.row_normalised_adjacency(self_loops=False), aggregate=aggregate)
    with torch.no_grad():
        for k in range(4):
            getattr(layer, f"e_{k}").uniform_(-1.0, 1.0)
    masks = walk_support_masks(CHAIN.row_normalised_adjacency(self_loops=False)).numpy()
    x = torch.randn(2, 5, 3)
    xn, w = x.numpy(), layer.W.detach().numpy()
    outs = []
    for k in range(4):
        rows, cols = np.nonzero(masks[k])
        e = getattr(layer, f"e_{k}").detach().view(-1).tolist()
        logits = {(int(i), int(j)): v for i, j, v in zip(rows, cols, e, strict=True)}
        a = _row_softmax_on_mask(masks[k], logits)
        h = xn @ w[k]
        out_k = np.zeros_like(h)
        for i in range(5):
            for j in range(5):
                out_k[:, i] += a[i, j] * h[:, j]
        outs.append(out_k)
    if aggregate == "concat":
        expected = np.concatenate(outs, axis=-1) + layer.bias.detach().numpy()
        assert not hasattr(layer, "bias_2")
    else:
        expected = sum(outs) + layer.bias_2.detach().numpy()
        assert not hasattr(layer, "bias")
    np.testing.assert_allclose(layer(x).detach().numpy(), expected, rtol=1e-5, atol=1e-5)


def test_modulated_graphconv_with_known_m_and_q() -> None:
    torch.manual_seed(2)
    base = modulated_base_adjacency(CHAIN)
    np.testing.assert_allclose(np.diag(base), 1.0)
    assert base[1, 0] == pytest.approx(0.5) and base[0, 1] == pytest.approx(1.0)
    layer = ModulatedGraphConv(3, 4, base)
    np.testing.assert_allclose(layer.Q.detach().numpy(), 1e-6)
    np.testing.assert_allclose(layer.M.detach().numpy(), 1.0)
    q = np.arange(25, dtype=np.float32).reshape(5, 5) / 100.0  # not symmetric on purpose
    m = np.linspace(0.5, 2.0, 20, dtype=np.float32).reshape(5, 4)
    with torch.no_grad():
        layer.Q.copy_(torch.from_numpy(q))
        layer.M.copy_(torch.from_numpy(m))
    a = np.zeros((5, 5))
    for i in range(5):
        for j in range(5):
            a[i, j] = (base[i, j] + q[i, j] + base[j, i] + q[j, i]) / 2
    x = torch.randn(2, 5, 3)
    xn, w = x.numpy(), layer.W.detach().numpy()
    expected = _decoupled_reference(a, m * (xn @ w[0]), m * (xn @ w[1]), layer.bias.detach().numpy())
    np.testing.assert_allclose(layer(x).detach().numpy(), expected, rtol=1e-5, atol=1e-5)


def test_dc_preagg_uses_weights_of_the_sending_node() -> None:
    torch.manual_seed(3)
    adj = CHAIN.row_normalised_adjacency(self_loops=True)
    layer = DecouplePreAggGraphConv(3, 2, adj)
    assert tuple(layer.W.shape) == (2, 5, 3, 2)
    x = torch.randn(2, 5, 3)
    xn, w, b = x.numpy(), layer.W.detach().numpy(), layer.bias.detach().numpy()
    expected = np.zeros((2, 5, 2))
    for i in range(5):
        expected[:, i] = adj[i, i] * (xn[:, i] @ w[0, i]) + b
        for j in range(5):
            if j != i:
                expected[:, i] += adj[i, j] * (xn[:, j] @ w[1, j])
    np.testing.assert_allclose(layer(x).detach().numpy(), expected, rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------- non-local block


def test_semgcn_pairs_by_name_match_the_original_indices() -> None:
    lay16 = get_layout("h36m16")
    original = [[2, 3], [5, 6], [1, 4], [0, 7], [8, 9], [14, 15], [11, 12], [10, 13]]
    assert group_index(lay16, semgcn_groups(lay16)).tolist() == original
    lay17 = get_layout("h36m17")
    groups17 = semgcn_groups(lay17)
    assert ("thorax", "neck", "head") in groups17 and len(groups17) == 8
    idx17 = group_index(lay17, groups17)
    assert sorted(set(idx17.view(-1).tolist())) == list(range(17))
    with pytest.raises(UserInputError, match="non_local"):
        SemGCN(layout="h36m32", non_local=True)


def test_nonlocal_block_starts_as_identity() -> None:
    lay = get_layout("h36m16")
    block = GraphNonLocal(8, group_index(lay, semgcn_groups(lay)))
    assert torch.count_nonzero(block.bn.weight) == 0 and torch.count_nonzero(block.bn.bias) == 0
    x = torch.randn(4, 16, 8)
    torch.testing.assert_close(block(x), x)
    block.eval()
    torch.testing.assert_close(block(x), x)


def test_nonlocal_block_matches_loop_reference() -> None:
    torch.manual_seed(4)
    lay = get_layout("h36m17")  # includes the unequal (thorax, neck, head) group
    groups = [[lay.index(n) for n in g] for g in semgcn_groups(lay)]
    block = GraphNonLocal(6, group_index(lay, semgcn_groups(lay))).eval()
    with torch.no_grad():
        block.bn.weight.uniform_(0.5, 1.5)
        block.bn.bias.uniform_(-0.5, 0.5)
        block.bn.running_mean.uniform_(-0.1, 0.1)
        block.bn.running_var.uniform_(0.5, 2.0)
    x = torch.randn(2, 17, 6)
    with torch.no_grad():
        theta, phi, g = block.theta(x), block.phi(x), block.g(x)
        w = block.concat_project.weight.view(-1)
        expected = torch.zeros_like(x)
        for b in range(2):
            pooled_phi = [phi[b, grp].max(dim=0).values for grp in groups]
            pooled_g = [g[b, grp].max(dim=0).values for grp in groups]
            for i in range(17):
                y = torch.zeros(3)
                for pk, gk in zip(pooled_phi, pooled_g, strict=True):
                    f = torch.relu(w @ torch.cat([theta[b, i], pk]))
                    y += f * gk / len(groups)
                z = block.W_z(y)
                bn = block.bn
                z = (z - bn.running_mean) / torch.sqrt(bn.running_var + bn.eps) * bn.weight + bn.bias
                expected[b, i] = x[b, i] + z
        torch.testing.assert_close(block(x), expected, rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------- networks


@pytest.mark.parametrize("layout", ["h36m16", "h36m17"])
@pytest.mark.parametrize(("cls", "kwargs"), MODELS, ids=MODEL_IDS)
def test_shapes_and_single_frame_only(cls: type, kwargs: dict, layout: str) -> None:
    model = cls(layout=layout, hid_dim=8, num_blocks=1, **kwargs)
    j = get_layout(layout).num_joints
    assert model(torch.randn(3, 1, j, 2)).shape == (3, j, 3)
    model.eval()
    assert model(torch.randn(1, 1, j, 2)).shape == (1, j, 3)
    with pytest.raises(ValueError, match=rf"\(N, 1, {j}, 2\)"):
        model(torch.randn(3, 3, j, 2))
    with pytest.raises(ValueError, match=rf"\(N, 1, {j}, 2\)"):
        model(torch.randn(3, 1, j + 1, 2))


def test_hgcn_hidden_width_is_four_times_hid() -> None:
    model = HighOrderGCN()
    assert model.layers[0].bn.num_features == 384
    assert model.output.aggregate == "sum"


@pytest.mark.parametrize(("cls", "kwargs"), MODELS, ids=MODEL_IDS)
def test_loss_falls_with_adam(cls: type, kwargs: dict) -> None:
    torch.manual_seed(5)
    model = cls(layout="h36m16", num_blocks=1, **kwargs)
    x = torch.randn(16, 1, 16, 2)
    target = torch.randn(16, 16, 3) * 0.1
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(15):
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x), target)
        loss.backward()
        assert all(p.grad is not None for p in model.parameters())
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.8 * losses[0]


@pytest.mark.parametrize(("cls", "kwargs"), MODELS, ids=MODEL_IDS)
def test_config_rebuilds_model(cls: type, kwargs: dict) -> None:
    model = cls(layout="h36m17", hid_dim=16, num_blocks=2, dropout=0.1, **kwargs)
    config = json.loads(json.dumps(model.config))
    assert config["layout"] == "h36m17"
    rebuilt = type(model)(**config)
    assert rebuilt.config == model.config
    rebuilt.load_state_dict(model.state_dict())
    model.eval()
    rebuilt.eval()
    x = torch.randn(2, 1, 17, 2)
    torch.testing.assert_close(rebuilt(x), model(x))
