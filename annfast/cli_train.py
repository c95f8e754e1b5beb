"""`annfast train DATA`: train a network on a CSV / .npy / .npz table and save it.

    annfast train iris.csv --target species --hidden 32,16 --epochs 50 --output iris.npz
    annfast predict iris.npz iris.csv --target species

The task is chosen from the target's values by one rule for every format (labels, or whole
numbers with few distinct values: classification; else regression; see
`annfast.cli_prep.detect_task`) unless --task says. --validation-split holds out a shuffled
(for classification, stratified) share of the rows. Features are standardised with the mean/std
of the TRAINING rows and the scaling is folded into the first layer; regression targets are
standardised likewise and folded into the last layer, so the saved model takes raw features and
returns raw targets. The file is annfast's one model format (`annfast.load_model` opens it); the
class labels and feature names travel in its metadata (see `annfast.cli_model`).
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
                   help="auto (default): classification for labels or whole-number targets with at "
                        "most max(20, 5%% of rows) distinct values, else regression; the same rule "
                        "for .csv, .npy and .npz")
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
                   help="fraction of rows held out for validation, shuffled with --seed and "
                        "stratified by class for classification (default 0)")
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


def _targets(table, args):
    """(task, reason, classes or None, class index per row or the float targets)."""
    from .cli_prep import detect_task, integral_labels
    y = table.y
    if args.task == "auto":
        task, reason = detect_task(y)
    else:
        task, reason = args.task, "--task"
    if task == "classification":
        classes, y_idx = np.unique(integral_labels(y), return_inverse=True)
        if classes.size < 2:
            raise ValueError(f"{args.data}: target {table.target_name!r} has a single class "
                             f"{classes[0]!r}; need at least 2 to classify")
        return task, reason, classes, y_idx.reshape(-1)
    if y.dtype.kind not in "biuf":
        raise ValueError(f"{args.data}: target {table.target_name!r} is not numeric; "
                         f"use --task classification")
    return task, reason, None, y.astype(np.float64)


def _build(args, n_features, out_units, out_act, loss, classify):
    import annfast
    layers = [annfast.Dense(h, activation=args.activation) for h in args.hidden]
    layers.append(annfast.Dense(out_units, activation=out_act))
    model = annfast.Sequential(layers, input_dim=n_features, dtype=args.dtype, seed=args.seed)
    opt_cls = {"sgd": "SGD", "adam": "Adam", "adamw": "AdamW", "rmsprop": "RMSprop",
               "adagrad": "Adagrad", "adadelta": "Adadelta"}[args.optimizer]
    opt_kw = {} if args.lr is None else {"learning_rate": args.lr}
    optimizer = getattr(annfast.optimizers, opt_cls)(**opt_kw)
    model.compile(loss=loss, optimizer=optimizer, metrics=["accuracy"] if classify else None)
    return model


def _raw_scores(model, X, target, classify):
    """Held-out quality in the target's own units, from the folded (saved) model."""
    pred = model.predict(X)
    if classify:
        return f"accuracy {np.mean(np.argmax(pred, axis=1) == target):.4f}"
    resid = pred[:, 0].astype(np.float64) - target
    ss_tot = np.sum((target - target.mean()) ** 2)
    r2 = 1.0 - np.sum(resid ** 2) / ss_tot if ss_tot > 0 else float("nan")
    return f"RMSE {np.sqrt(np.mean(resid ** 2)):.6g}, R^2 {r2:.4f}"


def run(args):
    import annfast
    from . import cli_model
    from .cli_prep import split_rows, standardization
    from .datafile import load_table

    if args.plot is not None:
        from .plotting import _pyplot
        _pyplot()  # fail early (before training) when matplotlib is missing
    table = load_table(args.data, target=args.target, delimiter=args.delimiter)
    X = table.X
    if X.shape[0] < 2:
        raise ValueError(f"{args.data}: need at least 2 rows to train, got {X.shape[0]}")
    task, reason, classes, target = _targets(table, args)
    classify = task == "classification"
    # shuffled split, stratified by class; every statistic below comes from training rows only
    train, val = split_rows(X.shape[0], args.validation_split, args.seed,
                            target if classify else None)
    if args.no_standardize:
        mean, std = np.zeros(X.shape[1]), np.ones(X.shape[1])
    else:
        mean, std = standardization(X[train])
    Xs = (X - mean) / std
    if classify:
        Y = np.eye(classes.size)[target]
        y_mean, y_std = 0.0, 1.0
        out_units, out_act, loss = classes.size, "softmax", "categorical_crossentropy"
    else:
        y_mean, y_std = standardization(target[train].reshape(-1, 1))
        y_mean, y_std = float(y_mean[0]), float(y_std[0])
        Y = ((target - y_mean) / y_std).reshape(-1, 1)
        out_units, out_act, loss = 1, "linear", "mse"

    if args.threads is not None:
        annfast.set_num_threads(args.threads)
    model = _build(args, X.shape[1], out_units, out_act, loss, classify)
    print(f"annfast train: {X.shape[0]} rows, {X.shape[1]} features -> {task}"
          + (f" ({classes.size} classes)" if classify else "")
          + f" [{reason}; --task overrides]"
          + (f"; {val.size} shuffled{' stratified' if classify else ''} validation rows" if val.size else "")
          + f"; network {X.shape[1]}-{'-'.join(map(str, args.hidden + [out_units]))}, "
            f"{args.optimizer}, {args.dtype}, {annfast.get_num_threads()} threads")
    validation = (Xs[val], Y[val]) if val.size else None
    t0 = time.perf_counter()
    history = model.fit(Xs[train], Y[train], epochs=args.epochs,
                        batch_size=min(args.batch_size, train.size), shuffle=True,
                        validation_data=validation, verbose=args.verbose)
    dt = time.perf_counter() - t0
    hist = history.history
    n_epochs = len(hist.get("loss", []))
    scaled = "" if classify else " (standardised target)"
    summary = ", ".join(f"{k} {v[-1]:.4g}" for k, v in hist.items() if len(v))
    print(f"trained {n_epochs} epochs in {dt:.3f} s "
          f"({train.size * n_epochs / max(dt, 1e-9):,.0f} samples/s): {summary}{scaled}")

    cli_model.fold_standardization(model, mean, std)
    if not classify:
        cli_model.fold_target_scaling(model, y_mean, y_std)
    if val.size:
        print(f"validation ({val.size} rows, raw units): {_raw_scores(model, X[val], target[val], classify)}")
    model.compile(model.loss, model.optimizer, model.metrics)  # fresh optimiser state for the folded weights
    meta = {"task": task, "feature_names": [str(n) for n in table.feature_names],
            "target_name": None if table.target_name is None else str(table.target_name),
            "classes": None if classes is None else [c.item() if hasattr(c, "item") else c
                                                      for c in classes]}
    path = cli_model.save(model, meta, args.output)
    print(f"saved model to {path} (open it with annfast.load_model)")
    if args.plot is not None:
        from .plotting import plot_history
        plot_history(history, args.plot, title=f"annfast train {args.data}")
        print(f"saved training curve to {args.plot}")
    return 0
