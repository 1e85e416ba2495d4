"""clipkit.train: the CLI's flags as keywords, the same trajectory as `clipkit train`, and Ctrl-C
stopping at a step with a checkpoint that resume=True continues."""
import json
import os
import signal
import threading
import time

import pytest

from conftest import COCO, DUAL, cli

FLAGS = dict(max_steps=3, batch_size=8, lr=1e-3, no_eval=True, no_dropout=True, seed=7)


def losses(out):
    return [json.loads(line)["loss"] for line in open(os.path.join(out, "metrics.jsonl")) if '"loss"' in line]


def test_train_equals_the_cli(clipkit, tmp_path):
    r = clipkit.train(model=DUAL, data=COCO, out=tmp_path / "py", threads=2, **FLAGS)
    cli("train", "--model", DUAL, "--data", COCO, "--out", tmp_path / "cli", "--threads", 2, "--max-steps", 3,
        "--batch-size", 8, "--lr", 1e-3, "--no-eval", "--no-dropout", "--seed", 7)
    assert r["steps"] == 3 and not r["interrupted"]
    assert losses(tmp_path / "py") == losses(tmp_path / "cli")
    assert r["last_loss"] == pytest.approx(losses(tmp_path / "cli")[-1], rel=1e-12)
    assert (tmp_path / "py" / "model.safetensors").exists()


def test_unknown_or_mistyped_flags(clipkit, tmp_path):
    with pytest.raises(TypeError, match="max_step"):
        clipkit.train(model=DUAL, data=COCO, out=tmp_path, max_step=3)
    with pytest.raises(ValueError, match="lr must be a number"):
        clipkit.train(model=DUAL, data=COCO, out=tmp_path, lr="fast")
    with pytest.raises(clipkit.Error):
        clipkit.train(model=DUAL, data=tmp_path / "no-data", out=tmp_path / "o", max_steps=1)


def test_keyboard_interrupt_stops_at_a_step_with_a_resumable_checkpoint(clipkit, tmp_path):
    out = tmp_path / "run"
    flags = dict(FLAGS, max_steps=30)

    def interrupt_when_training():
        while not (out / "metrics.jsonl").exists() or not losses(out):
            time.sleep(0.01)
        os.kill(os.getpid(), signal.SIGINT)

    t = threading.Thread(target=interrupt_when_training, daemon=True)
    t.start()
    with pytest.raises(KeyboardInterrupt):
        clipkit.train(model=DUAL, data=COCO, out=out, threads=2, **flags)
    t.join()
    done = len(losses(out))
    assert 0 < done < 30
    assert any(p.startswith("checkpoint-") for p in os.listdir(out))
    r = clipkit.train(model=DUAL, data=COCO, out=out, threads=2, resume=True, **flags)
    assert r["steps"] == 30 and not r["interrupted"]
