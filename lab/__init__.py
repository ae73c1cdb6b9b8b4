"""The comparison lab: classification head vs LoRA instruction tuning vs zero-shot, over sample sizes (see docs/lab.md)."""
