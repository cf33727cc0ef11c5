"""The shared core: settings, database, vector store, ingestion (and later generation,
training and the chat UI factory). Domains and assistants depend on it, never the reverse."""
