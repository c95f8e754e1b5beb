"""From symbolic tensors to the node list of a model: which layer calls feed which, in
topological order, checked (every output reachable from the given inputs, every input used, no
layer of another model, shared layers on inputs of one shape)."""
from .layers.base import InputLayer, Tensor


class Node:
    """One layer call: the layer, the indices of the nodes whose outputs feed it (in order) and
    its output tensor."""

    __slots__ = ("layer", "inputs", "tensor")

    def __init__(self, layer, inputs, tensor):
        self.layer, self.inputs, self.tensor = layer, inputs, tensor


def _as_tensor_list(x, what):
    many = isinstance(x, (list, tuple))
    items = list(x) if many else [x]
    if not items:
        raise ValueError(f"{what} must be an annfast tensor or a non-empty list of them")
    for i, t in enumerate(items):
        if not isinstance(t, Tensor):
            raise TypeError(f"{what}{f'[{i}]' if many else ''} must be an annfast tensor (af.Input or a "
                            f"layer's output), got {type(t).__name__}")
    if len(set(map(id, items))) != len(items):
        raise ValueError(f"{what} lists the same tensor twice")
    return items


def collect(inputs, outputs):
    """(input tensors, output tensors, nodes in topological order, index of each tensor's node).

    Depth-first from the outputs, inputs of a call in order, so a chain comes out in call order.
    Iterative: deep chains must not hit Python's recursion limit."""
    ins = _as_tensor_list(inputs, "inputs")
    outs = _as_tensor_list(outputs, "outputs")
    for i, t in enumerate(ins):
        if not isinstance(t._layer, InputLayer):
            raise ValueError(f"inputs[{i}] must come from af.Input(...), got the output of {t.name}")
    if len(ins) > 8 or len(outs) > 8:
        raise ValueError(f"a model has at most 8 inputs and 8 outputs, got {len(ins)} and {len(outs)}")
    index, nodes = {}, []
    for out in outs:
        stack = [(out, 0)]
        while stack:
            t, k = stack[-1]
            if id(t) in index:
                stack.pop()
                continue
            if k < len(t._inputs):
                stack[-1] = (t, k + 1)
                stack.append((t._inputs[k], 0))
                continue
            stack.pop()
            if isinstance(t._layer, InputLayer) and not any(t is i for i in ins):
                raise ValueError(f"the outputs depend on input {t.name!r}, which is not in inputs: "
                                 "list every af.Input the outputs need")
            index[id(t)] = len(nodes)
            nodes.append(Node(t._layer, [index[id(u)] for u in t._inputs], t))
    for i, t in enumerate(ins):
        if id(t) not in index:
            raise ValueError(f"inputs[{i}] ({t.name}) is not used by any output: every input must be "
                             "reachable from the outputs")
    owners, names = {}, {}
    for nd in nodes:
        other = names.setdefault(nd.layer.name, nd.layer)
        if other is not nd.layer:
            raise ValueError(f"two layers of the model are named {nd.layer.name!r}: layer names must be "
                             "unique within a model (they identify the layers in saved files)")
        layer = nd.layer
        if layer._model is not None:
            raise ValueError(f"layer {layer.name!r} already belongs to another model; create a new "
                             "layer object (a layer can be shared within one model only)")
        if isinstance(layer, InputLayer) and id(layer) in owners:
            raise ValueError(f"input {layer.name!r} appears twice")
        owners.setdefault(id(layer), layer)
    return ins, outs, nodes, index


def unique_layers(nodes):
    """The layers of the nodes, each once, in order of first use."""
    seen, layers = set(), []
    for nd in nodes:
        if id(nd.layer) not in seen:
            seen.add(id(nd.layer))
            layers.append(nd.layer)
    return layers
