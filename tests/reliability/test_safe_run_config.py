"""Item 1: a run folder's config may only build what rnnkit allows (it could run code)."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from rnnkit.errors import UnsafeConfigError
from rnnkit.train import load_run
from rnnkit.utils.targets import check_allowed

MODEL = {"_target_": "rnnkit.models.SequenceModel", "cell": {"_target_": "rnnkit.cells.GRUCell"}}
TASK = {"_target_": "rnnkit.tasks.ClassificationTask"}
DATA = {"_target_": "rnnkit.data.CSVSequenceDataModule", "train_path": "x.csv"}


class Payload:
    """A pickle that writes a file when loaded: proof that code ran."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (Path(self.marker), "ran"))


def run_folder(tmp_path: Path, **config) -> Path:
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / ".hydra").mkdir()
    ckpt = tmp_path / "checkpoints" / "last.ckpt"
    ckpt.write_bytes(b"not needed: the config is refused first")
    OmegaConf.save(OmegaConf.create(config), tmp_path / ".hydra" / "config.yaml")
    return ckpt


def test_eval_refuses_torch_load_of_a_pickle_and_runs_nothing(tmp_path):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pkl"
    evil.write_bytes(pickle.dumps(Payload(str(marker))))
    data = {"_target_": "torch.load", "f": str(evil), "weights_only": False}
    ckpt = run_folder(tmp_path, data=data, model=MODEL, task=TASK)
    cfg = OmegaConf.create({"ckpt_path": str(ckpt), "data": {}})
    with pytest.raises(UnsafeConfigError) as info:
        load_run(cfg)
    message = str(info.value)
    assert "config.yaml: config key 'data._target_' is 'torch.load'" in message
    assert not marker.exists()


REFUSED = {
    "os.system": ("data", {"_target_": "os.system", "command": "true"}),
    "builtins.eval": ("data", {"_target_": "builtins.eval", "_args_": ["1"]}),
    "subprocess.run": ("task", {"_target_": "subprocess.run", "args": ["true"]}),
    "pickle.loads": ("model", {"_target_": "pickle.loads", "data": "x"}),
    "nested cell": ("model.cell", {**MODEL, "cell": {"_target_": "os.system", "command": "x"}}),
    "attribute walk": ("data", {"_target_": "rnnkit.data.readers.gzip.open", "filename": "x"}),
    "rnnkit helper that loads pickles": (
        "data",
        {"_target_": "rnnkit.utils.checkpointing.load_checkpoint", "path": "x"},
    ),
    "torch outside optim": ("model", {"_target_": "torch.hub.load", "repo_or_dir": "x"}),
    "lightning non-callback": (
        "callbacks.x",
        {"_target_": "lightning.fabric.utilities.cloud_io._load"},
    ),
    "optimizer arg": (
        "task.optimizer",
        {**TASK, "optimizer": {"_target_": "torch.serialization.load", "_partial_": True}},
    ),
    "in a list": ("callbacks.many[0]", {"many": [{"_target_": "os.remove", "path": "x"}]}),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_refused_targets_name_key_and_target(case, tmp_path):
    key, node = REFUSED[case]
    section = key.split(".")[0]
    config = {"data": DATA, "model": MODEL, "task": TASK}
    config[section] = node if section != "callbacks" else {key.split(".")[1].split("[")[0]: node}
    if case == "in a list":
        config["callbacks"] = node
        key = "callbacks.many[0]"
    cfg = OmegaConf.create(config)
    with pytest.raises(UnsafeConfigError) as info:
        check_allowed(cfg, "run/.hydra/config.yaml")
    message = str(info.value)
    assert message.startswith(f"run/.hydra/config.yaml: config key '{key}._target_' is ")
    assert "may not call" in message and "\n" not in message


ALLOWED = [
    "rnnkit.models.SequenceModel",
    "rnnkit.cells.LSTMCell",
    "rnnkit.data.CSVSequenceDataModule",
    "rnnkit.tasks.ClassificationTask",
    "rnnkit.callbacks.NaNGuard",
    "torch.optim.Adam",
    "torch.optim.lr_scheduler.ReduceLROnPlateau",
    "lightning.pytorch.callbacks.ModelCheckpoint",
    "lightning.pytorch.loggers.CSVLogger",
    "lightning.pytorch.trainer.Trainer",
]


@pytest.mark.parametrize("target", ALLOWED)
def test_allowed_targets_pass(target):
    check_allowed(OmegaConf.create({"x": {"_target_": target}}), "config.yaml")


def test_every_shipped_config_target_is_allowed():
    """The allow-list is not narrower than what rnnkit's own configs build."""
    root = Path(__file__).resolve().parents[2] / "configs"
    for path in root.rglob("*.yaml"):
        if path.parent.name in ("hparams_search", "hydra", "launcher"):
            continue  # Hydra's own plugins: never instantiated from a run folder
        check_allowed(OmegaConf.load(path), path)
