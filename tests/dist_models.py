"""Models and data the data-parallel tests share (tests/test_split.py in one process, the scripts
under tests/mpi/ under mpiexec): every layer kind of the engine appears in one of them."""
import numpy as np

import annfast as af

NAMES = ("mlp", "bn_dropout", "residual", "all_kinds")


def build(name, dtype="float32", seed=3, optimizer="adam"):
    """(compiled model, X, y) for one of NAMES; X and y are the same on every call."""
    rng = np.random.default_rng(11)
    n = 203                                   # batches of 32 leave a last batch of 11
    y = np.eye(3)[rng.integers(0, 3, n)]
    if name == "mlp":
        X = rng.standard_normal((n, 12))
        model = af.Sequential([af.Dense(16, activation="relu"), af.Dense(3, activation="softmax")],
                              input_dim=12, dtype=dtype, seed=seed)
    elif name == "bn_dropout":
        X = rng.standard_normal((n, 12)) * 3 + 5   # a mean far from 0: batch norm's sums shifted
        model = af.Sequential([af.Dense(16), af.BatchNormalization(), af.Activation("relu"),
                               af.Dropout(0.3), af.Dense(3, activation="softmax")],
                              input_dim=12, dtype=dtype, seed=seed)
    elif name == "residual":
        X = rng.standard_normal((n, 12))
        a = af.Input(shape=(12,))
        h = af.Dense(16, activation="relu")(a)
        out = af.Dense(3, activation="softmax")(af.Add()([h, af.Dense(16, activation="tanh")(h)]))
        model = af.Model(a, out, dtype=dtype, seed=seed)
    elif name == "all_kinds":
        # embedding, global average pooling, flatten, concatenate, dense, batch norm (on vectors
        # and on sequences), activation, dropout, reshape, add
        X = [rng.integers(0, 20, (n, 6)).astype(np.int32), rng.standard_normal((n, 4, 3))]
        ids, seq = af.Input(shape=(6,), dtype="int32"), af.Input(shape=(4, 3))
        g = af.GlobalAveragePooling1D()(af.Embedding(20, 8)(ids))
        h = af.Dense(16)(af.Concatenate()([g, af.Flatten()(seq)]))
        h = af.Dropout(0.25)(af.Activation("relu")(af.BatchNormalization()(h)))
        r = af.Flatten()(af.BatchNormalization()(af.Reshape((4, 4))(h)))
        out = af.Dense(3, activation="softmax")(af.Add()([h, af.Dense(16, activation="tanh")(r)]))
        model = af.Model([ids, seq], out, dtype=dtype, seed=seed)
    else:
        raise ValueError(name)
    opt = af.optimizers.Adam(0.01) if optimizer == "adam" else af.optimizers.SGD(0.1)
    model.compile(loss="categorical_crossentropy", optimizer=opt, metrics=["accuracy"])
    cast = (lambda a: a if a.dtype == np.int32 else a.astype(dtype))
    X = [cast(x) for x in X] if isinstance(X, list) else cast(X)
    return model, X, y.astype(dtype)


def state(model):
    """Every weight and statistic, flat (for bitwise comparisons)."""
    return np.concatenate([model._params, model._stats])
