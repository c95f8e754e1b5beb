"""Packaging and repository hygiene that users trip over: benchmarks import the installed
annfast, the test requirements bring what the suite needs, type information ships (py.typed),
the public API carries type hints."""
import ast
import inspect
import os
import sys
import subprocess
import typing

import pytest

import annfast

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(REPO, "benchmarks")


def _handler_catches_import_error(handler):
    names = []
    t = handler.type
    for node in (t.elts if isinstance(t, ast.Tuple) else [t]):
        names.append(getattr(node, "id", None))
    return "ImportError" in names or "ModuleNotFoundError" in names


@pytest.mark.parametrize("name", sorted(f for f in os.listdir(BENCH) if f.endswith(".py")))
def test_benchmarks_import_the_installed_annfast_first(name):
    """A benchmark may add the checkout to sys.path only when `import annfast` failed (an
    in-place build); putting it first shadows the installed, compiled package with the
    uncompiled source folder (`No module named 'annfast._core'`)."""
    tree = ast.parse(open(os.path.join(BENCH, name), encoding="utf-8").read())
    parents = {}
    for node in ast.walk(tree):
        for child in ast.iter_child_nodes(node):
            parents[child] = node
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and ast.unparse(node.func) in ("sys.path.insert", "sys.path.append"):
            p = parents.get(node)
            while p is not None and not (isinstance(p, ast.ExceptHandler) and _handler_catches_import_error(p)):
                p = parents.get(p)
            assert p is not None, f"{name}:{node.lineno}: sys.path changed outside 'except ImportError'"


def test_test_requirements_bring_the_optional_peers():
    """README's second command installs tests/requirements.txt (no rebuild of the package):
    it must hold what the suite's important tests import."""
    lines = open(os.path.join(REPO, "tests", "requirements.txt"), encoding="utf-8").read().split("\n")
    names = {ln.split(">")[0].split("=")[0].split("<")[0].strip().lower()
             for ln in lines if ln.strip() and not ln.startswith("#")}
    assert {"pytest", "hypothesis", "scikit-learn", "matplotlib", "mnist1d", "tqdm"} <= names
    assert not any(n in ("annfast", ".") or n.startswith("-e") for n in names)  # no rebuild
    readme = open(os.path.join(REPO, "README.md"), encoding="utf-8").read()
    assert "pip install -r tests/requirements.txt && pytest" in readme
    ci = open(os.path.join(REPO, ".ci", "run"), encoding="utf-8").read()
    assert "pip install -r tests/requirements.txt && pytest" in ci and "python3 -m venv" in ci


def test_py_typed_marker_ships():
    pkg = os.path.dirname(annfast.__file__)
    assert os.path.isfile(os.path.join(pkg, "py.typed"))
    pyproject = open(os.path.join(REPO, "pyproject.toml"), encoding="utf-8").read()
    assert '"py.typed"' in pyproject


def _public_callables():
    from annfast import callbacks, datasets, metrics, plotting, progress, saving
    yield saving.save_model
    yield saving.load_model
    yield plotting.plot_history
    yield annfast.matmul
    yield progress.Progress.__init__
    from annfast import activations, losses
    for mod in (datasets, metrics, callbacks, activations, losses):
        for name in getattr(mod, "__all__", dir(mod)):
            obj = getattr(mod, name)
            if inspect.isfunction(obj) and obj.__module__ == mod.__name__ and not name.startswith("_"):
                yield obj
            elif inspect.isclass(obj) and obj.__module__ == mod.__name__ and "__init__" in vars(obj):
                yield obj.__init__
    yield from _api_methods()


def _methods(cls):
    """What users call on `cls`: its constructor, __call__ and public methods (inherited ones
    too), as far as annfast wrote them (scikit-learn's own inherited methods are not ours)."""
    for name in dir(cls):
        if name.startswith("_") and name not in ("__init__", "__call__"):
            continue
        fn = getattr(cls, name)  # properties and settings are not functions: skipped
        if (inspect.isfunction(fn) or inspect.ismethod(fn)) and fn.__module__.startswith("annfast."):
            yield fn


def _api_methods():
    """The constructors and methods of the tutorial class, the models, every layer class
    annfast.layers exports, every optimiser, schedule and initialiser, and the estimators; plus
    the module functions of optimizers, initializers and layers. Each function once."""
    from annfast import initializers, layers, models, network, optimizers, sklearn
    from annfast.layers import base
    funcs = [optimizers.names, layers.Input]
    classes = [network.NeuralNetwork, models.Model, models.Sequential, sklearn.MLPClassifier,
               sklearn.MLPRegressor, base.Tensor]
    classes += [c for c in vars(layers).values() if inspect.isclass(c) and issubclass(c, base.Layer)]
    for mod in (optimizers, initializers):
        for name in mod.__all__:
            obj = getattr(mod, name)
            (classes if inspect.isclass(obj) else funcs).append(obj)
    seen = set()
    for fn in funcs + [m for cls in classes for m in _methods(cls)]:
        key = getattr(fn, "__func__", fn)
        if key not in seen:
            seen.add(key)
            yield fn


def test_the_api_method_list_covers_the_public_classes():
    """_api_methods must not go quietly empty or miss a class: spot-check what it holds."""
    import annfast as af
    from annfast import initializers, optimizers
    names = {f.__qualname__ for f in _api_methods()}
    expected = {"NeuralNetwork.__init__", "NeuralNetwork.train", "NeuralNetwork.feedforward",
                "NeuralNetwork.backward", "NeuralNetwork.sigmoid", "Model.compile", "Model.fit",
                "Model.evaluate", "Model.predict", "Sequential.predict", "Model.summary", "Model.save",
                "Model.get_weights", "Model.set_weights", "Sequential.__init__", "Sequential.add",
                "Sequential.build", "Layer.__call__", "Layer.set_weights", "Dense.__init__",
                "Dropout.__init__", "Embedding.__init__", "Concatenate.__init__", "Input",
                "BatchNormalization.__init__", "Activation.__init__", "Reshape.__init__",
                "Optimizer.update", "SGD.__init__", "AdamW.__init__", "StepDecay.__init__",
                "Initializer.__call__", "RandomNormal.__init__", "_Scaled.__init__", "get",
                "_BaseMLP.__init__", "MLPClassifier.fit", "MLPClassifier.partial_fit",
                "MLPClassifier.predict_proba", "MLPRegressor.fit", "MLPRegressor.predict"}
    assert expected <= names, sorted(expected - names)
    for cls in (af.Add, af.Flatten, af.layers.InputLayer):
        assert any(f.__qualname__.startswith(cls.__name__ + ".") for f in _api_methods()), cls
    assert {optimizers.get, initializers.get, initializers.default_for} <= set(_api_methods())


@pytest.mark.parametrize("fn", list(_api_methods()), ids=lambda f: f.__qualname__)
def test_api_methods_declare_what_they_return(fn):
    assert "return" in typing.get_type_hints(fn), f"{fn.__qualname__}: no return type hint"


@pytest.mark.parametrize("fn", list(_public_callables()), ids=lambda f: f.__qualname__)
def test_public_functions_have_resolvable_type_hints(fn):
    hints = typing.get_type_hints(fn)  # resolves every annotation (no NameError)
    params = [p for p in inspect.signature(fn).parameters.values()
              if p.name not in ("self", "cls") and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)]
    missing = [p.name for p in params if p.name not in hints]
    assert not missing, f"{fn.__qualname__}: no type hint for {missing}"


def test_type_hints_resolve_in_a_fresh_interpreter(tmp_path):
    """Each public callable's hints resolve on their own: in one process typing caches a forward
    reference once some module resolved it, which hid a string alias that only resolved inside
    the module defining it (the layers' InitializerLike)."""
    code = ("import typing, annfast as af\n"
            "for c in (af.Conv2D, af.Dense, af.LSTM, af.Embedding, af.MultiHeadAttention):\n"
            "    typing.get_type_hints(c.__init__)\n")
    # cwd outside the checkout, where `import annfast` would find the uncompiled source folder;
    # PYTHONPATH as this process found annfast (CI tests the installed package)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [os.path.dirname(os.path.dirname(annfast.__file__)), os.environ.get("PYTHONPATH", "")]))
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                       cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stderr


def test_every_public_module_is_in_the_api_reference():
    """docs/api.rst documents each public module (a new module must be added there)."""
    api = open(os.path.join(REPO, "docs", "api.rst"), encoding="utf-8").read()
    pkg = os.path.dirname(annfast.__file__)
    internal = {"__init__", "__main__", "demo", "reference"}
    modules = sorted(f[:-3] for f in os.listdir(pkg) if f.endswith(".py") and not f.startswith("_")
                     and not f.startswith("cli_") and f[:-3] not in internal)
    missing = [m for m in modules if f"automodule:: annfast.{m}\n" not in api]
    assert not missing, f"add these modules to docs/api.rst: {missing}"
