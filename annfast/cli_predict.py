"""`annfast predict MODEL DATA`: predictions of a model saved by `annfast train`.

    annfast predict model.npz new.csv                  # one prediction per row, CSV on stdout
    annfast predict model.npz test.csv --target y      # also report accuracy / RMSE against y
    annfast predict model.npz new.npy --proba -o p.csv # class probabilities to a file

When DATA still holds the training target column (same name in the CSV header) it is dropped and
used for scoring automatically.
"""
import sys

import numpy as np

from .cli_common import target_column


def add_parser(sub):
    p = sub.add_parser("predict", help="predict with a model saved by 'annfast train'",
                       description="Predict with a saved model; prints CSV (one row per sample).")
    p.add_argument("model", help="model file written by 'annfast train' or annfast.save_model")
    p.add_argument("data", help="features: .csv/.tsv/.txt, .npy or .npz (same columns as training)")
    p.add_argument("--target", type=target_column, default=None,
                   help="column (name or index) holding true values: dropped from the features and "
                        "used to report accuracy (classification) or RMSE (regression)")
    p.add_argument("--proba", action="store_true", help="write class probabilities instead of labels")
    p.add_argument("-o", "--output", default=None, help="write predictions to this CSV (default stdout)")
    p.add_argument("--delimiter", default=None, help="CSV delimiter (default: sniffed)")
    p.set_defaults(func=run)
    return p


def _load_features(args, meta, n_features):
    from .datafile import load_table
    if args.target is not None:
        return load_table(args.data, target=args.target, delimiter=args.delimiter)
    tname = meta.get("target_name")
    if tname is not None:  # the training target column still in the file: drop it, score on it
        try:
            table = load_table(args.data, target=tname, delimiter=args.delimiter)
            if table.X.shape[1] == n_features:
                return table
        except ValueError:
            pass
    return load_table(args.data, target=None, delimiter=args.delimiter)


def run(args):
    from . import cli_model
    model, meta = cli_model.load(args.model)
    n_features = len(meta["feature_names"])
    table = _load_features(args, meta, n_features)
    X = table.X
    if X.shape[1] != n_features:
        hint = "" if args.target is not None else " (use --target to drop a target column)"
        raise ValueError(f"{args.data}: {X.shape[1]} feature columns, the model expects "
                         f"{n_features}{hint}")
    classify = meta["task"] == "classification"
    if args.proba and not classify:
        raise ValueError("--proba needs a classification model; this one is a regression model")
    # predict converts X to the model's dtype itself (naming a value that overflows it) and
    # returns that dtype, whose digits are printed
    out = model.predict(X)
    if classify:
        if out.shape[1] == 1:  # one sigmoid output, P(second class): both columns
            out = np.hstack([1 - out, out])
        classes = np.asarray(meta["classes"])
        labels = classes[np.argmax(out, axis=1)]
    else:
        labels = out[:, 0]
    stream = open(args.output, "w", encoding="utf-8") if args.output else sys.stdout
    try:
        if args.proba:
            names = meta["classes"] if out.shape[1] > 1 else meta["classes"][1:2]
            stream.write(",".join(f"p_{c}" for c in names) + "\n")
            stream.write("".join(",".join(map(str, row)) + "\n" for row in out))
        else:
            stream.write(f"{meta.get('target_name') or 'prediction'}\n")
            # str() of a NumPy scalar is the shortest text that reads back as the same value of
            # ITS dtype: float32 predictions print with float32 digits (0.3, not 0.30000001192...);
            # format()/f-strings would go through a Python float and print float64 digits
            stream.write("".join(str(v) + "\n" for v in labels))  # str, not format(): see above
    finally:
        if args.output:
            stream.close()
    if table.y is not None:
        _report(args, table.y, labels, classify)
    if args.output:
        print(f"wrote {X.shape[0]} predictions to {args.output}", file=sys.stderr)
    return 0


def _report(args, y, labels, classify):
    if classify:
        acc = float(np.mean(labels.astype(str) == np.asarray(y).astype(str)))
        print(f"accuracy on {args.data}: {acc:.4f} ({y.shape[0]} rows)", file=sys.stderr)
        return
    if y.dtype.kind not in "biuf":
        raise ValueError(f"{args.data}: target column is not numeric")
    y = y.astype(np.float64)
    resid = labels.astype(np.float64) - y
    rmse = float(np.sqrt(np.mean(resid ** 2)))
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    r2 = 1.0 - float(np.sum(resid ** 2)) / ss_tot if ss_tot > 0 else float("nan")
    print(f"RMSE on {args.data}: {rmse:.6g}, R^2 {r2:.4f} ({y.shape[0]} rows)", file=sys.stderr)


def model_dtype(model):
    return np.dtype(getattr(model, "dtype", "float32"))
