"""Run one model as a SageMaker-style container: what ``mlpilot serve-model`` does."""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import threading
import warnings
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from mlpilot.errors import ConfigError
from mlpilot.serving._codec import ServingSettings
from mlpilot.serving._source import resolve_model

__all__ = ["PARENT_PID_VARIABLE", "load_served_model", "parse_env_options", "serve"]

DEFAULT_PORT = 8080
#: Set by the endpoint runtime: the instance exits when this process is gone, so a killed
#: service leaves no orphan containers behind.
PARENT_PID_VARIABLE = "MLPILOT_PARENT_PID"


def parse_env_options(options: list[str] | None) -> dict[str, str]:
    """``["K=V", ...]`` → ``{"K": "V"}``; a malformed item is a ConfigError."""
    out: dict[str, str] = {}
    for item in options or []:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise ConfigError(f"--env expects NAME=VALUE, got {item!r}")
        out[name.strip()] = value
    return out


def load_served_model(
    source: str,
    *,
    cache_dir: str | Path | None = None,
    strict_versions: bool = False,
    warn: Callable[[str], None] | None = None,
) -> Any:
    """Resolve ``source`` (folder, archive or URI) and load the model it holds (an
    :class:`~mlpilot.package.InferenceModel` or a :class:`~mlpilot.package.SeriesModel`);
    version warnings go to ``warn``."""
    from mlpilot.package import ModelVersionWarning, load_model

    local = resolve_model(source, cache_dir=cache_dir)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ModelVersionWarning)
        model = load_model(local, strict=strict_versions)
    for warning in caught:
        if issubclass(warning.category, ModelVersionWarning) and warn:
            warn(str(warning.message))
    return model


def _bind(host: str, port: int) -> socket.socket:
    try:
        family, kind, proto, _, _ = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as exc:
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    # proto must say TCP: asyncio disables Nagle's algorithm only on sockets that do, and
    # without that every response waits ~40 ms for a delayed ACK.
    sock = socket.socket(family, kind, proto or socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.set_inheritable(True)
    return sock


def _write_port_file(path: Path, port: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(path.name + ".tmp")
    staging.write_text(f"{port}\n")
    os.replace(staging, path)


def _watch_parent(server: Any, parent: int) -> None:
    def watch() -> None:
        while not server.should_exit:
            if os.getppid() != parent:
                server.should_exit = True
                return
            threading.Event().wait(1.0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _server_class() -> Any:
    import uvicorn

    class Server(uvicorn.Server):
        """uvicorn's server, ending normally (exit code 0, cleanup run) after SIGTERM/SIGINT
        instead of re-raising the signal once shut down."""

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            with super().capture_signals():
                yield
                getattr(self, "_captured_signals", []).clear()

    return Server


def serve(
    source: str,
    *,
    host: str = "127.0.0.1",
    port: int | None = None,
    environment: Mapping[str, str] | None = None,
    port_file: Path | None = None,
    cache_dir: str | Path | None = None,
    strict_versions: bool = False,
    log_level: str = "info",
    access_log: bool = False,
    echo: Callable[[str], None] | None = None,
) -> None:
    """Load the model, bind ``host:port`` and serve until SIGTERM/SIGINT.

    ``environment`` (default: the process environment) holds the container settings, and
    ``SAGEMAKER_BIND_TO_PORT`` when ``port`` is None (8080 otherwise). Port 0 picks a free one;
    ``port_file`` receives the bound port once the socket listens (removed on exit).
    """
    import uvicorn

    from mlpilot.serving._app import create_app

    env = dict(os.environ if environment is None else environment)
    say = echo or (lambda line: print(line, file=sys.stderr, flush=True))
    settings = ServingSettings.from_environment(env)
    if port is None:
        text = env.get("SAGEMAKER_BIND_TO_PORT") or str(DEFAULT_PORT)
        if not text.isdigit() or not 0 <= int(text) < 65536:
            raise ConfigError(f"SAGEMAKER_BIND_TO_PORT={text!r} is not a port number")
        port = int(text)
    if not 0 <= port < 65536:
        raise ConfigError(f"--port {port} is not a port number (0-65535)")
    model = load_served_model(
        source,
        cache_dir=cache_dir,
        strict_versions=strict_versions,
        warn=lambda message: say(f"Warning: {message}"),
    )
    app = create_app(model, settings)
    sock = _bind(host, port)
    bound = sock.getsockname()[1]
    sock.listen(2048)  # connections queue from here; the port file can be read at once
    config = uvicorn.Config(
        app,
        log_level=log_level,
        access_log=access_log,
        lifespan="off",
        server_header=False,
        timeout_graceful_shutdown=30,
    )
    server = _server_class()(config)
    parent = env.get(PARENT_PID_VARIABLE, "")
    if parent.isdigit():
        _watch_parent(server, int(parent))
    name = model.info.get("candidate", {}).get("CandidateName") or Path(str(source)).name
    shown = f"[{host}]" if ":" in host else host
    say(
        f"Serving {name} ({model.problem_type}) on http://{shown}:{bound} "
        "(POST /invocations, GET /ping)"
    )
    if port_file is not None:
        _write_port_file(Path(port_file), bound)
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
        if port_file is not None:
            Path(port_file).unlink(missing_ok=True)
