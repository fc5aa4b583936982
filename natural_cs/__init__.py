"""Natural-image block compressive sensing: data sets and the CS-NI evaluation protocol."""
