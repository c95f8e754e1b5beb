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
        if hasattr(annfast, "MultiHeadAttention"):
            for dt in ("float32", "float64"):
                # attention kinds with masks and dropout (kept and recomputed probabilities), the
                # transformer blocks, and greedy decoding (incremental and recomputing)
                q, v = annfast.Input(shape=(5, 8)), annfast.Input(shape=(7, 8))
                mk = annfast.Input(shape=(7,), dtype="int32")
                mha = annfast.MultiHeadAttention(2, 3, dropout=0.2)
                h = mha(q, v, attention_mask=mk)
                a2 = annfast.AdditiveAttention(dropout=0.1)([q, v], attention_mask=mk)
                a3 = annfast.Attention(use_scale=True)([q, v], use_causal_mask=True)
                h = annfast.LayerNormalization()(annfast.Concatenate()([h, a2, a3]))
                m = annfast.Model([q, v, mk], h, dtype=dt, seed=0)
                m.compile(loss="mse", optimizer="adam")
                Xa = [rng.normal(size=(12, 5, 8)), rng.normal(size=(12, 7, 8)), rng.integers(0, 2, (12, 7))]
                m.fit(Xa, rng.normal(size=(12, 5, 24)), epochs=1, batch_size=5, verbose=0)
                mha._scores = "recompute"
                m._engine = None
                m.fit(Xa, rng.normal(size=(12, 5, 24)), epochs=1, batch_size=5, verbose=0)
                t = annfast.seq2seq.transformer(7, 8, 6, 5, d_model=8, num_heads=2, dim_feedforward=8, num_layers=1,
                                                positional="sinusoidal", norm_first=True, dtype=dt, seed=0)
                t.compile(loss="sparse_categorical_crossentropy", optimizer="adam")
                src, tg = rng.integers(0, 7, (9, 6)), rng.integers(0, 7, (9, 5))
                t.fit([src, annfast.seq2seq.shift_right(tg, 7)], tg, epochs=1, batch_size=4, verbose=0)
                annfast.seq2seq.greedy_decode(t, src, 7, return_scores=True, batch_size=4)
                annfast.seq2seq.greedy_decode(t, src, 7, method="recompute")
print("workload done")
