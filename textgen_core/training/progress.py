"""Progress of a training run for the command line: ``step 120/400 (30%) ... ETA 1m05s``.

:class:`Progress` follows the trainer's events. The ETA is the steps still to go divided by this
run's pace so far (evaluations and checkpoints included, since they will happen again).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from textgen_core.training.events import Event, Start, Step


def format_eta(seconds: float | None) -> str:
    """``42s``, ``1m05s``, ``2h03m``; ``?`` while unknown."""
    if seconds is None:
        return "?"
    total = max(0, round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


@dataclass
class Progress:
    """The target step and this run's pace, learnt from the "start" event."""

    target: int | None = None
    first_step: int = 0
    first_time: float = 0.0

    def update(self, event: Event) -> None:
        if isinstance(event, Start):
            self.target = event.steps
            self.first_step, self.first_time = event.step, event.time

    def eta_seconds(self, step: int, now: float) -> float | None:
        done, elapsed = step - self.first_step, now - self.first_time
        if self.target is None or done <= 0 or elapsed <= 0:
            return None
        return max(0, self.target - step) * elapsed / done

    def position(self, step: int) -> str:
        """``step 120/400`` (``step 120`` before the target is known)."""
        return f"step {step}/{self.target}" if self.target else f"step {step}"

    def step_line(self, event: Step) -> str:
        """The log line of a Step: ``step 120/400 (30%)  [adversarial]  loss ...  ETA 1m05s  d_acc 0.71``."""
        step = event.step
        percent = f" ({100 * step // self.target}%)" if self.target else ""
        phase = f"  [{event.phase}]" if event.phase else ""
        eta = format_eta(self.eta_seconds(step, event.time))
        return (f"{self.position(step)}{percent}{phase}  loss {event.train_loss:.4f}  lr {event.lr:.2e}  "
                f"{event.tokens_per_s:.0f} tok/s  ETA {eta}{format_metrics(event.metrics)}")


def format_metrics(metrics: Mapping[str, float]) -> str:
    """``  d_acc 0.7100  reward 0.4210`` (empty without metrics)."""
    return "".join(f"  {name} {value:.4g}" for name, value in metrics.items())
