"""Pin every artifact of requirements.lock by hash (`make lock`).

Reads a pip freeze (one `name==version` per line) and writes it back with the sha256 of every file PyPI holds for
each pinned version, taken from PyPI's simple JSON index (PEP 691), so that the Makefile's
`pip install --require-hashes` checks whatever file pip picks for the platform. A package that PyPI ships only as
wheels for some platforms (the CUDA libraries, triton) gets a marker naming them.
"""
import json
import sys
import urllib.request
from pathlib import Path

from packaging.utils import canonicalize_name, parse_sdist_filename, parse_wheel_filename
from packaging.version import Version

INDEX = "https://pypi.org/simple/{}/"
PLATFORMS = {"linux": "linux", "macosx": "darwin", "win": "win32"}  # in a wheel platform tag: sys.platform


def files_of(name: str, version: str) -> list[dict]:
    """PyPI's files of `name` at exactly `version` (not yanked)."""
    request = urllib.request.Request(INDEX.format(canonicalize_name(name)),
                                     headers={"Accept": "application/vnd.pypi.simple.v1+json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        files = json.load(response)["files"]
    found = []
    for file in files:
        parse = parse_wheel_filename if file["filename"].endswith(".whl") else parse_sdist_filename
        try:
            matches = parse(file["filename"])[1] == Version(version)
        except ValueError:  # an old file name that does not follow the conventions
            continue
        if matches and not file.get("yanked"):
            found.append(file)
    return found


def marker(files: list[dict]) -> str:
    """' ; sys_platform == ...' where every file is a wheel for only some platforms, else ''."""
    if any(not file["filename"].endswith(".whl") for file in files):
        return ""
    tags = {tag.platform for file in files for tag in parse_wheel_filename(file["filename"])[3]}
    platforms = sorted({value for part, value in PLATFORMS.items() if any(part in tag for tag in tags)})
    if "any" in tags or len(platforms) == len(PLATFORMS):
        return ""
    return " ; " + " or ".join(f'sys_platform == "{platform}"' for platform in platforms)


def main(lock: Path) -> None:
    lines = lock.read_text().splitlines()
    out = [line for line in lines if line.startswith("#")]
    for line in lines:
        if not line.strip() or line.startswith(("#", " ", "--")):
            continue
        pin = line.split(" ;")[0].split(" \\")[0].strip()
        name, version = pin.split("==")
        files = files_of(name, version)
        if not files:
            sys.exit(f"{lock}: {pin}: PyPI has no file of this version")
        hashes = sorted({file["hashes"]["sha256"] for file in files})
        out.append(f"{pin}{marker(files)} \\")
        out += [f"    --hash=sha256:{digest}" + (" \\" if index < len(hashes) - 1 else "")
                for index, digest in enumerate(hashes)]
    lock.write_text("\n".join(out) + "\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
