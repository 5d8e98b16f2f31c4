"""Reads an HDF5 file with h5py and prints what it holds as JSON, so that a Swift test can check
that files disttrain writes are readable by the Python ecosystem (and checkpoints by PyTorch users).

Usage: python3 Tests/h5py_readback.py FILE

Output: {"attributes": {object path: {name: {"dtype", "shape", "text" | "values"}}},
         "datasets": {path: {"dtype", "shape", "fletcher32", "values" | "byteArrays"}}}
Numbers are printed as JSON numbers (float32 values widened to float64 exactly).
"""
import json
import sys

try:
    import h5py
    import numpy
except ImportError as error:
    sys.exit(f"h5py_readback.py needs h5py and numpy ({error}); install with: python3 -m pip install h5py")


def describe_attribute(value):
    if isinstance(value, str):
        return {"dtype": "str", "shape": [], "text": value}
    array = numpy.asarray(value)
    return {"dtype": str(array.dtype), "shape": list(array.shape), "values": array.ravel().tolist()}


def main(path):
    result = {"attributes": {}, "datasets": {}}
    with h5py.File(path, "r") as file:
        def visit(name, item):
            object_path = "/" + name if name else "/"
            if item.attrs:
                result["attributes"][object_path] = {
                    key: describe_attribute(item.attrs[key]) for key in sorted(item.attrs)}
            if isinstance(item, h5py.Dataset):
                entry = {"dtype": str(item.dtype), "shape": list(item.shape), "fletcher32": item.fletcher32}
                if h5py.check_vlen_dtype(item.dtype) is not None:
                    entry["byteArrays"] = [element.tolist() for element in item[()]]
                else:
                    entry["values"] = numpy.asarray(item[()]).ravel().tolist()
                result["datasets"][object_path] = entry

        visit("", file)
        file.visititems(visit)
    json.dump(result, sys.stdout, sort_keys=True)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python3 Tests/h5py_readback.py FILE")
    main(sys.argv[1])
