"""Runs the python blocks of a README in order, in one namespace (used by test_readme.py).

Usage: ``python tests/readme_runner.py README.md results.json``. Needs only jinit and its
dependencies (not pytest), so it also checks the README in a plain ``pip install .``.
"""

from __future__ import annotations

import contextlib
import doctest
import io
import json
import pathlib
import re
import sys
import textwrap
import traceback

NO_TEST = "<!-- no-test -->"


def blocks(text: str) -> list[dict]:
    """The README's python blocks: ``{"line", "heading", "code", "skip"}`` in order."""
    out, heading, lines = [], "", text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("#") and not line.startswith("#!"):
            heading = line.lstrip("#").strip()
        if line.strip() == "```python":
            start = i + 1
            end = next(j for j in range(start, len(lines)) if lines[j].strip() == "```")
            before = [ln for ln in lines[:i] if ln.strip()]
            out.append(
                {
                    "line": start + 1,
                    "heading": heading,
                    "code": "\n".join(lines[start:end]) + "\n",
                    "skip": bool(before) and before[-1].strip() == NO_TEST,
                }
            )
            i = end
        i += 1
    return out


def run_all(readme: str, out_path: str) -> None:
    """Runs every block (the subprocess side); writes one result per block to ``out_path``."""
    # "__main__" (this script) so that classes defined in a block have an importable module
    namespace: dict = {"__name__": "__main__"}
    results = []
    for block in blocks(pathlib.Path(readme).read_text()):
        if block["skip"]:
            results.append({"line": block["line"], "status": "skipped", "error": ""})
            continue
        stdout = io.StringIO()
        try:
            with contextlib.redirect_stdout(stdout):
                if re.match(r"\s*>>> ", block["code"]):
                    test = doctest.DocTestParser().get_doctest(
                        block["code"], namespace, "README", readme, block["line"] - 1
                    )
                    runner = doctest.DocTestRunner(
                        optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
                    )
                    runner.run(test, out=stdout.write, clear_globs=False)
                    if runner.failures:
                        raise AssertionError(stdout.getvalue()[-2000:])
                else:
                    code = textwrap.dedent(block["code"])  # blocks inside list items are indented
                    exec(compile(code, f"README.md:{block['line']}", "exec"), namespace)
            results.append({"line": block["line"], "status": "ok", "error": ""})
        except BaseException:
            error = traceback.format_exc(limit=-3)[-2000:]
            results.append({"line": block["line"], "status": "failed", "error": error})
    pathlib.Path(out_path).write_text(json.dumps(results))


if __name__ == "__main__":
    run_all(sys.argv[1], sys.argv[2])
