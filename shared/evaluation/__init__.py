"""Evaluation: scripted conversations (``conversations``) and benchmark runs comparing the
base model, RAG, fine-tuning and the hybrid (``bench``)."""
