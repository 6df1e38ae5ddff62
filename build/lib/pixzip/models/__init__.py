"""Shipped model weights (installed from the repository's models/ folder); see manifest.json."""
