# %%
import torch
from synthsae import BatchTopKTrainingSAE, BatchTopKTrainingSAEConfig
from synthsae.synthetic import SyntheticActivationIterator, SyntheticModel, eval_sae_on_synthetic_data
from synthsae.synthetic.presets import cpu_small
from synthsae.training.trainer import Trainer, TrainerConfig

model = SyntheticModel(cpu_small()).set_sampling_seed(0)
torch.manual_seed(0)
saes = [BatchTopKTrainingSAE(BatchTopKTrainingSAEConfig(d_in=model.hidden_dim, d_sae=256, k=k))
        for k in (4, 8, 16)]
data = SyntheticActivationIterator(model.feature_dict, model.activation_generator, batch_size=1024)
Trainer(saes, data, TrainerConfig(total_training_samples=300_000, lr=3e-3, show_progress=False)).fit()
for sae in saes:
    r = eval_sae_on_synthetic_data(sae, model.feature_dict, model.activation_generator, num_samples=20_000)
    print(f"k={sae.cfg.k:g}: MCC {r.mcc:.3f}, L0 {r.sae_l0:.1f}, explained variance {r.explained_variance:.3f}")
