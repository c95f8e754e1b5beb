"""Writes tests/data/engine_reference.npz: results of a fixed set of Sequential dense models
(weights after training, losses, predictions, evaluations, gradients) computed by the engine
before the graph redesign. tests/test_engine_reference.py checks the current engine reproduces
them bit for bit. Run from the repository root with an annfast build: python tests/make_engine_reference.py"""
import numpy as np

import annfast as af

CASES = {
    "relu_softmax_sgd": dict(layers=lambda: [af.Dense(16, activation="relu"), af.Dense(3, activation="softmax")],
                             loss="sparse_categorical_crossentropy", opt=lambda: af.optimizers.SGD(0.05), task="cls3"),
    "tanh_bn_dropout_bce_adam": dict(
        layers=lambda: [af.Dense(12, activation="tanh", l2=1e-3), af.BatchNormalization(), af.Dropout(0.3),
                        af.Dense(1, activation="sigmoid")],
        loss="binary_crossentropy", opt=lambda: af.optimizers.Adam(0.01, clipnorm=1.0), task="bin"),
    "elu_mse_rmsprop": dict(layers=lambda: [af.Dense(10, activation="elu"), af.Dense(2)], loss="mse",
                            opt=lambda: af.optimizers.RMSprop(0.01, momentum=0.9, clipvalue=0.5), task="reg2"),
    "leaky_selu_cce_adagrad": dict(
        layers=lambda: [af.Dense(9, activation="leaky_relu", alpha=0.1, l1=1e-4), af.Dense(7, activation="selu"),
                        af.Dense(3, activation="softmax")],
        loss="categorical_crossentropy", opt=lambda: af.optimizers.Adagrad(0.05), task="onehot3"),
    "sigmoid_mae_adadelta": dict(layers=lambda: [af.Dense(6, activation="sigmoid"), af.Dense(2, activation="tanh")],
                                 loss="mae", opt=lambda: af.optimizers.Adadelta(1.0), task="reg2"),
    "relu_hinge_nesterov": dict(layers=lambda: [af.Dense(8, activation="relu"), af.BatchNormalization(),
                                                af.Dense(1, activation="tanh")],
                                loss="hinge", opt=lambda: af.optimizers.SGD(0.02, momentum=0.9, nesterov=True),
                                task="pm1"),
    "softmax_mid_mse_sgd": dict(layers=lambda: [af.Dense(5, activation="softmax"), af.Dropout(0.2), af.Dense(2)],
                                loss="mse", opt=lambda: af.optimizers.SGD(0.1), task="reg2"),
}


def data(task, dtype):
    rng = np.random.default_rng(7)
    X = rng.normal(size=(70, 5)).astype(dtype)
    if task == "cls3":
        y = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0.5).astype(int)
    elif task == "bin":
        y = (X[:, 0] * X[:, 2] > 0).astype(dtype).reshape(-1, 1)
    elif task == "onehot3":
        y = np.eye(3, dtype=dtype)[(X[:, 0] > 0).astype(int) + (X[:, 3] > 0).astype(int)]
    elif task == "pm1":
        y = np.where(X[:, 1] > 0, 1.0, -1.0).astype(dtype).reshape(-1, 1)
    else:
        y = np.stack([np.sin(X[:, 0]), X[:, 1] * X[:, 2]], axis=1).astype(dtype)
    return X, y


def run_case(name, spec, dtype):
    X, y = data(spec["task"], dtype)
    model = af.Sequential(spec["layers"](), input_dim=5, dtype=dtype, seed=11)
    model.compile(loss=spec["loss"], optimizer=spec["opt"](), metrics=["accuracy"])
    out = {}
    h = model.fit(X, y, epochs=3, batch_size=16, verbose=0)
    out["loss"] = np.array(h.history["loss"])
    out["acc"] = np.array(h.history["accuracy"])
    for i, w in enumerate(model.get_weights()):
        out[f"w{i}"] = w
    out["pred"] = model.predict(X, batch_size=32)
    out["eval"] = np.array(model.evaluate(X, y, batch_size=32))
    for i, gr in enumerate(model.gradients(X, y)):
        out[f"g{i}"] = gr
    loss_t, grads_t = model.gradients(X[:20], y[:20], training=True, return_loss=True)
    out["gtrain_loss"] = np.array(loss_t)
    for i, gr in enumerate(grads_t):
        out[f"gt{i}"] = gr
    h2 = model.fit(X, y, epochs=1, batch_size=70, shuffle=False, verbose=0)
    out["loss_full"] = np.array(h2.history["loss"])
    for i, w in enumerate(model.get_weights()):
        out[f"wf{i}"] = w
    return {f"{name}/{dtype}/{k}": v for k, v in out.items()}


def all_results():
    res = {}
    for name, spec in CASES.items():
        for dtype in ("float32", "float64"):
            res.update(run_case(name, spec, dtype))
    return res


if __name__ == "__main__":
    np.savez("tests/data/engine_reference.npz", **all_results())
    print("wrote tests/data/engine_reference.npz")
