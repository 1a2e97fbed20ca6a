"""TextGen Studio's library: corpora, tokenizers, models, training and decoding (no Qt here)."""

__version__ = "0.1.0"
