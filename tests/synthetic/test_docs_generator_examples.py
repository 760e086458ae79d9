"""The user docs' activation-generator, correlation, hierarchy and custom-modifier samples,
verbatim apart from ``sae_lens`` -> ``synthsae``, plus checks of what they promise."""

import torch


def test_activation_generator_example():
    from synthsae.synthetic import ActivationGenerator

    firing_probs = torch.ones(16) * 0.25  # Each feature fires 25% of the time

    activation_gen = ActivationGenerator(
        num_features=16,
        firing_probabilities=firing_probs,
    )

    # Sample a batch of sparse feature activations
    feature_activations = activation_gen.sample(batch_size=1024)
    assert feature_activations.shape == (1024, 16)
    assert abs((feature_activations > 0).float().mean().item() - 0.25) < 0.03


def test_feature_correlations_example():
    from synthsae.synthetic import (
        ActivationGenerator,
        generate_random_correlation_matrix,
        zipfian_firing_probabilities,
    )

    firing_probs = zipfian_firing_probabilities(num_features=16, exponent=1.0, max_prob=0.5, min_prob=0.01)

    correlation_matrix = generate_random_correlation_matrix(
        num_features=16,
        uncorrelated_ratio=0.3,        # 30% of pairs have no correlation
        positive_ratio=0.7,            # 70% of correlations are positive
        min_correlation_strength=0.3,
        max_correlation_strength=0.8,
    )

    activation_gen = ActivationGenerator(
        num_features=16,
        firing_probabilities=firing_probs,
        correlation_matrix=correlation_matrix,
    )
    acts = activation_gen.sample(20_000)
    rates = (acts > 0).double().mean(0)
    p = firing_probs.double()
    assert ((rates - p).abs() <= 5 * torch.sqrt(p * (1 - p) / 20_000)).all()


def test_hierarchical_features_example():
    from synthsae.synthetic import ActivationGenerator, HierarchyNode, hierarchy_modifier

    # Feature 0 is parent of features 1 and 2
    # Feature 1 is parent of feature 3
    hierarchy = HierarchyNode.from_dict({
        0: {
            1: {3: {}},
            2: {},
        }
    })

    modifier = hierarchy_modifier(hierarchy)

    activation_gen = ActivationGenerator(
        num_features=4,
        firing_probabilities=torch.ones(4) * 0.5,
        modify_activations=modifier,
    )
    acts = activation_gen.sample(20_000) > 0
    assert not (acts[:, 1] & ~acts[:, 0]).any() and not (acts[:, 2] & ~acts[:, 0]).any()
    assert not (acts[:, 3] & ~acts[:, 1]).any()
    rates = acts.double().mean(0)
    assert torch.allclose(rates, torch.tensor([0.5, 0.25, 0.25, 0.125], dtype=torch.float64), atol=0.02)


def test_custom_activation_modifier_example():
    from synthsae.synthetic import ActivationGenerator, ActivationsModifier  # noqa: F401

    firing_probs = torch.ones(16) * 0.3

    def my_modifier(activations: torch.Tensor) -> torch.Tensor:
        # Example: zero out feature 0 when feature 1 is active
        result = activations.clone()
        mask = activations[:, 1] > 0
        result[mask, 0] = 0
        return result

    activation_gen = ActivationGenerator(
        num_features=16,
        firing_probabilities=firing_probs,
        modify_activations=my_modifier,
    )
    acts = activation_gen.sample(5000)
    assert not ((acts[:, 0] > 0) & (acts[:, 1] > 0)).any()


def test_hierarchy_config_example():
    from synthsae.synthetic import HierarchyConfig, generate_hierarchy

    hierarchy_cfg = HierarchyConfig(
        total_root_nodes=100,           # Number of root features
        branching_factor=10,            # Children per parent (or tuple for range)
        max_depth=2,                    # Maximum tree depth
        mutually_exclusive_portion=0.3, # Fraction of parents with ME children
        mutually_exclusive_min_depth=0, # Minimum depth for ME
        mutually_exclusive_max_depth=None, # Maximum depth for ME
        compensate_probabilities=False,  # Adjust probs for hierarchy effects
        scale_children_by_parent=False, # Scale child activations by parent activation / parent mean
    )
    h = generate_hierarchy(20_000, hierarchy_cfg, seed=0)
    assert len(h.roots) == 100 and len(h.feature_indices_used) == 100 + 1000 + 10_000
