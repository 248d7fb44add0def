"""`make bench` keeps working: its quick mode runs every benchmark end to end, and the paper config's item counts
behind its hour estimates are the DAG's. Nothing here asserts a time."""
import subprocess
import sys

from conftest import REPO

sys.path.insert(0, str(REPO))

from benchmarks.bench import rendered_items  # noqa: E402


def test_paper_config_item_counts():
    """config.yaml renders 5000 two-object CLEVR scenes, 5000 per object count from 2 to 10, and SIMCO/ComCO
    scenes per object count 2 to 5 (1000 one-large, 500 mixed, 1000 ComCO); each CLEVR scene has one negative."""
    images, texts, models = rendered_items(REPO / "config.yaml")
    assert images == {"clevr_binding": 5000, "clevr_multi": 45000, "simco_large": 4000, "simco_mixed": 2000,
                      "comco_large": 4000}
    assert texts["clevr_binding"] == 10000 and models == 2


def test_quick_bench_runs_every_benchmark(tmp_path):
    run = subprocess.run([sys.executable, str(REPO / "benchmarks/bench.py"), "--quick"], capture_output=True,
                         text=True, cwd=tmp_path, timeout=1200)
    assert run.returncode == 0, run.stderr[-3000:]
    for line in ("Where the hours go", "render", "image embedding (embed_images)", "text embedding (trimmed context)",
                 "image probes (scikit-learn)", "LABCLIP-HNB, early stopping", "hours on this"):
        assert line in run.stdout, (line, run.stdout[-3000:])
