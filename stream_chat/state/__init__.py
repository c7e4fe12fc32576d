"""Per-client state. Holds only facts about one browser tab; everything else is in contexts."""
