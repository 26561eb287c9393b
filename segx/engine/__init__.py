"""The training engine behind `segx.train.train`: distributed setup, data loaders, optimizer and LR schedule,
the epoch loop and validation, resumable state, and the run folder's reports."""
