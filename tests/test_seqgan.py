"""SeqGAN: discriminator, rollouts, policy gradient, self-BLEU, the three phases, exact resume in the
adversarial phase, and the command line from init to generate."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from conftest import NOVEL

from textgen_core import metrics, models
from textgen_core.data import LMBatch
from textgen_core.models.seqgan import SeqGAN, SeqGANConfig
from textgen_core.models.seqgan_discriminator import CNNDiscriminator
from textgen_core.project import Project
from textgen_core.training import events
from textgen_core.training.checkpoint import load_checkpoint
from textgen_core.training.run import train_project
from textgen_core.training.seqgan import Episodes, draw, policy_gradient_loss, rollout_rewards, sample

V = 20
TINY = dict(vocab_size=V, emb_dim=16, hidden_size=24, block_size=10, prefix_tokens=3, d_emb_dim=8,
            d_filter_sizes="2,3", d_num_filters=8, rollouts=3)
# a project whose phases take 4, 3 and (train.steps - 7) steps, in seconds
SETTINGS = ["model.emb_dim=16", "model.hidden_size=32", "model.block_size=12", "model.prefix_tokens=4",
            "model.d_emb_dim=16", "model.d_filter_sizes=2,3", "model.d_num_filters=8", "model.rollouts=2",
            "model.mle_steps=4", "model.d_pretrain_steps=3", "train.batch_size=8", "train.eval_every=6",
            "train.log_every=1", "train.eval_batches=1", "train.num_samples=1", "train.warmup_steps=2"]


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)            # tiny models: threads only add contention on a busy machine
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def novel(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("seqgan") / "novel.txt"
    path.write_text(NOVEL.read_text(encoding="utf-8")[:12000], encoding="utf-8")
    return path


def tiny_seqgan(seed: int = 0) -> SeqGAN:
    torch.manual_seed(seed)
    return SeqGAN(SeqGANConfig(**TINY))


# ----------------------------------------------------------------------------- the pieces
def test_discriminator_scores_whole_sequences_short_ones_included():
    torch.manual_seed(0)
    disc = CNNDiscriminator(V, 8, (2, 3, 5), 4, dropout=0.5).eval()
    tokens = torch.randint(1, V, (6, 9))
    logits = disc(tokens)
    assert logits.shape == (6,)
    assert torch.equal(disc(tokens[:2]), logits[:2])                  # rows are scored apart
    assert disc(tokens[:, :3]).shape == (6,)                          # shorter than the widest filter
    assert torch.all(disc.highway.gate.bias == -1.0)


def test_draw_follows_the_distribution_and_its_generator():
    logits = torch.log(torch.tensor([[0.1, 0.0, 0.6, 0.3]])).repeat(40_000, 1)
    counts = torch.bincount(draw(logits, torch.Generator().manual_seed(1)), minlength=4) / 40_000
    assert counts[1] == 0 and torch.allclose(counts, torch.tensor([0.1, 0.0, 0.6, 0.3]), atol=0.01)
    again = draw(logits[:50], torch.Generator().manual_seed(1))
    assert torch.equal(again, draw(logits[:50], torch.Generator().manual_seed(1)))


def test_samples_continue_their_prefix():
    model = tiny_seqgan()
    real = torch.randint(1, V, (4, 10))
    seqs = sample(model.generator, Episodes.windows(real, 3))
    assert seqs.shape == (4, 10) and torch.equal(seqs[:, :3], real[:, :3])
    assert not torch.equal(seqs, real)


# prefix-LM couplet rows (pad 0, sep 9, eos 3): "1 2 <sep> 4 5 <eos>" and "6 7 8 <sep> 5 4 6 <eos>"
PAIR_X = torch.tensor([[1, 2, 9, 4, 5, 0, 0], [6, 7, 8, 9, 5, 4, 6]])
PAIR_Y = torch.tensor([[0, 0, 4, 5, 3, 0, 0], [0, 0, 0, 5, 4, 6, 3]])


def test_couplet_rows_keep_the_first_line_and_write_the_second_as_long_as_the_real_one():
    ep = Episodes.from_batch(LMBatch(PAIR_X, PAIR_Y, pad_id=0), prefix=5)
    assert ep.rows.tolist() == [[1, 2, 9, 4, 5, 3, 0, 0], [6, 7, 8, 9, 5, 4, 6, 3]]
    assert ep.start.tolist() == [3, 4] and ep.end.tolist() == [5, 7] and ep.width == 3
    model = tiny_seqgan()
    for seed in range(5):
        torch.manual_seed(seed)
        fake = sample(model.generator, ep)
        kept = ~ep.written()
        assert torch.equal(fake[kept], ep.rows[kept])              # first lines, separators, eos, pad
    torch.manual_seed(0)
    rewards = rollout_rewards(model.generator, model.discriminator, fake, ep, rollouts=3)
    assert rewards.shape == (2, 3)
    assert rewards[0, 2] == 0 and bool((rewards[1] > 0).all())     # row 0 writes two tokens only
    model.discriminator.eval()
    own = torch.sigmoid(model.discriminator(fake))
    assert torch.allclose(rewards[0, 1], own[0]) and torch.allclose(rewards[1, 2], own[1])


def test_rollout_rewards_per_written_token_and_the_last_is_the_passages_own_score():
    model = tiny_seqgan()
    seqs = torch.randint(1, V, (5, 10))
    torch.manual_seed(1)
    rewards = rollout_rewards(model.generator, model.discriminator, seqs, Episodes.windows(seqs, 3), 4)
    assert rewards.shape == (5, 7) and bool(((rewards > 0) & (rewards < 1)).all())
    assert model.discriminator.training                               # scored without dropout, then
    model.discriminator.eval()                                        # left in training mode
    own = torch.sigmoid(model.discriminator(seqs))
    assert torch.allclose(rewards[:, -1], own)                        # nothing left to roll out
    assert not torch.allclose(rewards[:, 0], own)                     # earlier tokens: completions


def test_policy_gradient_raises_the_likelihood_of_rewarded_tokens():
    model = tiny_seqgan()
    seqs = torch.randint(1, V, (4, 10))
    gen = model.generator

    ep = Episodes.windows(seqs, 3)

    def logp() -> torch.Tensor:
        with torch.no_grad():
            return -policy_gradient_loss(gen, seqs, ep, torch.ones(4, 7))

    before = logp()
    loss = policy_gradient_loss(gen, seqs, ep, torch.full((4, 7), 0.8))
    loss.backward()
    torch.optim.SGD(gen.parameters(), lr=0.5).step()
    assert logp() > before


def test_self_bleu_rises_when_the_texts_repeat_each_other():
    same = ["却说宝玉来到园中"] * 3
    varied = ["却说宝玉来到园中", "黛玉听了不觉红了脸", "凤姐笑道你们都来"]
    assert metrics.self_bleu(same) == pytest.approx(100.0)
    assert metrics.self_bleu(varied) < 20.0
    assert metrics.self_bleu(["只有一句"]) == 0.0 == metrics.self_bleu([])


# ----------------------------------------------------------------------------- training
def make_project(root: Path, novel: Path) -> Project:
    return Project.create(root, "continuation", [novel], model="seqgan", overrides=SETTINGS)


def test_three_phases_in_order_with_their_metrics(novel, tmp_path):
    project = make_project(tmp_path / "p", novel)
    seen: list[events.Event] = []
    outcome = train_project(project, steps=12, device="cpu", on_event=seen.append)
    assert outcome.status == "finished" and outcome.step == 12
    steps = [e for e in seen if isinstance(e, events.Step)]
    assert [e.phase for e in steps] == ["mle"] * 4 + ["d_pretrain"] * 3 + ["adversarial"] * 5
    assert all(set(e.metrics) == {"d_acc"} for e in steps[4:7])
    adversarial = steps[7:]
    assert all(set(e.metrics) == {"reward", "d_loss", "d_acc"} for e in adversarial)
    rewards = [e.metrics["reward"] for e in adversarial]
    assert all(0 < r < 1 for r in rewards) and len(set(rewards)) == len(rewards)     # rewards change
    evals = [e for e in seen if isinstance(e, events.Eval)]
    assert [e.step for e in evals] == [6, 12] and all(e.val_loss is not None for e in evals)
    # best.pt is the adversarial phase's best, whatever the pre-training's validation loss was
    assert evals[-1].best and load_checkpoint(project.checkpoint_path("best"))["step"] == 12
    assert all({"self_bleu", "d_acc_valid"} <= set(e.metrics) and e.bleu is not None for e in evals)
    stored = project.read_metrics(outcome.run_id)              # metrics.jsonl: flat, as the studio reads it
    assert [e["phase"] for e in stored if e["event"] == "step"][-1] == "adversarial"
    assert "reward" in next(e for e in stored if e["event"] == "step" and e["phase"] == "adversarial")
    state = load_checkpoint(project.checkpoint_path("last"))["algorithm"]
    assert state["done"] == {"mle": 4, "d_pretrain": 3, "adversarial": 5}
    assert set(state["optimizers"]) == {"mle", "pg", "d"}


def test_stop_and_resume_in_the_adversarial_phase_equals_an_uninterrupted_run(novel, tmp_path):
    straight = make_project(tmp_path / "a", novel)
    train_project(straight, steps=11, device="cpu")

    resumed = make_project(tmp_path / "b", novel)
    seen: list[events.Event] = []
    stop = lambda: sum(isinstance(e, events.Step) for e in seen) >= 9   # noqa: E731  (2 adversarial steps)
    outcome = train_project(resumed, steps=11, device="cpu", on_event=seen.append, should_stop=stop)
    assert outcome.status == "stopped" and outcome.step == 9
    saved = load_checkpoint(resumed.checkpoint_path("last"))["algorithm"]["done"]
    assert saved == {"mle": 4, "d_pretrain": 3, "adversarial": 2}
    later: list[events.Event] = []
    outcome = train_project(resumed, steps=11, device="cpu", resume=True, on_event=later.append)
    assert outcome.status == "finished" and outcome.step == 11
    assert [e.phase for e in later if isinstance(e, events.Step)] == ["adversarial", "adversarial"]

    a = load_checkpoint(straight.checkpoint_path("last"))
    b = load_checkpoint(resumed.checkpoint_path("last"))
    assert a["step"] == b["step"] == 11
    for name, tensor in a["model"].items():                   # generator and discriminator
        assert torch.equal(tensor, b["model"][name]), name
    assert a["algorithm"]["done"] == b["algorithm"]["done"] and a["data_state"] == b["data_state"]


def test_cli_init_train_generate(cli, novel, tmp_path, caplog):
    project = tmp_path / "story"
    sets = [arg for item in SETTINGS for arg in ("--set", item)]
    r = cli("init", project, "--task", "continuation", "--data", novel, "--model", "seqgan", *sets)
    assert r.code == 0, r
    assert json.loads(cli("info", project, "--json").out)["model"] == "seqgan"
    caplog.set_level(logging.INFO, logger="textgen")
    r = cli("train", project, "--steps", "9", "--device", "cpu")
    assert r.code == 0 and "finished at step 9" in r.out, r
    log = caplog.text                                   # the progress lines
    assert "[mle]" in log and "[d_pretrain]" in log and "[adversarial]" in log, log
    assert "reward" in log and "self_bleu" in log, log
    for mode in (["--temperature", "0.8", "--seed", "1"], ["--greedy"], ["--beam", "3", "--n-best", "2"]):
        r = cli("generate", project, "却说宝玉", *mode, "--max-tokens", "12", "--json",
                "--checkpoint", "last")
        assert r.code == 0, (mode, r)
        hyps = json.loads(r.out)["hypotheses"]
        assert hyps and all(h["text"] and len(h["ids"]) <= 12 for h in hyps), hyps
    assert models.get_spec("seqgan").tasks == ("couplet", "continuation")


def test_couplets_train_through_the_adversarial_phase_and_keep_their_form(cli, couplet_files, tmp_path):
    project = tmp_path / "couplets"
    sets = [arg for item in SETTINGS if "block_size" not in item for arg in ("--set", item)]
    r = cli("init", project, "--task", "couplet", "--data", *couplet_files, "--model", "seqgan", *sets,
            "--set", "model.block_size=32")
    assert r.code == 0, r
    seen: list[events.Event] = []
    outcome = train_project(Project.open(project), steps=10, device="cpu", on_event=seen.append)
    assert outcome.status == "finished"
    adversarial = [e for e in seen if isinstance(e, events.Step) and e.phase == "adversarial"]
    assert len(adversarial) == 3 and all(0 < e.metrics["reward"] < 1 for e in adversarial)
    evals = [e for e in seen if isinstance(e, events.Eval)]
    assert evals and all(e.bleu is not None and "self_bleu" in e.metrics for e in evals)   # greedy BLEU
    for mode in (["--greedy"], ["--beam", "3", "--n-best", "2"], ["--temperature", "0.8", "--seed", "1"]):
        r = cli("generate", project, "春风得意", *mode, "--json", "--checkpoint", "last")
        assert r.code == 0, (mode, r)
        hyps = json.loads(r.out)["hypotheses"]
        assert hyps and all(len(h["text"]) == 4 for h in hyps), hyps
    r = cli("generate", project, "一二三四五六七八九十一二三四五六七", "--json")
    assert r.code == 2 and "reads at most" in r.err, r


def test_a_couplet_project_reads_first_lines_as_long_as_modern_couplets_have(cli, couplet_files, tmp_path):
    """The story block (24-48) would cut one modern couplet in nine; on couplets seqgan's block holds
    `first line <sep> second line` for a first line of up to 31 characters."""
    project = tmp_path / "couplets"
    sets = [arg for item in SETTINGS if "block_size" not in item for arg in ("--set", item)]
    r = cli("init", project, "--task", "couplet", "--data", *couplet_files, "--model", "seqgan", *sets)
    assert r.code == 0, r
    assert Project.open(project).config.model["block_size"] == 64
    train_project(Project.open(project), steps=2, device="cpu")
    first = "晨读汉瓦秦砖，夕览经史子集，满眼文雄诗灿，辉腾玉宇"          # 25 characters
    r = cli("generate", project, first, "--greedy", "--json", "--checkpoint", "last")
    assert r.code == 0, r
    second = json.loads(r.out)["hypotheses"][0]["text"]
    assert len(second) == len(first) and second[6] == "，" and second[13] == "，", second
