"""Helpers the CNN tests share: PyTorch references of annfast's convolution and pooling layers
(channels-last, Keras padding) with the same weights, and the relative error."""
import numpy as np


def same_pads(n, k, s, d=1):
    """(before, after) zero padding of one axis for Keras/TensorFlow 'same'."""
    out = -(-n // s)
    need = max((out - 1) * s + (k - 1) * d + 1 - n, 0)
    return need // 2, need - need // 2


def to_torch(torch, X, dtype):
    """A channels-last NumPy batch as a channels-first leaf tensor that records gradients."""
    t = torch.tensor(np.moveaxis(X, -1, 1).copy(), dtype=dtype)
    return t.requires_grad_(True)


def from_torch(t):
    return np.moveaxis(t.detach().numpy(), 1, -1)


def torch_pad(torch, t, kernel, strides, dilation, padding, value=0.0):
    """Keras' (possibly asymmetric) 'same' padding of a channels-first tensor, 1-D or 2-D."""
    if padding != "same":
        return t
    pads = []
    for ax in reversed(range(len(kernel))):     # F.pad takes the last axis first
        pads += list(same_pads(t.shape[2 + ax], kernel[ax], strides[ax], dilation[ax]))
    return torch.nn.functional.pad(t, pads, value=value)


def torch_conv(torch, t, kernel, bias, strides, padding, dilation):
    """conv of a channels-first tensor with a Keras kernel (*k, in, filters), Keras padding."""
    rank = kernel.ndim - 2
    w = torch.tensor(np.moveaxis(np.moveaxis(kernel, -1, 0), -1, 1).copy(), dtype=t.dtype,
                     requires_grad=True)
    b = None if bias is None else torch.tensor(bias, dtype=t.dtype, requires_grad=True)
    tp = torch_pad(torch, t, kernel.shape[:rank], strides, dilation, padding)
    fn = torch.nn.functional.conv2d if rank == 2 else torch.nn.functional.conv1d
    return fn(tp, w, b, stride=strides, dilation=dilation), w, b


def torch_kernel_grad(w):
    """A torch weight gradient (filters, in, *k) in the Keras layout (*k, in, filters)."""
    g = w.grad.numpy()
    return np.moveaxis(np.moveaxis(g, 0, -1), 0, -2)


def torch_pool(torch, t, kind, pool, strides, padding):
    """Keras max/average pooling of a channels-first tensor: padded cells never win a max and
    are not counted in an average."""
    rank = len(pool)
    F = torch.nn.functional
    if kind == "max":
        fn = F.max_pool2d if rank == 2 else F.max_pool1d
        return fn(torch_pad(torch, t, pool, strides, (1,) * rank, padding, value=-np.inf), pool, strides)
    fn = F.avg_pool2d if rank == 2 else F.avg_pool1d
    tp = torch_pad(torch, t, pool, strides, (1,) * rank, padding)
    if padding != "same":
        return fn(tp, pool, strides)
    count = fn(torch_pad(torch, torch.ones_like(t), pool, strides, (1,) * rank, padding), pool, strides)
    return fn(tp, pool, strides) / count


def rel(a, b):
    a, b = np.ravel(a), np.ravel(b)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-300))


TOL = {"float64": 1e-10, "float32": 1e-4}
