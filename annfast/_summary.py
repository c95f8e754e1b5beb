"""model.summary(): one row per layer call with its output shape, parameter count and inputs."""
import numpy as np

from .layers.base import InputLayer


def summary_text(model):
    if not model.built:
        names = ", ".join(type(layer).__name__ for layer in model.layers)
        return f"{type(model).__name__} {model.name!r} (not built yet: {names or 'no layers'})"
    functional = type(model).__name__ != "Sequential"
    rows, seen = [], set()
    for nd in model._nodes:
        layer = nd.layer
        if isinstance(layer, InputLayer) and not functional:
            continue
        n = 0 if id(layer) in seen else layer.count_params()
        seen.add(id(layer))
        ins = ", ".join(model._nodes[i].layer.name for i in nd.inputs)
        rows.append((f"{layer.name} ({type(layer).__name__})", str(nd.tensor.shape), f"{n:,}", ins))
    head = ("Layer (type)", "Output Shape", "Param #", "Connected to")
    cols = 4 if functional else 3
    width = [max(len(r[c]) for r in rows + [head]) + 2 for c in range(cols)]
    line = "".join(h.ljust(w) for h, w in zip(head, width)).rstrip()
    out = [f'{type(model).__name__}: "{model.name}" (dtype={model._dtype_name})', "=" * len(line), line,
           "=" * len(line)]
    out += ["".join(r[c].ljust(width[c]) for c in range(cols)).rstrip() for r in rows]
    total = model.count_params()
    stats = int(model._stats.size)
    out += ["=" * len(line), f"Total params: {total + stats:,}", f"Trainable params: {total:,}",
            f"Non-trainable params: {stats:,}"]
    return "\n".join(out)
