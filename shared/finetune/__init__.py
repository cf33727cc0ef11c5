"""Fine-tuning: data preparation, the Unsloth/QLoRA recipe, GGUF export, the adapter registry."""
from .config import FinetuneConfig, load_finetune_config
from .registry import Adapter, AdapterRegistry, PromotionRefused

__all__ = ["Adapter", "AdapterRegistry", "FinetuneConfig", "PromotionRefused", "load_finetune_config"]
