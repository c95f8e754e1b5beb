"""A functional Model rebuilt from its get_config(): layers from their configs, then each
layer called again on the tensors its recorded calls took ("inbound_nodes": per call, the
reference of every input; "call_kwargs": per call, tensors given by keyword, such as a mask or
initial states), with every reference checked.

A reference is [layer name, call index], or [layer name, call index, part] for one result of a
call with several (part j of the list it returned, e.g. an LSTM's [output, h, c]) or for the
mask of its result (part "mask"). Layers made by another layer's call (a mask, a slice of a
packed output: they have an _owner) are not listed: the owner's call makes them again."""
from .layers import Layer
from .layers.base import Input, InputLayer


def call_refs(nodes):
    """({id(layer): its call nodes}, {node index: reference}) for the layers a config lists."""
    calls, ref = {}, {}
    for nd in nodes:
        if getattr(nd.layer, "_owner", None) is None:
            calls.setdefault(id(nd.layer), []).append(nd)
    mask_of = {id(nd.tensor._mask): i for i, nd in enumerate(nodes) if nd.tensor._mask is not None}
    owned = []
    for i, nd in enumerate(nodes):
        if getattr(nd.layer, "_owner", None) is None:
            ref[i] = [nd.layer.name, calls[id(nd.layer)].index(nd)]
        else:
            owned.append(i)
    for i in owned:
        nd = nodes[i]
        if getattr(nd.layer, "_part_index", None) is not None:
            ref[i] = ref[nd.inputs[0]][:2] + [nd.layer._part_index]
        elif id(nd.tensor) in mask_of and mask_of[id(nd.tensor)] in ref:
            ref[i] = ref[mask_of[id(nd.tensor)]][:2] + ["mask"]
    return calls, ref


def _ref(value, what):
    if (not isinstance(value, (list, tuple)) or len(value) not in (2, 3) or not isinstance(value[0], str)
            or isinstance(value[1], bool) or not isinstance(value[1], int)
            or (len(value) == 3 and not (value[2] == "mask" or (isinstance(value[2], int)
                                                                 and not isinstance(value[2], bool))))):
        raise ValueError(f"{what} must be a [layer name, call index] pair or a [layer name, call index, part] "
                         f"triple, got {value!r}")
    return value[0], value[1], (value[2] if len(value) == 3 else None)


def _resolve(layers, value, what):
    """The tensor a reference names, or None while that call has not been made yet."""
    name, k, part = _ref(value, what)
    if name not in layers:
        raise ValueError(f"model config: {what} refers to unknown layer {name!r}")
    calls = layers[name][1]
    if k >= len(calls):
        return None
    out = calls[k]
    if part == "mask":
        out = (out[0] if isinstance(out, list) else out)._mask
        if out is None:
            raise ValueError(f"model config: {what} refers to the mask of {name!r}, which has none")
        return out
    if part is None and isinstance(out, list):
        raise ValueError(f"model config: {what}: call {k} of {name!r} returned {len(out)} tensors; "
                         "refer to one as [name, call, index]")
    if part is not None:
        if not isinstance(out, list) or part >= len(out):
            raise ValueError(f"model config: {what} refers to result {part} of {name!r}, which returned "
                             f"{len(out) if isinstance(out, list) else 1}")
        out = out[part]
    return out


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
        call_kwargs = lc.pop("call_kwargs", None)
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
            if call_kwargs is not None and (not isinstance(call_kwargs, list) or len(call_kwargs) != len(inbound)
                                            or not all(isinstance(k, dict) for k in call_kwargs)):
                raise ValueError(f"model config: call_kwargs of {layer.name!r} must be a list of one dict per call")
            pending.append((layer, inbound, call_kwargs or [{}] * len(inbound)))
        if layer.name in layers:
            raise ValueError(f"model config: two layers are named {layer.name!r}")
        layers[layer.name] = (layer, calls)
    # call layers once all of their inputs exist (the config lists them in order of first use,
    # but a shared layer's later calls may depend on layers listed after it)
    progress = True
    while pending and progress:
        progress = False
        for item in list(pending):
            layer, inbound, kwargs_list = item
            calls = layers[layer.name][1]
            while len(calls) < len(inbound):
                refs, kw_refs = inbound[len(calls)], kwargs_list[len(calls)]
                if not isinstance(refs, list) or not refs:
                    raise ValueError(f"model config: a call of {layer.name!r} has no inputs")
                what = f"an input of {layer.name!r}"
                srcs = [_resolve(layers, r, what) for r in refs]
                kwargs = {k: ([_resolve(layers, r, what) for r in v] if v and isinstance(v[0], list)
                              else _resolve(layers, v, what)) for k, v in kw_refs.items()}
                if any(s is None for s in srcs) or any(
                        v is None or (isinstance(v, list) and any(t is None for t in v)) for v in kwargs.values()):
                    break
                multi = layer.n_inputs[1] > 1
                try:
                    calls.append(layer(srcs if multi else srcs[0], **kwargs))
                except TypeError as exc:
                    raise ValueError(f"model config: calling {layer.name!r}: {exc}") from None
                progress = True
            if len(calls) == len(inbound):
                pending.remove(item)
    if pending:
        raise ValueError("model config: the layer calls form a cycle or refer to calls that do not exist "
                         f"({', '.join(item[0].name for item in pending)})")
    inputs = []
    for name in config["inputs"]:
        if name not in layers or not isinstance(layers[name][0], InputLayer):
            raise ValueError(f"model config: input {name!r} is not an InputLayer of the config")
        inputs.append(layers[name][1][0])
    outputs = []
    for r in config["outputs"]:
        t = _resolve(layers, r, "an output")
        if t is None:
            raise ValueError(f"model config: output {r!r} refers to no layer call")
        outputs.append(t)
    return inputs, outputs
