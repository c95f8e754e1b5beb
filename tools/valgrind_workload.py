"""Representative workload for tools/valgrind.sh: every engine entry point, small sizes."""
import contextlib
import io

import numpy as np

import annfast

rng = np.random.default_rng(0)
with contextlib.redirect_stdout(io.StringIO()):
    for isa in annfast._info.config()["supported_isas"]:
        annfast.set_isa(isa)
        np.random.seed(0)
        nn = annfast.NeuralNetwork(3, 5, 2)
        X, y = rng.normal(size=(7, 3)), rng.uniform(size=(7, 2))
        nn.train(X, y, 50, 0.1)
        nn.feedforward(X)
        nn.backward(X, y, 0.1)
        if hasattr(annfast, "matmul"):
            for dt in (np.float32, np.float64):
                a, b = rng.normal(size=(37, 19)).astype(dt), rng.normal(size=(19, 23)).astype(dt)
                annfast.matmul(a, b)
                annfast.matmul(b, a, trans_a=True, trans_b=True)
        if hasattr(annfast, "Sequential"):
            for dt in ("float32", "float64"):
                m = annfast.Sequential([annfast.Dense(8, activation="relu"), annfast.Dense(3, activation="softmax")],
                                       input_dim=4, dtype=dt, seed=0)
                m.compile(loss="categorical_crossentropy", optimizer="adam")
                Xm = rng.normal(size=(50, 4))
                ym = np.eye(3)[rng.integers(0, 3, 50)]
                m.fit(Xm, ym, epochs=2, batch_size=16, verbose=0)
                m.predict(Xm)
                m.evaluate(Xm, ym)
        if hasattr(annfast, "LSTM"):
            for dt in ("float32", "float64"):
                x = annfast.Input(shape=(6, 3))
                seq, _, c = annfast.LSTM(5, return_sequences=True, return_state=True, dropout=0.1,
                                         recurrent_dropout=0.1)(annfast.Masking()(x))
                out = annfast.Bidirectional(annfast.GRU(4), merge_mode="mul")(seq)
                m = annfast.Model(x, [annfast.Dense(2)(annfast.SimpleRNN(3)(seq)), out, c], dtype=dt, seed=0)
                m.compile(loss="mse", optimizer="adam")
                Xr = rng.normal(size=(40, 6, 3))
                Xr[::2, 4:] = 0
                m.fit(Xr, [rng.normal(size=(40, 2)), rng.normal(size=(40, 4)), rng.normal(size=(40, 5))],
                      epochs=1, batch_size=16, verbose=0)
                m.predict(Xr)
print("workload done")
