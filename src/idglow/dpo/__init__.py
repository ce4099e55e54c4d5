"""Stage 2: Flow-DPO of a LoRA policy on an SFT model, with the same weights (adapter disabled) as reference."""
