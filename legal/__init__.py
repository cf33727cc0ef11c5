"""Legal analyzer (hybrid): a legal-terminology adapter plus retrieval with citations."""
