"""GPT on pairs as a prefix language model: ``source <sep> target <eos>`` rows, loss on the target."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from textgen_core import models
from textgen_core.data import LMBatch, PrefixLMBatcher, prefix_lm_side_len
from textgen_core.decoding.steppers import PromptedLMStepper
from textgen_core.models.contract import TrainContext

PAD, SEP, EOS = 0, 9, 3
EXAMPLES = [([11, 12, 13], [21, 22, 23]), ([14, 15], [24, 25, 26, 27]), ([16], [28])]


def _batch(examples=EXAMPLES, block_size=16) -> LMBatch:
    batcher = PrefixLMBatcher(examples, batch_size=len(examples), pad_id=PAD, sep_id=SEP, eos_id=EOS,
                              block_size=block_size, shuffle=False)
    return next(batcher.iter_batches())


def test_rows_are_source_sep_target_eos_with_targets_only_on_the_target():
    batch = _batch()
    assert batch.x.tolist() == [
        [11, 12, 13, SEP, 21, 22, 23],
        [14, 15, SEP, 24, 25, 26, 27],
        [16, SEP, 28, PAD, PAD, PAD, PAD],
    ]
    assert batch.y.tolist() == [
        [PAD, PAD, PAD, 21, 22, 23, EOS],
        [PAD, PAD, 24, 25, 26, 27, EOS],
        [PAD, 28, EOS, PAD, PAD, PAD, PAD],
    ]
    assert batch.n_tokens == 4 + 5 + 2     # target tokens and their eos, nothing else


def test_each_side_is_cut_so_the_row_fits_the_block():
    assert prefix_lm_side_len(16) == 8                  # 7 + sep + 7 + ... = x of 15 <= 16
    long = [(list(range(10, 40)), list(range(40, 70)))]
    batch = _batch(long, block_size=16)
    assert batch.x.shape == (1, 15) and batch.x[0, 7].item() == SEP
    assert batch.y[0].tolist() == [PAD] * 7 + list(range(40, 47)) + [EOS]


def _gpt() -> torch.nn.Module:
    torch.manual_seed(0)
    config = models.build_config("gpt", {"n_layer": 1, "n_head": 2, "n_embd": 16, "block_size": 16},
                                 src_vocab_size=32, tgt_vocab_size=32, pad_id=PAD)
    return models.build_model("gpt", config)


def test_gpt_loss_is_the_mean_cross_entropy_of_the_target_tokens_only():
    model, batch = _gpt(), _batch()
    ctx = TrainContext(step=0, total_steps=1, pad_id=PAD)
    loss = models.get_spec("gpt").loss(model, batch, ctx)
    logits = model(batch.x)                                                # (B, T, V)
    target = batch.y != PAD
    expected = F.cross_entropy(logits[target], batch.y[target])
    torch.testing.assert_close(loss, expected)
    # the whole row's next tokens (the source's too) would give another loss
    full_y = torch.cat([batch.x[:, 1:], torch.full_like(batch.x[:, :1], PAD)], 1)
    full_y = torch.where(target, batch.y, full_y)
    assert not torch.isclose(F.cross_entropy(logits.flatten(0, 1), full_y.flatten(), ignore_index=PAD),
                             loss)


def test_gpt_loss_has_no_gradient_from_the_source_positions():
    model, batch = _gpt(), _batch()
    seen: dict[str, torch.Tensor] = {}
    head = model.lm_head

    def keep(module, inputs, output):
        output.retain_grad()
        seen["logits"] = output

    head.register_forward_hook(keep)
    ctx = TrainContext(step=0, total_steps=1, pad_id=PAD)
    models.get_spec("gpt").loss(model, batch, ctx).backward()
    grad = seen["logits"].grad.abs().sum(-1)                               # (B, T)
    source = torch.tensor([[1, 1, 1, 0, 0, 0, 0], [1, 1, 0, 0, 0, 0, 0], [1, 0, 0, 0, 0, 0, 0]]).bool()
    assert grad[source].eq(0).all()                                        # source: nothing learned
    assert grad[batch.y != PAD].gt(0).all()                                # separator, target: learned


def test_prompted_stepper_reads_the_prompt_then_the_output():
    model = _gpt().eval()
    prompt = torch.tensor([[11, 12, SEP], [14, 15, SEP]])
    stepper = PromptedLMStepper(model, prompt)
    prefix = torch.tensor([[2, 21], [2, 24]])                              # start token, then output
    expected = model(torch.tensor([[11, 12, SEP, 21], [14, 15, SEP, 24]]))[:, -1]
    torch.testing.assert_close(stepper.logits(prefix), expected)
    stepper.select(torch.tensor([1, 1, 0]))
    assert stepper.prompt.tolist() == [[14, 15, SEP], [14, 15, SEP], [11, 12, SEP]]
    assert isinstance(models.make_stepper(model, prompt), PromptedLMStepper)
