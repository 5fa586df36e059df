"""Train: LoRA fine-tuning of the base model on the curated dataset (peft over transformers), on
the embedded CPU profile or a GPU profile.
"""
