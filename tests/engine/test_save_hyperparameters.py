"""rnnkit.engine.hparams: save_hyperparameters records what Lightning's records, without it."""

from __future__ import annotations

import functools

import pytest
import torch
from lightning.pytorch.core.mixins import HyperparametersMixin as LightningMixin

from rnnkit.engine.hparams import AttributeDict, HyperparametersMixin


def classes(mixin: type) -> tuple[type, type, type]:
    """The same three classes on ``mixin``: a base that saves, a subclass passing ``**kwargs``
    up, and a subclass that saves after its base's ``__init__`` (rnnkit's data modules)."""

    class Base(mixin):
        def __init__(self, a: int = 1, b: str = "b", model=None) -> None:
            super().__init__()
            self.save_hyperparameters(ignore=["model"])

    class Passes(Base):
        def __init__(self, c: float = 3.0, **kwargs) -> None:
            super().__init__(**kwargs)

    class SavesLate(mixin):
        def __init__(self, size: int = 4, **kwargs) -> None:
            super().__init__()
            self.extra = kwargs
            self.save_hyperparameters()

    return Base, Passes, SavesLate


@pytest.mark.parametrize(
    "which, kwargs",
    [
        (0, {}),
        (0, {"a": 5, "model": torch.nn.Linear(1, 1)}),
        (1, {"c": 0.5, "a": 7}),
        (1, {"b": "x", "model": "ignored"}),
        (2, {"size": 9, "optimizer": functools.partial(torch.optim.SGD, lr=0.1)}),
    ],
)
def test_the_recorded_arguments_are_lightning_s(which, kwargs):
    ours = classes(HyperparametersMixin)[which](**kwargs)
    theirs = classes(LightningMixin)[which](**kwargs)
    assert dict(ours.hparams) == dict(theirs.hparams)
    assert "model" not in ours.hparams


def test_a_subclass_value_wins_and_kwargs_are_merged():
    _, Passes, _ = classes(HyperparametersMixin)
    hp = Passes(c=0.5, a=7).hparams
    assert hp == {"a": 7, "b": "b", "c": 0.5}
    assert isinstance(hp, AttributeDict) and hp.a == 7
    hp.b = "set"  # attribute writes are key writes
    assert hp["b"] == "set"
    with pytest.raises(AttributeError, match="no hyper-parameter 'nope'"):
        _ = hp.nope


def test_a_string_ignore_and_nothing_saved():
    class One(HyperparametersMixin):
        def __init__(self, keep: int = 1, drop: int = 2) -> None:
            self.save_hyperparameters(ignore="drop")

    class Nothing(HyperparametersMixin):
        def __init__(self, x: int = 1) -> None:
            pass

    assert One(drop=5).hparams == {"keep": 1}
    assert Nothing().hparams == {}
