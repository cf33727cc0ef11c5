"""Tools: figures computed by code (SQL/Python on real tables) that the chat engine calls
through a deterministic intent router; the model only phrases their result."""
from .base import Tool, ToolCall, ToolParts, ToolResult
from .router import ToolBox

__all__ = ["Tool", "ToolBox", "ToolCall", "ToolParts", "ToolResult"]
