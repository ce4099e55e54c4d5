"""Generation: :func:`idglow.generate.sampling.generate_images` (the one way anything samples),
:class:`idglow.generate.pipeline.IdGlowPipeline`, and images with JSON sidecars from files or benchmarks."""
