"""Models and data the data-parallel tests share (tests/test_split.py in one process, the scripts
under tests/mpi/ under mpiexec): every layer kind of the engine appears in one of them."""
import numpy as np

import annfast as af

NAMES = ("mlp", "bn_dropout", "residual", "all_kinds", "cnn", "lstm", "transformer")


def _padded_ids(rng, n, steps, vocab):
    """Token ids in 1..vocab-1, each row cut to a random length >= 1 and padded with 0."""
    ids = rng.integers(1, vocab, (n, steps)).astype(np.int32)
    ids[np.arange(steps) >= rng.integers(1, steps + 1, n)[:, None]] = 0
    return ids



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
    elif name == "cnn":
        # convolution, max pooling, batch norm over the channels of images, dropout on feature maps
        X = rng.standard_normal((n, 8, 8, 2))
        model = af.Sequential([af.Conv2D(4, 3, padding="same"), af.BatchNormalization(),
                               af.Activation("relu"), af.MaxPooling2D(2), af.Dropout(0.25),
                               af.Conv2D(6, 3, activation="relu"), af.Flatten(),
                               af.Dense(3, activation="softmax")],
                              input_shape=(8, 8, 2), dtype=dtype, seed=seed)
    elif name == "lstm":
        # embedding with a padding mask, an LSTM with input and recurrent dropout skipping the
        # padded steps, a bidirectional GRU over the sequences
        X = _padded_ids(rng, n, 7, 15)
        ids = af.Input(shape=(7,), dtype="int32")
        h = af.LSTM(8, dropout=0.2, recurrent_dropout=0.2, return_sequences=True)(
            af.Embedding(15, 6, mask_zero=True)(ids))
        h = af.Bidirectional(af.GRU(5, dropout=0.1))(h)
        model = af.Model(ids, af.Dense(3, activation="softmax")(h), dtype=dtype, seed=seed)
    elif name == "transformer":
        # token and position embeddings, an encoder layer (attention dropout, dropout after each
        # sublayer, layer norm) whose attention ignores the padded keys, pooling, dense
        X = _padded_ids(rng, n, 6, 15)
        ids = af.Input(shape=(6,), dtype="int32")
        x = af.PositionalEmbedding(6, 8)(af.Embedding(15, 8)(ids))
        h = af.TransformerEncoderLayer(d_model=8, num_heads=2, dim_feedforward=16, dropout=0.2)(
            x, attention_mask=ids)
        out = af.Dense(3, activation="softmax")(af.GlobalAveragePooling1D()(h))
        model = af.Model(ids, out, dtype=dtype, seed=seed)
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
