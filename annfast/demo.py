"""`annfast demo`: the tutorial's XOR network trained by annfast, timed against the NumPy class."""
import contextlib
import io
import time

import numpy as np

from .network import NeuralNetwork
from .reference import TutorialNeuralNetwork


def _timed_train(cls, X, y, epochs, lr, seed, quiet):
    np.random.seed(seed)
    nn = cls(input_size=2, hidden_size=4, output_size=1)
    out = io.StringIO()
    with contextlib.redirect_stdout(out) if quiet else contextlib.nullcontext():
        t0 = time.perf_counter()
        nn.train(X, y, epochs=epochs, learning_rate=lr)
        dt = time.perf_counter() - t0
    return nn, dt


def xor_demo(epochs=10000, lr=0.1, seed=42, repeats=3):
    """Train the tutorial XOR network with annfast, print its lines and predictions, then time
    the same training against the tutorial's NumPy class in this run."""
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]])
    y = np.array([[0], [1], [1], [0]])

    print(f"== Tutorial XOR network (2-4-1, sigmoid, MSE, {epochs} epochs, lr {lr}, seed {seed}) ==")
    nn, _ = _timed_train(NeuralNetwork, X, y, epochs, lr, seed, quiet=False)
    output = nn.feedforward(X)
    print("Predictions after training:")
    print(output)

    ref, _ = _timed_train(TutorialNeuralNetwork, X, y, epochs, lr, seed, quiet=True)
    diff = np.max(np.abs(ref.feedforward(X) - output))
    ours = min(_timed_train(NeuralNetwork, X, y, epochs, lr, seed, True)[1] for _ in range(repeats))
    numpy_t = min(_timed_train(TutorialNeuralNetwork, X, y, epochs, lr, seed, True)[1]
                  for _ in range(max(1, repeats - 1)))
    print(f"max |annfast - NumPy tutorial| prediction difference: {diff:.2e}")
    print(f"training time: annfast {ours * 1e3:.2f} ms, NumPy tutorial class {numpy_t * 1e3:.1f} ms "
          f"-> {numpy_t / ours:.0f}x faster (same run)")
    return numpy_t / ours


def spirals(n_per_class=500, n_classes=3, noise=0.2, seed=0):
    """A 2-D classification problem: interleaved spiral arms, one per class (not linearly
    separable). Returns X (n, 2) float64 and integer labels y (n,)."""
    rng = np.random.default_rng(seed)
    t = np.sqrt(rng.uniform(0, 1, (n_classes, n_per_class))) * 3 * np.pi  # radius ~ angle
    offset = 2 * np.pi * np.arange(n_classes)[:, None] / n_classes
    X = np.stack([t * np.cos(t + offset), t * np.sin(t + offset)], axis=-1).reshape(-1, 2) / (3 * np.pi)
    X += rng.normal(0, noise / (3 * np.pi) * 3, X.shape)
    y = np.repeat(np.arange(n_classes), n_per_class)
    return X, y


def classification_demo(epochs=30, seed=42, verbose=2, hidden=(64, 64)):
    """Train a 2-64-64-3 relu/softmax network with Adam on 3 interleaved spirals (1500 points,
    20% held out), showing per-epoch progress, then test accuracy and training speed."""
    import annfast
    X, y = spirals(seed=seed)
    rng = np.random.default_rng(seed)
    perm = rng.permutation(y.size)
    n_test = y.size // 5
    test, train = perm[:n_test], perm[n_test:]
    Y = np.eye(3)[y]
    print(f"== Classification: 3 interleaved spirals, {train.size} training / {test.size} test points, "
          f"network 2-{'-'.join(map(str, hidden))}-3 (relu, softmax), Adam, {epochs} epochs ==")
    model = annfast.Sequential([annfast.Dense(h, activation="relu") for h in hidden]
                               + [annfast.Dense(3, activation="softmax")],
                               input_dim=2, dtype="float32", seed=seed)
    model.compile(loss="categorical_crossentropy",
                  optimizer=annfast.optimizers.Adam(learning_rate=0.01), metrics=["accuracy"])
    t0 = time.perf_counter()
    model.fit(X[train], Y[train], epochs=epochs, batch_size=32, validation_data=(X[test], Y[test]),
              verbose=verbose)
    dt = time.perf_counter() - t0
    pred = np.argmax(model.predict(X[test]), axis=1)
    acc = float(np.mean(pred == y[test]))
    print(f"test accuracy {acc:.3f} (chance 0.333); trained in {dt:.2f} s "
          f"({epochs * train.size / dt:,.0f} samples/s incl. validation)")
    return acc


def lenet5(dtype="float32", seed=0):
    """LeNet-5 for 28x28x1 images and 10 classes: Conv2D 6@5x5 'same' relu, MaxPool 2, Conv2D 16@5x5
    relu, MaxPool 2, Flatten, Dense 120 relu, Dense 84 relu, Dense 10 softmax (61,706 parameters)."""
    import annfast
    return annfast.Sequential([
        annfast.Conv2D(6, 5, padding="same", activation="relu"), annfast.MaxPooling2D(2),
        annfast.Conv2D(16, 5, activation="relu"), annfast.MaxPooling2D(2), annfast.Flatten(),
        annfast.Dense(120, activation="relu"), annfast.Dense(84, activation="relu"),
        annfast.Dense(10, activation="softmax")], input_shape=(28, 28, 1), dtype=dtype, seed=seed)


def cnn_demo(epochs=1, seed=0, verbose=1, data_dir=None, batch_size=64):
    """Train LeNet-5 on Fashion-MNIST (60,000 training images) with Adam(1e-3) at batch 64 for
    `epochs` epochs with a progress bar, then print the accuracy on the 10,000 test images.
    The images are read from the IDX files of Debian's dataset-fashion-mnist package (or
    data_dir); nothing is downloaded."""
    import annfast
    from .datasets import load_fashion_mnist
    (x_train, y_train), (x_test, y_test) = load_fashion_mnist(data_dir, dtype="float32")
    X_train, X_test = x_train[..., None], x_test[..., None]  # (n, 28, 28, 1), channels last
    print(f"== LeNet-5 on Fashion-MNIST: {len(y_train):,} training / {len(y_test):,} test images, "
          f"Adam(1e-3), batch {batch_size}, {epochs} epoch(s), {annfast.get_num_threads()} threads ==")
    model = lenet5(seed=seed)
    model.compile(loss="sparse_categorical_crossentropy",
                  optimizer=annfast.optimizers.Adam(learning_rate=1e-3), metrics=["accuracy"])
    t0 = time.perf_counter()
    model.fit(X_train, y_train, epochs=epochs, batch_size=batch_size, verbose=verbose)
    dt = time.perf_counter() - t0
    t1 = time.perf_counter()
    pred = np.argmax(model.predict(X_test), axis=1)
    dp = time.perf_counter() - t1
    acc = float(np.mean(pred == y_test))
    print(f"test accuracy {acc:.4f} (chance 0.100); trained in {dt:.1f} s "
          f"({epochs * len(y_train) / dt:,.0f} images/s), predicted 10,000 images in {dp * 1e3:.0f} ms")
    return acc
