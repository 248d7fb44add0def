"""The registry of dataset kinds, and the plan of which datasets a config makes.

Each kind is one module that declares a `KIND` (workflow_scripts/datasets/kind.py says what it holds). The
built-in kinds are registered in BUILTIN_KINDS below (one line each); a config's `kind_modules` lists further module files
(e.g. a user's own kind, or the toy kind of the tests), each declaring its KIND, without any edit here.
"""
import importlib.util
import sys
from dataclasses import dataclass, field
from pathlib import Path

from workflow_scripts.datasets import (aro, clevr, coco, colorswap, comco, laion, names, pug, simco, spar,
                                       sugarcrepe, sugarcrepe_pp, winoground)
from workflow_scripts.datasets.kind import DatasetKind

BUILTIN_KINDS = {kind.name: kind for kind in (clevr.KIND, simco.KIND, comco.KIND, names.KIND, pug.KIND, spar.KIND,
                                              sugarcrepe.KIND, sugarcrepe_pp.KIND, winoground.KIND, aro.KIND,
                                              coco.KIND, colorswap.KIND, laion.KIND)}
REFERENCES_SUFFIX = "-references"


def load_kind_module(path) -> DatasetKind:
    """The KIND declared by the Python file at `path`; ValueError naming the file when it has none."""
    path = Path(path).expanduser().resolve()
    if not path.is_file():
        raise ValueError(f"kind_modules: {path} does not exist")
    name = f"clip_binding_kind_{path.stem}"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    kind = getattr(sys.modules[name], "KIND", None)
    if not isinstance(kind, DatasetKind):
        raise ValueError(f"kind_modules: {path} declares no KIND = DatasetKind(...)")
    return kind


def dataset_kinds(kind_modules=()) -> dict[str, DatasetKind]:
    """Every kind: the built-in ones and those declared by the files in `kind_modules`."""
    kinds = dict(BUILTIN_KINDS)
    for path in kind_modules:
        kind = load_kind_module(path)
        if kind.name in kinds and kinds[kind.name] is not kind:
            raise ValueError(f"kind_modules: {path} declares kind {kind.name!r}, which exists already")
        kinds[kind.name] = kind
    return kinds


@dataclass(frozen=True)
class PlannedDataset:
    """One dataset the workflow builds: a config entry, or the single-object references of one ("of")."""

    name: str
    kind: DatasetKind
    spec: dict  # the config entry; for references only {"kind": ...}
    analyses: tuple[str, ...] = ()
    of: str | None = None  # for references: the dataset they belong to
    source_files: dict = field(default_factory=dict)

    @property
    def is_references(self) -> bool:
        return self.of is not None

    @property
    def shards(self) -> int:
        return 1 if self.is_references else self.spec["shards"]

    @property
    def has_images(self) -> bool:
        return self.kind.images_of(self.of or self.name, self.spec)

    @property
    def paper_setting(self) -> str:
        """The paper A setting whose reference numbers apply (the kind's `setting`), '' for none."""
        return (self.kind.setting(self.of or self.name, self.spec) or "") if self.kind.setting else ""

    @property
    def scoring(self) -> str:
        """How rule `compositional` scores the dataset (the kind's `scoring`, else its name)."""
        return self.kind.scoring(self.name, self.spec) if self.kind.scoring else self.kind.name

    def labclip_settings(self, defaults: dict) -> dict:
        """paper_a.labclip's settings (`defaults`) with the entry's own `labclip` keys over them (a kind may
        default them: pug's batch 512, the authors' PUG setting)."""
        return {**defaults, **self.spec.get("labclip", {})}

    def inputs(self) -> dict:
        """Files the item builder reads, by key."""
        if self.kind.inputs is None:
            return {}
        return self.kind.inputs(self.of or self.name, self.spec)


def plan_datasets(config: dict, kinds: dict[str, DatasetKind]) -> tuple[dict[str, PlannedDataset], dict[str, str]]:
    """({name: PlannedDataset}, {skipped dataset: why}) for a validated config: every dataset entry that can run
    here, and after each the references of those whose kind has references."""
    planned, skipped = {}, {}
    for name, spec in sorted(config["datasets"].items()):
        kind = kinds[spec["kind"]]
        reason = kind.skip_reason(name, spec) if kind.skip_reason else None
        if reason:
            skipped[name] = reason
            continue
        files = kind.source_files(name, spec) if kind.source_files else {}
        planned[name] = PlannedDataset(name, kind, spec, kind.analyses_of(spec), source_files=files)
        if kind.references is not None:  # built from the kind and its inputs alone: the entry's keys change none
            references = name + REFERENCES_SUFFIX
            planned[references] = PlannedDataset(references, kind, {"kind": kind.name}, of=name, source_files=files)
    return planned, skipped
