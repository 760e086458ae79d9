# %%
import torch
from synthsae import BatchTopKTrainingSAE, BatchTopKTrainingSAEConfig
from synthsae.synthetic import (ActivationGenerator, FeatureDictionary, Hierarchy, HierarchyNode,
                                compute_feature_absorption, hierarchy_modifier, train_toy_sae)

torch.manual_seed(0)
# feature 0 is the parent of 1, 2 and 3, which are mutually exclusive
roots = [HierarchyNode(0, [HierarchyNode(1), HierarchyNode(2), HierarchyNode(3)], mutually_exclusive_children=True)]
probs = torch.tensor([0.25, 0.5, 0.5, 0.5] + [0.05] * 12)
feature_dict = FeatureDictionary(num_features=16, hidden_dim=32, seed=0)
activation_gen = ActivationGenerator(16, probs, modify_activations=hierarchy_modifier(roots), seed=0)
sae = BatchTopKTrainingSAE(BatchTopKTrainingSAEConfig(d_in=32, d_sae=16, k=3))
train_toy_sae(sae, feature_dict, activation_gen, training_samples=500_000, show_progress=False)
result = compute_feature_absorption(sae, feature_dict, activation_gen, Hierarchy(roots))
print({name: round(value, 3) for name, value in result.to_log_dict().items()})
print("children:", result.pair_child.tolist())
print("absorption rate per child:", [round(r, 3) for r in result.pair_absorption_rates().tolist()])
