"""The core never imports Textual, torch or a hub client: checked in a fresh process."""

import subprocess
import sys


def test_core_imports_without_textual_or_torch() -> None:
    code = (
        "import sys\n"
        "import intentlocal, intentlocal.api, intentlocal.cli, intentlocal.store\n"
        "import intentlocal.pipeline.runner, intentlocal.pipeline.cluster\n"
        "import intentlocal.backends.llm, intentlocal.backends.onnx_embedder\n"
        "import intentlocal.backends.fetch, intentlocal.results, intentlocal.ingest\n"
        "bad = [m for m in ('textual', 'torch', 'transformers', 'sentence_transformers',\n"
        "       'huggingface_hub', 'requests', 'httpx') if m in sys.modules]\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == ""


def test_neighbours_then_embedder_in_one_process(minilm_dir) -> None:
    """usearch first, onnxruntime second used to segfault; the order is now enforced."""
    code = (
        "import numpy as np\n"
        "from intentlocal.pipeline.neighbours import nearest_neighbours\n"
        "nearest_neighbours(np.eye(4, dtype=np.float32), 2)\n"
        "from intentlocal.backends.onnx_embedder import OnnxEmbedder\n"
        f"print(OnnxEmbedder({str(minilm_dir)!r}).embed(['hello']).shape)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-500:]
    assert out.stdout.strip() == "(1, 384)"


def test_every_import_of_intentlocal_names_something_that_exists() -> None:
    """Most imports of the package sit inside functions (the CLI starts fast, the
    scripts load only what they use), so no test may ever execute some of them: a
    module split or a renamed function would first fail in a user's run or in a
    measurement hours long. Every ``from intentlocal... import name`` in the package,
    the scripts and the tests is resolved here instead."""
    import ast
    import importlib
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    missing = []
    for path in sorted(p for d in ("intentlocal", "scripts", "tests")
                       for p in (root / d).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not (isinstance(node, ast.ImportFrom) and node.level == 0 and node.module
                    and node.module.split(".")[0] == "intentlocal"):
                continue
            try:
                module = importlib.import_module(node.module)
            except ImportError as exc:
                if (exc.name or "").startswith("intentlocal"):
                    missing.append(f"{path.relative_to(root)}:{node.lineno} {node.module}")
                continue  # an optional third-party dependency (the export extra's torch)
            for alias in node.names:
                if hasattr(module, alias.name):
                    continue
                try:
                    importlib.import_module(f"{node.module}.{alias.name}")
                except ImportError:
                    missing.append(f"{path.relative_to(root)}:{node.lineno} "
                                   f"{node.module}.{alias.name}")
    assert not missing, missing
