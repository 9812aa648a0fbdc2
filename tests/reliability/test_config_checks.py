# ruff: noqa: E501 (the catalogue table keeps one case per line)
"""Items 7, 9 and 10 (config): every typed value is checked before anything is built, and each
mistake is one line naming the key and what was expected."""

from __future__ import annotations

import re

import pytest
from reliability_helpers import QUICK, compose

from rnnkit import errors as E
from rnnkit.cli import translate
from rnnkit.utils.preflight import check_train_config


def check(overrides, tmp_path):
    try:
        check_train_config(compose([*QUICK, *overrides], tmp_path))
    except E.RnnkitError:
        raise
    except Exception as exc:  # what the scripts do with Hydra's own errors
        error = translate(exc)
        if error is None:
            raise
        raise error from exc


CASES = {
    # item 7: booleans, ints, floats, strings, choices
    "bool as 'no'": (["model.bidirectional=no"], E.ConfigError, r"^config key 'model\.bidirectional' is 'no', expected true or false$"),
    "bool as 1": (["model.bidirectional=1"], E.ConfigError, r"'model\.bidirectional' is 1, expected true or false"),
    "int as text": (["model.hidden_size=big"], E.ConfigError, r"'model\.hidden_size' is 'big', expected an integer"),
    "int as float": (["model.num_layers=1.5"], E.ConfigError, r"'model\.num_layers' is 1\.5, expected an integer"),
    "float as text": (["model.dropout=lots"], E.ConfigError, r"'model\.dropout' is 'lots', expected a number"),
    "data bool": (["data.bucket=maybe"], E.ConfigError, r"'data\.bucket' is 'maybe', expected true or false"),
    "data int": (["data.batch_size=eight"], E.ConfigError, r"'data\.batch_size' is 'eight', expected an integer"),
    "path as list": (["data.train_path=[a,b]"], E.ConfigError, r"'data\.train_path' is a list, expected a string"),
    "trainer bool": (["trainer.deterministic=yes"], E.ConfigError, r"'trainer\.deterministic' is 'yes', expected true or false"),
    "callback bool": (["callbacks.nan_guard.check_gradients=off"], E.ConfigError, r"'callbacks\.nan_guard\.check_gradients' is 'off', expected true or false"),
    "top-level bool": (["resume=sure"], E.ConfigError, r"^config key 'resume' is 'sure', expected true or false$"),
    # item 9: the listed tracebacks
    "lr negative": (["task.optimizer.lr=-1"], E.ConfigError, r"^config key 'task\.optimizer' is invalid: Invalid learning rate: -1"),
    "lr text": (["task.optimizer.lr=abc"], E.ConfigError, r"'task\.optimizer\.lr' is 'abc', expected a number"),
    "seed text": (["seed=abc"], E.ConfigError, r"^config key 'seed' is 'abc', expected an integer$"),
    "max_epochs text": (["trainer.max_epochs=abc"], E.ConfigError, r"'trainer\.max_epochs' is 'abc', expected an integer or null"),
    "optimizer target typo": (["task.optimizer._target_=torch.optim.Adamm"], E.ConfigError, r"'task\.optimizer\._target_': 'torch\.optim\.Adamm' does not exist; did you mean 'torch\.optim\.Adam'\?"),
    "unknown optimizer arg": (["+task.optimizer.betas1=0.9"], E.UnknownConfigKeyError, r"'task\.optimizer\.betas1' does not exist in the arguments of torch\.optim\.Adam; did you mean 'task\.optimizer\.betas'\?"),
    # items 8 and 10: ranges checked late or never
    "max_epochs zero": (["trainer.max_epochs=0"], E.ConfigError, r"'trainer\.max_epochs' is 0, expected a positive number of epochs \(or -1"),
    "max_epochs below -1": (["trainer.max_epochs=-3"], E.ConfigError, r"'trainer\.max_epochs' is -3"),
    "negative clip": (["trainer.gradient_clip_val=-1"], E.ConfigError, r"'trainer\.gradient_clip_val' is -1(\.0)?, expected >= 0"),
    "divergence threshold": (["+callbacks.nan_guard.max_loss=high"], E.ConfigError, r"'callbacks\.nan_guard\.max_loss' is 'high', expected a number or null"),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(CASES))
def test_config_mistake_is_one_line_before_anything_is_built(case, tmp_path):
    overrides, error_type, pattern = CASES[case]
    with pytest.raises(error_type) as info:
        check(overrides, tmp_path)
    message = str(info.value)
    assert "\n" not in message and re.search(pattern, message), message


@pytest.mark.parametrize(
    "overrides",
    [[], ["model.bidirectional=true"], ["trainer.max_epochs=-1"], ["trainer.gradient_clip_val=0"]],
)
def test_valid_configs_pass(overrides, tmp_path):
    check(overrides, tmp_path)
