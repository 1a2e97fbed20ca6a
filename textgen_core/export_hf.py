"""``textgen export DIR --format hf OUT``: a trained ``gpt`` model as a Hugging Face GPT-2 folder.

:class:`~textgen_core.models.gpt.GPT` is laid out like GPT-2 (pre-LN blocks, learned positions,
tied embeddings, causal attention scaled by 1/sqrt(head size)), so its weights map one to one onto
transformers' ``GPT2LMHeadModel``. The differences the mapping takes care of:

* GPT-2's ``Conv1D`` keeps its weight as (in, out), the transpose of ``nn.Linear``'s (out, in);
* GPT-2 has one ``c_attn`` projection for query, key and value; gpt.py has ``q_proj`` and
  ``kv_proj`` (key then value), concatenated here in GPT-2's q, k, v order;
* GPT-2 always has biases; a model built with ``bias=false`` gets zero biases (the same function);
* gpt.py's feed-forward uses PyTorch's exact (erf) GELU, which transformers calls ``"gelu"``
  (GPT-2 itself uses the tanh approximation, ``"gelu_new"``); the flavour is read off the model.

The folder holds ``config.json`` (a GPT2Config written as plain JSON: transformers is not a
dependency of TextGen and is never imported here), ``generation_config.json`` (the special ids and
the tokens TextGen never writes, so that greedy ``generate`` matches it), ``model.safetensors``,
the SentencePiece model as ``tokenizer.model`` and ``TOKENIZER.md``, which says how to turn text
into the ids the model was trained on. It is written into a temporary sibling folder and renamed
into place, so a failed export leaves nothing behind.
"""

from __future__ import annotations

import json
import logging
import secrets
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from torch import Tensor, nn

from textgen_core.errors import TextGenError
from textgen_core.generation import Generator
from textgen_core.project import Project
from textgen_core.tokenizer import Tokenizer
from textgen_core.training.checkpoint import is_disk_full

log = logging.getLogger(__name__)

_GELU_NAMES = {"none": "gelu", "tanh": "gelu_pytorch_tanh"}   # nn.GELU(approximate=...) -> ACT2FN


def export_hf(project: Project, out: Path, checkpoint: str = "best") -> Path:
    """Write the project's ``checkpoint`` ("best", "last" or a ``.pt`` path) to the new folder
    ``out`` as a transformers GPT-2 model; returns ``out``."""
    out = Path(out)
    _check_out(out)
    if not checkpoint.endswith(".pt"):
        _require_gpt(project.root, project.config.model_name)
    generator = Generator.open(project, checkpoint, device="cpu")
    _require_gpt(Path(checkpoint) if checkpoint.endswith(".pt") else project.root, generator.spec.name)
    model, tok = generator.model, generator.src_tok
    files: dict[str, bytes] = {
        "config.json": _json(gpt2_config(model, tok)),
        "generation_config.json": _json(generation_config(tok)),
        "tokenizer.model": tok.to_bytes(),
        "TOKENIZER.md": tokenizer_notes(tok, generator.task, model.config.block_size).encode("utf-8"),
    }
    log.info("exporting %s: step %d, %s task", project.root, generator.step, generator.task)
    _write_folder(out, files, gpt2_state_dict(model))
    return out


def _require_gpt(root: Path, name: str) -> None:
    if name != "gpt":
        raise TextGenError(f"export --format hf writes gpt models; {root} holds a {name} model")


def _check_out(out: Path) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise TextGenError(f"{out}: already exists and is not an empty folder; choose a new one")


def _json(data: dict[str, Any]) -> bytes:
    return (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


# --------------------------------------------------------------------------- config


def _gelu_name(model: nn.Module) -> str:
    act = model.transformer.h[0].mlp.act
    if not isinstance(act, nn.GELU) or act.approximate not in _GELU_NAMES:
        raise TextGenError(f"cannot export this gpt model: its feed-forward uses {act!r}, not GELU")
    return _GELU_NAMES[act.approximate]


def gpt2_config(model: nn.Module, tok: Tokenizer) -> dict[str, Any]:
    """``config.json`` of ``GPT2LMHeadModel`` for a gpt.py model (plain JSON, no transformers)."""
    cfg = model.config
    tied = model.lm_head.weight is model.transformer.wte.weight
    return {
        "model_type": "gpt2",
        "architectures": ["GPT2LMHeadModel"],
        "vocab_size": cfg.vocab_size,
        "n_positions": cfg.block_size,
        "n_embd": cfg.n_embd,
        "n_layer": cfg.n_layer,
        "n_head": cfg.n_head,
        "n_inner": model.transformer.h[0].mlp.fc1.out_features,
        "activation_function": _gelu_name(model),
        "layer_norm_epsilon": model.transformer.ln_f.eps,
        "resid_pdrop": 0.0,
        "embd_pdrop": 0.0,
        "attn_pdrop": 0.0,
        "initializer_range": 0.02,
        "scale_attn_weights": True,              # softmax(q k^T / sqrt(head size)), as SDPA
        "scale_attn_by_inverse_layer_idx": False,
        "reorder_and_upcast_attn": False,
        "add_cross_attention": False,
        "tie_word_embeddings": tied,
        "use_cache": True,
        "bos_token_id": tok.bos_id,
        "eos_token_id": tok.eos_id,
        "pad_token_id": tok.pad_id,
        "dtype": "float32",
    }


def generation_config(tok: Tokenizer) -> dict[str, Any]:
    """``generation_config.json``: TextGen's special ids, and the tokens its decoding never writes
    (pad, bos, unk), so that ``generate`` behaves like ``textgen generate`` out of the box."""
    return {
        "bos_token_id": tok.bos_id,
        "eos_token_id": tok.eos_id,
        "pad_token_id": tok.pad_id,
        "suppress_tokens": [tok.pad_id, tok.bos_id, tok.unk_id],
    }


# --------------------------------------------------------------------------- weights


def _conv1d(linear: nn.Linear) -> Tensor:
    """GPT-2's Conv1D weight (in, out) from an ``nn.Linear`` weight (out, in)."""
    return linear.weight.detach().t()


def _bias(module: nn.Linear | nn.LayerNorm, size: int) -> Tensor:
    """The module's bias, or zeros (gpt.py with ``bias=false``; GPT-2 always has one)."""
    bias = getattr(module, "bias", None)
    return torch.zeros(size) if bias is None else bias.detach()


def _layer_norm(prefix: str, ln: nn.LayerNorm) -> dict[str, Tensor]:
    return {f"{prefix}.weight": ln.weight.detach(), f"{prefix}.bias": _bias(ln, ln.normalized_shape[0])}


def _block(prefix: str, block: nn.Module) -> dict[str, Tensor]:
    attn, mlp = block.attn, block.mlp
    C = attn.n_embd
    return {
        **_layer_norm(f"{prefix}.ln_1", block.ln_1),
        f"{prefix}.attn.c_attn.weight": torch.cat([_conv1d(attn.q_proj), _conv1d(attn.kv_proj)], dim=1),
        f"{prefix}.attn.c_attn.bias": torch.cat([_bias(attn.q_proj, C), _bias(attn.kv_proj, 2 * C)]),
        f"{prefix}.attn.c_proj.weight": _conv1d(attn.out_proj),
        f"{prefix}.attn.c_proj.bias": _bias(attn.out_proj, C),
        **_layer_norm(f"{prefix}.ln_2", block.ln_2),
        f"{prefix}.mlp.c_fc.weight": _conv1d(mlp.fc1),
        f"{prefix}.mlp.c_fc.bias": _bias(mlp.fc1, mlp.fc1.out_features),
        f"{prefix}.mlp.c_proj.weight": _conv1d(mlp.fc2),
        f"{prefix}.mlp.c_proj.bias": _bias(mlp.fc2, C),
    }


def gpt2_state_dict(model: nn.Module) -> dict[str, Tensor]:
    """gpt.py's weights under GPT-2's names, as float32, contiguous, unshared CPU tensors.

    ``lm_head.weight`` is left out when tied to ``transformer.wte.weight`` (transformers ties it
    again on load); safetensors refuses two names for one storage anyway.
    """
    t = model.transformer
    weights = {"transformer.wte.weight": t.wte.weight.detach(),
               "transformer.wpe.weight": t.wpe.weight.detach()}
    for i, block in enumerate(t.h):
        weights.update(_block(f"transformer.h.{i}", block))
    weights.update(_layer_norm("transformer.ln_f", t.ln_f))
    if model.lm_head.weight is not t.wte.weight:
        weights["lm_head.weight"] = model.lm_head.weight.detach()
    return {name: w.to("cpu", torch.float32).clone().contiguous() for name, w in weights.items()}


# --------------------------------------------------------------------------- writing


def _write_folder(out: Path, files: dict[str, bytes], weights: dict[str, Tensor]) -> None:
    """Write everything into a temporary sibling of ``out``, then rename it to ``out``."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.{secrets.token_hex(4)}.tmp"
    tmp.mkdir()                              # with the umask's permissions, unlike mkdtemp's 0700
    try:
        for name, data in files.items():
            (tmp / name).write_bytes(data)
        save_file(weights, str(tmp / "model.safetensors"), metadata={"format": "pt"})
        shutil.copymode(tmp / "config.json", tmp / "model.safetensors")   # safetensors writes 0600
        _check_out(out)                      # nothing appeared there meanwhile
        if out.exists():
            out.rmdir()
        tmp.rename(out)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if is_disk_full(exc):
            raise TextGenError(f"{out.parent}: disk full while exporting; nothing was written") from None
        raise


# --------------------------------------------------------------------------- TOKENIZER.md


def _row_format(tok: Tokenizer, task: str) -> str:
    if task == "continuation":
        return ("The model was trained on one long token stream (no bos, no eos): the prompt is\n"
                "`sp.encode(text)` and the model continues it.\n")
    couplet = ("\nFor couplets, drop the whitespace of the first line first; with a character\n"
               "tokenizer each character is one id (`[sp.piece_to_id(ch) for ch in line]`). TextGen\n"
               "also applies the couplet rules when it writes (the first line's length,\n"
               "punctuation, repeats, tones); plain `generate` does not.\n"
               if task == "couplet" else "")
    return (f"The model was trained as a prefix language model on pairs (task: {task}). A row is\n\n"
            f"    source ids + [{tok.newline_id}] + target ids + [{tok.eos_id}]\n\n"
            f"where {tok.newline_id} is the newline token (the separator) and {tok.eos_id} is eos. To"
            " write a target,\nfeed `sp.encode(source) + [newline id]` and generate until eos.\n"
            + couplet)


def tokenizer_notes(tok: Tokenizer, task: str, block_size: int) -> str:
    """``TOKENIZER.md``: how to turn text into the ids the exported model reads."""
    prompt = ('sp.encode("your prompt")' if task == "continuation"
              else f'sp.encode("your source text") + [{tok.newline_id}]')
    rules = " (less the couplet rules)" if task == "couplet" else ""
    return f"""# Tokenizer

`tokenizer.model` is a SentencePiece model ({tok.kind}, {tok.vocab_size} pieces). Encode text with

    import sentencepiece as spm
    sp = spm.SentencePieceProcessor(model_file="tokenizer.model")
    ids = sp.encode(text)        # no bos/eos added

Special ids: pad {tok.pad_id}, unk {tok.unk_id}, bos {tok.bos_id}, eos {tok.eos_id};
newline ("\\n", always one token) {tok.newline_id}.

{_row_format(tok, task)}
TextGen never writes pad, bos or unk; `generation_config.json` suppresses them, so greedy decoding
(`do_sample=False`) gives the same ids as `textgen generate --greedy`{rules}. The model has
{block_size} positions: prompt and output together must fit them (TextGen slides a window over
longer texts; `generate` does not).

```python
import sentencepiece as spm
import torch
from transformers import AutoModelForCausalLM

folder = "."                                   # this folder
sp = spm.SentencePieceProcessor(model_file=f"{{folder}}/tokenizer.model")
model = AutoModelForCausalLM.from_pretrained(folder).eval()
ids = torch.tensor([{prompt}])
out = model.generate(ids, do_sample=False, max_new_tokens=20)
print(sp.decode(out[0, ids.shape[1]:].tolist()))
```
"""
