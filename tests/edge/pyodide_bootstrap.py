"""Runs INSIDE Pyodide (installed as module `_edge_harness`); never imported by CPython tests.

Mirrors what workerd does around a Python Worker (src/pyodide/python-entrypoint-helper.ts and
internal/introspection.py): the JS side constructs the entrypoint class with (ctx, env) and
calls methods through `call_method`, which converts arguments with `python_from_rpc` (a JS
Request becomes a `workers.Request`), calls the method (relaxed for `fetch`) and converts the
result with `python_to_rpc` (a `workers.Response` becomes the JS Response).
"""

import importlib
import importlib.util
import inspect
import json
import sys
import traceback
from types import FunctionType

from workers import (
    DurableObject,
    WorkerEntrypoint,
    WorkflowEntrypoint,
    python_from_rpc,
    python_to_rpc,
)
from workers.rpc import _EnvWrapper

try:
    from pyodide.code import relaxed_call
except ImportError:  # pragma: no cover - older Pyodide

    def relaxed_call(func, *args, **kwargs):
        return func(*args, **kwargs)


def import_main(module_name):
    return importlib.import_module(module_name)


def _public_methods(cls):
    names = []
    for name in dir(cls):
        if name.startswith("_"):
            continue
        for base in cls.__mro__:
            if name in base.__dict__:
                if isinstance(base.__dict__[name], FunctionType):
                    names.append(name)
                break
    return sorted(names)


def entrypoint_classes(mod):
    """Like workerd's collect_entrypoint_classes: {kind: [{className, methodNames}]}."""
    keys = mod.__all__ if hasattr(mod, "__all__") else [k for k in dir(mod) if k[:1] != "_"]
    out = {"workerEntrypoints": [], "durableObjects": [], "workflowEntrypoints": []}
    for key in keys:
        val = getattr(mod, key)
        for kind, base in (
            ("workerEntrypoints", WorkerEntrypoint),
            ("durableObjects", DurableObject),
            ("workflowEntrypoints", WorkflowEntrypoint),
        ):
            if inspect.isclass(val) and issubclass(val, base) and val is not base:
                out[kind].append({"className": val.__name__, "methodNames": _public_methods(val)})
    return json.dumps(out)


def construct(mod, class_name, ctx, env):
    return getattr(mod, class_name)(ctx, env)


async def call_method(relaxed, inst, prop, *args):
    method = getattr(inst, prop)
    py_args = [python_from_rpc(a) for a in args]
    result = relaxed_call(method, *py_args) if relaxed else method(*py_args)
    if inspect.isawaitable(result):
        result = await result
    return python_to_rpc(result)


def loaded_modules():
    return json.dumps(sorted(sys.modules))


# --------------------------------------------------------------------------------------------
# Running scripts and test classes inside the isolate (for contract suites)
# --------------------------------------------------------------------------------------------


def _load_source(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


async def run_script(path, js_env, ctx):
    """Import the file at `path` and await its `main(env, ctx)`; return its JSON result.

    `env` is wrapped exactly as a WorkerEntrypoint sees `self.env`.
    """
    mod = _load_source(path, "_edge_script")
    env = _EnvWrapper(js_env)
    try:
        result = mod.main(env, ctx)
        if inspect.isawaitable(result):
            result = await result
        return json.dumps({"ok": True, "result": result}, default=str)
    except BaseException as exc:
        return json.dumps(
            {"ok": False, "error": repr(exc), "traceback": traceback.format_exc()}, default=str
        )


def import_all(modules_json):
    """Import every module of the bundle (what a request could import lazily)."""
    for name in json.loads(modules_json):
        importlib.import_module(name)


async def gateway_call(env, method, path, token=None, body=None, keep=4000):
    """One JSON request from a plan script to the gateway service binding, recorded as plain
    data (status, content type, parsed JSON or None, the text cut to `keep`) for the CPython
    side to assert on."""
    headers = {"accept": "application/json"}
    if token:
        headers["authorization"] = f"Bearer {token}"
    kwargs = {"method": method, "headers": headers}
    if body is not None:
        headers["content-type"] = "application/json"
        kwargs["body"] = json.dumps(body)
    response = await env.GATEWAY.fetch(f"https://gateway.edge{path}", **kwargs)
    text = await response.text()
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    return {
        "status": int(response.status),
        "content_type": response.headers.get("content-type"),
        "json": data,
        "text": text[:keep],
    }


_scratch_next: dict[str, int] = {}
# What a plan's scripts in one isolate hand to later steps (e.g. ids across a scheduled step).
shared: dict = {}


def take_scratch(env, kind):
    """The next unused throwaway binding SCRATCH_<kind>_<i> (never handed out twice)."""
    i = _scratch_next.get(kind, 0)
    _scratch_next[kind] = i + 1
    name = f"SCRATCH_{kind}_{i}"
    try:
        binding = getattr(env, name)
    except AttributeError:
        binding = None
    if binding is None:
        raise RuntimeError(f"scratch pool {kind} exhausted at {name}: raise resources.scratch")
    return binding


# --- a small pytest runner: fixtures by parameter name, parametrize, skip marks -------------


class _SuiteError(Exception):
    pass


def _marks(obj):
    marks = getattr(obj, "pytestmark", [])
    return list(marks) if isinstance(marks, list) else [marks]


def _fixture_function(cls, name):
    for base in cls.__mro__:
        if name in base.__dict__:
            obj = base.__dict__[name]
            getter = getattr(obj, "_get_wrapped_function", None)  # pytest >= 8.4
            if callable(getter):
                return getter()
            if getattr(obj, "_pytestfixturefunction", None) is not None:  # older pytest
                return getattr(obj, "__wrapped__", obj)
            return None
    return None


def _cases(cls, func):
    """[(case_id, {argname: value}, skip_reason)] from parametrize marks (cartesian)."""
    cases = [("", {}, None)]
    for mark in _marks(cls) + _marks(func):
        if mark.name != "parametrize":
            continue
        argnames, argvalues = mark.args[0], mark.args[1]
        names = (
            [n.strip() for n in argnames.split(",") if n.strip()]
            if isinstance(argnames, str)
            else list(argnames)
        )
        ids = mark.kwargs.get("ids")
        expanded = []
        for i, value in enumerate(argvalues):
            skip = None
            if type(value).__name__ == "ParameterSet":  # pytest.param(...)
                vals, pid = tuple(value.values), value.id
                for m in value.marks:
                    if m.name == "skip":
                        skip = m.kwargs.get("reason", "skip mark")
            else:
                vals = (value,) if len(names) == 1 else tuple(value)
                pid = None
            if pid is None:
                if ids is not None and not callable(ids):
                    pid = str(ids[i])
                elif len(names) == 1 and isinstance(value, (str, int, float, bool)):
                    pid = str(value)
                else:
                    pid = (
                        f"{names[0]}{i}" if len(names) == 1 else "-".join(f"{n}{i}" for n in names)
                    )
            for cid, params, sk in cases:
                expanded.append(
                    (
                        f"{cid}-{pid}" if cid else pid,
                        {**params, **dict(zip(names, vals, strict=True))},
                        sk or skip,
                    )
                )
        cases = expanded
    return cases


def _skip_reason(cls, func):
    for mark in _marks(cls) + _marks(func):
        if mark.name == "skip":
            return mark.kwargs.get("reason", mark.args[0] if mark.args else "skip mark")
        if mark.name == "skipif":
            cond = mark.args[0] if mark.args else mark.kwargs.get("condition")
            if cond:
                return mark.kwargs.get("reason", "skipif")
    return None


async def _resolve(inst, cls, argnames, params, cache, teardowns):
    values = {}
    for name in argnames:
        if name in params:
            values[name] = params[name]
            continue
        if name in cache:
            values[name] = cache[name]
            continue
        func = _fixture_function(cls, name)
        if func is None:
            raise _SuiteError(f"fixture {name!r} not found on {cls.__name__}")
        sub = [p for p in inspect.signature(func).parameters if p != "self"]
        kwargs = await _resolve(inst, cls, sub, params, cache, teardowns)
        result = func(inst, **kwargs)
        if inspect.isasyncgen(result):
            value = await result.__anext__()
            teardowns.append(result)
        elif inspect.isgenerator(result):
            value = next(result)
            teardowns.append(result)
        else:
            value = await result if inspect.isawaitable(result) else result
        cache[name] = value
        values[name] = value
    return values


async def _finish(gen):
    try:
        if inspect.isasyncgen(gen):
            await gen.__anext__()
        else:
            next(gen)
    except (StopIteration, StopAsyncIteration):
        return
    raise _SuiteError("fixture yielded twice")


async def run_suite(path, js_env, ctx, selector=""):
    """Run `Test*` classes of the file at `path` the way pytest would, without pytest's runner.

    Test methods may be sync or async. Arguments are filled from `parametrize` marks and from
    fixtures (methods decorated with `pytest.fixture` on the class or its mixins, sync/async,
    plain or generator, themselves taking fixtures). Before each test the instance gets
    `self.env` (wrapped like `self.env` of a WorkerEntrypoint) and `self.ctx`;
    `setup_method`/`teardown_method` run around it. `skip`/`skipif` marks and `pytest.skip()`
    report "skipped". `__test__ = False` skips a class; `selector` ("Class" or
    "Class::method") narrows the run.
    """
    mod = _load_source(path, "_edge_suite")
    env = _EnvWrapper(js_env)
    results = []
    for cname in sorted(n for n in dir(mod) if n.startswith("Test")):
        cls = getattr(mod, cname)
        if not inspect.isclass(cls) or getattr(cls, "__test__", True) is False:
            continue
        if selector and not (selector == cname or selector.startswith(cname + "::")):
            continue
        for mname in sorted(n for n in dir(cls) if n.startswith("test")):
            if "::" in selector and selector != f"{cname}::{mname}":
                continue
            func = getattr(cls, mname)
            if not callable(func):
                continue
            argnames = [p for p in inspect.signature(func).parameters if p != "self"]
            for case_id, params, case_skip in _cases(cls, func):
                name = f"{cname}::{mname}" + (f"[{case_id}]" if case_id else "")
                results.append(
                    await _run_one(cls, mname, name, argnames, params, case_skip, env, ctx)
                )
    return json.dumps(results, default=str)


async def _run_one(cls, mname, name, argnames, params, case_skip, env, ctx):
    outcome = {"test": name, "outcome": "passed"}
    reason = case_skip or _skip_reason(cls, getattr(cls, mname))
    if reason:
        return {**outcome, "outcome": "skipped", "error": f"Skipped: {reason}"}
    inst = cls()
    inst.env = env
    inst.ctx = ctx
    teardowns = []
    try:
        if hasattr(inst, "setup_method"):
            r = inst.setup_method(getattr(inst, mname))
            if inspect.isawaitable(r):
                await r
        kwargs = await _resolve(inst, cls, argnames, params, {}, teardowns)
        r = getattr(inst, mname)(**kwargs)
        if inspect.isawaitable(r):
            await r
    except BaseException as exc:
        skipped = type(exc).__name__ in ("Skipped", "SkipTest")
        outcome["outcome"] = "skipped" if skipped else "failed"
        outcome["error"] = f"{type(exc).__name__}: {exc}"[:2000]
        if not skipped:
            outcome["traceback"] = traceback.format_exc()[-4000:]
    finally:
        for gen in reversed(teardowns):
            try:
                await _finish(gen)
            except BaseException as exc:
                outcome["outcome"] = "failed"
                outcome.setdefault("error", f"fixture teardown: {exc!r}")
        if hasattr(inst, "teardown_method"):
            try:
                r = inst.teardown_method(getattr(inst, mname))
                if inspect.isawaitable(r):
                    await r
            except BaseException as exc:
                outcome["outcome"] = "failed"
                outcome.setdefault("error", f"teardown: {exc!r}")
    return outcome
