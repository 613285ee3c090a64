"""Image attacks: batches of float tensors in [0, 1], integer labels, one attack per module."""
