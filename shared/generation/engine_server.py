"""The engine process: ``python -m shared.generation.engine_server SPEC_JSON PORT``.

llama.cpp's own HTTP server (through the prebuilt xllamacpp wheel: no source build, CPU
variants chosen at run time) on loopback, with ``slots`` parallel sequences, continuous
batching, and the spec's LoRA adapters loaded at scale 0 so that each request applies its
own. Started and stopped by ``engine.EngineManager``; it runs until it is signalled."""
from __future__ import annotations

import json
import signal
import sys


def params(spec: dict, port: int):
    import xllamacpp as xl

    p = xl.CommonParams()
    p.model.path = spec["model"]
    p.n_parallel = spec["slots"]
    p.n_ctx = spec["context_window"] * spec["slots"]
    p.cont_batching = True
    p.port = port
    p.hostnames = ["127.0.0.1"]  # loopback only: the apps in front of it do the authentication
    p.cpuparams.n_threads = spec["threads"]
    p.cpuparams_batch.n_threads = spec["threads"]
    p.lora_init_without_apply = True
    loras = []
    for path in spec["adapters"]:
        info = xl.CommonAdapterLoraInfo()
        info.path, info.scale = path, 0.0
        loras.append(info)
    p.lora_adapters = loras
    return p


def main() -> None:
    import xllamacpp as xl

    spec, port = json.loads(sys.argv[1]), int(sys.argv[2])
    server = xl.Server(params(spec, port))
    print(f"engine serving {spec['model']} on {server.listening_address}", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    while True:
        signal.pause()


if __name__ == "__main__":
    main()
