"""Evidence for initializers: train a Flax MLP from each and compare how it converges.

>>> from jinit import train
>>> study = train.compare(["zeros", "he_normal"], "circles",
...                       model=train.MLPConfig(hidden=(8,)),
...                       train=train.TrainConfig(steps=5), seeds=2)
>>> sorted(study.to_dict())
['config', 'runs']

The same study from a shell: ``jinit compare --inits zeros,he_normal --hidden 8 --steps 5``.
"""

from jinit.train.datasets import DATASETS as DATASETS
from jinit.train.datasets import Dataset as Dataset
from jinit.train.datasets import load_dataset as load_dataset
from jinit.train.loop import OPTIMIZERS as OPTIMIZERS
from jinit.train.loop import TrainConfig as TrainConfig
from jinit.train.model import ACTIVATIONS as ACTIVATIONS
from jinit.train.model import MLP as MLP
from jinit.train.model import MLPConfig as MLPConfig
from jinit.train.study import DEFAULT_INITS as DEFAULT_INITS
from jinit.train.study import Study as Study
from jinit.train.study import compare as compare

__all__ = [
    "ACTIVATIONS",
    "DATASETS",
    "DEFAULT_INITS",
    "MLP",
    "OPTIMIZERS",
    "Dataset",
    "MLPConfig",
    "Study",
    "TrainConfig",
    "compare",
    "load_dataset",
]
