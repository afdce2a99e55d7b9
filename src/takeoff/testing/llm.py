"""A tiny causal language model for tests: the architecture of SmolLM2 (Llama) at a few
hundred thousand random weights, with a byte-level BPE tokenizer trained in a second on a
small built-in text, and optionally a ChatML chat template like SmolLM2-Instruct's.

It loads, fine-tunes, generates and serves through exactly the code paths a real model takes,
in a fraction of a second, so the test suite needs no model download.

Example:
    >>> from takeoff.testing.llm import tiny_causal_lm
    >>> folder = tiny_causal_lm(tmp_path / "tiny")  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

CHATML = ("{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + "
          "'<|im_end|>' + '\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")
SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
CORPUS = """
How do I reset my password? Open the settings page and choose reset password; a link arrives by email.
Where is my parcel? Track it from the orders page with the tracking number in your confirmation email.
Can I get a refund? Refunds are possible within thirty days of delivery if the item is unused.
How do I install a package? Run apt install followed by the package name as root.
What is Debian? Debian is a free operating system made by volunteers around the world.
The quick brown fox jumps over the lazy dog. Numbers: 0 1 2 3 4 5 6 7 8 9. Questions, answers, help.
"""


def tiny_causal_lm(folder: str | Path, *, chat: bool = True, vocab_size: int = 384, hidden: int = 32,
                   layers: int = 2, seed: int = 0, context: int = 512) -> Path:
    """Write a tiny random Llama causal LM and its tokenizer into ``folder`` (a Hugging Face
    folder: config.json, model.safetensors, tokenizer.json); returns ``folder``."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tokenizer.train_from_iterator(CORPUS.strip().splitlines() * 4, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token="<|im_end|>" if chat else "<|endoftext|>",
                                   bos_token="<|endoftext|>", pad_token="<|endoftext|>", unk_token="<|endoftext|>",
                                   model_max_length=context)
    if chat:
        fast.chat_template = CHATML
    fast.save_pretrained(str(folder))
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=len(fast), hidden_size=hidden, intermediate_size=hidden * 2,
                         num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=context, tie_word_embeddings=True,
                         bos_token_id=fast.bos_token_id, eos_token_id=fast.eos_token_id, pad_token_id=fast.pad_token_id)
    model = LlamaForCausalLM(config)
    model.generation_config.eos_token_id = fast.eos_token_id
    model.save_pretrained(str(folder), safe_serialization=True)
    return folder
