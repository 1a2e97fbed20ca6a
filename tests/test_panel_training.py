"""The live training panel: buttons per state, curves from event streams, coalesced redraws."""

from __future__ import annotations

import math
import time

import pytest
from PySide6.QtCore import Qt

from app.panels import curves
from app.panels.training import TrainingPanel
from textgen_core.training import events as ev
from textgen_core.training.progress import format_eta

T0 = 1_795_279_872.0


def stream(steps=100, *, eval_every=20, log_every=1, seq2seq=True, best_until=60, start=0,
           dt=0.5, tps=2345.0):
    """Events as train_project sends them to the studio (typed events in their metrics.jsonl form),
    shaped like a real tiny couplet run."""
    typed: list[ev.Event] = [
        ev.Config(step=start, time=T0, device="cpu", model="transformer", parameters=360704,
                  world_size=1, resumed=start > 0),
        ev.Start(step=start, time=T0, steps=steps),
    ]
    for step in range(start + 1, steps + 1):
        t = T0 + step * dt
        if step % log_every == 0 or step == steps:
            typed.append(ev.Step(step=step, time=t, train_loss=8.0 * math.exp(-step / 80),
                                 lr=1e-3 * min(1.0, step / 30), tokens_per_s=tps))
        if step % eval_every == 0 or step == steps:
            val = 7.5 - step / 40 if step <= best_until else 6.0 + step / 200
            scores = {"bleu": step / 10, "chrf": step / 5} if seq2seq else {}
            typed.append(ev.Eval(step=step, time=t, best=step <= best_until, val_loss=val,
                                 val_ppl=math.exp(val), **scores))
            ref = "骇浪惊涛有巨鳌" if seq2seq else None
            written = ev.Written("汪洋大海多瑰宝", f"out{step}", ref)
            typed.append(ev.Sample(step=step, time=t, samples=(written,)))
            typed.append(ev.Checkpoint(step=step, time=t, kind="last", path="p/checkpoints/last.pt"))
            if step <= best_until:
                typed.append(ev.Checkpoint(step=step, time=t, kind="best", path="p/checkpoints/best.pt"))
    typed.append(ev.Finished(step=steps, time=T0 + steps * dt + 1))
    return [event.to_json() for event in typed]


@pytest.fixture
def panel(qtbot):
    widget = TrainingPanel()
    qtbot.addWidget(widget)
    widget.resize(900, 600)
    return widget


ENABLED = {  # state -> (start, pause, stop, resume)
    "idle": (True, False, False, False),
    "running": (False, True, True, False),
    "paused": (False, False, True, True),
    "finished": (True, False, False, True),
}


def buttons(panel):
    return panel.start_button, panel.pause_button, panel.stop_button, panel.resume_button


@pytest.mark.parametrize("state", list(ENABLED))
def test_buttons_enabled_per_state(panel, state):
    panel.set_state(state)
    assert panel.state() == state
    assert tuple(b.isEnabled() for b in buttons(panel)) == ENABLED[state]


def test_resume_offered_when_idle_only_with_a_checkpoint(panel):
    assert not panel.resume_button.isEnabled()
    panel.set_can_resume(True)
    assert panel.resume_button.isEnabled() and panel.start_button.isEnabled()
    panel.set_state("running")
    assert not panel.resume_button.isEnabled()
    with pytest.raises(ValueError, match="unknown training state"):
        panel.set_state("walking")


def test_buttons_emit_their_signals(panel, qtbot):
    for state, button, signal in (
        ("idle", panel.start_button, panel.start_requested),
        ("running", panel.pause_button, panel.pause_requested),
        ("running", panel.stop_button, panel.stop_requested),
        ("paused", panel.resume_button, panel.resume_requested),
        ("paused", panel.stop_button, panel.stop_requested),
        ("finished", panel.resume_button, panel.resume_requested),
    ):
        panel.set_state(state)
        with qtbot.waitSignal(signal, timeout=1000):
            qtbot.mouseClick(button, Qt.MouseButton.LeftButton)


def test_disabled_button_emits_nothing(panel, qtbot):
    panel.set_state("idle")
    with qtbot.assertNotEmitted(panel.pause_requested):
        qtbot.mouseClick(panel.pause_button, Qt.MouseButton.LeftButton)


def test_stream_fills_the_curves(panel):
    panel.add_events(stream(100, eval_every=20))
    panel.redraw_now()
    xs, ys = panel.series("train_loss")
    assert xs == list(range(1, 101)) and ys[0] == pytest.approx(8.0 * math.exp(-1 / 80))
    assert len(panel.drawn("train_loss")[0]) == 100
    assert panel.drawn("val_loss")[0] == [20, 40, 60, 80, 100]
    assert len(panel.drawn("val_ppl")[0]) == 5
    assert len(panel.drawn("lr")[0]) == len(panel.drawn("tokens_per_s")[0]) == 100
    assert panel.drawn("bleu")[1] == [2.0, 4.0, 6.0, 8.0, 10.0]
    assert panel.drawn("chrf")[1] == [4.0, 8.0, 12.0, 16.0, 20.0]
    assert panel.metrics.bleu_stack.currentWidget() is panel.metrics.bleu_plot
    assert "transformer" in panel.info_label.text() and "0.36 M parameters" in panel.info_label.text()
    assert panel.state() == "finished"


def test_log_checkbox_switches_the_loss_plot_to_log(panel, qtbot):
    panel.add_events(stream(40))
    axis = panel.loss_plot.getPlotItem().getAxis("left")
    assert not axis.logMode
    qtbot.mouseClick(panel.log_check, Qt.MouseButton.LeftButton)
    panel.redraw_now()
    assert panel.log_check.isChecked() and axis.logMode
    panel.log_check.setChecked(False)
    assert not axis.logMode


def test_smoothing_changes_drawn_values_not_stored_ones(panel):
    events = stream(60)
    for i, e in enumerate(events):           # a noisy train loss, so smoothing shows
        if e["event"] == "step":
            e["train_loss"] += 0.5 if i % 2 else -0.5
    panel.add_events(events)
    stored = panel.series("train_loss")
    panel.smooth_slider.setValue(0)
    panel.redraw_now()
    assert panel.drawn("train_loss") == stored
    panel.smooth_slider.setValue(90)
    panel.redraw_now()
    assert panel.smoothing() == pytest.approx(0.9) and panel.smooth_value.text() == "0.90"
    xs, smooth = panel.drawn("train_loss")
    assert xs == stored[0] and smooth != stored[1]
    assert max(smooth[10:]) - min(smooth[10:]) < max(stored[1][10:]) - min(stored[1][10:])
    assert panel.series("train_loss") == stored
    assert smooth[0] == pytest.approx(stored[1][0])       # debiased: starts on the first value


def test_best_marker_at_the_best_step(panel):
    panel.add_events(stream(100, eval_every=20, best_until=40))
    panel.redraw_now()
    xs, ys = panel.drawn("best")
    assert xs == [20, 40] and ys == pytest.approx([7.0, 6.5])
    assert panel.best_line.isVisible() and panel.best_line.value() == 40
    panel.reset()
    panel.redraw_now()
    assert not panel.best_line.isVisible() and panel.drawn("best") == ([], [])


def test_eta_and_progress(panel):
    events = [e for e in stream(300, dt=0.5) if e["step"] <= 120 and e["event"] != "finished"]
    assert panel.status_text() == "no training run yet"
    panel.add_events(events)
    panel.redraw_now()
    # 180 steps left at 2 steps/s
    assert panel.status_text() == "step 120 / 300 · 2,345 tok/s · ETA 1m30s"
    assert panel.eta_seconds() == pytest.approx(90)
    assert panel.status_label.text() == panel.status_text()
    assert (panel.progress.value(), panel.progress.maximum()) == (120, 300)
    panel.add_events([ev.Finished(step=300, time=T0 + 200)])
    assert "finished" in panel.status_text() and "ETA" not in panel.status_text()


def test_eta_unknown_before_two_steps_and_duration_format(panel):
    panel.reset(500)
    assert panel.status_text() == "step 0 / 500 · ETA –"
    assert format_eta(42) == "42s" and format_eta(125) == "2m05s"
    assert format_eta(3 * 3600 + 2 * 60 + 11) == "3h02m"


def test_samples_newest_first_with_references(panel):
    panel.add_events(stream(40, eval_every=20))
    panel.redraw_now()
    text = panel.samples_text()
    assert text.index("step 40") < text.index("step 20")
    assert "汪洋大海多瑰宝 → out40" in text and "reference: 骇浪惊涛有巨鳌" in text


def test_story_stream_has_no_bleu(panel):
    panel.redraw_now()
    assert "after the first evaluation" in panel.metrics.no_bleu_label.text()
    panel.add_events(stream(40, seq2seq=False))
    panel.redraw_now()
    assert panel.metrics.bleu_stack.currentWidget() is panel.metrics.no_bleu_label
    assert "No BLEU for continuation" in panel.metrics.no_bleu_label.text()
    assert "reference" not in panel.samples_text() and "out40" in panel.samples_text()


def test_history_runs_drawn_faded_and_toggled(panel, qtbot):
    assert not panel.history_check.isEnabled()
    panel.show_history({"run-a": stream(80), "run-b": stream(50, seq2seq=False)})
    panel.add_events(stream(30))
    panel.redraw_now()
    items = panel.history_items()
    assert len(items) == 4 and all(item.isVisible() for item in items)
    lengths = sorted(len(item.xData) for item in items)
    assert lengths == [3, 4, 50, 80]
    assert items[0].opts["pen"].style() == Qt.PenStyle.DashLine
    dotted = sorted((len(item.xData), item.opts["symbol"]) for item in items)
    assert dotted == [(3, "o"), (4, "o"), (50, None), (80, None)]  # a lone evaluation stays visible
    assert panel.history_check.isEnabled() and "(2)" in panel.history_check.text()
    qtbot.mouseClick(panel.history_check, Qt.MouseButton.LeftButton)
    panel.redraw_now()
    assert not any(item.isVisible() for item in items)
    panel.show_history({})
    assert panel.history_items() == [] and not panel.history_check.isEnabled()


def test_failed_stopped_and_resumed_runs(panel):
    panel.set_state("running")
    events = stream(50)[:-1]
    panel.add_events(events + [ev.Failed(step=50, time=T0 + 30, message="out of memory")])
    assert panel.state() == "idle"
    assert not panel.error_label.isHidden() and "out of memory" in panel.error_label.text()
    assert panel.error_label.styleSheet().startswith("color: #d32f2f")
    panel.reset(100)
    assert panel.error_label.isHidden()
    panel.set_state("running")
    stopped = ev.Stopped(step=40, time=T0 + 30)
    panel.add_events(stream(100)[:60] + [stopped])
    assert panel.state() == "finished" and panel.resume_button.isEnabled()
    # resuming from step 30 (an earlier checkpoint) drops the points past it
    panel.set_state("running")
    panel.add_events(stream(100, start=30)[:3])
    assert max(panel.series("train_loss")[0]) == 31
    assert "resumed" in panel.info_label.text()


def test_buffers_bounded_and_add_events_fast(panel):
    events = [ev.Step(step=i, time=T0 + i * 0.01, train_loss=5.0 + (i % 7) / 10, lr=1e-3,
                      tokens_per_s=1000.0).to_json() for i in range(1, 50_001)]
    begin = time.perf_counter()
    panel.add_events(events)
    assert time.perf_counter() - begin < 1.0
    assert len(panel.series("train_loss")[0]) == curves.MAX_POINTS
    assert panel.series("train_loss")[0][-1] == 50_000 and panel.series("lr")[0][0] == 30_001
    panel.smooth_slider.setValue(95)
    begin = time.perf_counter()
    panel.redraw_now()
    assert time.perf_counter() - begin < 1.0
    xs, _ = panel.drawn("train_loss")
    assert len(xs) <= curves.MAX_DRAWN and xs[-1] == 50_000


def test_timer_coalesces_redraws(panel, qtbot):
    qtbot.wait(250)
    before = panel.redraw_count
    for event in stream(200):
        panel.add_events([event])          # hundreds of calls before the timer can tick
    assert panel.redraw_count == before
    qtbot.waitUntil(lambda: panel.redraw_count > before, timeout=2000)
    assert panel.status_label.text() == panel.status_text()
    qtbot.wait(350)                        # more ticks, nothing new: no more redraws
    assert panel.redraw_count == before + 1


def test_fits_at_900_by_600(panel, qtbot, tmp_path):
    panel.show_history({"run-a": stream(80)})
    panel.add_events(stream(60))
    panel.show()
    qtbot.waitExposed(panel)
    panel.redraw_now()
    for widget in (*buttons(panel), panel.log_check, panel.history_check, panel.status_label,
                   panel.info_label):
        assert widget.width() >= widget.sizeHint().width(), widget
    assert not panel.grab().isNull()


def test_metrics_tab_built_when_first_shown(panel):
    panel.add_events(stream(40))
    assert panel._metrics is None
    panel.tabs.setCurrentIndex(1)
    assert panel.tabs.widget(1) is panel._metrics is panel.metrics
    assert panel.tabs.currentIndex() == 1 and panel.tabs.tabText(1) == "Metrics"
    assert len(panel.metrics.curves["lr"].xData) == 40    # drawn straight away


def test_an_opened_project_shows_where_its_saved_model_stands(panel):
    stopped = stream(100)[:-1] + [ev.Stopped(step=51, time=T0 + 30).to_json()]
    panel.reset(300)
    panel.show_saved({"20260101-000000": stream(40), "20260102-000000": stopped})
    panel.set_can_resume(True)
    panel.redraw_now()
    assert panel.status_text() == "step 51 / 300 · stopped"
    assert panel.progress.value() == 51 and panel.resume_button.isEnabled()
    panel.show_saved({})                                   # no run recorded: nothing changes
    assert panel.status_text() == "step 51 / 300 · stopped"


def test_a_run_recorded_before_events_were_typed_still_draws(panel, tmp_path):
    import json
    from pathlib import Path

    path = Path(__file__).parent / "data" / "metrics_before_typed_events.jsonl"
    old = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    panel.show_history({"20250101-000000": old})
    assert len(panel.history_items()) == 2              # its train and validation loss curves
    panel.add_events(old)
    panel.redraw_now()
    assert panel.series("train_loss") == ([5], [6.62])
    assert panel.series("val_loss") == ([5, 8], [6.1, 812.0]) and panel.series("bleu") == ([5], [0.91])
    assert "春风得意" in panel.samples_text() and "transformer" in panel.info_label.text()
    assert panel.extra_metrics() == [] and panel.phases() == []


def seqgan_like_stream() -> list[dict]:
    """A multi-phase run whose algorithm reports metrics the panel has never heard of."""
    typed: list[ev.Event] = [ev.Start(step=0, time=T0, steps=30)]
    for step in range(1, 31):
        phase = "mle" if step <= 10 else "d_pretrain" if step <= 20 else "adversarial"
        extra = {} if phase == "mle" else {"d_acc": 0.5 + step / 100}
        if phase == "adversarial":
            extra["reward"] = step / 60
        typed.append(ev.Step(step=step, time=T0 + step, train_loss=3.0 - step / 20, lr=1e-3,
                             tokens_per_s=100.0, phase=phase, metrics=extra))
        if step % 10 == 0:
            typed.append(ev.Eval(step=step, time=T0 + step, val_loss=2.0, metrics={"self_bleu": step / 2}))
    return [event.to_json() for event in typed]


def test_unknown_metrics_get_their_own_plots_and_phases_are_marked(panel):
    panel.add_events(seqgan_like_stream())
    panel.redraw_now()
    assert panel.extra_metrics() == ["self_bleu", "d_acc", "reward"]     # in order of appearance
    assert panel.series("reward") == (list(range(21, 31)), [s / 60 for s in range(21, 31)])
    assert panel.phases() == [(0, "mle"), (10, "d_pretrain"), (20, "adversarial")]
    lines = [item for item in panel.loss_plot.getPlotItem().items if isinstance(item, curves.pg.InfiniteLine)]
    marked = sorted((line.value(), line.label.format) for line in lines if line is not panel.best_line)
    assert marked == [(0, "mle"), (10, "d_pretrain"), (20, "adversarial")]
    panel.tabs.setCurrentIndex(1)                       # the Metrics tab is built on first show
    assert set(panel.metrics.extra_plots) == {"d_acc", "self_bleu", "reward"}
    assert panel.drawn("self_bleu") == ([10.0, 20.0, 30.0], [5.0, 10.0, 15.0])
    assert len(panel.drawn("d_acc")[0]) == 20
    # resuming from step 15 drops what came after it, phase marks included
    panel.add_events([ev.Start(step=15, time=T0 + 50, steps=30)])
    panel.redraw_now()
    assert panel.phases() == [(0, "mle"), (10, "d_pretrain")]
    assert max(panel.series("d_acc")[0]) == 15 and panel.series("reward") == ([], [])


def test_smoothing_starts_afresh_in_each_phase(panel):
    panel.add_events(seqgan_like_stream())
    panel.smooth_slider.setValue(90)
    panel.redraw_now()
    xs, smooth = panel.drawn("train_loss")
    raw = dict(zip(*panel.series("train_loss")))
    for first in (1, 11, 21):                     # the first point of each phase is its own raw value
        assert smooth[xs.index(first)] == pytest.approx(raw[first])
    assert smooth[xs.index(12)] != pytest.approx(raw[12])
