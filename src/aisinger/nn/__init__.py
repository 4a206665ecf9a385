"""Pure model code: ``torch.nn`` modules only.  Nothing here imports a pipeline stage."""
