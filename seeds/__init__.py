"""Demo data: the original app's rooms, ten users and a few hundred messages."""
