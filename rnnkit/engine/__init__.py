"""rnnkit's training engine: the contracts of tasks, data modules and callbacks, and the drivers.

- :class:`TaskModule`, :class:`DataModule`, :class:`Callback`: the bases every rnnkit task, data
  module and callback derives from; plain Python and torch, no Lightning.
- :class:`Trainer` (:mod:`rnnkit.engine.trainer`): rnnkit's own single-process loop, the
  default driver; its callbacks (:mod:`rnnkit.engine.callbacks`: ``ModelCheckpoint``,
  ``EarlyStopping``, ``ModelSummary``), loggers (:mod:`rnnkit.engine.loggers`: ``CSVLogger``)
  and :func:`~rnnkit.engine.seed.seed_everything`;
- ``rnnkit.engine.lightning``: adapters that run them under a Lightning ``Trainer``; the only
  module of the package that imports Lightning.
"""

from rnnkit.engine.callback import Callback, Terminated
from rnnkit.engine.datamodule import DataModule
from rnnkit.engine.module import TaskModule
from rnnkit.engine.trainer import Trainer

__all__ = ["Callback", "DataModule", "TaskModule", "Terminated", "Trainer"]
