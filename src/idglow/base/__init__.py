"""The base text-to-image model of the cast (the stand-in for FLUX.1's pretraining) and its small autoencoder."""
