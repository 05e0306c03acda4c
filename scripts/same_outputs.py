"""Show that a change leaves what users see unchanged: build the demo workspace with the code
of an earlier commit and with the code here, run the same read-only and JSON commands on
each, and compare their output (timestamps, durations, temporary paths and the audit
chain's hashes aside, which differ from run to run by design).

    .venv/bin/python scripts/same_outputs.py BASE_COMMIT [--keep DIR]

Exits 0 when everything matches; otherwise prints a unified diff of each difference and
exits 1. Runs offline (the demo is), in about two minutes.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

# (name of the output, arguments after `provenance --workspace WS`)
COMMANDS: list[tuple[str, list[str]]] = [
    ("help", ["--help"]),
    ("register-help", ["register", "--help"]),
    ("refs-help", ["refs", "--help"]),
    ("export-help", ["export", "--help"]),
    ("list", ["list", "--json"]),
    ("show-1", ["show", "1", "--json"]),
    ("show-5", ["show", "5", "--json"]),
    ("status-1", ["status", "1", "--json", "--as-of", "2026-12-01"]),
    ("status-5", ["status", "5", "--json", "--as-of", "2026-12-01"]),
    ("queue", ["queue", "--json"]),
    ("refs-list", ["refs", "list", "--json"]),
    ("refs-list-text", ["refs", "list"]),
    ("refs-show", ["refs", "show", "demo-studio-ip", "--json"]),
    ("refs-show-text", ["refs", "show", "demo-studio-ip"]),
    ("users-list", ["users", "list", "--json"]),
    ("tools-list", ["tools", "list", "--json"]),
    ("consent-list", ["consent", "list", "--json"]),
    ("expired", ["expired", "--json", "--as-of", "2027-06-01"]),
    ("check-2", ["check", "2", "--json", "--by", "demo-admin"]),
    ("register", ["register", "{sample}", "--json", "--use", "previz", "--by", "demo-artist"]),
    ("check-pending", ["check", "--pending", "--json"]),
    (
        "export-asset",
        ["export", "asset", "5", "--out", "{out}/asset", "--no-pdf", "--as-of", "2026-12-01"],
    ),
    (
        "export-production",
        [
            "export",
            "production",
            "{production}",
            "--out",
            "{out}/production",
            "--no-pdf",
            "--as-of",
            "2026-12-01",
        ],
    ),
    ("audit-verify", ["audit", "verify"]),
    ("audit-verify-json", ["audit", "verify", "--json"]),
    ("store-gc", ["store", "gc", "--json"]),
    ("db-status", ["db", "status"]),
    ("queue-table", ["queue"]),
    ("status-5-text", ["status", "5", "--as-of", "2026-12-01"]),
    ("show-5-text", ["show", "5"]),
]

TIME = re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(\.\d+)?(\+00:00|Z)?")
HEX64 = re.compile(r"\b[0-9a-f]{64}\b")
SECONDS = re.compile(r"\b\d+(\.\d+)? ?(s|ms)\b")
# Values that hash the audit chain (its events carry their time) or time anything.
VOLATILE_KEYS = {"hash", "prev_hash", "head", "head_hash", "chain_head", "audit_head",
                 "digest", "seconds", "elapsed_seconds", "token"}  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("base", help="the commit to compare with (e.g. HEAD~3 or a hash)")
    parser.add_argument("--keep", type=Path, help="keep both workspaces and outputs here")
    args = parser.parse_args()
    work = Path(args.keep or tempfile.mkdtemp(prefix="same-outputs-")).resolve()
    work.mkdir(parents=True, exist_ok=True)
    try:
        base_src = work / "base-src"
        shutil.rmtree(base_src, ignore_errors=True)
        base_src.mkdir()
        archive = subprocess.run(
            ["git", "archive", args.base], cwd=ROOT, check=True, capture_output=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(base_src)], input=archive, check=True)
        # This tree is copied too, so that both run from paths of the same length (tables
        # clip long paths) and uncommitted changes are included.
        here_src = work / "here-src"
        shutil.rmtree(here_src, ignore_errors=True)
        listed = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT,
            check=True,
            capture_output=True,
        ).stdout.decode("utf-8", "surrogateescape")
        for name in filter(None, listed.split("\0")):
            if (ROOT / name).is_file():
                (here_src / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(ROOT / name, here_src / name)
        outputs = {
            label: run_all(source, work / label)
            for label, source in (("base", base_src), ("here", here_src))
        }
        differences = 0
        for name in sorted(set(outputs["base"]) | set(outputs["here"])):
            before = outputs["base"].get(name, "(missing)\n")
            after = outputs["here"].get(name, "(missing)\n")
            if before != after:
                differences += 1
                sys.stdout.writelines(
                    difflib.unified_diff(
                        before.splitlines(keepends=True),
                        after.splitlines(keepends=True),
                        f"base/{name}",
                        f"here/{name}",
                    )
                )
        compared = len(outputs["here"])
        if differences:
            print(f"{differences} of {compared} outputs differ from {args.base}")
            return 1
        print(f"all {compared} outputs are identical to {args.base}'s")
        return 0
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


def run_all(source: Path, work: Path) -> dict[str, str]:
    """Build the demo with the code at ``source``; every output, normalized, by name."""
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROVENANCE_")}
    env["PYTHONPATH"] = str(source)
    workspace = work / "demo"
    outputs = {"demo": run(["demo", str(workspace)], env, work)}
    listing = subprocess.run(
        [sys.executable, "-m", "provenance", "--workspace", str(workspace), "list", "--json"],
        env=env, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    names = sorted({a["production"] for a in json.loads(listing)["assets"] if a["production"]})
    sample = work / "incoming" / "astronaut_v002.jpg"
    sample.parent.mkdir()
    shutil.copyfile(ROOT / "samples" / "images" / "astronaut.jpg", sample)
    values = {
        "out": str(work / "out"),
        "production": names[0] if names else "none",
        "sample": str(sample),
    }
    for name, arguments in COMMANDS:
        command = ["--workspace", str(workspace), *[a.format(**values) for a in arguments]]
        outputs[name] = run(command, env, work)
    for path in sorted((work / "out").rglob("*")):
        if path.is_file():
            outputs[f"file:{path.relative_to(work / 'out')}"] = path.read_text("utf-8")
    # The content hashes of stored files are the same in every run; any other SHA-256 hashes
    # something that holds a time (an audit event, a record naming its export time).
    stored = {p.name for p in (workspace / "store").rglob("*") if p.is_file()}
    return {name: normalize(text, work, source, stored) for name, text in outputs.items()}


def run(arguments: list[str], env: dict[str, str], cwd: Path) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "provenance", *arguments],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )
    return f"exit {done.returncode}\n--- stdout\n{done.stdout}--- stderr\n{done.stderr}"


def normalize(text: str, work: Path, source: Path, stored: set[str]) -> str:
    """Paths, times and durations replaced; a JSON document (a whole stdout, a whole file
    or one line) re-printed with its volatile values replaced."""
    text = text.replace(str(source), "<SOURCE>").replace(str(work), "<WORK>")
    text = TIME.sub("<TIME>", text)
    text = SECONDS.sub("<DURATION>", text)
    text = HEX64.sub(lambda m: m[0] if m[0] in stored else "<HASH>", text)
    parts = re.split(r"(^--- std(?:out|err)\n)", text, flags=re.M)
    return "".join(_normalize_json(part) for part in parts)


def _normalize_json(text: str) -> str:
    try:
        value = json.loads(text)
    except ValueError:
        lines = []
        for line in text.splitlines(keepends=True):
            if line.lstrip().startswith(("{", "[")):
                with contextlib.suppress(ValueError):
                    line = _dumps(json.loads(line))
            lines.append(line)
        return "".join(lines)
    return _dumps(value)


def _dumps(value: Any) -> str:
    return json.dumps(_drop_volatile(value), indent=1, sort_keys=True) + "\n"


def _drop_volatile(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: ("<VOLATILE>" if k in VOLATILE_KEYS else _drop_volatile(v)) for k, v in value.items()
        }
    if isinstance(value, list):
        return [_drop_volatile(v) for v in value]
    return value


if __name__ == "__main__":
    sys.exit(main())
