"""The guarded server's cost: bare model endpoint vs the full defence stack, layer by layer.

Why this exists: a defence nobody can afford to switch on protects nothing. The server's
targets are that the full layer stack adds at most 25 % to the p50 latency of the bare model
endpoint and keeps at least 0.7× its throughput, and that the detector catches at least 90 %
of PGD inputs (L∞, ε = 0.3) at a 5 % false-positive rate on the undefended digits model.

What it does:

1. trains the digits small_cnn (the tests' recipe, ~2 s), saves it as an artifact, fits the
   detector in-process and measures its clean FPR and PGD catch rate on the test split;
2. starts one real uvicorn server on loopback hosting every configuration under its own
   path prefix — ``bare`` (no layers), ``full`` (the default stack: API key, body size, rate
   limit, validation, detection, calibration with abstention, review queue on SQLite), and
   ``bare`` plus each single layer. One process for all, because separate server processes
   on a loaded machine differ by more than the layers do;
3. drives it with an async httpx client, interleaved: latency requests go round-robin over
   the configurations one at a time (p50, p99 per configuration and round), then each
   configuration gets a throughput phase (fixed concurrency for a fixed time) in a rotated
   order; medians over rounds are reported with ratios against ``bare``. The server runs
   torch on one thread (``torch.set_num_threads(1)``).

Single-sample requests of clean digits test inputs (raw 0..16 scale). Flagged and abstained
inputs are written to the review queue (SQLite) by the servers that have those layers, as in
production. The ``ensemble`` layer is a no-op for a single model and is not timed.

Usage::

    python bench/serve.py             # ~3 min on 2 CPU cores
    python bench/serve.py --quick     # ~1 min smoke run

Writes ``bench/results/serve.json`` and ``bench/results/serve.md`` and prints the table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import torch

from bastion import attacks, models
from bastion.config import DataConfig
from bastion.config.serve import ServeConfig, default_layers
from bastion.data import Dataset, load_dataset
from bastion.defend.stack import Guard
from bastion.registry import Registry
from bastion.registry.keys import ApiKeyStore
from bastion.serve.model import CalibrationData
from bastion.serve.run import ServeSpec

HERE = Path(__file__).resolve().parent
TARGET_FPR = 0.05
SINGLE_LAYERS = ("api_key", "body_size", "rate_limit", "validate", "squeeze", "detect", "calibrate")


def train(dataset: Dataset) -> torch.nn.Module:
    """The recipe of the tests' ``digits_cnn`` fixture (Adam, one-cycle, 12 epochs)."""
    torch.manual_seed(0)
    model = models.build("small_cnn", input_shape=dataset.input_shape, num_classes=10)
    x, y = dataset.train.tensors()
    epochs, batch_size = 12, 64
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    steps = epochs * -(-len(x) // batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=1e-2, total_steps=steps)
    generator = torch.Generator().manual_seed(0)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=generator)
        for batch in order.split(batch_size):  # type: ignore[no-untyped-call]
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(x[batch]), y[batch])
            loss.backward()  # type: ignore[no-untyped-call]
            optimizer.step()
            schedule.step()
    return model.eval()


def detection(dataset: Dataset, model: torch.nn.Module) -> dict[str, Any]:
    config = ServeConfig(layers=[{"name": "detect"}], detector_target_fpr=TARGET_FPR)
    x_train, y_train = dataset.train.tensors()
    x_val, _ = dataset.val.tensors()
    x_test, y_test = dataset.test.tensors()
    guard = Guard.from_config(config, members=[model]).fit(
        x_train=x_train, y_train=y_train, x_val=x_val, num_classes=10, target_fpr=TARGET_FPR
    )
    pgd: Any = attacks.create("pgd", eps=0.3, norm="linf", steps=40, seed=0)
    x_adv = pgd(model, x_test, y_test)
    with torch.no_grad():
        clean_acc = float((model(x_test).argmax(1) == y_test).double().mean())
        fooled = (model(x_adv).argmax(1) != y_test).numpy()
    clean = np.array([v.flagged for v in guard(x_test)])
    adv = np.array([v.flagged for v in guard(x_adv)])
    return {
        "attack": "pgd linf eps=0.3 steps=40 (bastion.attacks)",
        "target_fpr": TARGET_FPR,
        "clean_accuracy": clean_acc,
        "attack_success_rate": float(fooled.mean()),
        "clean_fpr_test": float(clean.mean()),
        "catch_rate": float(adv[fooled].mean()),
        "n_test": len(y_test),
        "methods": list(guard.detector.methods) if guard.detector else [],
    }


def configurations() -> dict[str, ServeConfig]:
    common: dict[str, Any] = {"rate_limit": "1000000/minute"}
    layers: dict[str, Any] = {layer.name: layer for layer in default_layers()}
    configs = {
        "bare": ServeConfig(layers=[], require_api_key=False, **common),
        "full": ServeConfig(**common),
    }
    for name in SINGLE_LAYERS:
        layer = layers[name].model_copy(update={"enabled": True})
        configs[f"+{name}"] = ServeConfig(layers=[layer], **common)
    return configs


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve_all(specs_file: Path, port: int) -> None:
    """Server mode: one uvicorn process, every configuration mounted under ``/<name>``.

    One process for all contenders, so they share the interpreter, the event loop, the
    thread pool and the CPU placement; separate processes differ by more than the layers do
    on a loaded machine (identical bare servers measured 4.4 to 8.3 ms p50 side by side).
    """
    import uvicorn
    from starlette.applications import Starlette
    from starlette.routing import Mount

    from bastion.serve.logs import configure_logging
    from bastion.serve.run import build_app

    torch.set_num_threads(1)
    configure_logging()
    specs = json.loads(specs_file.read_text())
    routes = [
        Mount(f"/{name}", app=build_app(ServeSpec.model_validate(spec)))
        for name, spec in specs.items()
    ]
    uvicorn.run(
        Starlette(routes=routes), host="127.0.0.1", port=port, log_level="warning", access_log=False
    )


def start(specs_file: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, __file__, "--serve-all", str(specs_file), "--port", str(port)]
    with log.open("wb") as sink:
        return subprocess.Popen(command, env=env, stdout=sink, stderr=subprocess.STDOUT)


def wait_ready(base: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server {base} exited:\n{log.read_text()}")
        try:
            if httpx.get(f"{base}/bare/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    raise SystemExit(f"server {base} not ready:\n{log.read_text()}")


async def latency(
    http: httpx.AsyncClient, names: list[str], bodies: list[bytes], n: int, offset: int
) -> dict[str, list[float]]:
    """``n`` requests per configuration, one at a time, round-robin across configurations."""
    out: dict[str, list[float]] = {name: [] for name in names}
    for i in range(n):
        body = bodies[(offset + i) % len(bodies)]
        for name in names[i % len(names) :] + names[: i % len(names)]:
            started = time.perf_counter()
            response = await http.post(f"/{name}/v1/predict", content=body)
            out[name].append(time.perf_counter() - started)
            if response.status_code != 200:
                raise SystemExit(f"unexpected {response.status_code}: {response.text}")
    return out


async def throughput(
    http: httpx.AsyncClient, name: str, bodies: list[bytes], concurrency: int, seconds: float
) -> float:
    done = 0
    stop = time.perf_counter() + seconds

    async def worker(k: int) -> None:
        nonlocal done
        i = k
        while time.perf_counter() < stop:
            response = await http.post(f"/{name}/v1/predict", content=bodies[i % len(bodies)])
            if response.status_code != 200:
                raise SystemExit(f"unexpected {response.status_code}: {response.text}")
            done += 1
            i += concurrency

    started = time.perf_counter()
    await asyncio.gather(*[worker(k) for k in range(concurrency)])
    return done / (time.perf_counter() - started)


async def drive(
    base: str, names: list[str], token: str, bodies: list[bytes], args: argparse.Namespace
) -> dict[str, dict[str, list[float]]]:
    headers = {"x-api-key": token, "content-type": "application/json"}
    limits = httpx.Limits(
        max_connections=args.concurrency, max_keepalive_connections=args.concurrency
    )
    results: dict[str, dict[str, list[float]]] = {
        n: {"p50": [], "p99": [], "rps": []} for n in names
    }
    async with httpx.AsyncClient(base_url=base, headers=headers, limits=limits, timeout=30) as http:
        await latency(http, names, bodies, 20, 0)  # warm-up: connections, first calls
        for round_ in range(args.rounds):
            lat = await latency(http, names, bodies, args.requests, round_ * 97)
            for name in names:
                results[name]["p50"].append(float(np.percentile(lat[name], 50)) * 1000)
                results[name]["p99"].append(float(np.percentile(lat[name], 99)) * 1000)
            order = names[round_ % len(names) :] + names[: round_ % len(names)]
            for name in order:
                rps = await throughput(http, name, bodies, args.concurrency, args.seconds)
                results[name]["rps"].append(rps)
            print(f"round {round_ + 1}/{args.rounds} done", file=sys.stderr)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=200, help="latency requests per round")
    parser.add_argument("--seconds", type=float, default=3.0, help="throughput phase length")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "serve.json")
    parser.add_argument("--serve-all", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_all is not None:
        serve_all(args.serve_all, args.port)
        return
    if args.quick:
        args.rounds, args.requests, args.seconds = 2, 60, 1.0
    torch.set_num_threads(1)
    load_before = os.getloadavg()

    dataset = load_dataset(DataConfig(name="digits", seed=0))
    model = train(dataset)
    detect = detection(dataset, model)
    print(
        f"detector: catch {detect['catch_rate']:.3f} at clean test FPR "
        f"{detect['clean_fpr_test']:.3f} (target {TARGET_FPR})",
        file=sys.stderr,
    )

    with tempfile.TemporaryDirectory(prefix="bastion-bench-serve-") as folder:
        root = Path(folder)
        artifact = models.save(
            model,
            root / "model",
            architecture="small_cnn",
            arguments={},
            input_shape=dataset.input_shape,
            classes=dataset.classes,
            input_scaling=dataset.input_scaling,
        )
        calibration = CalibrationData(
            x_train=dataset.train.x, y_train=dataset.train.y, x_val=dataset.val.x
        ).save(root / "calibration.npz")
        url = f"sqlite:///{root / 'registry.db'}"
        with Registry.open(url=url, artifacts=root / "artifacts") as registry:
            token = ApiKeyStore(registry.database).create("bench").token
        configs = configurations()
        specs = {
            name: ServeSpec(
                model_dir=str(artifact),
                serve=config,
                registry_url=url,
                calibration_path=str(calibration),
            ).model_dump(mode="json")
            for name, config in configs.items()
        }
        specs_file = root / "specs.json"
        specs_file.write_text(json.dumps(specs))
        port = free_port()
        log = root / "server.log"
        process = start(specs_file, port, log)
        base = f"http://127.0.0.1:{port}"
        try:
            wait_ready(base, process, log)
            scale = dataset.input_scaling["scale"]
            bodies = [json.dumps({"input": (x * scale).tolist()}).encode() for x in dataset.test.x]
            raw = asyncio.run(drive(base, list(configs), token, bodies, args))
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()

    summary: dict[str, dict[str, Any]] = {
        name: {
            "p50_ms": statistics.median(r["p50"]),
            "p99_ms": statistics.median(r["p99"]),
            "throughput_rps": statistics.median(r["rps"]),
            "rounds": r,
        }
        for name, r in raw.items()
    }
    bare, full = summary["bare"], summary["full"]
    ratios = {
        "full_p50_over_bare": full["p50_ms"] / bare["p50_ms"],
        "full_p99_over_bare": full["p99_ms"] / bare["p99_ms"],
        "full_throughput_over_bare": full["throughput_rps"] / bare["throughput_rps"],
    }
    layer_cost = {
        name.strip("+"): {
            "p50_added_ms": summary[name]["p50_ms"] - bare["p50_ms"],
            "p50_ratio": summary[name]["p50_ms"] / bare["p50_ms"],
            "throughput_ratio": summary[name]["throughput_rps"] / bare["throughput_rps"],
        }
        for name in summary
        if name.startswith("+")
    }
    result = {
        "meta": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "cpu_count": os.cpu_count(),
            "server_torch_threads": 1,
            "client": f"httpx {httpx.__version__} asyncio, one process",
            "load_average_before": load_before,
            "load_average_after": os.getloadavg(),
            "rounds": args.rounds,
            "latency_requests_per_round": args.requests,
            "throughput_seconds_per_round": args.seconds,
            "concurrency": args.concurrency,
            "request": "one digits sample (1x8x8, raw 0..16) as nested JSON lists",
        },
        "detection": detect,
        "configs": summary,
        "ratios": ratios,
        "layer_cost": layer_cost,
        "targets": {
            "p50_at_most_1.25x": ratios["full_p50_over_bare"] <= 1.25,
            "throughput_at_least_0.7x": ratios["full_throughput_over_bare"] >= 0.7,
            "catch_rate_at_least_0.9": detect["catch_rate"] >= 0.9,
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    table = markdown(result)
    args.out.with_suffix(".md").write_text(table)
    print(table)


def markdown(result: dict[str, Any]) -> str:
    meta, detect = result["meta"], result["detection"]
    lines = [
        "| configuration | p50 ms | p99 ms | req/s | p50 vs bare | req/s vs bare |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    bare = result["configs"]["bare"]
    for name, row in result["configs"].items():
        lines.append(
            f"| {name} | {row['p50_ms']:.2f} | {row['p99_ms']:.2f} | "
            f"{row['throughput_rps']:.0f} | {row['p50_ms'] / bare['p50_ms']:.2f}× | "
            f"{row['throughput_rps'] / bare['throughput_rps']:.2f}× |"
        )
    lines += [
        "",
        f"Medians of {meta['rounds']} interleaved rounds; latency at concurrency 1 "
        f"({meta['latency_requests_per_round']} requests/round), throughput at concurrency "
        f"{meta['concurrency']} ({meta['throughput_seconds_per_round']} s/round); servers on "
        f"1 torch thread each, {meta['cpu_count']} CPUs, load average before "
        f"{meta['load_average_before'][0]:.1f}.",
        "",
        f"Detection ({', '.join(detect['methods'])}): PGD L∞ ε=0.3 catch rate "
        f"{detect['catch_rate']:.1%} at clean test FPR {detect['clean_fpr_test']:.1%} "
        f"(threshold set for {detect['target_fpr']:.0%} on the 180 validation rows).",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
