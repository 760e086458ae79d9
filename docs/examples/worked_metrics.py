# %%
import torch
from synthsae.synthetic import (ExplainedVarianceCalculator, ShrinkageCalculator, compute_classification_metrics,
                                feature_uniqueness, mean_correlation_coefficient)

true_features = torch.eye(3)  # f0, f1, f2: the three axes
decoder = torch.tensor([[0.8, 0.6, 0.0],   # latent 0: mostly f0
                        [0.0, 1.0, 0.0],   # latent 1: exactly f1
                        [0.6, 0.8, 0.0]])  # latent 2: mostly f1 as well
print("|cos| (rows: latents, columns: true features)\n", decoder.abs())
print("MCC       ", mean_correlation_coefficient(decoder, true_features))
print("uniqueness", feature_uniqueness(decoder, true_features))

# %%
# four samples: which true features are active, and which latents fired (non-zero)
true_acts = torch.tensor([[1.0, 0.0, 0.0],
                          [0.0, 1.0, 0.0],
                          [1.0, 1.0, 0.0],
                          [0.0, 0.0, 1.0]])
latents = torch.tensor([[0.9, 0.0, 0.0],
                        [0.0, 0.7, 0.4],
                        [1.1, 0.8, 0.0],
                        [0.3, 0.0, 0.0]])
scores = compute_classification_metrics(latents, true_acts, decoder, true_features)
print(scores)

# %%
x = torch.tensor([[3.0, 0.0], [0.0, 4.0]])       # inputs
x_hat = torch.tensor([[2.0, 0.0], [0.0, 4.0]])   # reconstructions
ev, shrink = ExplainedVarianceCalculator(hidden_dim=2), ShrinkageCalculator()
ev.add_batch(x_hat, x)
shrink.add_batch(x_hat, x)
print("explained variance", ev.compute())
print("shrinkage         ", shrink.compute())
