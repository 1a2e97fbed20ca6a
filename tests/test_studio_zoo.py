"""Each family of the zoo trains and writes in the real window: full-prefix (transformer), recurrent
with and without attention, the non-autoregressive tagger, a language model on pairs and the GAN."""

from __future__ import annotations

import pytest

from textgen_core import models
from textgen_core.project import Project

QUICK = ["train.eval_every=5", "train.log_every=1", "train.bleu_examples=4", "train.eval_batches=1",
         "model.block_size=32"]
FAMILIES = ["transformer", "gru-seq2seq", "bahdanau-attention", "cnn-tagger", "gpt", "seqgan"]
# SeqGAN reaches its adversarial phase within the six steps
OWN = {"seqgan": ["model.mle_steps=2", "model.d_pretrain_steps=2", "model.rollouts=2"]}


@pytest.mark.parametrize("name", FAMILIES)
def test_a_family_trains_and_writes_in_the_studio(qtbot, studio_window, couplet_files, tmp_path, name):
    from app import window_actions

    if "couplet" not in models.get_spec(name).tasks:
        pytest.skip(f"{name} does not write couplets")
    project = Project.create(tmp_path / name, "couplet", couplet_files, model=name,
                             overrides=QUICK + OWN.get(name, []))
    window = studio_window
    assert window.open_project(project.root)
    with qtbot.waitSignal(window.training.finished, timeout=120_000) as done:
        window_actions.start_training(window, resume=False, steps=6)
    assert done.args[0]["status"] == "finished" and done.args[0]["step"] == 6
    if name == "seqgan":
        assert [p for _, p in window.panels["training"].phases()] == ["mle", "d_pretrain", "adversarial"]
    write = window.panels["write"]
    write.first_line.setText("晚风摇树树还挺")
    with qtbot.waitSignal(window.generation.result, timeout=60_000) as got:
        write.write_button.click()
    assert len(got.args[0].hypotheses[0].text) == 7
    attention = window.panels["attention"]
    if models.get_spec(name).has_attention:
        assert attention.current_matrix().size > 0
    else:
        assert attention.stack.currentWidget() is attention.placeholder
        assert f"{name} has no attention" in attention.placeholder.text()
