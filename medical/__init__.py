"""Medical helper (fine-tuned): a QLoRA adapter on medical Q&A; escalates red flags."""
