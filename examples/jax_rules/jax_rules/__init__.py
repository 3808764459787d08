"""A stand-in for a JAX user's model code: layers whose backward passes are hand-written rules."""
