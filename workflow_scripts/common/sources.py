"""The code a rule runs, as one digest: its script and every project module the script imports, transitively.

The Snakefile gives every rule with a script this digest as its `code` param and turns off Snakemake's own
code trigger, which compares the script's modification time only. So a rule reruns when the content of its
script, or of any module of this repository it imports (or of a kind module of the config), changes, and not
when a file is only touched (a git checkout). Only imports written as statements count (`import a.b`,
`from a import b`, relative ones included), wherever they are in the file; a module loaded by a path in the
config (kind_modules) is added by the caller.
"""
import ast
import hashlib
from pathlib import Path


def _module_files(root: Path, dotted: str) -> list[Path]:
    """The files that importing `dotted` runs inside `root`: each package's __init__.py on the way and the
    module itself; nothing for a module outside `root` (the standard library, third-party packages)."""
    files, folder = [], root
    for part in dotted.split("."):
        package, module = folder / part / "__init__.py", folder / f"{part}.py"
        if package.is_file():
            files.append(package)
            folder = folder / part
        elif module.is_file():
            files.append(module)
            break
        else:
            break
    return files


def _imports(path: Path, root: Path) -> set[Path]:
    """The project files one Python file imports directly."""
    try:
        tree = ast.parse(path.read_bytes(), filename=str(path))
    except SyntaxError as error:
        raise ValueError(f"{path}: not valid Python ({error})") from None
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative to this file's package
                package = path.parent.relative_to(root).parts if path.is_relative_to(root) else ()
                package = package[: len(package) - (node.level - 1)] if node.level > 1 else package
                base = ".".join([*package, *([base] if base else [])])
            # `from a import b` runs a, and also a/b.py where b is a module
            names = [base] + [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            if name:
                found.update(_module_files(root, name))
    return found


def imported_files(script, root, extra=()) -> list[Path]:
    """`script`, the files in `extra`, and every file under `root` they import, transitively; sorted."""
    root = Path(root).resolve()
    pending = [Path(script).resolve(), *(Path(path).resolve() for path in extra)]
    seen = set()
    while pending:
        path = pending.pop()
        if path not in seen:
            seen.add(path)
            pending.extend(_imports(path, root) - seen)
    return sorted(seen)


def code_digest(script, root, extra=()) -> str:
    """A digest of the content of `script` and of every project file it imports (see imported_files)."""
    root = Path(root).resolve()
    digest = hashlib.sha256()
    for path in imported_files(script, root, extra):
        name = str(path.relative_to(root)) if path.is_relative_to(root) else path.name
        digest.update(name.encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:16]
