"""Names and keyword arguments that reference code uses, as the reference spells them."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pytest
import torch

from synthsae.synthetic import (
    FIRING_PROB_REGISTRY,
    MAGNITUDE_REGISTRY,
    ConstantFiringProbabilityConfig,
    ConstantMagnitudeConfig,
    DeadLatentsCalculator,
    HierarchyNode,
    L0Calculator,
    ZipfianFiringProbabilityConfig,
    cosine_similarities,
    register_firing_probability,
    register_magnitude,
)


def test_cosine_similarities_of_rows() -> None:
    a = torch.tensor([[3.0, 4.0], [0.0, 2.0], [0.0, 0.0]])
    b = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    expected = torch.tensor([[0.6, 7 / (5 * math.sqrt(2))], [0.0, 1 / math.sqrt(2)], [0.0, 0.0]])
    torch.testing.assert_close(cosine_similarities(a, b), expected)
    torch.testing.assert_close(cosine_similarities(b), torch.tensor([[1.0, 1 / math.sqrt(2)], [1 / math.sqrt(2), 1.0]]))
    with pytest.raises(ValueError, match="same vector dimension"):
        cosine_similarities(a, torch.ones(2, 3))


def test_keyword_arguments_named_as_in_the_reference() -> None:
    @dataclass
    class HalfProbability(ConstantFiringProbabilityConfig):
        @classmethod
        def generator_name(cls) -> str:
            return "half_for_signature_test"

    @dataclass
    class UnitMagnitude(ConstantMagnitudeConfig):
        @classmethod
        def generator_name(cls) -> str:
            return "unit_for_signature_test"

    try:
        register_firing_probability(name="half_for_signature_test", config_class=HalfProbability)
        register_magnitude(name="unit_for_signature_test", config_class=UnitMagnitude)
        assert FIRING_PROB_REGISTRY["half_for_signature_test"] is HalfProbability
    finally:
        FIRING_PROB_REGISTRY.pop("half_for_signature_test", None)
        MAGNITUDE_REGISTRY.pop("unit_for_signature_test", None)
    cfg = ZipfianFiringProbabilityConfig()
    assert ZipfianFiringProbabilityConfig.from_dict(d=cfg.to_dict()) == cfg
    assert HierarchyNode.from_dict(tree_dict={"feature_index": 0}).feature_index == 0
    l0 = L0Calculator()
    l0.add_batch(activations=torch.tensor([[1.0, 0.0, -2.0]]))
    assert l0.compute() == 2.0
    dead = DeadLatentsCalculator(3)
    dead.add_batch(sae_latents=torch.tensor([[1.0, 0.0, -2.0]]))
    assert dead.compute() == 1
