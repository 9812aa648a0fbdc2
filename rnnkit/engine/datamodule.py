"""``DataModule``: the hooks a data module offers, without Lightning.

The same names and meanings as Lightning's ``LightningDataModule`` (so a Lightning ``Trainer``
runs an rnnkit data module through :func:`rnnkit.engine.lightning.as_lightning_datamodule`):
``prepare_data()`` once, ``setup(stage)`` per stage (``"fit"``, ``"validate"``, ``"test"``,
``"predict"``), the four ``*_dataloader()`` methods, ``state_dict()``/``load_state_dict()``
for what is fitted on the data (saved in every checkpoint under the class's ``__qualname__``),
``teardown(stage)``. ``trainer`` is the driver running it (``None`` outside a run).
"""

from __future__ import annotations

from typing import Any

from rnnkit.engine.hparams import HyperparametersMixin


class DataModule(HyperparametersMixin):
    """Base of the rnnkit data modules; subclasses implement what their data has."""

    trainer: Any = None

    def prepare_data(self) -> None:
        """Work done once before ``setup`` (reading or downloading nothing by default)."""

    def setup(self, stage: str) -> None:
        """Read and encode what ``stage`` needs."""

    def teardown(self, stage: str) -> None:
        """Release what ``setup`` built (nothing by default)."""

    def train_dataloader(self) -> Any:
        raise NotImplementedError(f"{type(self).__name__} has no training data")

    def val_dataloader(self) -> Any:
        raise NotImplementedError(f"{type(self).__name__} has no validation data")

    def test_dataloader(self) -> Any:
        raise NotImplementedError(f"{type(self).__name__} has no test data")

    def predict_dataloader(self) -> Any:
        raise NotImplementedError(f"{type(self).__name__} has no data to predict on")

    def state_dict(self) -> dict[str, Any]:
        """What was fitted on the data (vocabularies, scalers), as plain data."""
        return {}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` (before ``setup``: nothing is fitted again)."""
