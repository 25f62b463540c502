"""How the assistant meets the world: channels, storage, backend, documents, CLI."""
