"""The Gradio chat UI factory and the server around it."""
from .chat_app import build_app, principal_of
from .server import create_server, serve

__all__ = ["build_app", "create_server", "principal_of", "serve"]
