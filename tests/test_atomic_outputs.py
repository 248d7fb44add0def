"""Outputs are published by the attempt that claimed them last (files.py): an earlier attempt still running
(its controller killed) cannot alter them, and nothing half-written ever has an output's name."""
import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import REPO, SNAKEMAKE, write_config
from workflow_scripts.common.files import LOCK_NAME, SupersededError, claim, write_atomically

# An attempt in its own process (the attempt token is per process): claims `path`, says so, waits for a line on
# stdin, then writes `text` there; exit status 3 when a later attempt superseded it.
ATTEMPT_SCRIPT = """
import sys
from pathlib import Path
sys.path.insert(0, {repo!r})
from workflow_scripts.common.files import LOCK_NAME, SupersededError, claim, write_atomically
path, text = sys.argv[1], sys.argv[2]
claim(path)
print("claimed", flush=True)
sys.stdin.readline()
try:
    write_atomically(path, lambda partial: Path(partial).write_text(text))
except SupersededError as error:
    print(error, flush=True)
    sys.exit(3)
"""


def start_attempt(path: Path, text: str) -> subprocess.Popen:
    attempt = subprocess.Popen([sys.executable, "-c", ATTEMPT_SCRIPT.format(repo=str(REPO)), str(path), text],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert attempt.stdout.readline().strip() == "claimed"
    return attempt


def finish(attempt: subprocess.Popen) -> tuple[int, str]:
    out, _ = attempt.communicate("go\n", timeout=60)
    return attempt.returncode, out


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name != LOCK_NAME)


def test_an_earlier_attempt_that_finishes_last_cannot_replace_the_later_output(tmp_path):
    path = tmp_path / "table.csv"
    earlier = start_attempt(path, "old settings")
    later = start_attempt(path, "new settings")
    assert finish(later)[0] == 0
    status, message = finish(earlier)
    assert status == 3 and "later attempt" in message and "table.csv" in message
    assert path.read_text() == "new settings"
    assert leftovers(tmp_path) == ["table.csv"]


def test_an_earlier_attempt_that_finishes_first_cannot_publish_either(tmp_path):
    path = tmp_path / "table.csv"
    earlier = start_attempt(path, "old settings")
    later = start_attempt(path, "new settings")
    assert finish(earlier)[0] == 3 and not path.exists()
    assert finish(later)[0] == 0 and path.read_text() == "new settings"


def test_a_failed_write_leaves_the_previous_file_and_nothing_else(tmp_path):
    path = tmp_path / "figure.png"
    path.write_text("previous")

    def half_write(partial):
        assert Path(partial).suffix == ".png"  # matplotlib picks the format by the suffix
        Path(partial).write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_atomically(path, half_write)
    assert path.read_text() == "previous" and leftovers(tmp_path) == ["figure.png"]
    write_atomically(path, lambda partial: Path(partial).write_text("new"))  # the failed claim was withdrawn
    assert path.read_text() == "new"


def test_a_folder_is_replaced_whole(tmp_path):
    folder = tmp_path / "shard-0"
    folder.mkdir()
    (folder / "stale.png").write_text("from an older run")

    def write(partial):
        Path(partial).mkdir()
        (Path(partial) / "a.png").write_text("a")

    write_atomically(folder, write)
    assert leftovers(folder) == ["a.png"] and leftovers(tmp_path) == ["shard-0"]


def test_this_process_superseded_gets_an_error_and_leaves_no_partial(tmp_path):
    path = tmp_path / "x.parquet"
    claim(path)
    later = start_attempt(path, "later")
    with pytest.raises(SupersededError, match="x.parquet: not published: a later attempt"):
        write_atomically(path, lambda partial: Path(partial).write_text("mine"))
    assert leftovers(tmp_path) == [".x.parquet.attempt"]  # the later attempt's claim
    assert finish(later)[0] == 0 and path.read_text() == "later" and leftovers(tmp_path) == ["x.parquet"]


def descendants(pid: int) -> list[int]:
    children = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_a_render_job_orphaned_by_a_killed_snakemake_cannot_alter_the_rerun_shard(tmp_path):
    """The reported failure: snakemake is SIGKILLed mid-render, its render job lives on; the rerun renders the
    shard with new settings; the orphan, finishing afterwards, must leave that shard exactly as the rerun wrote it."""
    config = {"datasets": {"toy": {"objects_per_scene": [2], "scenes_per_count": 10, "shards": 1}},
              "models": [{"id": "rand", "name": "ViT-B-32", "pretrained": "none"}]}
    target = "results/toy/images/shard-000"
    command = [SNAKEMAKE, "--snakefile", str(REPO / "Snakefile"), "--directory", str(tmp_path), "--cores", "1"]
    slow = write_config(tmp_path, {**config, "render": {"resolution": [64, 64], "samples": 64}})
    controller = subprocess.Popen([*command, target, "--configfile", str(slow)], cwd=tmp_path, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
    orphan = []
    try:
        deadline = time.monotonic() + 300
        while not list((tmp_path / "results/toy/images").glob("*shard-000*/*.png")):
            assert controller.poll() is None and time.monotonic() < deadline, "the render job never started"
            time.sleep(0.05)
        orphan = descendants(controller.pid)
        for pid in orphan:
            os.kill(pid, signal.SIGSTOP)
        controller.kill()
        controller.wait()

        fast = tmp_path / "fast.yaml"
        fast.write_text(slow.read_text().replace("samples: 64", "samples: 2"))
        subprocess.run([*command, "--unlock", "--configfile", str(fast)], cwd=tmp_path, check=True,
                       capture_output=True)
        rerun = subprocess.run([*command, target, "--rerun-incomplete", "--configfile", str(fast)], cwd=tmp_path,
                               capture_output=True, text=True)
        assert rerun.returncode == 0, rerun.stderr[-3000:]
        shard = tmp_path / target
        published = digests(shard)
        assert sum(name.endswith(".objects.png") for name in published) == 10  # each image's object masks
        assert sum(name.endswith(".png") for name in published) == 20

        for pid in orphan:
            os.kill(pid, signal.SIGCONT)
        deadline = time.monotonic() + 300
        while any(running(pid) for pid in orphan):
            assert time.monotonic() < deadline, "the orphaned render job did not end"
            time.sleep(0.2)
        assert digests(shard) == published
        # the orphan's half-rendered folder is gone
        assert leftovers(shard.parent) == ["shard-000", "shard-000.manifest.json"]
    finally:
        for pid in orphan:
            if running(pid):
                os.kill(pid, signal.SIGKILL)
        if controller.poll() is None:
            controller.kill()


def test_after_ctrl_c_the_same_command_resumes(tmp_path):
    """Ctrl-C (SIGINT) mid-render, then the very same command, with no --rerun-incomplete and no --profile: the
    workflow profile makes it redo the interrupted shard instead of refusing with IncompleteFilesException."""
    config = write_config(tmp_path, {"datasets": {"toy": {"objects_per_scene": [2], "scenes_per_count": 10}},
                                     "models": [{"id": "rand", "name": "ViT-B-32", "pretrained": "none"}],
                                     "render": {"resolution": [64, 64], "samples": 64}})
    target = "results/toy/images/shard-000"
    command = [SNAKEMAKE, "--snakefile", str(REPO / "Snakefile"), "--directory", str(tmp_path), "--cores", "1",
               "--configfile", str(config), "--", target]
    controller = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while not list((tmp_path / "results/toy/images").glob("*shard-000*/*.png")):
            assert controller.poll() is None and time.monotonic() < deadline, "the render job never started"
            time.sleep(0.05)
        controller.send_signal(signal.SIGINT)
        assert controller.wait(timeout=120) != 0
    finally:
        if controller.poll() is None:
            controller.kill()
    again = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert len(list((tmp_path / target).glob("*.objects.png"))) == 10
    assert (tmp_path / f"{target}.manifest.json").exists()
