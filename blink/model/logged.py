"""The logged model's MLflow face: a pyfunc whose one artifact is the compiled forest's arrays.

What Blink logs, registers and serves is the forest `trainer.fit` grew (`forest.grow`), as
`forest.npz` (plain arrays, no pickle). `blink.model.registry` reads that file straight
(never unpickling anything); `mlflow.pyfunc.load_model(uri).predict(rows)` also works where
Blink is installed and gives the forest's `score_samples` of the used features (higher = more
normal). The threshold and tail tables live next to it in the run (`blink_model.json`).
"""

import mlflow.pyfunc
import numpy as np
import pandas as pd

from blink.model.forest import CompiledForest

ARTIFACT = "forest"  # the artifact's key in the pyfunc flavour
FILE = "forest.npz"


class ForestModel(mlflow.pyfunc.PythonModel):
    """Loads `forest.npz`; predict = score_samples."""

    def load_context(self, context) -> None:
        self.forest = CompiledForest.load(context.artifacts[ARTIFACT])

    # the hint (evaluated: no `from __future__ import annotations` here) tells MLflow the
    # input is a frame of the used features, as the logged signature says
    def predict(self, context, model_input: pd.DataFrame, params=None) -> np.ndarray:
        return self.forest.score_samples(np.asarray(model_input, dtype=np.float64))
