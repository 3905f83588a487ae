"""Re-pickles a golden snapshot with another pickle protocol, without torch or numpy.

Usage: python3 repickle.py IN.pkl OUT.pkl PROTOCOL [--numpy2] [--real-numpy] [--torch2]

Every global the snapshot names is replaced by a stand-in that records its arguments and
reduces back to the same global, so the output holds the same data and the same globals,
only written with another protocol (protocol 2 writes bytes through _codecs.encode, 5 uses
the newest opcodes). Nothing from the snapshot is executed.

--numpy2 names numpy's globals as numpy 2 does (numpy._core.* instead of numpy.core.*).
--real-numpy reads numpy arrays and scalars with numpy itself, so that numpy writes them back
(with protocol 5: numpy.core.numeric._frombuffer with an in-band buffer, as current numpy does).
--torch2 adds to every persistent module's state the attributes PyTorch 2.x modules carry
(_forward_hooks_with_kwargs, _forward_hooks_always_called, ...), as a snapshot written by a
PyTorch 2.x training run holds them.
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


NUMPY2 = False
REAL_NUMPY = False
TORCH2_ATTRIBUTES = ["_backward_pre_hooks", "_forward_hooks_with_kwargs", "_forward_hooks_always_called",
                     "_forward_pre_hooks_with_kwargs", "_state_dict_pre_hooks", "_load_state_dict_pre_hooks",
                     "_load_state_dict_post_hooks"]


def stand_in(module_name, name):
    if NUMPY2 and module_name.startswith("numpy.core."):
        module_name = "numpy._core." + module_name[len("numpy.core."):]
    parts = module_name.split(".")
    for k in range(1, len(parts) + 1):
        name_k = ".".join(parts[:k])
        if name_k not in sys.modules:
            sys.modules[name_k] = types.ModuleType(name_k)
            if k > 1:
                setattr(sys.modules[".".join(parts[:k - 1])], parts[k - 1], sys.modules[name_k])
    module = sys.modules[module_name]
    if not hasattr(module, name) and name[:1].isupper():
        # A class the pickle instantiates with NEWOBJ: a dict subclass for EasyDict, else a plain
        # record; either pickles back as NEWOBJ (+ items) + BUILD of the same class.
        cls = type(name, (dict,) if name.endswith("Dict") else (object,), {})
        cls.__module__, cls.__qualname__ = module_name, name
        setattr(module, name, cls)
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
        if REAL_NUMPY and module.split(".")[0] == "numpy":
            return super().find_class(module, name)
        return stand_in(module, name)


def add_torch2_attributes(value, seen):
    """Adds PyTorch 2.x module attributes to every persistent object's state below `value`."""
    if id(value) in seen:
        return
    seen.add(id(value))
    if isinstance(value, Call):
        if value.func.__name__ == "_reconstruct_persistent_obj" and value.args and isinstance(value.args[0], dict):
            state = value.args[0].get("state")
            if isinstance(state, dict) and "_modules" in state:
                for key in TORCH2_ATTRIBUTES:
                    state.setdefault(key, collections.OrderedDict())
                state.setdefault("_is_full_backward_hook", None)
        for item in value.args:
            add_torch2_attributes(item, seen)
    elif isinstance(value, dict):
        for item in value.values():
            add_torch2_attributes(item, seen)
    elif isinstance(value, (list, tuple)):
        for item in value:
            add_torch2_attributes(item, seen)


def main():
    global NUMPY2, REAL_NUMPY
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    NUMPY2 = "--numpy2" in sys.argv
    REAL_NUMPY = "--real-numpy" in sys.argv
    src, dst, protocol = args[0], args[1], int(args[2])
    with open(src, "rb") as f:
        data = Reader(f).load()
    if "--torch2" in sys.argv:
        add_torch2_attributes(data, set())
    with open(dst, "wb") as f:
        pickle.dump(data, f, protocol=protocol)


if __name__ == "__main__":
    main()
