"""A functional Model rebuilt from its get_config(): layers from their configs, then each
layer called again on the tensors its recorded calls took ("inbound_nodes": per call, the
[layer name, call index] of every input), with every reference checked."""
from .layers import Layer
from .layers.base import Input, InputLayer


def _ref(value, what):
    if (not isinstance(value, (list, tuple)) or len(value) != 2 or not isinstance(value[0], str)
            or isinstance(value[1], bool) or not isinstance(value[1], int)):
        raise ValueError(f"{what} must be a [layer name, call index] pair, got {value!r}")
    return value[0], value[1]


def model_from_config(cls, config):
    inputs, outputs = tensors_from_config(config)
    return cls(inputs=inputs, outputs=outputs, dtype=config.get("dtype", "float32"), seed=config.get("seed"),
               name=config.get("name"))


def tensors_from_config(config):
    """(input tensors, output tensors) of a functional model's config; builds layers and calls
    them symbolically (shapes only, nothing allocated)."""
    if not isinstance(config, dict):
        raise TypeError(f"model config must be a dict, got {type(config).__name__}")
    for key in ("layers", "inputs", "outputs"):
        if not isinstance(config.get(key), list):
            raise ValueError(f"model config[{key!r}] must be a list")
    known = {"class_name", "name", "dtype", "seed", "layers", "inputs", "outputs", "loss", "optimizer",
             "metrics", "loss_weights"}
    unknown = set(config) - known
    if unknown:
        raise ValueError(f"unknown Model config keys {sorted(unknown)}")
    layers, pending = {}, []
    for i, lc in enumerate(config["layers"]):
        if not isinstance(lc, dict):
            raise ValueError(f"model config layers[{i}] must be a dict")
        lc = dict(lc)
        inbound = lc.pop("inbound_nodes", [])
        if lc.get("class_name") == "InputLayer":
            lc.pop("class_name")
            try:
                tensor = Input(**lc)
            except TypeError as exc:
                raise ValueError(f"bad config for InputLayer: {exc}") from None
            layer = tensor._layer
            calls = [tensor]
        else:
            layer = Layer.from_config(lc)
            calls = []
            if not isinstance(inbound, list) or not inbound:
                raise ValueError(f"model config: layer {layer.name!r} has no inbound_nodes")
            pending.append((layer, inbound))
        if layer.name in layers:
            raise ValueError(f"model config: two layers are named {layer.name!r}")
        layers[layer.name] = (layer, calls)
    # call layers once all of their inputs exist (the config lists them in order of first use,
    # but a shared layer's later calls may depend on layers listed after it)
    progress = True
    while pending and progress:
        progress = False
        for item in list(pending):
            layer, inbound = item
            calls = layers[layer.name][1]
            while len(calls) < len(inbound):
                refs = inbound[len(calls)]
                if not isinstance(refs, list) or not refs:
                    raise ValueError(f"model config: a call of {layer.name!r} has no inputs")
                srcs = []
                for r in refs:
                    name, k = _ref(r, f"an input of {layer.name!r}")
                    if name not in layers:
                        raise ValueError(f"model config: {layer.name!r} takes an input from unknown layer {name!r}")
                    if k >= len(layers[name][1]):
                        break
                    srcs.append(layers[name][1][k])
                if len(srcs) < len(refs):
                    break
                multi = layer.n_inputs[1] > 1
                calls.append(layer(srcs if multi else srcs[0]))
                progress = True
            if len(calls) == len(inbound):
                pending.remove(item)
    if pending:
        raise ValueError("model config: the layer calls form a cycle or refer to calls that do not exist "
                         f"({', '.join(layer.name for layer, _ in pending)})")
    inputs = []
    for name in config["inputs"]:
        if name not in layers or not isinstance(layers[name][0], InputLayer):
            raise ValueError(f"model config: input {name!r} is not an InputLayer of the config")
        inputs.append(layers[name][1][0])
    outputs = []
    for r in config["outputs"]:
        name, k = _ref(r, "an output")
        if name not in layers or k >= len(layers[name][1]):
            raise ValueError(f"model config: output {r!r} refers to no layer call")
        outputs.append(layers[name][1][k])
    return inputs, outputs
