"""Every option of every config group composes, and instantiates where this machine can run it."""

from __future__ import annotations

import pytest
from hydra.utils import instantiate
from omegaconf import OmegaConf

from rnnkit.train import build_data_and_task, instantiate_list
from tests.helpers import CONFIG_DIR, FAST, options

GROUPS = [
    "data",
    "model",
    "task",
    "trainer",
    "callbacks",
    "logger",
    "paths",
    "extras",
    "hydra",
    "debug",
]
# models built on SequenceModel, checked with one feature dataset and one token dataset
SEQUENCE_MODELS = [
    m
    for m in options("model")
    if OmegaConf.load(CONFIG_DIR / "model" / f"{m}.yaml").get("_target_")
    == "rnnkit.models.SequenceModel"
]


def test_train_defaults_follow_the_house_rules() -> None:
    defaults = OmegaConf.load(CONFIG_DIR / "train.yaml").defaults
    names = [next(iter(d)) if isinstance(d, dict) or OmegaConf.is_dict(d) else d for d in defaults]
    # data after model and task: a data option may choose them (data=conll: the tagger)
    assert names[:5] == ["_self_", "model", "task", "data", "trainer"]
    assert "experiment" not in names and "hparams_search" not in names


@pytest.mark.parametrize(
    "group, option", [(g, o) for g in GROUPS for o in options(g)], ids=lambda v: str(v)
)
def test_every_option_composes(group: str, option: str, compose_cfg) -> None:
    cfg = compose_cfg([f"{group}={option}"])
    assert cfg.task_name and "trainer" in cfg


@pytest.mark.parametrize("option", options("data"))
def test_every_data_option_instantiates(option: str, compose_cfg) -> None:
    cfg = compose_cfg([f"data={option}"])
    datamodule = instantiate(cfg.data)
    assert hasattr(datamodule, "train_dataloader")


COMBOS = [("digits", "classification"), ("context_tagging", "tagging"), ("adding", "regression")]


# every sequence model once, and every data/task combination with several models (round robin)
@pytest.mark.parametrize(
    "model, data, task",
    [(m, *COMBOS[i % len(COMBOS)]) for i, m in enumerate(SEQUENCE_MODELS)]
    + [("gru", *combo) for combo in COMBOS],
)
def test_sequence_models_with_every_data_and_task(model, data, task, compose_cfg) -> None:
    """``data=X model=Y task=Z`` works without the user knowing the sizes or the head."""
    overrides = [f"data={data}", f"model={model}", f"task={task}", *FAST]
    if data in ("context_tagging", "adding"):
        overrides.append("data.num_samples=100")
    cfg = compose_cfg(overrides)
    datamodule, model_obj, task_obj = build_data_and_task(cfg)
    x, lengths, y = next(iter(datamodule.train_dataloader()))
    out = model_obj(x, lengths)
    if task == "tagging":
        assert out.shape == (*x.shape[:2], datamodule.info["num_tags"])
    else:
        assert out.shape == (x.shape[0], datamodule.info["output_size"])
    loss = task_obj.model_step((x, lengths, y))[0]
    loss.backward()


@pytest.mark.parametrize(
    "option",
    [
        ["bidirectional=true", "num_layers=2", "dropout=0.2", "hidden_size=8", "backend=loop"],
        ["pooling=attention", "backend=auto"],
    ],
)
def test_model_overrides(option: list[str], compose_cfg) -> None:
    cfg = compose_cfg([f"model.{o}" for o in option] + ["model=lstm"])
    datamodule, model, _ = build_data_and_task(cfg)
    x, lengths, _ = next(iter(datamodule.train_dataloader()))
    assert model(x, lengths).shape == (x.shape[0], 10)


def test_missing_key_is_a_clear_error(compose_cfg) -> None:
    cfg = compose_cfg(["model=gru", "+model.mystery=???"])
    with pytest.raises(KeyError, match="'mystery' is still missing"):
        build_data_and_task(cfg)


@pytest.mark.parametrize("option", options("task"))
def test_every_task_option_has_partial_optimizer(option: str, compose_cfg) -> None:
    cfg = compose_cfg([f"task={option}"])
    assert cfg.task._target_.startswith("rnnkit.tasks.")
    assert cfg.task.optimizer._partial_ is True


@pytest.mark.parametrize("option", ["default", "cpu", "ddp_cpu"])
def test_cpu_trainers_instantiate(option: str, compose_cfg) -> None:
    cfg = compose_cfg([f"trainer={option}"])
    trainer = instantiate(cfg.trainer, logger=False, enable_checkpointing=False)
    assert trainer.gradient_clip_val == cfg.trainer.gradient_clip_val
    assert trainer.num_devices == (2 if option == "ddp_cpu" else 1)


@pytest.mark.parametrize("option", ["gpu", "ddp"])
def test_gpu_trainers_ask_for_gpus(option: str, compose_cfg) -> None:
    cfg = compose_cfg([f"trainer={option}"])
    assert cfg.trainer.accelerator == "gpu"
    assert cfg.trainer.devices == (2 if option == "ddp" else 1)


@pytest.mark.parametrize("option", options("callbacks"))
def test_every_callbacks_option_instantiates(option: str, compose_cfg) -> None:
    cfg = compose_cfg([f"callbacks={option}"])
    for callback in instantiate_list(cfg.callbacks, "callback"):
        assert hasattr(callback, "on_train_start")


@pytest.mark.parametrize(
    "option", [o for o in options("logger") if o not in ("tensorboard", "many")]
)
def test_every_logger_option_instantiates(option: str, compose_cfg) -> None:
    cfg = compose_cfg([f"logger={option}"])
    for logger in instantiate_list(cfg.logger, "logger"):
        assert hasattr(logger, "log_metrics")


@pytest.mark.parametrize("name", options("hparams_search"))
def test_hparams_searches_compose(name: str, compose_cfg) -> None:
    experiment = name.removesuffix("_optuna")
    cfg = compose_cfg([f"+experiment={experiment}", f"+hparams_search={name}"])
    assert cfg.optimized_metric == "val/loss"


def test_eval_config_composes(compose_cfg) -> None:
    cfg = compose_cfg(["ckpt_path=x.ckpt"], config_name="eval.yaml")
    assert cfg.ckpt_path == "x.ckpt" and cfg.data == {}


@pytest.mark.parametrize(
    ("overrides", "chars", "task"),
    [
        (["data=conll"], "cnn", "rnnkit.tasks.TaggingTask"),  # the data picks the tagger
        (["data=conll", "model=gru"], None, "rnnkit.tasks.TaggingTask"),  # the command line wins
        (["data=digits"], None, "rnnkit.tasks.ClassificationTask"),  # train.yaml's defaults
    ],
)
def test_conll_data_chooses_the_tagger_unless_told_otherwise(
    compose_cfg, overrides, chars, task
) -> None:
    cfg = compose_cfg(overrides)
    assert cfg.model.get("embedder", {}).get("chars") == chars
    assert cfg.task._target_ == task


@pytest.mark.parametrize(
    ("overrides", "skip"),
    [
        (["data=text"], "rnnkit.models.BagOfNgrams"),  # the data picks model=bow_gru
        (["data=text", "model=gru"], None),  # the command line wins
    ],
)
def test_text_data_chooses_the_bag_of_ngrams_classifier_unless_told_otherwise(
    compose_cfg, overrides, skip
) -> None:
    cfg = compose_cfg(overrides)
    assert (cfg.model.get("skip") or {}).get("_target_") == skip
