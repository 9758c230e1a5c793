import torch, ctypes, sys, time
print(torch.__version__, sys.version)
for a in ("__dlpack_c_exchange_api__", "__c_dlpack_exchange_api__"):
    print(a, hasattr(torch.Tensor, a), getattr(torch.Tensor, a, None))
cap = getattr(torch.Tensor, "__dlpack_c_exchange_api__", None) or getattr(torch.Tensor, "__c_dlpack_exchange_api__", None)
if cap is not None:
    get = ctypes.pythonapi.PyCapsule_GetPointer; get.restype = ctypes.c_void_p; get.argtypes = [ctypes.py_object, ctypes.c_char_p]
    nm = ctypes.pythonapi.PyCapsule_GetName; nm.restype = ctypes.c_char_p; nm.argtypes = [ctypes.py_object]
    print("capsule name", nm(cap))
    p = get(cap, nm(cap))
    words = (ctypes.c_uint32 * 2).from_address(p)
    print("version", words[0], words[1])
    ptrs = (ctypes.c_void_p * 7).from_address(p)
    print([hex(x or 0) for x in ptrs])
x = torch.randn(4, 4096, device="cuda", dtype=torch.bfloat16)
def t(f, n=200000):
    f(); t0 = time.perf_counter()
    for _ in range(n): f()
    return (time.perf_counter() - t0) / n * 1e6
print("is_cuda", t(lambda: x.is_cuda)); print("dtype", t(lambda: x.dtype)); print("is_contiguous", t(lambda: x.is_contiguous()))
print("data_ptr", t(lambda: x.data_ptr())); print("shape", t(lambda: x.shape)); print("empty_like", t(lambda: torch.empty_like(x), 50000))
print("raw stream", t(lambda: torch._C._cuda_getCurrentRawStream(0)))
