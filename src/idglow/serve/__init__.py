"""``idglow serve``: the web app (Gradio) on a trained or shipped model: references from a gallery or uploaded, a prompt
written from the chosen people, the gate's schedule as sliders with a live lambda(sigma) plot, and outputs with every
face boxed and labelled with the reference it matches."""
