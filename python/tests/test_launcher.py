"""mtile._launcher (python/ext/launcher.c), the C path of a launch on torch tensors, without torch or
a GPU: it is bound to a stand-in tensor class and to a recording C callback in place of
mtile_launch_tensors, and each test checks what reached the callback, or that the call was
declined (False, nothing launched) for the Python path to name what is wrong. Each test runs twice:
the stand-in read by its attributes, and read through a stand-in of DLPack's C exchange API (ctypes
callbacks in a capsule, as torch publishes `__dlpack_c_exchange_api__`)."""
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
        self.contiguous, self.device_read, self.fail_exchange = contiguous, device_read, False

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


class DLTensor(ctypes.Structure):
    _fields_ = [("data", ctypes.c_void_p), ("device_type", ctypes.c_int32), ("device_id", ctypes.c_int32),
                ("ndim", ctypes.c_int32), ("code", ctypes.c_uint8), ("bits", ctypes.c_uint8),
                ("lanes", ctypes.c_uint16), ("shape", ctypes.POINTER(ctypes.c_int64)),
                ("strides", ctypes.POINTER(ctypes.c_int64)), ("byte_offset", ctypes.c_uint64)]


FROM_OBJECT = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.POINTER(DLTensor))
STREAM = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int32, ctypes.c_int32, ctypes.POINTER(ctypes.c_void_p))
ANY = ctypes.CFUNCTYPE(ctypes.c_int)


class ExchangeAPI(ctypes.Structure):
    _fields_ = [("major", ctypes.c_uint32), ("minor", ctypes.c_uint32), ("prev_api", ctypes.c_void_p),
                ("allocator", ANY), ("managed_from_object", ANY), ("managed_to_object", ANY),
                ("dltensor_from_object", FROM_OBJECT), ("current_work_stream", STREAM)]


DLPACK_DTYPES = {"bf16": (4, 16), "f32": (2, 32), "f64": (2, 64)}


class Exchange:
    """A stand-in of torch's exchange table: Tensor read into a DLTensor, streams 0xAB00 + device."""

    def __init__(self, bound):
        self.bound, self.reads = bound, 0
        self.callbacks = [FROM_OBJECT(self._from_object), STREAM(self._stream), ANY(lambda: -1)]
        self.api = ExchangeAPI(1, 3, None, self.callbacks[2], self.callbacks[2], self.callbacks[2],
                               self.callbacks[0], self.callbacks[1])
        self.name = b"dlpack_exchange_api"
        new = ctypes.pythonapi.PyCapsule_New
        new.restype, new.argtypes = ctypes.py_object, [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p]
        self.capsule = new(ctypes.addressof(self.api), self.name, None)

    def _from_object(self, obj, out):
        t = ctypes.cast(obj, ctypes.py_object).value
        self.reads += 1
        if t.fail_exchange:
            return -1  # torch sets a Python error then; the launcher clears it and declines
        rank = len(t.shape)
        t.dl_shape = (ctypes.c_int64 * max(rank, 1))(*t.shape)
        strides = [1] * rank
        for d in range(rank - 2, -1, -1):
            strides[d] = strides[d + 1] * t.shape[d + 1]
        if not t.contiguous:
            strides.reverse()
        t.dl_strides = (ctypes.c_int64 * max(rank, 1))(*strides)
        code, bits = DLPACK_DTYPES[t.dtype]
        out[0] = DLTensor(t.address - 0x10, 2 if t.is_cuda else 1 if t.is_cpu else 8, max(t.device, 0), rank,
                          code, bits, 1, t.dl_shape, t.dl_strides, 0x10)
        return 0

    def _stream(self, device_type, device, out):
        assert device_type == 2
        out[0] = self.bound.stream_of(device)
        return 0


@pytest.fixture(params=["attributes", "exchange"])
def bound(request):
    b = Bound()
    b.exchange = Exchange(b) if request.param == "exchange" else None
    used = _capi.launcher.bind(ctypes.cast(b.callback, ctypes.c_void_p).value,
                               ctypes.cast(_capi.lib.mtile_last_error, ctypes.c_void_p).value, Tensor,
                               {"bf16": BF16, "f32": F32}, b.stream_of, _capi.ERRORS,
                               b.exchange.capsule if b.exchange else None, (Tensor,))
    assert used is (b.exchange is not None)
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


def test_an_attribute_that_raises_propagates_and_the_exchange_path_reads_none(bound):
    x = Tensor((2, 8))
    x.data_ptr = lambda: 1 / 0
    if bound.exchange:  # one DLTensor read, no attribute
        assert bound.launch(0x9, -1, (x,), (2, 8), (), None, 0, 0)
        assert bound.calls[0]["records"] == [(0x10000, 16, BF16, 2)] and bound.exchange.reads == 1
        return
    with pytest.raises(ZeroDivisionError):
        bound.launch(0x9, -1, (x,), (2, 8), (), None, 0, 0)
    assert bound.calls == []


def test_a_tensor_the_exchange_api_cannot_read_is_declined(bound):
    x, r, w, out = norm_tensors()
    r.fail_exchange = True
    launched = bound.launch(0x9, -1, (x, r, w, out), None, (), None, 0b1010, 0b100)
    assert launched is (bound.exchange is None)  # the attribute path does not use the exchange API
    assert len(bound.calls) == int(launched)


def test_exchange_tables_of_another_version_are_not_used():
    b = Bound()
    for major, minor in ((1, 2), (2, 0)):
        exchange = Exchange(b)
        exchange.api.major, exchange.api.minor = major, minor
        assert _capi.launcher.bind(ctypes.cast(b.callback, ctypes.c_void_p).value,
                                   ctypes.cast(_capi.lib.mtile_last_error, ctypes.c_void_p).value, Tensor,
                                   {"bf16": BF16}, b.stream_of, _capi.ERRORS, exchange.capsule, (Tensor,)) is False
        x = Tensor((2, 8))
        assert _capi.launcher.launch(0x9, -1, (x,), (2, 8), (), None, 0, 0)
        assert exchange.reads == 0 and b.streams == [2]  # read by attribute, torch's stream function
        b.streams.clear()
    _launch.bind_launcher()


def test_bad_arguments_are_type_errors():
    with pytest.raises(TypeError, match="takes 8 arguments, 2 given"):
        _capi.launcher.launch(1, 2)
    with pytest.raises(TypeError, match="bind takes 8 arguments"):
        _capi.launcher.bind()
