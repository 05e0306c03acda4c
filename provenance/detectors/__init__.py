"""Fingerprinting detectors: exact and perceptual hashes now, embedders later."""
