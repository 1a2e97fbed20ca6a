"""Batches of token ids for training and validation.

Sequence-to-sequence convention (``ids`` are a tokenizer's ids of one text, without specials)::

    src     = src_ids + [eos]          # encoder input
    tgt_in  = [bos] + tgt_ids          # decoder input (teacher forcing)
    tgt_out = tgt_ids + [eos]          # what the decoder must predict at each position

Every sequence is at most ``max_len`` tokens *including* its bos/eos: ids are cut to
``max_len - 1``. Batches are right-padded with ``pad_id``; masks are True on real tokens, and
``tgt_in``/``tgt_out`` have their real tokens at the same positions.

Language-model convention (as nanoGPT's ``get_batch``): a window ``w`` of ``block_size + 1``
consecutive tokens gives ``x = w[:-1]`` and ``y = w[1:]``.

Prefix-LM convention (a decoder-only model on pairs, as GPT-2 couplet models are trained): each
pair is one row ``w = src_ids + [sep] + tgt_ids + [eos]`` (``sep`` is the tokenizer's newline
token), ``x = w[:-1]``, ``y = w[1:]`` with ``y`` set to ``pad_id`` where it would predict a source
token or the separator: the loss (which ignores pad) is on the target and its eos only.

All randomness comes from private ``torch.Generator`` objects seeded from (seed, epoch/step, rank),
never from the global RNG, so batches are reproducible and resumable from a small state dict.
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor

from textgen_core.errors import CheckpointError, ConfigError, TextGenError

if TYPE_CHECKING:
    from textgen_core.tokenizer import Tokenizer

logger = logging.getLogger(__name__)

POOL_BATCHES = 50  # examples are sorted by length inside pools of this many batches


def _mix_seed(*parts: int) -> int:
    """A well-spread 63-bit seed from integers (seed, epoch, rank, ...)."""
    data = ",".join(str(int(p)) for p in parts).encode()
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little") >> 1


def _check_int(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


def _check_rank(rank: object, world_size: object) -> None:
    _check_int("world_size", world_size, 1)
    _check_int("rank", rank, 0)
    if rank >= world_size:  # type: ignore[operator]
        raise ConfigError(f"rank must be below world_size ({world_size}), got {rank}")


@dataclass(frozen=True, eq=False)  # tensors: no field-wise == or hash
class Seq2SeqBatch:
    """A padded batch of source/target pairs (see the module docstring for the convention)."""

    src: Tensor  # (B, S) long
    tgt_in: Tensor  # (B, T) long
    tgt_out: Tensor  # (B, T) long, pad where there is no target
    pad_id: int = 0

    def to(self, device: torch.device | str) -> Seq2SeqBatch:
        return Seq2SeqBatch(
            self.src.to(device), self.tgt_in.to(device), self.tgt_out.to(device), self.pad_id
        )

    @property
    def n_tokens(self) -> int:
        """Number of non-pad target tokens (the loss's denominator)."""
        return int((self.tgt_out != self.pad_id).sum())

    @property
    def src_mask(self) -> Tensor:
        return self.src != self.pad_id  # (B, S) bool, True = real token

    @property
    def tgt_mask(self) -> Tensor:
        return self.tgt_in != self.pad_id  # (B, T) bool, True = real token


@dataclass(frozen=True, eq=False)  # tensors: no field-wise == or hash
class LMBatch:
    """Language-model rows: ``y`` is ``x`` shifted left by one token.

    ``pad_id`` (prefix-LM rows): ``y`` holds it where nothing is to be learned (padding, the
    source part); ``None`` for windows of a token stream, where every position counts.
    """

    x: Tensor  # (B, T) long
    y: Tensor  # (B, T) long
    pad_id: int | None = None

    def to(self, device: torch.device | str) -> LMBatch:
        return LMBatch(self.x.to(device), self.y.to(device), self.pad_id)

    @property
    def n_tokens(self) -> int:
        """Number of positions the loss counts."""
        if self.pad_id is None:
            return int(self.y.numel())
        return int((self.y != self.pad_id).sum())


def encode_pairs(
    pairs: Sequence[tuple[str, str]], src_tok: Tokenizer, tgt_tok: Tokenizer, max_len: int,
    *, per_char: bool = False,
) -> list[tuple[list[int], list[int]]]:
    """Encode (source, target) texts, cut each to ``max_len - 1`` ids, drop empty examples.

    Returned ids carry no specials (the batcher adds bos/eos). ``per_char``: one id per character
    with char tokenizers (couplets: both lines keep their equal length, rare characters included).
    """
    _check_int("max_len", max_len, 2)
    out: list[tuple[list[int], list[int]]] = []
    dropped = cut = 0
    for src_text, tgt_text in pairs:
        if not src_text.strip() or not tgt_text.strip():
            dropped += 1
            continue
        src_ids = src_tok.encode(src_text, per_char=per_char)
        tgt_ids = tgt_tok.encode(tgt_text, per_char=per_char)
        if not src_ids or not tgt_ids:
            dropped += 1
            continue
        if len(src_ids) >= max_len or len(tgt_ids) >= max_len:
            cut += 1
        out.append((src_ids[: max_len - 1], tgt_ids[: max_len - 1]))
    if dropped or cut:
        logger.info(
            "encoded %d pairs: dropped %d empty, cut %d to max_len %d",
            len(out),
            dropped,
            cut,
            max_len,
        )
    return out


class _Ragged:
    """Variable-length id lists stored flat (int64), far smaller than lists of Python ints."""

    def __init__(self, rows: Sequence[Sequence[int]], cap: int) -> None:
        lengths = np.fromiter((min(len(r), cap) for r in rows), dtype=np.int64, count=len(rows))
        self.lengths = lengths
        self.offsets = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum(lengths, out=self.offsets[1:])
        self.flat = np.empty(int(self.offsets[-1]), dtype=np.int64)
        for i, row in enumerate(rows):
            n = int(lengths[i])
            self.flat[self.offsets[i] : self.offsets[i] + n] = np.asarray(row[:n], dtype=np.int64)

    def row(self, i: int) -> np.ndarray:
        return self.flat[self.offsets[i] : self.offsets[i + 1]]


class BucketBatcher:
    """Length-bucketed, shuffled, deterministic and resumable batches of seq2seq examples.

    Each epoch: shuffle the examples with a generator seeded from (seed, epoch), sort them by
    (source length, target length) inside pools of ``POOL_BATCHES`` batches, cut into batches of
    ``batch_size`` examples, shuffle the batch order. With ``world_size > 1`` the epoch's batches
    are trimmed to a multiple of ``world_size`` and rank r takes batches r, r + world_size, ...,
    so DDP ranks see disjoint data and the same number of batches. ``len(batcher)`` is the number
    of batches per epoch for this rank.
    """

    def __init__(
        self,
        examples: Sequence[tuple[Sequence[int], Sequence[int]]],
        *,
        batch_size: int,
        pad_id: int,
        bos_id: int,
        eos_id: int,
        max_len: int,
        seed: int = 0,
        shuffle: bool = True,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        self.batch_size = _check_int("batch_size", batch_size, 1)
        self.max_len = _check_int("max_len", max_len, 2)
        _check_rank(rank, world_size)
        if len(examples) == 0:
            raise TextGenError("no examples to batch: the split has no non-empty pairs")
        self.pad_id, self.bos_id, self.eos_id = int(pad_id), int(bos_id), int(eos_id)
        self.seed, self.shuffle = int(seed), bool(shuffle)
        self.rank, self.world_size = rank, world_size
        self._src = _Ragged([s for s, _ in examples], max_len - 1)
        self._tgt = _Ragged([t for _, t in examples], max_len - 1)
        self._n = len(examples)
        total = math.ceil(self._n / self.batch_size)
        self._len = total // world_size
        if self._len == 0:
            raise TextGenError(
                f"{self._n} examples make {total} batches of {self.batch_size}, fewer than the "
                f"{world_size} training processes; use a smaller batch_size or more data"
            )
        self._epoch, self._cursor = 0, 0
        self._cached: tuple[int, list[np.ndarray]] | None = None

    def __len__(self) -> int:
        return self._len

    @property
    def epoch(self) -> int:
        return self._epoch

    # --------------------------------------------------------------------------- training
    def next_batch(self) -> Seq2SeqBatch:
        """The next training batch; endless (a new epoch starts with a new permutation)."""
        if self._cursor >= self._len:
            self._epoch += 1
            self._cursor = 0
        batch = self._epoch_batches(self._epoch)[self._cursor]
        self._cursor += 1
        return self._collate(batch)

    def state_dict(self) -> dict[str, int]:
        """Where training stands: ``{"epoch", "cursor"}`` (cursor = batches already served)."""
        return {"epoch": self._epoch, "cursor": self._cursor}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for key in ("epoch", "cursor"):
            value = state.get(key) if isinstance(state, dict) else None
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise CheckpointError(f"batcher state has no valid {key!r} (got {value!r})")
        epoch, cursor = int(state["epoch"]), int(state["cursor"])
        if cursor > self._len:
            logger.warning(
                "batcher state points past this epoch (%d of %d batches; the data changed?); "
                "resuming at the next epoch",
                cursor,
                self._len,
            )
            cursor = self._len
        self._epoch, self._cursor = epoch, cursor

    def _epoch_batches(self, epoch: int) -> list[np.ndarray]:
        """This rank's batches (arrays of example indices) for ``epoch``, cached."""
        if self._cached is not None and self._cached[0] == epoch:
            return self._cached[1]
        gen = torch.Generator().manual_seed(_mix_seed(self.seed, epoch))
        order = torch.randperm(self._n, generator=gen).numpy() if self.shuffle else np.arange(self._n)
        pool = self.batch_size * POOL_BATCHES
        batches: list[np.ndarray] = []
        for start in range(0, self._n, pool):
            chunk = order[start : start + pool]
            # np.lexsort sorts by the last key first: source length, then target length
            chunk = chunk[np.lexsort((self._tgt.lengths[chunk], self._src.lengths[chunk]))]
            batches.extend(
                chunk[i : i + self.batch_size] for i in range(0, len(chunk), self.batch_size)
            )
        if self.shuffle:
            batches = [batches[i] for i in torch.randperm(len(batches), generator=gen).tolist()]
        batches = batches[: self._len * self.world_size][self.rank :: self.world_size]
        self._cached = (epoch, batches)
        return batches

    # ------------------------------------------------------------------------- validation
    def iter_batches(self) -> Iterator[Seq2SeqBatch]:
        """One pass in dataset order, batches of ``batch_size`` consecutive examples.

        Does not touch the training position. With ``world_size > 1`` this rank gets batches
        rank, rank + world_size, ... (nothing dropped, so ranks may get one batch more or less).
        """
        starts = range(self.rank * self.batch_size, self._n, self.batch_size * self.world_size)
        for start in starts:
            yield self._collate(np.arange(start, min(start + self.batch_size, self._n)))

    def _collate(self, idx: np.ndarray) -> Seq2SeqBatch:
        src_len = self._src.lengths[idx] + 1  # + eos
        tgt_len = self._tgt.lengths[idx] + 1  # + bos / eos
        n = len(idx)
        src = np.full((n, int(src_len.max())), self.pad_id, dtype=np.int64)  # (B, S)
        tgt_in = np.full((n, int(tgt_len.max())), self.pad_id, dtype=np.int64)  # (B, T)
        tgt_out = tgt_in.copy()  # (B, T)
        for b, i in enumerate(idx.tolist()):
            s, t = self._src.row(i), self._tgt.row(i)
            src[b, : len(s)] = s
            src[b, len(s)] = self.eos_id
            tgt_in[b, 0] = self.bos_id
            tgt_in[b, 1 : len(t) + 1] = t
            tgt_out[b, : len(t)] = t
            tgt_out[b, len(t)] = self.eos_id
        return Seq2SeqBatch(
            torch.from_numpy(src), torch.from_numpy(tgt_in), torch.from_numpy(tgt_out), self.pad_id
        )


def prefix_lm_side_len(block_size: int) -> int:
    """The ``max_len`` of one side of a pair packed into a prefix-LM row of at most ``block_size``
    tokens: source and target are each cut to ``(block_size - 1) // 2`` ids, so
    ``source + [sep] + target`` always fits."""
    return (_check_int("block_size", block_size, 3) + 1) // 2


class PrefixLMBatcher(BucketBatcher):
    """Pairs for a decoder-only model: the batches of :class:`BucketBatcher` (same shuffling,
    length bucketing, ranks and resumable state), each pair packed into one prefix-LM row (see the
    module docstring) and served as an :class:`LMBatch` whose ``y`` is pad on the source part."""

    def __init__(
        self,
        examples: Sequence[tuple[Sequence[int], Sequence[int]]],
        *,
        batch_size: int,
        pad_id: int,
        sep_id: int,
        eos_id: int,
        block_size: int,
        seed: int = 0,
        shuffle: bool = True,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        super().__init__(
            examples, batch_size=batch_size, pad_id=pad_id, bos_id=sep_id, eos_id=eos_id,
            max_len=prefix_lm_side_len(block_size), seed=seed, shuffle=shuffle, rank=rank,
            world_size=world_size,
        )
        self.sep_id = int(sep_id)

    def _collate(self, idx: np.ndarray) -> LMBatch:  # type: ignore[override]
        n_src, n_tgt = self._src.lengths[idx], self._tgt.lengths[idx]
        width = int((n_src + n_tgt).max()) + 1  # source, sep, target (the eos is only in y)
        x = np.full((len(idx), width), self.pad_id, dtype=np.int64)  # (B, T)
        y = x.copy()  # (B, T)
        for b, i in enumerate(idx.tolist()):
            s, t = self._src.row(i), self._tgt.row(i)
            row = np.concatenate([s, [self.sep_id], t, [self.eos_id]])
            x[b, : len(row) - 1] = row[:-1]
            y[b, len(s) : len(row) - 1] = row[len(s) + 1 :]  # from the separator on: target, eos
        return LMBatch(torch.from_numpy(x), torch.from_numpy(y), self.pad_id)


def pair_max_len(prefix_lm: bool, block_size: int, max_len: int | None = None) -> int:
    """The most tokens one side of a pair keeps (ids and one special) for a model reading
    ``block_size`` positions: half the block for a prefix LM, else ``max_len`` (the project's
    ``data.max_len``) within the block."""
    if prefix_lm:
        return prefix_lm_side_len(block_size)
    return block_size if max_len is None else min(max_len, block_size)


def pair_batcher(
    examples: Sequence[tuple[Sequence[int], Sequence[int]]],
    tokenizer: Tokenizer,
    *,
    prefix_lm: bool,
    block_size: int,
    max_len: int,
    batch_size: int,
    seed: int = 0,
    shuffle: bool = True,
    rank: int = 0,
    world_size: int = 1,
) -> BucketBatcher:
    """Batches of encoded pairs as a model reads them: :class:`Seq2SeqBatch` (sides cut to
    ``max_len``) or, for a language model (``prefix_lm``), prefix-LM rows that fit ``block_size``."""
    common: dict[str, Any] = dict(batch_size=batch_size, pad_id=tokenizer.pad_id, eos_id=tokenizer.eos_id,
                                  seed=seed, shuffle=shuffle, rank=rank, world_size=world_size)
    if prefix_lm:
        return PrefixLMBatcher(examples, sep_id=tokenizer.newline_id, block_size=block_size, **common)
    return BucketBatcher(examples, bos_id=tokenizer.bos_id, max_len=max_len, **common)


class LMWindows:
    """Random windows of ``block_size + 1`` tokens from one token stream, resumable.

    As nanoGPT's ``get_batch``: each batch draws ``batch_size`` random start positions. Batch k of
    rank r uses a private generator seeded from (seed, rank, k), so the state is just the number
    of batches drawn: resuming reproduces the uninterrupted sequence exactly, and every rank can
    resume from rank 0's state (ranks still draw different windows).
    """

    def __init__(
        self,
        ids: Tensor,
        *,
        block_size: int,
        batch_size: int,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        self.block_size = _check_int("block_size", block_size, 1)
        self.batch_size = _check_int("batch_size", batch_size, 1)
        _check_rank(rank, world_size)
        ids = torch.as_tensor(ids, dtype=torch.long)
        if ids.dim() != 1:
            raise ValueError(f"ids must be a 1-D token stream, got shape {tuple(ids.shape)}")
        if ids.numel() < block_size + 1:
            raise TextGenError(
                f"the token stream has {ids.numel()} tokens, fewer than block_size + 1 = "
                f"{block_size + 1}; use a smaller model.block_size or more text"
            )
        self._ids = ids  # (N,)
        self.seed, self.rank, self.world_size = int(seed), rank, world_size
        self._gen = torch.Generator()
        self._batches = 0
        self._offsets = torch.arange(block_size + 1)  # (T+1,)

    def next_batch(self) -> LMBatch:
        self._gen.manual_seed(_mix_seed(self.seed, self.rank, self._batches))
        self._batches += 1
        high = self._ids.numel() - self.block_size  # last start keeps block_size + 1 tokens
        starts = torch.randint(high, (self.batch_size,), generator=self._gen)  # (B,)
        return self._windows(starts)

    def state_dict(self) -> dict[str, int]:
        """``{"batches": n}``: plain ints, fine for ``torch.load(weights_only=True)``."""
        return {"batches": self._batches}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        value = state.get("batches") if isinstance(state, dict) else None
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise CheckpointError(f"LM window state has no valid 'batches' (got {value!r})")
        self._batches = int(value)

    def iter_batches(self, max_batches: int | None = None) -> Iterator[LMBatch]:
        """Consecutive non-overlapping windows from the start, for validation.

        Windows start at 0, block_size, 2 * block_size, ...; with ``world_size > 1`` this rank
        gets batches rank, rank + world_size, ...; at most ``max_batches`` batches are yielded.
        """
        starts = torch.arange(0, self._ids.numel() - self.block_size, self.block_size)
        batches = starts.split(self.batch_size)[self.rank :: self.world_size]
        if max_batches is not None:
            batches = batches[: max(0, max_batches)]
        for chunk in batches:
            yield self._windows(chunk)

    def _windows(self, starts: Tensor) -> LMBatch:
        windows = self._ids[starts[:, None] + self._offsets]  # (B, T+1)
        return LMBatch(windows[:, :-1].contiguous(), windows[:, 1:].contiguous())
