"""The package's layout: imports run one way (commands → pipeline → model/colour → media), no
circles, modules of a readable size, shared options declared once, a thin command line, and a
docs layout page that names every module, and a README that is a front door."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parent.parent / "hdrvideo"
README = PKG.parent / "README.md"
LAYOUT = PKG.parent / "docs" / "layout.md"

# a module may import modules of its own layer or of lower layers only
LAYERS = {
    "colour": 0,
    "model": 0,
    "media": 1,
    "pipeline": 2,
    "training": 3,
    "__init__": 3,  # the public API: hdrvideo.load_model, FrameProcessor …
    "commands": 4,
    "cli": 5,
    "__main__": 6,
    "train": 6,  # python -m hdrvideo.train (torchrun)
}
MAX_LINES = 400


def _modules() -> dict[str, Path]:
    return {".".join(p.relative_to(PKG).with_suffix("").parts): p for p in PKG.rglob("*.py")}


def _imports(name: str, path: Path) -> set[str]:
    """hdrvideo modules imported anywhere in the file (module level and inside functions)."""
    is_pkg = path.name == "__init__.py"
    here = name.split(".")[:-1] if not is_pkg else name.split(".")[:-1]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = here[: len(here) - (node.level - 1)] if node.level > 1 else here
            mod = base + (node.module.split(".") if node.module else [])
            for alias in node.names:
                out.add(".".join(mod + [alias.name]))  # a submodule, when there is one of that name
            if node.module:
                out.add(".".join(mod))
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            out.update(n.removeprefix("hdrvideo.") for n in names if n.startswith("hdrvideo"))
    mods = _modules()
    resolved = set()
    for m in out:
        m = m.removesuffix(".__init__")
        if m in mods:
            resolved.add(m)
        elif m + ".__init__" in mods:
            resolved.add(m + ".__init__")
        elif m == "":
            resolved.add("__init__")
    resolved.discard(name)
    return resolved


def _layer(module: str) -> int:
    return LAYERS[module.split(".")[0]]


def _violations(graph: dict[str, set[str]]) -> list[str]:
    bad = []
    for name, deps in graph.items():
        for dep in deps:
            same_package = "." in name and dep.split(".")[0] == name.split(".")[0]
            if not same_package and _layer(dep) > _layer(name):
                bad.append(f"{name} imports {dep}")
    return sorted(bad)


def test_imports_run_one_way():
    bad = _violations({name: _imports(name, path) for name, path in _modules().items()})
    assert not bad, "imports against the layering: " + "; ".join(bad)


def test_no_import_cycles():
    graph = {name: _imports(name, path) for name, path in _modules().items()}
    state: dict[str, int] = {}
    cycle: list[str] = []

    def visit(n: str, stack: list[str]) -> bool:
        state[n] = 1
        for d in graph.get(n, ()):
            if d.endswith("__init__") and n.startswith(d.removesuffix("__init__")):
                continue  # a module of a package and its own __init__
            if state.get(d) == 1:
                cycle.extend(stack[stack.index(d) :] + [d] if d in stack else [n, d])
                return True
            if state.get(d) is None and visit(d, stack + [d]):
                return True
        state[n] = 2
        return False

    for n in graph:
        if state.get(n) is None and visit(n, [n]):
            break
    assert not cycle, "import cycle: " + " → ".join(cycle)


def test_the_layer_check_can_fail():
    # what the old flat package did (batch ← cli → batch, train ← cli) is caught
    graph = {"commands.batch": {"cli"}, "colour.transfer": {"pipeline.processor"}, "pipeline.settings": {"media.encode"}}
    assert _violations(graph) == ["colour.transfer imports pipeline.processor", "commands.batch imports cli"]


def test_every_module_imports_in_a_fresh_interpreter():
    names = [f"hdrvideo.{n.removesuffix('.__init__')}" for n in _modules() if n not in ("__main__", "__init__")]
    code = "import importlib, sys\nfor n in sys.argv[1:]:\n    importlib.import_module(n)\n"
    r = subprocess.run([sys.executable, "-c", code, *names], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]


def test_modules_are_of_a_readable_size():
    big = {str(p.relative_to(PKG)): len(p.read_text().splitlines()) for p in PKG.rglob("*.py")}
    over = {k: v for k, v in big.items() if v > MAX_LINES}  # no exceptions
    assert not over, f"modules over {MAX_LINES} lines: {over}"
    assert big["cli.py"] <= 300


def test_shared_options_are_declared_once():
    ui = (PKG / "commands" / "ui.py").read_text()
    cli = (PKG / "cli.py").read_text()
    conversion_commands = cli[cli.index("def main(") : cli.index("def info(")]  # convert, stream, batch
    for opt in ("--weights", "--transfer", "--peak-nits", "--codec", "--crf", "--preset", "--device", "--precision",
                "--quality", "--batch-size", "--temporal", "--lookahead", "--encoder", "--force"):  # fmt: skip
        assert ui.count(f'"{opt}"') == 1, f"{opt} is not declared exactly once in commands/ui.py"
        assert f'"{opt}"' not in conversion_commands, f"{opt} declared again for a conversion command in cli.py"


@pytest.mark.parametrize("command", ["convert", "stream", "batch"])
def test_conversion_commands_take_the_shared_options(command):
    from click.testing import CliRunner

    from hdrvideo.cli import main

    text = CliRunner().invoke(main, [command, "--help"]).output
    for opt in ("--weights", "--transfer", "--peak-nits", "--codec", "--crf", "--preset", "--device", "--precision",
                "--quality", "--batch-size", "--temporal"):  # fmt: skip
        assert opt in text, f"{command} lacks {opt}"


def test_docs_layout_page_names_every_module():
    section = LAYOUT.read_text()
    assert section.startswith("# How the code is laid out")
    missing = [str(p.relative_to(PKG)) for p in PKG.rglob("*.py")
               if p.name != "__init__.py" and p.name not in section]  # fmt: skip
    assert not missing, f"docs/layout.md does not mention {missing}"
    assert "docs/layout.md" in README.read_text()  # the front door points to it


def test_readme_is_a_front_door():
    text = README.read_text()
    assert len(text.splitlines()) <= 250 and "docs/images/" in text
    for cmd in ("convert", "stream", "batch", "train", "eval"):
        assert f"hdrvideo {cmd} " in text, f"the README has no example of {cmd}"


def test_every_subpackage_has_a_docstring():
    for init in PKG.glob("*/__init__.py"):
        assert ast.get_docstring(ast.parse(init.read_text())), f"{init.parent.name}/__init__.py has no docstring"


def test_help_and_version_start_without_torch():
    """`hdrvideo --help`, `--version` and every command's help come at once: torch is not imported."""
    code = ("import sys, time\nt = time.perf_counter()\nfrom hdrvideo.cli import main\n"
            "for args in (['--help'], ['--version'], ['convert', '--help'], ['stream', '--help'], ['eval', '--help']):\n"
            "    try:\n        main(args)\n    except SystemExit:\n        pass\n"
            "print('TIMING', 'torch' in sys.modules, time.perf_counter() - t)\n")  # fmt: skip
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    torch_loaded, seconds = r.stdout.split("TIMING")[1].split()
    assert torch_loaded == "False", r.stdout[-500:]
    assert float(seconds) < 1.0
