"""The code's structure: stages import only what comes before them, no module imports another in a circle, and
analyses read datasets only through the item contract (workflow_scripts/datasets/items.py)."""

from conftest import REPO, imported_names

PACKAGE = REPO / "workflow_scripts"
STAGES = ("common", "datasets", "render", "models", "analyses", "summary")
WHOLE_WORKFLOW = {"workflow_scripts", "workflow_scripts.config"}  # the package, and the parse-time config check


def module_name(path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def imports_of(name: str) -> set[str]:
    """The workflow_scripts modules a module imports anywhere in its text (functions included)."""
    return {c for c in imported_names(MODULES[name].read_text())
            if c in MODULES and c != name and MODULES[c].name != "__init__.py"}


GRAPH = {name: imports_of(name) for name in MODULES}


def test_every_module_belongs_to_a_stage():
    stray = [n for n in MODULES if n not in WHOLE_WORKFLOW and n.split(".")[1] not in STAGES]
    assert not stray, stray


def test_no_module_imports_another_in_a_circle():
    state = {}

    def visit(name, path):
        state[name] = "open"
        for other in sorted(GRAPH[name]):
            if state.get(other) == "open":
                raise AssertionError("import cycle: " + " -> ".join(path + [other]))
            if other not in state:
                visit(other, path + [other])
        state[name] = "done"

    for name in sorted(GRAPH):
        if name not in state:
            visit(name, [name])


def test_stages_import_only_earlier_stages():
    # render draws item tables (datasets); models embed them; analyses read both; summary reads analyses' files.
    allowed = {"common": {"common"}, "datasets": {"common", "datasets"}, "render": {"common", "datasets", "render"},
               "models": {"common", "datasets", "models"},
               "analyses": {"common", "datasets", "models", "analyses"},
               "summary": {"common", "summary"}}
    for name, imported in GRAPH.items():
        if name in WHOLE_WORKFLOW:
            continue
        stage = name.split(".")[1]
        wrong = sorted(i for i in imported if i.split(".")[1] not in allowed[stage])
        assert not wrong, f"{name} imports {wrong}"


def test_analyses_read_datasets_only_through_the_item_contract():
    for name, imported in GRAPH.items():
        if name.startswith("workflow_scripts.analyses"):
            datasets = sorted(i for i in imported if i.startswith("workflow_scripts.datasets"))
            assert datasets in ([], ["workflow_scripts.datasets.items"]), f"{name} imports {datasets}"


def test_the_graph_sees_function_level_imports():
    assert "workflow_scripts.analyses.labclip" in GRAPH["workflow_scripts.analyses.binding"]
    assert "workflow_scripts.models.embed" in GRAPH["workflow_scripts.analyses.tor"]
