"""Preference pairs for stage-2 DPO: candidates sampled from an SFT model, scored per subject, best vs worst."""
