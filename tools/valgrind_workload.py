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
        if hasattr(annfast, "Conv2D"):
            # every convolution path (cells, direct, im2col + GEMM, pointwise) and the poolings
            for dt in ("float32", "float64"):
                x = annfast.Input(shape=(9, 8, 1))
                h = annfast.Conv2D(4, 3, padding="same", activation="relu")(x)
                h = annfast.MaxPooling2D(2, padding="same")(h)
                h = annfast.Conv2D(18, 3, strides=(1, 2), dilation_rate=(2, 1), padding="same")(h)
                h = annfast.Conv2D(12, 2, activation="tanh")(annfast.Conv2D(20, 1)(h))
                h = annfast.AveragePooling2D((2, 1))(h)
                out = annfast.Dense(3, activation="softmax")(annfast.GlobalMaxPooling2D()(h))
                cnn = annfast.Model(x, out, dtype=dt, seed=0)
                cnn.compile(loss="sparse_categorical_crossentropy", optimizer="adam")
                Xc, yc = rng.normal(size=(6, 9, 8, 1)), rng.integers(0, 3, 6)
                cnn.fit(Xc, yc, epochs=2, batch_size=4, verbose=0)
                cnn.predict(Xc)
                cnn.input_gradients(Xc, yc)
                s = annfast.Input(shape=(11, 3))
                q = annfast.MaxPooling1D(2)(annfast.Conv1D(5, 3, padding="same")(s))
                seq = annfast.Model(s, annfast.Dense(2)(annfast.GlobalAveragePooling1D()(annfast.AveragePooling1D(2)(q))),
                                    dtype=dt, seed=0)
                seq.compile(loss="mse", optimizer="sgd")
                seq.fit(rng.normal(size=(5, 11, 3)), rng.normal(size=(5, 2)), epochs=1, verbose=0)
print("workload done")
