"""StreamChat: real-time rooms and a streaming AI assistant on Reflex."""
