"""A NumPy-free reader of float32 .npy files (the first python3 on PATH may
have no NumPy), for the shell tests' inline checks."""
import array
import ast


def load_npy(path):
    """(shape, flat array of floats) of a C-order <f4 .npy file."""
    data = open(path, "rb").read()
    assert data[:6] == b"\x93NUMPY", path + ": bad magic"
    if data[6] == 1:
        n, start = int.from_bytes(data[8:10], "little"), 10
    else:
        n, start = int.from_bytes(data[8:12], "little"), 12
    header = ast.literal_eval(data[start:start + n].decode("latin1"))
    assert header["descr"] == "<f4" and not header["fortran_order"], header
    values = array.array("f")
    values.frombytes(data[start + n:])
    count = 1
    for d in header["shape"]:
        count *= d
    assert len(values) == count, (path, header["shape"], len(values))
    return header["shape"], values
