"""Build script for Blink's C kernels (everything else is declared in pyproject.toml).

- `blink._features`: the rolling feature engine (`blink/features.py` wraps it): its state machine
  in `blink/_features_engine.h`, the Python type and module in `blink/_features.c`;
- `blink.model._forest`: the compiled IsolationForest walk (`blink/model/forest.py` wraps it;
  the walk and its checks in `_forest_walk.h`);
- `blink.model._grow`: the isolation-forest builder (`blink.model.forest.grow` wraps it; one
  tree's growth in `_grow_tree.h`);
- `blink.model._tails`: the calibrated tails' scorer (`blink/model/tails.py` wraps it; the
  per-row evaluation in `_tails_eval.h`).

Plain C99 against the CPython API and the buffer protocol: no numpy headers, no Cython; what
they share (taking an array argument, publishing a module's type) is `blink/_cbuffer.h`.
"""

from setuptools import Extension, setup

FLAGS = ["-O2", "-std=c99", "-Wall", "-Wextra", "-Werror=implicit-function-declaration",
         "-fno-fast-math"]  # IEEE arithmetic: the same results as the Python reference

SHARED = ["blink/_cbuffer.h"]  # buffers and module set-up, included by every kernel


def kernel(name: str, source: str, *headers: str) -> Extension:
    return Extension(name, [source], depends=[*SHARED, *headers], extra_compile_args=FLAGS)


setup(ext_modules=[
    kernel("blink._features", "blink/_features.c", "blink/_features_engine.h"),
    kernel("blink.model._forest", "blink/model/_forest.c", "blink/model/_forest_walk.h"),
    kernel("blink.model._grow", "blink/model/_grow.c", "blink/model/_grow_tree.h"),
    kernel("blink.model._tails", "blink/model/_tails.c", "blink/model/_tails_eval.h"),
])
