# %%
import torch
from synthsae import StandardTrainingSAE, StandardTrainingSAEConfig
from synthsae.synthetic import (ActivationGenerator, FeatureDictionary,
                                eval_sae_on_synthetic_data, train_toy_sae)

torch.manual_seed(0)  # the SAE's initialisation
feature_dict = FeatureDictionary(num_features=16, hidden_dim=32, seed=0)
activation_gen = ActivationGenerator(num_features=16, firing_probabilities=torch.full((16,), 0.25), seed=0)
sae = StandardTrainingSAE(StandardTrainingSAEConfig(d_in=32, d_sae=16, l1_coefficient=0.1))
train_toy_sae(sae, feature_dict, activation_gen, training_samples=1_000_000, lr=3e-3)
print(eval_sae_on_synthetic_data(sae, feature_dict, activation_gen).mcc)
