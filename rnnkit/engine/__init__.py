"""rnnkit's training engine: the contracts of tasks, data modules and callbacks, and the drivers.

- :class:`TaskModule`, :class:`DataModule`, :class:`Callback`: the bases every rnnkit task, data
  module and callback derives from; plain Python and torch, no Lightning.
- ``rnnkit.engine.lightning``: adapters that run them under a Lightning ``Trainer``; the only
  module of the package that imports Lightning.
"""

from rnnkit.engine.callback import Callback, Terminated
from rnnkit.engine.datamodule import DataModule
from rnnkit.engine.module import TaskModule

__all__ = ["Callback", "DataModule", "TaskModule", "Terminated"]
