"""Face datasets and pairs (no torch): what training and evaluation both read."""
