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
