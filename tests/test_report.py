"""The Snakemake report of the finished tiny run: one HTML page (or a zip) holding every figure and table, each
with its caption, and the workflow's description.

Snakemake's HTML report stores its content as JavaScript values (`var results = {...};`): per result its
caption (rendered to HTML), labels and a base64 data URI of the file. The tests decode those values and compare
them with the run's files, so a result missing from the page, or embedded from the wrong file, fails.
"""
import base64
import json
import re
import zipfile

import pytest

from conftest import snakemake

FIGURES = {
    "Paper A": ["probe_accuracy", "probes_vs_objects", "binding_accuracy", "caption_cosines", "modality_gap"],
    "Paper B": ["tor_position_bias", "ior_large_object", "matching_conditions", "attention_by_size"],
}
TABLES = {"Paper A": ["probes", "binding"], "Paper B": ["tor", "ior", "matching", "attention"]}
FOLDER = {"Paper A": "results/paper_a", "Paper B": "results/paper_b"}
# A phrase from each result's caption (report/*.rst) that names what it shows.
CAPTIONS = {
    "probe_accuracy": "Linear probes",
    "probes_vs_objects": "Probes vs number of objects",
    "binding_accuracy": "Cross-modal binding",
    "caption_cosines": "Caption vs swapped caption",
    "modality_gap": "Modality gap",
    "tor_position_bias": "First-mention bias in text",
    "ior_large_object": "Large objects in images",
    "matching_conditions": "Matching under reordering and resizing",
    "probes": "Linear probe accuracy",
    "binding": "Cross-modal binding diagnostics",
    "tor": "Text-based object retrieval",
    "ior": "Image-based object retrieval",
    "matching": "Image-text matching under reordering and resizing",
    "attention_by_size": "CLS attention by object size",
    "attention": "CLS attention by object size",
}
RANDOM = "say nothing about CLIP"


def expected_results() -> dict[str, dict[str, dict[str, str]]]:
    """category -> subcategory -> {path: the name its caption must carry}."""
    expected = {}
    for category in FIGURES:
        folder = FOLDER[category]
        expected[category] = {
            "Figures": {f"{folder}/figures/{name}.png": name for name in FIGURES[category]},
            "Tables": {f"{folder}/tables/{name}.{ext}": name for name in TABLES[category] for ext in ("csv", "md")},
        }
    return expected


def script_value(html: str, name: str):
    """The JSON value the report assigns to `name` in its own script element
    (`<script id="workflow-desc"> var workflow_desc = ...`)."""
    match = re.search(rf'<script id="{name.replace("_", "-")}">\s*var {name} = ', html)
    assert match, name
    value, _ = json.JSONDecoder().raw_decode(html, match.end())
    return value


def decode_data_uri(uri: str) -> tuple[str, bytes]:
    """(mime type, content) of a data URI as the report writes it: data:<mime>;charset=..;filename=..;base64,<data>"""
    header, data = uri.split(",", 1)
    assert header.startswith("data:") and header.endswith(";base64"), header
    return header[len("data:"):].split(";")[0], base64.b64decode(data)


@pytest.fixture(scope="module")
def report(tiny_run, tmp_path_factory):
    workdir, config = tiny_run
    path = tmp_path_factory.mktemp("report") / "report.html"
    # The report reads the run's metadata in .snakemake, so it is built in the run's directory with its config.
    run = snakemake("--report", path, "--directory", workdir, "--configfile", config)
    assert run.returncode == 0, run.stderr[-3000:]
    html = path.read_text()
    return workdir, {name: script_value(html, name) for name in ("results", "categories", "workflow_desc")}


def test_report_lists_every_figure_and_table_under_its_paper(report):
    _, page = report
    listed = {category: {sub: sorted(paths) for sub, paths in subs.items()} for category, subs in
              page["categories"].items()}
    expected = {category: {sub: sorted(paths) for sub, paths in subs.items()} for category, subs in
                expected_results().items()}
    assert listed == expected
    assert set(page["results"]) == {path for subs in expected.values() for paths in subs.values() for path in paths}


def test_report_embeds_each_result_file_itself(report):
    workdir, page = report
    for path, result in page["results"].items():
        mime, content = decode_data_uri(result["data_uri"])
        assert content == (workdir / path).read_bytes(), path
        suffix = path.rsplit(".", 1)[1]
        assert mime == {"png": "image/png", "csv": "text/csv", "md": "text/markdown"}[suffix], path
        assert result["mime_type"] == mime
        if suffix == "png":
            assert content.startswith(b"\x89PNG\r\n\x1a\n"), path
    binding = decode_data_uri(page["results"]["results/paper_a/tables/binding.csv"]["data_uri"])[1].decode()
    assert binding.startswith("dataset,model_id,weights,") and "random initialisation, torch seed 5" in binding


def test_report_captions_say_what_each_result_is(report):
    _, page = report
    for category, subs in expected_results().items():
        for subcategory, paths in subs.items():
            for path, name in paths.items():
                result = page["results"][path]
                caption = " ".join(result["caption"].split())  # docutils wraps lines
                assert CAPTIONS[name] in caption, (path, caption)
                others = [CAPTIONS[other] for other in CAPTIONS if other != name and CAPTIONS[other] not in
                          CAPTIONS[name]]
                assert not [text for text in others if text in caption], (path, caption)
                assert RANDOM in caption, path
                assert result["job_properties"]["rule"] == {"Figures": "figure", "Tables": "table"}[subcategory]
                assert f'<tt class="docutils literal">{name}</tt>' in caption, (path, caption)  # says which one
                if subcategory == "Figures":
                    assert result["labels"] == {"figure": name}
                else:
                    assert result["labels"] == {"table": name, "format": "CSV" if path.endswith(".csv") else "Markdown"}


def test_report_describes_the_workflow_and_warns_about_random_weights(report):
    _, page = report
    description = " ".join(page["workflow_desc"].split())
    assert "CLIP attribute binding, reproduced end to end" in description
    assert "arXiv 2502.03566" in description and "arXiv 2502.19842" in description
    assert "Results from random weights (pretrained: none) say nothing about CLIP" in description
    assert "In this run the model(s) rand have random weights" in description
    for dataset in ("toy", "shapes", "objects"):
        assert f"{dataset}</tt>" in description, dataset
    assert "64x64 at 4 samples" in description


def test_report_as_zip_holds_the_page_and_every_file(tiny_run, tmp_path):
    workdir, config = tiny_run
    path = tmp_path / "report.zip"
    run = snakemake("--report", path, "--directory", workdir, "--configfile", config)
    assert run.returncode == 0, run.stderr[-3000:]
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        page = archive.read("report/report.html").decode()
        results = script_value(page, "results")
        for result_path, result in results.items():
            assert f"report/{result['data_uri']}" in names, result_path
            assert archive.read(f"report/{result['data_uri']}") == (workdir / result_path).read_bytes()
    assert len(results) == sum(len(paths) for subs in expected_results().values() for paths in subs.values())
