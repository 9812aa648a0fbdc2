"""``Callback``: the hooks a callback may implement, without Lightning.

The names and arguments are Lightning's (``trainer`` is the driver, ``task`` the
:class:`~rnnkit.engine.TaskModule`), so one callback class runs under rnnkit's
:class:`~rnnkit.engine.Trainer` and, through :func:`rnnkit.engine.lightning.as_lightning_callback`,
under a Lightning ``Trainer``. A callback uses only the driver attributes both have:
``current_epoch``, ``global_step``, ``callback_metrics``, ``should_stop``, ``sanity_checking``,
``is_global_zero``, ``world_size``, ``datamodule``, ``default_root_dir``, ``max_epochs``,
``save_checkpoint(path)``.

A driver calls only the hooks a callback overrides (:func:`overrides`), so a hook nobody
implements costs nothing per step.
"""

from __future__ import annotations

from typing import Any

HOOKS = (
    "setup",
    "on_fit_start",
    "on_train_start",
    "on_train_epoch_start",
    "on_train_batch_start",
    "on_before_backward",
    "on_after_backward",
    "on_before_optimizer_step",
    "on_train_batch_end",
    "on_train_epoch_end",
    "on_validation_start",
    "on_validation_epoch_start",
    "on_validation_epoch_end",
    "on_validation_end",
    "on_train_end",
    "on_fit_end",
    "on_test_start",
    "on_test_epoch_start",
    "on_test_batch_end",
    "on_test_epoch_end",
    "on_test_end",
    "on_predict_start",
    "on_predict_end",
    "on_save_checkpoint",
    "on_load_checkpoint",
    "on_exception",
    "teardown",
)


class Terminated(Exception):
    """What ``on_exception`` receives when SIGTERM stopped a ``fit`` at a step boundary.

    rnnkit's driver raises it; under Lightning, whose loop raises its own ``SIGTERMException``,
    the adapter hands the callbacks this instead, so a callback never imports Lightning.
    """


class Callback:
    """Base of the rnnkit callbacks: every hook is a no-op; override what you need.

    Signatures (as Lightning's): ``setup(trainer, task, stage)``,
    ``on_train_batch_start(trainer, task, batch, batch_idx)``,
    ``on_train_batch_end(trainer, task, outputs, batch, batch_idx)``,
    ``on_before_backward(trainer, task, loss)``,
    ``on_test_batch_end(trainer, task, outputs, batch, batch_idx)``,
    ``on_before_optimizer_step(trainer, task, optimizer)``,
    ``on_save_checkpoint(trainer, task, checkpoint)``, ``on_load_checkpoint(trainer, task,
    checkpoint)``, ``on_exception(trainer, task, exception)``, ``teardown(trainer, task,
    stage)``; every other hook is ``hook(trainer, task)``.
    """

    @property
    def state_key(self) -> str:
        """The key of this callback's :meth:`state_dict` in a checkpoint's ``callbacks``."""
        return type(self).__qualname__

    def state_dict(self) -> dict[str, Any]:
        """What this callback keeps across a resume (nothing by default)."""
        return {}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""

    def setup(self, trainer: Any, task: Any, stage: str) -> None: ...
    def on_fit_start(self, trainer: Any, task: Any) -> None: ...
    def on_train_start(self, trainer: Any, task: Any) -> None: ...
    def on_train_epoch_start(self, trainer: Any, task: Any) -> None: ...
    def on_train_batch_start(
        self, trainer: Any, task: Any, batch: Any, batch_idx: int
    ) -> None: ...
    def on_before_backward(self, trainer: Any, task: Any, loss: Any) -> None: ...
    def on_after_backward(self, trainer: Any, task: Any) -> None: ...
    def on_before_optimizer_step(self, trainer: Any, task: Any, optimizer: Any) -> None: ...
    def on_train_batch_end(
        self, trainer: Any, task: Any, outputs: Any, batch: Any, batch_idx: int
    ) -> None: ...
    def on_train_epoch_end(self, trainer: Any, task: Any) -> None: ...
    def on_validation_start(self, trainer: Any, task: Any) -> None: ...
    def on_validation_epoch_start(self, trainer: Any, task: Any) -> None: ...
    def on_validation_epoch_end(self, trainer: Any, task: Any) -> None: ...
    def on_validation_end(self, trainer: Any, task: Any) -> None: ...
    def on_train_end(self, trainer: Any, task: Any) -> None: ...
    def on_fit_end(self, trainer: Any, task: Any) -> None: ...
    def on_test_start(self, trainer: Any, task: Any) -> None: ...
    def on_test_epoch_start(self, trainer: Any, task: Any) -> None: ...
    def on_test_batch_end(
        self, trainer: Any, task: Any, outputs: Any, batch: Any, batch_idx: int
    ) -> None: ...
    def on_test_epoch_end(self, trainer: Any, task: Any) -> None: ...
    def on_test_end(self, trainer: Any, task: Any) -> None: ...
    def on_predict_start(self, trainer: Any, task: Any) -> None: ...
    def on_predict_end(self, trainer: Any, task: Any) -> None: ...
    def on_save_checkpoint(self, trainer: Any, task: Any, checkpoint: dict[str, Any]) -> None: ...
    def on_load_checkpoint(self, trainer: Any, task: Any, checkpoint: dict[str, Any]) -> None: ...
    def on_exception(self, trainer: Any, task: Any, exception: BaseException) -> None: ...
    def teardown(self, trainer: Any, task: Any, stage: str) -> None: ...


def overrides(obj: Any, hook: str, base: type = Callback) -> bool:
    """Whether ``obj``'s class implements ``hook`` itself (not only ``base``'s no-op)."""
    mine = getattr(type(obj), hook, None)
    return mine is not None and mine is not getattr(base, hook, None)
