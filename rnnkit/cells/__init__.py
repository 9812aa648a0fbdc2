"""Cells: one time step of recurrent math, all behind the contract in :mod:`rnnkit.cells.base`."""

from rnnkit.cells.base import Cell, ScriptedStepCell, State
from rnnkit.cells.elman import ElmanCell
from rnnkit.cells.gru import GRUCell
from rnnkit.cells.jordan import JordanCell
from rnnkit.cells.layer_norm_lstm import LayerNormLSTMCell
from rnnkit.cells.lstm import LSTMCell
from rnnkit.cells.mgu import MGUCell
from rnnkit.cells.mingru import MinGRUCell
from rnnkit.cells.minlstm import MinLSTMCell
from rnnkit.cells.narx import NARXCell
from rnnkit.cells.peephole_lstm import PeepholeLSTMCell
from rnnkit.cells.sru import SRUCell

__all__ = [
    "Cell",
    "ScriptedStepCell",
    "State",
    "ElmanCell",
    "GRUCell",
    "JordanCell",
    "LSTMCell",
    "NARXCell",
    "MGUCell",
    "SRUCell",
    "MinGRUCell",
    "MinLSTMCell",
    "PeepholeLSTMCell",
    "LayerNormLSTMCell",
]
