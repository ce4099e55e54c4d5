"""What the transformer is conditioned on and models: prompt encoders (MiniLM; FLUX's CLIP + T5), the image
representation (pixel patches or VAE latents), FLUX folders, and disk caches of both."""
