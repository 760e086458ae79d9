"""Large CPU batches are drawn as independent lanes: same seed, same batch, any thread count."""

import pytest
import torch

from synthsae.synthetic import ActivationGenerator, HierarchyNode, hierarchy_modifier
from synthsae.synthetic.correlation import generate_random_low_rank_correlation_matrix
from synthsae.synthetic.sampling_lanes import MIN_LANE_ROWS, lane_sizes, merge_rows
from synthsae.synthetic.sparse_batch import SparseBatch


def test_lane_sizes_depend_only_on_batch_size_and_device():
    cpu = torch.device("cpu")
    assert lane_sizes(2 * MIN_LANE_ROWS - 1, cpu) == [2 * MIN_LANE_ROWS - 1]
    assert lane_sizes(2 * MIN_LANE_ROWS, cpu) == [MIN_LANE_ROWS, MIN_LANE_ROWS]
    assert lane_sizes(3 * MIN_LANE_ROWS + 2, cpu) == [MIN_LANE_ROWS + 1, MIN_LANE_ROWS + 1, MIN_LANE_ROWS]
    assert len(lane_sizes(100 * MIN_LANE_ROWS, cpu)) == 8
    assert sum(lane_sizes(100 * MIN_LANE_ROWS + 7, cpu)) == 100 * MIN_LANE_ROWS + 7
    assert lane_sizes(10_000, torch.device("meta")) == [10_000]


def test_merge_rows_keeps_row_order():
    a = SparseBatch.from_dense(torch.tensor([[0.0, 1.0], [2.0, 0.0]]))
    b = SparseBatch.from_dense(torch.tensor([[3.0, 4.0]]))
    assert torch.equal(merge_rows([a, b]).to_dense(), torch.tensor([[0.0, 1.0], [2.0, 0.0], [3.0, 4.0]]))


def _generator(seed: int) -> ActivationGenerator:
    # correlation, hierarchy with mutual exclusion and rescaling: every sampler path
    roots = [HierarchyNode(0, [HierarchyNode(1), HierarchyNode(2, [HierarchyNode(4), HierarchyNode(5)],
                                                               mutually_exclusive_children=True)],
                           mutually_exclusive_children=True, scale_children_by_parent=True)]
    corr = generate_random_low_rank_correlation_matrix(40, rank=3, correlation_scale=0.2, seed=7)
    return ActivationGenerator(40, torch.linspace(0.5, 0.05, 40), 0.3, 2.0, modify_activations=hierarchy_modifier(roots),
                               correlation_matrix=corr, seed=seed)


def test_same_seed_same_batch_with_any_number_of_workers():
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        batches = []
        for workers in (1, 2, None):
            gen = _generator(3)
            gen.sampling_workers = workers
            batches.append(gen.sample_sparse(4 * MIN_LANE_ROWS))
            assert torch.get_num_threads() == 2  # the caller's setting survives
    finally:
        torch.set_num_threads(before)
    for other in batches[1:]:
        assert torch.equal(other.offsets, batches[0].offsets)
        assert torch.equal(other.indices, batches[0].indices)
        assert torch.equal(other.values, batches[0].values)


def test_lanes_are_independent_draws_with_the_right_rates():
    gen = ActivationGenerator(64, 0.3, seed=5)
    n = 4 * MIN_LANE_ROWS
    acts = torch.cat([gen.sample(n) for _ in range(8)]) > 0
    lanes = acts.view(8, 4, MIN_LANE_ROWS, 64).transpose(0, 1).reshape(4, -1, 64).double()
    # each lane: 4,096 rows x 64 features at p = 0.3; the rate's sd is sqrt(0.21 / 262,144)
    # ~ 9e-4, so 5e-3 is over 5 sd
    for lane in lanes:
        assert float(lane.mean()) == pytest.approx(0.3, abs=5e-3)
    # lanes come from different seeds: their rows do not repeat each other, and the
    # correlation of the same position in two lanes is ~N(0, 1 / sqrt(262,144)) = 0.002
    assert not torch.equal(lanes[0], lanes[1])
    corr = torch.corrcoef(torch.stack([lanes[0].flatten(), lanes[1].flatten()]))[0, 1]
    assert abs(float(corr)) < 0.01


def test_sampling_works_in_a_forked_child():
    import multiprocessing

    gen = ActivationGenerator(32, 0.2, seed=9)
    gen.sample_sparse(4 * MIN_LANE_ROWS)  # the parent's worker pool exists now
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(1) as pool:
        nnz = pool.apply_async(_child_draw).get(timeout=120)
    assert nnz > 0


def _child_draw() -> int:
    torch.set_num_threads(2)
    gen = ActivationGenerator(32, 0.2, seed=10)
    return gen.sample_sparse(4 * MIN_LANE_ROWS).nnz


def test_mapped_lanes_give_the_batch_and_its_map_and_run_in_the_lanes():
    """sample_sparse_and_map: same batch as sample_sparse (same seed), the map of it, and, for
    a batch drawn in lanes, the map runs per lane at the lanes' single intra-op thread (no
    multi-threaded step after the lanes)."""
    weight = torch.randn(40, 6)
    threads_seen = []

    def row_map(batch: SparseBatch) -> torch.Tensor:
        threads_seen.append(torch.get_num_threads())
        return batch.to_dense() @ weight

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        for rows in (2 * MIN_LANE_ROWS + 3, MIN_LANE_ROWS):  # two lanes, then one
            threads_seen.clear()
            expected = _generator(4).sample_sparse(rows)
            batch, mapped = _generator(4).sample_sparse_and_map(rows, row_map)
            assert torch.equal(batch.offsets, expected.offsets) and torch.equal(batch.indices, expected.indices)
            assert torch.equal(batch.values, expected.values)
            torch.testing.assert_close(mapped, expected.to_dense() @ weight)
            assert threads_seen == ([1, 1] if rows > MIN_LANE_ROWS else [2])
            assert torch.get_num_threads() == 2  # the caller's setting survives
        # one thread: the lanes run one after the other, and the batch is mapped whole (one call)
        torch.set_num_threads(1)
        threads_seen.clear()
        rows = 2 * MIN_LANE_ROWS + 3
        batch, mapped = _generator(4).sample_sparse_and_map(rows, row_map)
        assert threads_seen == [1] and mapped.shape == (rows, 6)
        torch.testing.assert_close(mapped, _generator(4).sample_sparse(rows).to_dense() @ weight)
    finally:
        torch.set_num_threads(before)
