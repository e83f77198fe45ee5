"""The analysis stage (after validation, before processing): what the models see in a
source, computed once per perceptual hash and reused by every size and re-upload."""
