"""The grounded chat engine and its records."""
from .engine import ChatEngine
from .recorder import Recorder, UnknownConversation
from ..types import ChatEvent, Citation, Passage, Turn

__all__ = ["ChatEngine", "ChatEvent", "Citation", "Passage", "Recorder", "Turn", "UnknownConversation"]
