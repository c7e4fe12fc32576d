"""Pages: each composes components and names its on_load handlers."""
