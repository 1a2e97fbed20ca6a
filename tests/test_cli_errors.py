"""Every bad input gets exit status 2 and one ``error:`` line naming the problem — no traceback."""

from __future__ import annotations

import gzip
import io
import pickle
import zipfile
from pathlib import Path

import pytest


def assert_clean_error(result, *needles: str) -> None:
    assert result.code == 2, result
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result
    assert "Traceback" not in result.err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    "name, content, needle",
    [
        ("binary.txt", b"\x00\x01\x02\xff\xfe\x00garbage\x00" * 50, "binary.txt"),
        ("data.zip", None, "zip"),
        ("data.txt.gz", gzip.compress("晚风\t晨露\n".encode()), "gzip"),
        ("empty.tsv", b"", "empty.tsv"),
        ("blank.tsv", b"  \n\n\t \n", "blank.tsv"),
        ("nosep.tsv", "春风得意\n秋月无边\n".encode(), "nosep.tsv"),
        ("long.tsv", ("长" * 50_000 + "\t短\n").encode(), "long.tsv"),
    ],
)
def test_bad_corpus_files(cli, tmp_path, name, content, needle):
    if content is None:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            zf.writestr("a.tsv", "a\tb\n")
        content = buf.getvalue()
    path = write(tmp_path / name, content)
    r = cli("init", tmp_path / "p", "--task", "couplet", "--data", path)
    assert_clean_error(r, needle)
    assert not (tmp_path / "p" / "project.toml").exists()


def test_missing_file_directory_and_mismatched_pairs(cli, tmp_path):
    assert_clean_error(cli("init", tmp_path / "p", "--task", "couplet", "--data",
                           tmp_path / "nope.txt"), "nope.txt")
    assert_clean_error(cli("init", tmp_path / "p", "--task", "couplet", "--data", tmp_path),
                       str(tmp_path))
    a = write(tmp_path / "a.txt", "春风\n秋月\n夏雨\n".encode())
    b = write(tmp_path / "b.txt", "夏雨\n冬雪\n".encode())
    assert_clean_error(cli("init", tmp_path / "p", "--task", "couplet", "--data", a, b), "a.txt")


def test_bad_settings(cli, couplet_files, tmp_path):
    base = ("init", tmp_path / "p", "--task", "couplet", "--data", *couplet_files)
    assert_clean_error(cli(*base, "--set", "model.n_layerz=2"), "n_layerz")
    assert_clean_error(cli(*base, "--set", "model.n_embd=30", "--set", "model.n_head=4"), "n_head")
    assert_clean_error(cli(*base, "--set", "train.batch_size=abc"), "train.batch_size")
    assert_clean_error(cli(*base, "--set", "nonsense"), "nonsense")
    assert_clean_error(cli(*base, "--model", "nosuchmodel"), "nosuchmodel")
    translation = ("init", tmp_path / "p", "--task", "translation", "--data", *couplet_files)
    assert_clean_error(cli(*translation, "--model", "cnn-tagger"), "cnn-tagger writes couplets only")
    assert_clean_error(cli("info", tmp_path / "nowhere"), "nowhere")
    assert cli("train").code == 2                                      # usage error


@pytest.fixture
def untrained(cli, couplet_files, tmp_path) -> Path:
    project = tmp_path / "p"
    assert cli("init", project, "--task", "couplet", "--data", *couplet_files).code == 0
    return project


def test_generate_and_resume_before_training(cli, untrained):
    assert_clean_error(cli("generate", untrained, "春风"), "train")
    assert_clean_error(cli("train", untrained, "--resume"), "resume")


@pytest.fixture
def trained(cli, untrained) -> Path:
    r = cli("train", untrained, "--steps", "2", "--device", "cpu",
            "--set", "train.eval_every=2", "--set", "train.bleu_examples=2")
    assert r.code == 0, r
    return untrained


def test_tampered_checkpoints_are_refused(cli, trained):
    ckpt = trained / "checkpoints" / "last.pt"
    good = ckpt.read_bytes()
    assert cli("generate", trained, "春风", "--checkpoint", "last").code == 0

    # a flipped byte in the middle of the payload
    data = bytearray(good)
    data[len(data) // 2] ^= 0xFF
    ckpt.write_bytes(bytes(data))
    assert_clean_error(cli("generate", trained, "春风", "--checkpoint", "last"), "last.pt")

    # truncated
    ckpt.write_bytes(good[: len(good) // 3])
    assert_clean_error(cli("generate", trained, "春风", "--checkpoint", "last"), "last.pt")

    # a pickle that would run code when unpickled
    class Evil:
        def __reduce__(self):
            return (print, ("owned",))

    ckpt.write_bytes(pickle.dumps({"format": "textgen-checkpoint", "x": Evil()}))
    r = cli("generate", trained, "春风", "--checkpoint", "last")
    assert_clean_error(r, "last.pt")
    assert "owned" not in r.out

    # an edited checkpoint re-saved with torch but with a wrong checksum
    import torch

    buf = io.BytesIO()
    torch.save({"format": "textgen-checkpoint", "version": 1, "sha256": "0" * 64,
                "payload": b"not a checkpoint"}, buf)
    ckpt.write_bytes(buf.getvalue())
    assert_clean_error(cli("train", trained, "--resume"), "checksum")


def test_training_twice_asks_for_resume_or_restart(cli, trained):
    assert_clean_error(cli("train", trained, "--steps", "4"), "--resume")
    r = cli("train", trained, "--steps", "4", "--resume", "--device", "cpu")
    assert r.code == 0, r
    assert_clean_error(cli("train", trained, "--steps", "4", "--resume"), "already trained")
