"""Stage 1, SFT: the identity branch (and LoRA) trained with flow matching and the identity loss; its binding
diagnostic."""
