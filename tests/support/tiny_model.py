"""A tiny randomly initialised causal LM, deterministic for a given seed, for end-to-end tests."""

from __future__ import annotations

from pathlib import Path

TRAINING_TEXT = [
    "The quick brown fox jumps over the lazy dog. A: B: C: D: E: F:",
    "Which of the following is a muscle? ligament, cartilage, blood, tendon.",
    "下列有关鳃弓的描述，错误的是 由间充质增生形成 人胚第4周出现 以上都是",
    "0123456789 + - * / = ( ) . , ; ? !",
]


def build_tiny_model(folder: Path, *, seed: int = 0) -> Path:
    """A randomly initialised two-layer Llama with a byte-level BPE tokenizer, saved to ``folder``."""
    import torch
    from tokenizers import ByteLevelBPETokenizer
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(TRAINING_TEXT, vocab_size=400, min_frequency=1, special_tokens=["<|endoftext|>"])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe._tokenizer, eos_token="<|endoftext|>")
    tokenizer.pad_token = tokenizer.eos_token
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=512,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.eos_token_id,
    )
    model = LlamaForCausalLM(config)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
