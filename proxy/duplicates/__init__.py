"""Near-duplicate sources: 64-bit perceptual hashes within a small Hamming distance."""
