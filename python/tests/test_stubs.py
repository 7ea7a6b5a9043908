"""The type stubs describe the package: every public name of ngd is in __init__.pyi and every
name there exists, and each function's parameters match its stub."""

import ast
import inspect
import pathlib

import ngd

STUB = pathlib.Path(ngd.__file__).with_name("__init__.pyi")


def stub_names(stub=STUB):
    """The names a stub file defines, with those it re-exports from a sibling stub
    (`from ._enums import Loss as Loss`)."""
    tree = ast.parse(stub.read_text())
    names = {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names[node.name] = node
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names[node.target.id] = node
        elif isinstance(node, ast.ImportFrom) and node.level == 1:
            sibling = stub_names(stub.with_name(f"{node.module}.pyi"))
            for alias in node.names:
                assert alias.asname == alias.name, f"re-export {alias.name} as itself"
                names[alias.name] = sibling[alias.name]
    return names


def test_stubs_ship_with_the_package():
    assert STUB.exists() and STUB.with_name("py.typed").exists()
    assert STUB.with_name("_enums.pyi").exists()


def test_public_names_match():
    public = {n for n in dir(ngd) if not n.startswith("_")} - {"torch"}
    stubbed = {n for n in stub_names() if n not in ("ArrayLike", "Array", "Stream")}
    assert public - stubbed == set(), "names without a stub"
    assert stubbed - public - {"__version__"} == set(), "stubs without a name"


def test_function_signatures_match():
    stubs = stub_names()
    for name, node in stubs.items():
        if isinstance(node, ast.FunctionDef) and inspect.isfunction(getattr(ngd, name)):
            params = list(inspect.signature(getattr(ngd, name)).parameters)
            stub = [a.arg for a in node.args.args + node.args.kwonlyargs]
            assert params == stub, name


def test_bound_functions_carry_docstrings():
    # help() at runtime, not only the stubs: every public callable of the C++ module says more
    # than its signature.
    owners = {"Context": ngd.Context, "Mlp": ngd.Mlp, "Layer": ngd.Layer}
    names = [("", "two_layer_relu"), ("", "deep_linear"), ("", "matrix_factorization")]
    for owner, cls in owners.items():
        names += [(owner, n) for n in vars(cls) if not n.startswith("_")
                  and callable(getattr(cls, n))]
    names.append(("Layer", "__init__"))
    names.append(("Mlp", "__init__"))
    for owner, name in names:
        f = getattr(owners[owner], name) if owner else getattr(ngd, name)
        lines = [line for line in (f.__doc__ or "").splitlines() if line.strip()]
        assert len(lines) >= 2, f"{owner}.{name} has no docstring: {f.__doc__!r}"
