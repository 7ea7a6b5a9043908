"""Arrays in and out of one ngd call: NumPy, PyTorch, JAX and CuPy arrays, without a copy where the
memory already is ngd's layout.

Inputs: host arrays (NumPy, PyTorch CPU tensors, JAX CPU arrays, anything ``numpy.asarray`` takes)
are seen through NumPy without a copy; CUDA arrays (PyTorch, CuPy, JAX) go through DLPack. An
argument is copied, and only then, when

- its dtype differs from the call's precision (that of theta, or of ``gram`` / ``jacobian`` /
  ``outputs``), e.g. integer labels;
- its layout has no copy-free view: sample arrays (x, y, labels) need rows stored one after another
  (C order, or a column slice such as ``x[:, :d]``), matrices in ngd's column-major order (J, Gram,
  right-hand sides) need Fortran order (``ngd.jacobian`` returns J so);
- it lives in host memory and the context is a CUDA one (copied to the device, results copied back).

theta is never copied by a step (it is updated in place): it must be a writable, contiguous float32
or float64 vector, else InvalidArgument.

Streams: a CUDA array is produced on its framework's current stream (or ``stream=``); ngd waits for
that stream on the host, runs on its context's own stream and synchronises it before it returns the
results, so they are complete on any stream.
"""

from __future__ import annotations

import functools

import numpy as np

from . import _ngd

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def _framework(a) -> str:
    if isinstance(a, np.ndarray):
        return "numpy"
    mod = type(a).__module__
    for name in ("torch", "jax", "cupy"):
        if mod == name or mod.startswith(name + ".") or mod.startswith(name + "lib"):
            return name
    return "numpy"


def _is_cuda(a, fw: str) -> bool:
    if fw == "torch":
        return a.device.type == "cuda"
    if fw == "cupy":
        return True
    if fw == "jax":
        return any(d.platform == "gpu" for d in a.devices())
    return False


def _cuda_device(a, fw: str) -> int:
    if fw == "torch":
        return a.device.index or 0
    if fw == "cupy":
        return a.device.id
    return next(iter(a.devices())).id


def _layout_ok(a: np.ndarray, order: str) -> bool:
    """True when the C++ side can view `a` without a copy (see ext/arrays.cpp)."""
    item = a.itemsize
    if a.ndim == 1:
        return a.shape[0] <= 1 or a.strides[0] == item
    if a.ndim != 2:
        return a.flags.c_contiguous
    (r0, r1), (s0, s1) = a.shape, a.strides
    if order == "F":
        (r0, r1), (s0, s1) = (r1, r0), (s1, s0)
    inner_ok = r1 <= 1 or s1 == item
    outer_ok = r0 <= 1 or (s0 % item == 0 and s0 >= max(1, r1) * item)
    return inner_ok and outer_ok


def _host_array(a, dtype=None) -> np.ndarray:
    """A host array as NumPy, without a copy where it can. A PyTorch tensor of another dtype than
    `dtype` is converted by PyTorch first: NumPy has no bfloat16 (or float8) to view it as."""
    fw = _framework(a)
    if fw == "torch":
        t = a.detach()
        if dtype is not None and str(t.dtype) != "torch." + dtype.name:
            import torch

            t = t.to(getattr(torch, dtype.name))
        return t.numpy()
    return np.asarray(a)


class Call:
    """The arrays of one call: their precision, where they live, what framework the results take."""

    def __init__(self, ctx, fn: str, stream=None):
        self.ctx = ctx
        self.fn = fn
        self.cuda_ctx = ctx.backend == _ngd.Backend.cuda
        self.stream = _stream_handle(stream)
        self.dtype = None  # numpy dtype of the call
        self.like = "numpy"  # framework of the results
        self.like_cuda = False
        self.staged = False  # host inputs copied to the device
        self.streams = set()

    def _error(self, name, a, what):
        shape = getattr(a, "shape", None)
        shape = None if shape is None else tuple(int(s) for s in shape)  # not torch.Size([3])
        return _ngd.InvalidArgument(f"{self.fn}: argument '{name}' (shape {shape}): {what}")

    # -- inputs --------------------------------------------------------------------------------

    def key(self, a, name: str, order: str = "F"):
        """The argument whose dtype is the call's precision (theta, gram, jacobian, outputs)."""
        self._set_key(a, name)
        return self.array(a, name, order)

    def _set_key(self, a, name: str):
        if a is None:
            raise self._error(name, a, "is required")
        fw = _framework(a)
        self.like = fw
        self.like_cuda = _is_cuda(a, fw)
        try:
            if self.like_cuda:
                self.dtype = np.dtype(str(a.dtype).replace("torch.", ""))
            else:
                self.dtype = _host_array(a).dtype
        except TypeError:  # a dtype NumPy does not know (bfloat16)
            raise self._error(name, a, f"must be float32 or float64, got {a.dtype}") from None
        if self.dtype not in _FLOATS:
            raise self._error(name, a, f"must be float32 or float64, got {self.dtype}")

    def samples(self, a, name: str):
        """x, y, labels, output rows: one sample per row."""
        return None if a is None else self.array(a, name, "C")

    def matrix(self, a, name: str):
        """J, Gram matrices, right-hand sides, residuals: ngd's column-major order."""
        return None if a is None else self.array(a, name, "F")

    def array(self, a, name: str, order: str):
        fw = _framework(a)
        if _is_cuda(a, fw):
            return self._cuda_array(a, fw, name, order)
        h = _host_array(a, self.dtype)
        if h.dtype != self.dtype:
            h = h.astype(self.dtype)
        if not _layout_ok(h, order):
            h = np.array(h, order=order)  # the documented copy
        if self.cuda_ctx:
            self.staged = True
            h = np.asfortranarray(h) if order == "F" and h.ndim == 2 else np.ascontiguousarray(h)
            return _ngd.copy_to(self.ctx, h, _ngd.MemorySpace.device)
        return h

    def _cuda_array(self, a, fw, name, order):
        if not self.cuda_ctx or _cuda_device(a, fw) != self.ctx.device:
            raise self._error(name, a, f"is a CUDA array; the context is {self.ctx.description}")
        if fw == "torch":
            import torch

            t = a.detach()
            dt = getattr(torch, self.dtype.name)
            if t.dtype != dt:
                t = t.to(dt)
            if t.ndim == 2 and order == "F" and not (t.stride(0) == 1 or t.shape[0] <= 1):
                t = t.t().contiguous().t()
            elif not t.is_contiguous() and not (t.ndim == 2 and order == "C" and t.stride(1) == 1):
                t = t.contiguous()
            self._add_stream(t, fw)
            return t
        if fw == "cupy":
            import cupy

            c = cupy.asarray(a, dtype=self.dtype, order=order if a.ndim == 2 else "C")
            self._add_stream(c, fw)
            return c
        # JAX: its DLPack export is row-major and complete once the array is ready.
        if order == "F" and a.ndim == 2 and min(a.shape) > 1:
            raise self._error(name, a, "a JAX GPU array cannot be given in Fortran order")
        a = a.astype(self.dtype)
        a.block_until_ready()
        return a

    def _add_stream(self, a, fw: str):
        """Records the stream that ngd waits for before it reads (or writes) the CUDA array `a`:
        stream=, else its framework's current stream."""
        self.streams.add(self.stream if self.stream is not None else _current_stream(a, fw))

    def writable_theta(self, theta, name: str = "theta"):
        """theta for a step: updated in place, never copied (staged to the device and back for a
        host theta with a CUDA context)."""
        fw = _framework(theta)
        if fw == "jax":
            raise self._error(
                name, theta, "JAX arrays are immutable and a step updates theta in place: "
                "pass a NumPy array (numpy.array(theta))")
        self._set_key(theta, name)
        if self.like_cuda:
            if not self.cuda_ctx or _cuda_device(theta, fw) != self.ctx.device:
                raise self._error(
                    name, theta, f"is a CUDA array; the context is {self.ctx.description}")
            t = theta.detach() if fw == "torch" else theta
            if not (t.is_contiguous() if fw == "torch" else t.flags.c_contiguous):
                raise self._error(name, theta, "must be contiguous (a step updates it in place)")
            self._add_stream(t, fw)  # work queued on it must be done before the step reads it
            return t
        h = _host_array(theta)
        if h.ndim != 1 or not _layout_ok(h, "F") or not h.flags.writeable:
            raise self._error(
                name, theta, f"must be a writable 1-D contiguous vector (strides {h.strides}, "
                f"writeable {h.flags.writeable}): a step updates it in place")
        return h

    # -- before and after ----------------------------------------------------------------------

    def wait(self):
        """Waits for the callers' streams before ngd's stream reads their arrays."""
        for s in self.streams:
            _ngd.wait_stream(int(s))

    def out(self, r):
        """A result of the C++ call as an array of the key argument's framework."""
        if self.cuda_ctx:
            self.ctx.synchronize()
            if not self.like_cuda:
                r = _ngd.copy_to(self.ctx, r, _ngd.MemorySpace.host)
        return _to_framework(r, self.like, self.like_cuda)


def _stream_handle(stream):
    """stream= as an integer cudaStream_t: an int, a torch.cuda.Stream (.cuda_stream) or a
    cupy.cuda.Stream (.ptr)."""
    if stream is None or isinstance(stream, int):
        return stream
    for attr in ("cuda_stream", "ptr"):
        if hasattr(stream, attr):
            return int(getattr(stream, attr))
    raise _ngd.InvalidArgument(
        f"argument 'stream': expected an int (cudaStream_t), a torch.cuda.Stream or a "
        f"cupy.cuda.Stream, got {type(stream).__name__}")


def _current_stream(a, fw: str) -> int:
    """The current stream of the framework of the CUDA array `a`, as an integer (cudaStream_t)."""
    if fw == "torch":
        import torch

        return torch.cuda.current_stream(a.device).cuda_stream
    import cupy

    return cupy.cuda.get_current_stream().ptr


def _to_framework(r, fw: str, cuda: bool):
    if fw == "numpy":
        return r if isinstance(r, np.ndarray) else np.from_dlpack(r)
    if fw == "torch":
        import torch

        return torch.from_dlpack(r) if cuda else torch.from_numpy(r)
    if fw == "cupy":
        import cupy

        return cupy.from_dlpack(r)
    import jax

    try:  # zero-copy where JAX takes the buffer as it is (row-major, aligned)
        return jax.dlpack.from_dlpack(r)
    except Exception:  # e.g. a Fortran-ordered J: JAX copies it
        return jax.numpy.asarray(np.asarray(r) if not cuda else r)


# The C++ messages speak of ngd's column-major shapes and argument names; the Python arrays that
# hold one sample per row are their transposes.
_CPP_ARGUMENTS = {
    "inputs": "x, and x of shape (n, d) is d x n",
    "targets": "y, and y of shape (n, k) or (n,) is k x n",
    "outputs": "outputs, and outputs of shape (n, k) is k x n",
    "output_rows": "output_rows, and output_rows of shape (n,) is 1 x n",
}


def python_terms(fn):
    """Adds to an InvalidArgument from C++ about x, y, outputs or output_rows what its names and
    shapes are in Python terms."""

    @functools.wraps(fn)
    def call(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except _ngd.InvalidArgument as e:
            msg = str(e)
            notes = [f"'{c}' is {p}" for c, p in _CPP_ARGUMENTS.items() if f"argument '{c}'" in msg]
            if not msg.startswith("ngd::") or not notes:
                raise
            raise _ngd.InvalidArgument(f"{msg} (in Python terms: {'; '.join(notes)})") from None

    return call
