"""Small render-only functions. No logic lives here: they read state vars and bind events."""
