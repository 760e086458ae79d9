"""The training loop shared by train_toy_sae, the runner and sweeps: optimizer, schedules, firing statistics, checkpoints, logging."""
