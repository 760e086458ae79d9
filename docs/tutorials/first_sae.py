# %% [markdown]
# # Your first SAE against ground truth
#
# An SAE trained on a real model's activations can only be judged by proxies: how well it
# reconstructs, how sparse it is, whether its latents look interpretable. On synthetic data
# we *know* the features that made every activation, so we can ask directly: did the SAE
# find them? This tutorial trains two SAEs and reads the answer:
#
# 1. a toy world of 16 orthogonal features, where a good SAE recovers everything;
# 2. the `cpu_small` preset (512 features squeezed into 64 dimensions, with a hierarchy,
#    correlations and varied magnitudes), where it cannot, and the metrics say how far off
#    it is and why.
#
# It runs in about a minute on a laptop CPU.

# %%
import matplotlib.pyplot as plt
import torch

from synthsae import BatchTopKTrainingSAE, BatchTopKTrainingSAEConfig
from synthsae.synthetic import (
    ActivationGenerator,
    FeatureDictionary,
    SyntheticModel,
    eval_sae_on_synthetic_data,
    orthogonal_initializer,
    plot_sae_feature_similarity,
    train_toy_sae,
)
from synthsae.synthetic.presets import cpu_small

_ = torch.manual_seed(0)  # the SAEs' initialisation draws from the global RNG

# %% [markdown]
# ## A world of 16 features
#
# A synthetic world has two parts. The **feature dictionary** holds one unit direction per
# true feature in the hidden space; a hidden activation is the sum of the directions of the
# features that fire, each times its magnitude, plus a bias. The **activation generator**
# decides which features fire in each sample and how strongly. Here: 16 orthogonal
# directions in 32 dimensions, each firing independently a quarter of the time with
# magnitude 1.

# %%
feature_dict = FeatureDictionary(num_features=16, hidden_dim=32, initializer=orthogonal_initializer(), seed=0)
activation_gen = ActivationGenerator(num_features=16, firing_probabilities=torch.full((16,), 0.25), seed=0)

features = activation_gen.sample(4)  # [4, 16]: which features fired, and how strongly
hidden = feature_dict(features)  # [4, 32]: what the SAE gets to see
print("true features of 4 samples:\n", features)
print("hidden activations:", tuple(hidden.shape))

# %% [markdown]
# ## Train an SAE
#
# A BatchTopK SAE keeps the `k * batch_size` largest latent activations of each batch, so
# each sample has `k` active latents on average. Four features fire per sample on average
# (16 x 0.25), so `k = 4`, and 16 latents: one per true feature if all goes well.
# `train_toy_sae` runs Adam on fresh samples; one million samples take a few seconds.

# %%
sae = BatchTopKTrainingSAE(BatchTopKTrainingSAEConfig(d_in=32, d_sae=16, k=4))
train_toy_sae(sae, feature_dict, activation_gen, training_samples=1_000_000, lr=3e-3, show_progress=False)

result = eval_sae_on_synthetic_data(sae, feature_dict, activation_gen, num_samples=50_000)
print(f"MCC                {result.mcc:.3f}")
print(f"F1                 {result.classification.f1_score:.3f}")
print(f"uniqueness         {result.uniqueness:.3f}")
print(f"explained variance {result.explained_variance:.3f}")
print(f"L0                 {result.sae_l0:.2f} (true L0 {result.true_l0:.2f})")
print(f"dead latents       {result.dead_latents}")
print(f"shrinkage          {result.shrinkage:.3f}")

# %% [markdown]
# What the numbers say (the [Evaluating](../guides/evaluating.md) guide has the formulas):
#
# * **MCC** pairs each latent's decoder direction with one true feature (the best
#   one-to-one matching) and averages the absolute cosines: near 1, every true feature has
#   a latent pointing along it.
# * **F1** treats each latent as a detector of the feature it matches best: does the latent
#   fire exactly when the feature does?
# * **Uniqueness**: the fraction of latents whose best-matching feature is their own (no
#   two latents chasing the same feature).
# * **Explained variance** and **shrinkage** are about reconstruction: how much of the
#   activation's variance the SAE's output keeps, and how long the output is compared with
#   the input (below 1: the SAE shrinks).
#
# The picture below shows the cosine of every decoder row (latent) with every true
# feature, latents sorted by their best match: a clean diagonal is a recovered dictionary.

# %%
plot_sae_feature_similarity(sae, feature_dict, reorder_sae_latents=True, decoder_only=True, width=500, height=420)

# %% [markdown]
# ## A more realistic world: the `cpu_small` preset
#
# A `SyntheticModel` bundles a dictionary and a generator built from one declarative
# config. The `cpu_small` preset has 512 features in 64 dimensions (8x superposition, so
# directions must overlap), Zipfian firing rates (a few features are common, most are
# rare), a small hierarchy, low-rank correlations and per-feature magnitudes. The
# [synthetic world guide](../guides/synthetic-world.md) shows each of these knobs.

# %%
model = SyntheticModel(cpu_small()).set_sampling_seed(0)
print(model.cfg.to_yaml())
acts, true_features = model.sample_with_features(10_000)
print(f"hidden activations {tuple(acts.shape)}, true L0 {(true_features > 0).sum(1).float().mean():.2f}")

# %% [markdown]
# We train a BatchTopK SAE with 256 latents and `k = 8` on 1.2 million samples, and look at
# it at eight points during training (`n_snapshots` calls our function with the trainer),
# measuring the metrics on 10,000 samples each time.

# %%
sae = BatchTopKTrainingSAE(BatchTopKTrainingSAEConfig(d_in=64, d_sae=256, k=8))
curve = []


def snapshot(trainer):
    r = eval_sae_on_synthetic_data(trainer.sae, model.feature_dict, model.activation_generator, num_samples=10_000)
    curve.append((trainer.samples_seen, r.mcc, r.classification.f1_score, r.explained_variance, r.dead_latents))


train_toy_sae(sae, model.feature_dict, model.activation_generator, training_samples=1_200_000, batch_size=512,
              lr=3e-3, n_snapshots=8, snapshot_fn=snapshot, show_progress=False)
print("samples    MCC     F1  expl.var  dead")
for samples, mcc, f1, ev, dead in curve:
    print(f"{samples:7d}  {mcc:.3f}  {f1:.3f}     {ev:.3f}  {dead:4d}")

# %%
fig, ax = plt.subplots(figsize=(6, 3.2))
seen = [c[0] for c in curve]
for column, label in ((1, "MCC"), (2, "F1"), (3, "explained variance")):
    ax.plot(seen, [c[column] for c in curve], marker="o", label=label)
ax.axvline(1000 * 512, color="grey", ls=":", label="1000 steps: silent latents count as dead")
ax.set(xlabel="training samples", ylim=(0, 1), title="cpu_small, BatchTopK k=8, 256 latents")
ax.legend(fontsize=8)
fig

# %% [markdown]
# Many latents stop firing early on. A latent counts as *dead* once it has been silent for
# `dead_feature_window` steps (1,000 in `train_toy_sae`, here 512,000 samples); from then on
# the TopK family's auxiliary loss trains the dead latents to explain what the live ones
# miss, which brings many of them back and lifts MCC and F1. A longer run keeps improving
# (the `synthsae train` main job trains 1.5 million samples with batches of 512).

# %% [markdown]
# ## How far from the truth, and why
#
# A final evaluation on 50,000 fresh samples, next to a baseline: the same kind of SAE
# **before training**. Random directions in 64 dimensions also match *something*, so the
# MCC of a useless SAE is far from 0; judge a trained SAE by its distance from this line.

# %%
final = eval_sae_on_synthetic_data(sae, model.feature_dict, model.activation_generator, num_samples=50_000)
untrained = BatchTopKTrainingSAE(BatchTopKTrainingSAEConfig(d_in=64, d_sae=256, k=8))
baseline = eval_sae_on_synthetic_data(untrained, model.feature_dict, model.activation_generator, num_samples=50_000)
print("                 trained  untrained")
for name in ("mcc", "uniqueness", "explained_variance", "sae_l0", "dead_latents", "shrinkage"):
    print(f"{name:18s} {getattr(final, name):7.3g}  {getattr(baseline, name):9.3g}")
print(f"{'f1':18s} {final.classification.f1_score:7.3g}  {baseline.classification.f1_score:9.3g}")

# %% [markdown]
# The trained SAE is far better than chance but far from perfect. With 512 features and
# only 256 latents, half of the features cannot have a latent of their own (the MCC
# averages over the 256 matched pairs). Latents that fire for more than their feature
# lower precision, and so F1: the features overlap (8x superposition) and co-fire
# (hierarchy, correlations).
#
# Which of those features did it find? The frequent ones: the rate of a feature decides how
# much gradient signal it gets. Below, each true feature's best |cos| with any decoder row,
# against its firing probability.

# %%
w_dec = sae.W_dec.detach()
w_dec = w_dec / w_dec.norm(dim=1, keepdim=True)
best_cos = (w_dec @ model.feature_dict.feature_vectors.detach().T).abs().max(dim=0).values
probs = model.activation_generator.firing_probabilities
fig, ax = plt.subplots(figsize=(6, 3.2))
ax.scatter(probs, best_cos, s=6)
ax.set(xscale="log", xlabel="firing probability of the true feature", ylabel="best |cos| with a latent")
fig
# %%
recovered = best_cos > 0.9
print(f"{int(recovered.sum())} of 512 features have a latent with |cos| > 0.9; median firing "
      f"probability of those: {probs[recovered].median():.4f}, of the others: {probs[~recovered].median():.4f}")

# %% [markdown]
# ## Next
#
# * [Designing a hierarchical world and measuring absorption](hierarchy_absorption.md):
#   why some latents go silent exactly when they should fire.
# * [Comparing architectures at matched L0 with seeds](architectures_matched_l0.md).
# * [Training](../guides/training.md): the same thing with files, checkpoints and a
#   command line (`synthsae train`).
