"""`make lab` as root: JupyterLab starts, prints its URL, defaults to the clothingrec kernel, has its
network-only extras off, and a notebook's first cells execute on its kernel (server REST API + kernel
websocket, the same path the browser takes)."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
import uuid
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "clothingrec-test-token"
pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _api(base: str, path: str, method: str = "GET", body: dict | None = None):
    req = urllib.request.Request(
        f"{base}{path}", method=method, data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"token {TOKEN}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        text = resp.read().decode()
    return json.loads(text) if resp.headers.get("Content-Type", "").startswith("application/json") else text


def _execute(ws, code: str, timeout: float = 120) -> list[dict]:
    """Send one execute_request on the kernel websocket; return the iopub outputs of that request."""
    msg_id = uuid.uuid4().hex
    ws.send(json.dumps({
        "header": {"msg_id": msg_id, "msg_type": "execute_request", "username": "test", "session": "t",
                   "version": "5.3", "date": ""},
        "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
        "content": {"code": code, "silent": False, "store_history": True, "user_expressions": {},
                    "allow_stdin": False, "stop_on_error": True},
    }))
    outputs, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        msg = json.loads(ws.recv())
        if msg.get("parent_header", {}).get("msg_id") != msg_id or msg.get("channel") != "iopub":
            continue
        kind = msg["msg_type"]
        if kind in ("stream", "error", "execute_result", "display_data"):
            outputs.append({"type": kind, **msg["content"]})
        if kind == "status" and msg["content"]["execution_state"] == "idle":
            return outputs
    raise TimeoutError(code[:80])


def test_make_lab_starts_as_root_and_runs_a_notebooks_first_cells(tmp_path):
    import websocket

    if os.geteuid() != 0:
        pytest.skip("this check is about root (containers); run it as root")
    port = _free_port()
    log = tmp_path / "lab.log"
    # -o: the setup and data stamps count as up to date (the test must not set up or download anything)
    proc = subprocess.Popen(
        ["make", "--no-print-directory", "-o", ".venv/.setup-stamp", "-o", "data/.data-stamp", "lab",
         f"PORT={port}", f"TOKEN={TOKEN}"],
        cwd=ROOT, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    session = None
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, f"make lab exited ({proc.returncode}):\n{log.read_text()[-3000:]}"
            try:
                _api(base, "/api/status")
                break
            except OSError:
                assert time.monotonic() < deadline, log.read_text()[-3000:]
                time.sleep(1)
        printed = log.read_text()
        assert f"http://127.0.0.1:{port}/lab/tree/notebooks?token={TOKEN}" in printed

        specs = _api(base, "/api/kernelspecs")
        assert specs["default"] == "clothingrec" and "clothingrec" in specs["kernelspecs"]
        page = _api(base, "/lab")
        assert '"news": {"disabled": true}' in page, "the news/announcements prompt must be off"

        # a session for a real notebook, no kernel named: the default (clothingrec) must be chosen
        session = _api(base, "/api/sessions", "POST",
                       {"path": "notebooks/00_environment.ipynb", "type": "notebook", "name": "00_environment"})
        assert session["kernel"]["name"] == "clothingrec"
        ws = websocket.create_connection(
            f"ws://127.0.0.1:{port}/api/kernels/{session['kernel']['id']}/channels?token={TOKEN}", timeout=120)
        try:
            nb = nbformat.read(ROOT / "notebooks" / "00_environment.ipynb", as_version=4)
            code = [c.source for c in nb.cells if c.cell_type == "code"]
            outputs = _execute(ws, code[0])  # the parameters cell
            assert not [o for o in outputs if o["type"] == "error"], outputs
            # what papermill would inject: a run folder outside runs/, so `latest` is not touched
            _execute(ws, f"output_dir = {str(tmp_path / 'run')!r}")
            outputs = _execute(ws, code[1])
            errors = [o for o in outputs if o["type"] == "error"]
            assert not errors, errors
            text = "".join(o.get("text", "") for o in outputs if o["type"] == "stream")
            assert "parameters: profile='smoke'" in text, outputs
            where = _execute(ws, "import sys, clothingrec; print(sys.prefix, clothingrec.__file__)")
            printed = "".join(o.get("text", "") for o in where)
            assert str(ROOT / ".venv") in printed and "lib/clothingrec" in printed, printed
        finally:
            ws.close()
    finally:
        if session is not None:
            try:
                _api(base, f"/api/sessions/{session['id']}", "DELETE")
            except OSError:
                pass
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
