"""Typed training events and the training-algorithm seam under the generic loop."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from textgen_core.config import TrainConfig
from textgen_core.training import events as ev
from textgen_core.training.algorithm import StepOutput, TaskHooks
from textgen_core.training.checkpoint import is_resumable
from textgen_core.training.progress import Progress
from textgen_core.training.trainer import Trainer, TrainState

# metrics.jsonl exactly as recorded before events were typed: a couplet run, a novel run with a
# non-finite perplexity, a run without a validation split, a stop, a resume, a failure.
OLD_RUN = Path(__file__).parent / "data" / "metrics_before_typed_events.jsonl"


def test_old_metrics_lines_load_and_are_written_back_unchanged():
    lines = OLD_RUN.read_text(encoding="utf-8").splitlines()
    typed = [ev.from_json(json.loads(line)) for line in lines]
    assert [type(e).__name__ for e in typed] == [
        "Config", "Start", "Step", "Eval", "Sample", "Checkpoint", "Checkpoint", "Eval", "Sample", "Eval",
        "Stopped", "Start", "Failed", "Finished"]
    for line, event in zip(lines, typed):
        assert json.dumps(event.to_json(), ensure_ascii=False) == line
    step, first_eval, ppl_lost, no_valid = typed[2], typed[3], typed[7], typed[9]
    assert step.train_loss == 6.62 and step.phase is None and step.metrics == {}
    assert first_eval.best and first_eval.bleu == 0.91 and first_eval.metrics == {}
    assert math.isnan(ppl_lost.val_ppl) and ppl_lost.bleu is None
    assert no_valid.val_loss is None and no_valid.val_ppl is None
    assert typed[4].samples[0] == ev.Written("春风得意", "秋月", "夏雨")
    assert typed[-1].reason == "early_stopped"


def test_extra_metrics_travel_flat_beside_the_fixed_keys():
    step = ev.Step(step=7, time=1.0, train_loss=0.5, lr=1e-3, tokens_per_s=10.0, phase="adversarial",
                   metrics={"d_acc": 0.75, "reward": float("nan")})
    data = step.to_json()
    assert data == {"event": "step", "step": 7, "time": 1.0, "train_loss": 0.5, "lr": 1e-3,
                    "tokens_per_s": 10.0, "phase": "adversarial", "d_acc": 0.75, "reward": None}
    back = ev.from_json(json.loads(json.dumps(data)))
    assert back.phase == "adversarial" and back.metrics["d_acc"] == 0.75
    assert math.isnan(back.metrics["reward"])
    evaluation = ev.Eval.build(9, True, {"val_loss": 2.0, "val_ppl": 7.4, "bleu": 3.0, "self_bleu": 41.0})
    assert evaluation.bleu == 3.0 and evaluation.metrics == {"self_bleu": 41.0}
    assert ev.from_json(evaluation.to_json()) == evaluation
    with pytest.raises(ValueError, match="clash"):
        ev.Step(step=1, train_loss=1.0, lr=1.0, tokens_per_s=1.0, metrics={"lr": 2.0})


def test_unknown_or_malformed_objects_are_skipped_when_replaying():
    good = ev.Start(step=0, time=1.0, steps=5)
    items = [{"event": "telemetry", "step": 1}, {"event": "step", "time": 1.0}, good.to_json(), good]
    assert ev.parse_events(items) == [good, good]
    with pytest.raises(ValueError, match="unknown training event 'telemetry'"):
        ev.from_json({"event": "telemetry", "step": 1})


def test_cli_progress_line_names_the_phase_and_the_extra_metrics():
    progress = Progress()
    progress.update(ev.Start(step=0, time=1000.0, steps=40))
    line = progress.step_line(ev.Step(step=10, time=1010.0, train_loss=1.25, lr=1e-3, tokens_per_s=50.0,
                                      phase="d_pretrain", metrics={"d_acc": 0.8125}))
    assert line == ("step 10/40 (25%)  [d_pretrain]  loss 1.2500  lr 1.00e-03  50 tok/s  ETA 30s"
                    "  d_acc 0.8125")


# ----------------------------------------------------------------------------- the algorithm seam
class Replay:
    def __init__(self) -> None:
        self.i = 0

    def next_batch(self):
        self.i += 1
        return torch.full((2, 3), float(self.i))

    def state_dict(self):
        return {"i": self.i}

    def load_state_dict(self, state):
        self.i = state["i"]


class TwoPhases:
    """A toy algorithm: 3 steps of phase "a", then phase "b", one metric per step."""

    def __init__(self, model: nn.Module, source: Replay) -> None:
        self.model, self.source = model, source
        self.optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        self.done = {"a": 0, "b": 0}

    @property
    def phase(self) -> str:
        return "a" if self.done["a"] < 3 else "b"

    def train_step(self, step: int) -> StepOutput:
        phase = self.phase
        loss = self.model(self.source.next_batch()).pow(2).mean()
        loss.backward()
        self.optimizer.step()
        self.optimizer.zero_grad()
        self.done[phase] += 1
        return StepOutput(loss.detach(), tokens=6, lr=0.1, metrics={f"m_{phase}": torch.tensor(float(step))})

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        return {"done_b": float(self.done["b"])}

    def state_dict(self):
        return {"optimizer": self.optimizer.state_dict(), "done": dict(self.done)}

    def load_state_dict(self, state):
        self.optimizer.load_state_dict(state["optimizer"])
        self.done = dict(state["done"])


def test_trainer_reports_each_phase_apart_and_passes_the_algorithms_metrics():
    torch.manual_seed(0)
    model = nn.Linear(3, 1)
    source = Replay()
    val_losses = iter([1.0, 2.0])
    hooks = TaskHooks(loss=None, tokens=None, evaluate=lambda net: {"val_loss": next(val_losses)})
    cfg = TrainConfig(steps=6, log_every=10, eval_every=3, warmup_steps=0)
    seen: list[ev.Event] = []
    saved: list[tuple[str, dict]] = []
    algorithm = TwoPhases(model, source)
    state = TrainState(run_id="t")
    trainer = Trainer(model, cfg, source, hooks, state, device=torch.device("cpu"), algorithm=algorithm,
                      on_event=seen.append,
                      save=lambda which, st: saved.append((which, algorithm.state_dict())) or which)
    assert trainer.run() == "finished"
    steps = [e for e in seen if isinstance(e, ev.Step)]
    # the change of phase forces a report: phase a's three steps are not averaged into phase b's
    assert [(e.step, e.phase, e.metrics) for e in steps] == [(3, "a", {"m_a": 1.0}), (6, "b", {"m_b": 4.0})]
    evals = [e for e in seen if isinstance(e, ev.Eval)]
    assert [e.metrics for e in evals] == [{"done_b": 0.0}, {"done_b": 3.0}]
    # a later phase starts a new race for best.pt, though its validation loss is higher
    assert [e.best for e in evals] == [True, True] and state.extra["best_phase"] == "b"
    assert [which for which, _ in saved] == ["last", "best", "last", "best"]
    assert saved[-1][1]["done"] == {"a": 3, "b": 3}


def test_train_state_extra_and_algorithm_state_go_into_last_checkpoint_and_back(tmp_path):
    from textgen_core.models import GPT, GPTConfig
    from textgen_core.training.run import _CheckpointSaver, _restore

    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=10, n_layer=1, n_head=1, n_embd=8, block_size=4))
    algorithm = TwoPhases(model, Replay())
    algorithm.done = {"a": 3, "b": 1}
    tok = SimpleNamespace(to_bytes=lambda: b"tok")
    project = SimpleNamespace(config=SimpleNamespace(task="continuation"))
    saver = _CheckpointSaver(project, "gpt", model, algorithm, SimpleNamespace(train=Replay()), (tok, tok),
                             TrainConfig(), seen_nothing)
    state = TrainState(run_id="r", step=4, extra={"phase_log": [[0, "a"], [3, "b"]]})
    content = saver.content(state, resumable=True)
    assert is_resumable(content) and content["algorithm"]["done"] == {"a": 3, "b": 1}
    assert not is_resumable(saver.content(state, resumable=False))
    fresh = GPT(GPTConfig(vocab_size=10, n_layer=1, n_head=1, n_embd=8, block_size=4))
    restored = _restore(content, fresh, SimpleNamespace(train=Replay()), tmp_path / "last.pt")
    assert restored.extra == {"phase_log": [[0, "a"], [3, "b"]]} and restored.step == 4
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), fresh.state_dict().values()))


def seen_nothing(event: ev.Event) -> None:
    raise AssertionError(f"no event expected, got {event}")
