"""Re-pickles a golden snapshot with another pickle protocol, without torch or numpy.

Usage: python3 repickle.py IN.pkl OUT.pkl PROTOCOL

Every global the snapshot names is replaced by a stand-in that records its arguments and
reduces back to the same global, so the output holds the same data and the same globals,
only written with another protocol (protocol 2 writes bytes through _codecs.encode, 5 uses
the newest opcodes). Nothing from the snapshot is executed.
"""
import collections
import pickle
import sys
import types


class Call:
    """A recorded call of an allow-listed global: reduces to the same call again."""

    def __init__(self, func, args):
        self.func, self.args, self.state = func, args, None

    def __setstate__(self, state):
        self.state = state

    def __reduce__(self):
        return (self.func, self.args) if self.state is None else (self.func, self.args, self.state)


def stand_in(module_name, name):
    parts = module_name.split(".")
    for k in range(1, len(parts) + 1):
        name_k = ".".join(parts[:k])
        if name_k not in sys.modules:
            sys.modules[name_k] = types.ModuleType(name_k)
            if k > 1:
                setattr(sys.modules[".".join(parts[:k - 1])], parts[k - 1], sys.modules[name_k])
    module = sys.modules[module_name]
    if not hasattr(module, name):
        def func(*args):
            return Call(func, args)
        func.__module__, func.__name__, func.__qualname__ = module_name, name, name
        setattr(module, name, func)
    return getattr(module, name)


class Reader(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) == ("builtins", "set"):
            return set
        return stand_in(module, name)


def main():
    src, dst, protocol = sys.argv[1], sys.argv[2], int(sys.argv[3])
    with open(src, "rb") as f:
        data = Reader(f).load()
    with open(dst, "wb") as f:
        pickle.dump(data, f, protocol=protocol)


if __name__ == "__main__":
    main()
