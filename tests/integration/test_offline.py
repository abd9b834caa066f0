"""Offline proof: the whole pipeline, real models, with every socket refused.

A fresh process replaces socket.socket with a subclass that cannot be
constructed (and create_connection / getaddrinfo with functions that raise),
runs `intentlocal run` end to end, and checks that no hub client or HTTP
library was even imported.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import SUPPORT_TEXTS

pytestmark = pytest.mark.integration

GUARD = """
import socket, sys
class NoNetwork(OSError):
    pass
def refuse(*a, **k):
    raise NoNetwork("network access attempted")
class RefusingSocket(socket.socket):
    def __init__(self, *a, **k):
        refuse()
socket.socket = RefusingSocket
socket.create_connection = refuse
socket.getaddrinfo = refuse
from intentlocal.cli import main
code = main(sys.argv[1:])
leaked = [m for m in ("huggingface_hub", "requests", "httpx", "urllib3", "aiohttp",
                      "transformers", "torch") if m in sys.modules]
print("LEAKED:" + ",".join(leaked))
sys.exit(code)
"""


def test_whole_run_with_sockets_refused(tmp_path: Path, minilm_dir, qwen_path) -> None:
    data = tmp_path / "in.txt"
    data.write_text("\n".join(SUPPORT_TEXTS[:10]) + "\n")
    out = subprocess.run(
        [sys.executable, "-c", GUARD, "run", str(data), "--embedder", str(minilm_dir),
         "--llm", str(qwen_path), "--k", "3", "--max-iterations", "1", "--neighbours", "4",
         "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=900,
        env={"INTENTLOCAL_HOME": str(tmp_path / "home"), "PATH": "/usr/bin:/bin",
             "HOME": str(tmp_path)},
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "LEAKED:\n" in out.stdout or out.stdout.rstrip().endswith("LEAKED:")
    assert (tmp_path / "run1_clusters.csv").is_file()
    # onnxruntime's telemetry keeps a device id and an upload queue here when it is on
    assert not (tmp_path / ".cache" / "Microsoft").exists()


@pytest.mark.skipif(shutil.which("strace") is None, reason="needs strace")
def test_no_network_system_call_from_native_code(tmp_path: Path, minilm_dir, qwen_path) -> None:
    """The Python guard cannot see native code (onnxruntime's telemetry resolves its
    host with libc's getaddrinfo). strace sees every process and thread: the whole run
    must not create a single internet socket."""
    data = tmp_path / "in.txt"
    data.write_text("\n".join(SUPPORT_TEXTS[:12]) + "\n")
    trace = tmp_path / "strace.out"
    probe = subprocess.run(["strace", "-f", "-o", str(tmp_path / "probe"), "true"],
                           capture_output=True)
    if probe.returncode != 0:
        pytest.skip("strace cannot trace here (ptrace not permitted)")
    env = {k: v for k, v in os.environ.items() if k != "ORT_DISABLE_TELEMETRY"}
    env.update(INTENTLOCAL_HOME=str(tmp_path / "home"), HOME=str(tmp_path))
    out = subprocess.run(
        ["strace", "-f", "-e", "trace=socket,connect,sendto,sendmsg", "-o", str(trace),
         sys.executable, "-m", "intentlocal", "run", str(data), "--embedder", str(minilm_dir),
         "--llm", str(qwen_path), "--k", "3", "--max-iterations", "1", "--neighbours", "4",
         "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=900, env=env,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    calls = trace.read_text().splitlines()
    internet = [c for c in calls if "AF_INET" in c or "sin_port" in c or "htons(53)" in c]
    assert internet == [], internet[:5]


def test_guard_really_refuses(tmp_path: Path) -> None:
    """The guard itself works: a connection attempt under it fails."""
    code = GUARD.split("from intentlocal")[0] + (
        "import urllib.request\n"
        "try:\n"
        "    urllib.request.urlopen('http://127.0.0.1:9', timeout=1)\n"
        "except Exception as e:\n"
        "    print(type(e).__name__, e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert "network access attempted" in out.stdout
