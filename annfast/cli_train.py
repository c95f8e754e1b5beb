"""`annfast train DATA`: train a network on a CSV / .npy / .npz table and save it.

    annfast train iris.csv --target species --hidden 32,16 --epochs 50 --output iris.npz
    annfast predict iris.npz iris.csv --target species

The task is chosen from the target (strings or few integer values: classification, else
regression) unless --task says. Features are standardised with the training mean/std and the
scaling is folded into the first layer, so the saved model takes raw features. The class labels
and feature names travel with the model (see `annfast.cli_model`).
"""
import time

import numpy as np

from .cli_common import fraction, layer_sizes, nonneg_int, positive_float, positive_int, target_column

OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop", "adagrad", "adadelta")
ACTIVATIONS = ("relu", "tanh", "sigmoid", "leaky_relu", "elu", "selu", "linear")


def add_parser(sub):
    p = sub.add_parser("train", help="train a network on a CSV/.npy/.npz file and save it",
                       description="Train a network on a table of numbers and save the model.")
    p.add_argument("data", help="training data: .csv/.tsv/.txt (header optional), .npy or .npz")
    p.add_argument("--target", type=target_column, default=-1,
                   help="target column: name or index (default -1, the last column); for .npz the "
                        "name of the target array (default 'y' next to 'X')")
    p.add_argument("--task", choices=("auto", "classification", "regression"), default="auto",
                   help="auto: classification for string or few-valued integer targets (default)")
    p.add_argument("--hidden", type=layer_sizes, default=[64], metavar="N,N,...",
                   help="hidden layer sizes, comma-separated (default 64)")
    p.add_argument("--activation", choices=ACTIVATIONS, default="relu",
                   help="hidden-layer activation (default relu)")
    p.add_argument("--optimizer", choices=OPTIMIZERS, default="adam", help="optimiser (default adam)")
    p.add_argument("--lr", type=positive_float, default=None,
                   help="learning rate (default: the optimiser's, 0.001 for adam)")
    p.add_argument("--epochs", type=positive_int, default=20, help="epochs (default 20)")
    p.add_argument("--batch-size", type=positive_int, default=32, help="mini-batch size (default 32)")
    p.add_argument("--validation-split", type=fraction, default=0.0,
                   help="fraction of rows held out for validation (default 0)")
    p.add_argument("--dtype", choices=("float32", "float64"), default="float32",
                   help="compute precision (default float32)")
    p.add_argument("--seed", type=nonneg_int, default=0, help="seed for init and shuffling (default 0)")
    p.add_argument("--threads", type=positive_int, default=None, help="OpenMP threads (default: all)")
    p.add_argument("--delimiter", default=None, help="CSV delimiter (default: sniffed)")
    p.add_argument("--no-standardize", action="store_true",
                   help="use the features as they are (default: standardise them)")
    p.add_argument("--verbose", type=int, choices=(0, 1, 2), default=1,
                   help="0 silent, 1 progress bar, 2 one line per epoch (default 1)")
    p.add_argument("-o", "--output", default="model.npz", help="where to save the model (default model.npz)")
    p.add_argument("--plot", default=None, metavar="FILE.png",
                   help="also save the training curve (needs matplotlib)")
    p.set_defaults(func=run)
    return p


def _is_classification(y, task):
    if task != "auto":
        return task == "classification"
    if y.dtype.kind in "USO":
        return True
    if y.dtype.kind in "biu":
        return np.unique(y).size <= max(20, int(0.05 * y.size)) and np.unique(y).size < y.size
    return False


def run(args):
    import annfast
    from . import cli_model
    from .datafile import load_table

    if args.plot is not None:
        from .plotting import _pyplot
        _pyplot()  # fail early (before training) when matplotlib is missing
    table = load_table(args.data, target=args.target, delimiter=args.delimiter)
    X, y = table.X, table.y
    if X.shape[0] < 2:
        raise ValueError(f"{args.data}: need at least 2 rows to train, got {X.shape[0]}")
    classify = _is_classification(y, args.task)
    if classify:
        classes, y_idx = np.unique(y, return_inverse=True)
        if classes.size < 2:
            raise ValueError(f"{args.data}: target {table.target_name!r} has a single class "
                             f"{classes[0]!r}; need at least 2 to classify")
        Y = np.eye(classes.size)[y_idx]
        out_units, out_act, loss = classes.size, "softmax", "categorical_crossentropy"
    else:
        if y.dtype.kind not in "biuf":
            raise ValueError(f"{args.data}: target {table.target_name!r} is not numeric; "
                             f"use --task classification")
        classes, Y = None, y.astype(np.float64).reshape(-1, 1)
        out_units, out_act, loss = 1, "linear", "mse"

    mean = X.mean(axis=0) if not args.no_standardize else np.zeros(X.shape[1])
    std = X.std(axis=0) if not args.no_standardize else np.ones(X.shape[1])
    std = np.where(std > 0, std, 1.0)
    Xs = (X - mean) / std

    if args.threads is not None:
        annfast.set_num_threads(args.threads)
    layers = [annfast.Dense(h, activation=args.activation) for h in args.hidden]
    layers.append(annfast.Dense(out_units, activation=out_act))
    model = annfast.Sequential(layers, input_dim=X.shape[1], dtype=args.dtype, seed=args.seed)
    opt_cls = {"sgd": "SGD", "adam": "Adam", "adamw": "AdamW", "rmsprop": "RMSprop",
               "adagrad": "Adagrad", "adadelta": "Adadelta"}[args.optimizer]
    opt_kw = {} if args.lr is None else {"learning_rate": args.lr}
    optimizer = getattr(annfast.optimizers, opt_cls)(**opt_kw)
    model.compile(loss=loss, optimizer=optimizer, metrics=["accuracy"] if classify else None)

    task = "classification" if classify else "regression"
    print(f"annfast train: {X.shape[0]} rows, {X.shape[1]} features -> {task}"
          + (f" ({classes.size} classes)" if classify else "")
          + f"; network {X.shape[1]}-{'-'.join(map(str, args.hidden + [out_units]))}, "
            f"{args.optimizer}, {args.dtype}, {annfast.get_num_threads()} threads")
    t0 = time.perf_counter()
    history = model.fit(Xs, Y, epochs=args.epochs, batch_size=min(args.batch_size, X.shape[0]),
                        shuffle=True, validation_split=args.validation_split, verbose=args.verbose)
    dt = time.perf_counter() - t0
    hist = history.history
    summary = ", ".join(f"{k} {v[-1]:.4g}" for k, v in hist.items() if len(v))
    print(f"trained {len(hist.get('loss', []))} epochs in {dt:.3f} s ({X.shape[0] * len(hist.get('loss', [])) / max(dt, 1e-9):,.0f} samples/s): {summary}")

    cli_model.fold_standardization(model, mean, std)
    meta = {"task": task, "feature_names": [str(n) for n in table.feature_names],
            "target_name": None if table.target_name is None else str(table.target_name),
            "classes": None if classes is None else [c.item() if hasattr(c, "item") else c
                                                      for c in classes]}
    path = cli_model.save(model, meta, args.output)
    print(f"saved model to {path}")
    if args.plot is not None:
        from .plotting import plot_history
        plot_history(history, args.plot, title=f"annfast train {args.data}")
        print(f"saved training curve to {args.plot}")
    return 0
