"""mtile._launcher (python/ext/launcher.c), the C path of a launch on torch tensors, without torch or
a GPU: it is bound to a stand-in tensor class and to a recording C callback in place of
mtile_launch_tensors, and each test checks what reached the callback, or that the call was
declined (False, nothing launched) for the Python path to name what is wrong."""
import ctypes

import mtile
import pytest
from mtile import _capi, _launch

BF16, F32 = _capi.BF16, _capi.F32


class Tensor:
    """What the launcher reads of a torch tensor. get_device raises unless `device_read` is set."""

    def __init__(self, shape, dtype="bf16", address=0x10000, device=2, contiguous=True, device_read=True):
        self.shape, self.dtype, self.address, self.device = tuple(shape), dtype, address, device
        self.is_cuda, self.is_cpu = device >= 0, device == -1
        self.contiguous, self.device_read = contiguous, device_read

    def is_contiguous(self):
        return self.contiguous

    def get_device(self):
        if not self.device_read:
            raise AssertionError("get_device was read; the first tensor's device was to be used")
        return self.device

    def data_ptr(self):
        return self.address

    def numel(self):
        count = 1
        for e in self.shape:
            count *= e
        return count


class Record(ctypes.Structure):
    _fields_ = [("address", ctypes.c_uint64), ("elements", ctypes.c_uint64), ("dtype", ctypes.c_int32),
                ("device", ctypes.c_int32)]


LAUNCH = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.POINTER(Record), ctypes.c_size_t,
                          ctypes.POINTER(ctypes.c_uint32), ctypes.c_size_t, ctypes.POINTER(ctypes.c_double),
                          ctypes.c_size_t, ctypes.c_int32, ctypes.c_uint64)


class Bound:
    """The launcher bound to Tensor and a callback that records its calls and returns `status`."""

    def __init__(self):
        self.calls, self.status, self.streams = [], 0, []
        self.callback = LAUNCH(self._record)  # kept alive while bound

    def _record(self, kernel, records, count, dims, num_dims, scalars, num_scalars, dtype, stream):
        self.calls.append({
            "kernel": kernel,
            "records": [(r.address, r.elements, r.dtype, r.device) for r in records[:count]],
            "dims": list(dims[:num_dims]),
            "scalars": list(scalars[:num_scalars]),
            "dtype": dtype,
            "stream": stream,
        })
        return self.status

    def stream_of(self, device):
        self.streams.append(device)
        return 0xAB00 + device

    def launch(self, *args):
        return _capi.launcher.launch(*args)


@pytest.fixture
def bound():
    b = Bound()
    _capi.launcher.bind(ctypes.cast(b.callback, ctypes.c_void_p).value,
                        ctypes.cast(_capi.lib.mtile_last_error, ctypes.c_void_p).value, Tensor,
                        {"bf16": BF16, "f32": F32}, b.stream_of, _capi.ERRORS)
    yield b
    _launch.bind_launcher()  # mtile's own binding again


def norm_tensors(rows=3, n=40, **residual):
    x = Tensor((rows, n), address=0x1000)
    r = Tensor((rows, n), address=0x2000, device_read=False, **residual)
    w = Tensor((n,), address=0x3000, device_read=False)
    out = Tensor((rows, n), address=0x4000, device_read=False)
    return x, r, w, out


def test_norm_call_reads_shapes_and_uses_the_first_tensors_device(bound):
    x, r, w, out = norm_tensors()
    eps = {2: (0x5000, 1, F32, 2), 0: (0x6000, 1, F32, 0)}
    assert bound.launch(0x1234, -1, (x, r, w, out, eps), None, (), None, 0b1010, 0b100) is True
    (call,) = bound.calls
    assert call["kernel"] == 0x1234
    assert call["records"] == [(0x1000, 120, BF16, 2), (0x2000, 120, BF16, 2), (0x3000, 40, BF16, 2),
                               (0x4000, 120, BF16, 2), (0x5000, 1, F32, 2)]
    assert call["dims"] == [3, 40] and call["scalars"] == [] and call["dtype"] == BF16
    assert call["stream"] == 0xAB02 and bound.streams == [2]


def test_dims_scalars_stream_and_variant_as_given(bound):
    a, b = Tensor((5, 7), address=0x100), Tensor((35,), "f32", address=0x200, device_read=False)
    assert bound.launch(0x9, 0, (a, b), (7, 5, 2**32 - 1), (1.5, -2.25), 0x77, 0, 0)
    (call,) = bound.calls
    assert call["records"] == [(0x100, 35, BF16, 2), (0x200, 35, F32, 2)]
    assert call["dims"] == [7, 5, 2**32 - 1] and call["scalars"] == [1.5, -2.25]
    assert call["dtype"] == 0 and call["stream"] == 0x77 and bound.streams == []


def test_cpu_tensors_run_on_no_stream(bound):
    x = Tensor((2, 8), device=-1)
    assert bound.launch(0x9, -1, (x, (0x5, 1, F32, -1)), None, (), None, 0, 0)
    assert bound.calls[0]["records"] == [(0x10000, 16, BF16, -1), (0x5, 1, F32, -1)]
    assert bound.calls[0]["stream"] == 0 and bound.streams == []


def test_a_cuda_tensor_beside_a_cpu_one_keeps_its_own_device(bound):
    x, r = Tensor((2, 8), device=-1), Tensor((2, 8), device=1)
    assert bound.launch(0x9, -1, (x, r), (2, 8), (), None, 0, 0)
    assert [rec[3] for rec in bound.calls[0]["records"]] == [-1, 1]  # the C ABI refuses the mix, by name


@pytest.mark.parametrize("case", [
    "not contiguous", "unknown dtype", "residual shape", "w shape", "not a tensor", "another device", "dim past u32",
    "no record for the device", "tensors in a list", "rows past u32", "n = 0", "scalar not a number",
])
def test_declined_calls_launch_nothing(bound, case):
    x, r, w, out = norm_tensors(contiguous=case != "not contiguous")
    eps = {2: (0x5000, 1, F32, 2)}
    tensors, dims, masks, scalars = [x, r, w, out, eps], None, (0b1010, 0b100), ()
    if case == "unknown dtype":
        r.dtype = "f64"
    elif case == "residual shape":
        r.shape = (40, 3)
    elif case == "w shape":
        w.shape = (41,)
    elif case == "not a tensor":
        tensors[1] = [1.0] * 120
    elif case == "another device":
        r.is_cuda = r.is_cpu = False
    elif case == "dim past u32":
        dims, masks = (3, 2**32), (0, 0)
    elif case == "no record for the device":
        tensors[4] = {0: (0x5000, 1, F32, 0)}
    elif case == "rows past u32":
        x.shape = (2**32, 1)
        tensors, masks = [x, eps], (0, 0)
    elif case == "n = 0":
        x.shape = (3, 0)
        tensors, masks = [x, eps], (0, 0)
    elif case == "scalar not a number":
        dims, masks, scalars = (3, 40), (0, 0), ("1e-6",)
    if case == "scalar not a number":
        with pytest.raises(TypeError):
            bound.launch(0x9, -1, tuple(tensors), dims, scalars, None, *masks)
    else:
        tensors = tensors if case == "tensors in a list" else tuple(tensors)
        assert bound.launch(0x9, -1, tensors, dims, scalars, None, *masks) is False
    assert bound.calls == []


def test_a_failed_launch_raises_the_librarys_error(bound):
    with pytest.raises(mtile.UserError):
        mtile.kernel("no_such_kernel")  # leaves its message as this thread's last error
    message = _capi.last_error().decode()
    bound.status = 2
    x, r, w, out = norm_tensors()
    with pytest.raises(mtile.UserError) as info:
        bound.launch(0x9, -1, (x, r, w, out), None, (), None, 0b1010, 0b100)
    assert str(info.value) == message and "no_such_kernel" in message


def test_an_attribute_that_raises_propagates(bound):
    x = Tensor((2, 8))
    x.data_ptr = lambda: 1 / 0
    with pytest.raises(ZeroDivisionError):
        bound.launch(0x9, -1, (x,), (2, 8), (), None, 0, 0)
    assert bound.calls == []


def test_bad_arguments_are_type_errors():
    with pytest.raises(TypeError, match="takes 8 arguments, 2 given"):
        _capi.launcher.launch(1, 2)
    with pytest.raises(TypeError, match="bind takes 6 arguments"):
        _capi.launcher.bind()
