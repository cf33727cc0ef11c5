"""Document analysis: an uploaded document checked against a domain's checklist of clause
categories (found or not, the quoted span and where it is, a plain-language reading)."""
from .checklist import Category, Checklist

__all__ = ["Category", "Checklist"]
