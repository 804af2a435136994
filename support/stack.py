"""The local stack: a real Apache Kafka broker (KRaft, jars from Maven Central) and a real Redis
server, each on a free loopback port. Used by the demo, the tests and CI — never a mock.

State lives in a stack directory (default `~/.cache/chiso766/stack/NAME`): `stack.json` with the
ports and process ids, the broker's data and logs, Redis's log. The Kafka jars are cached under
`~/.cache/chiso766/kafka-VERSION/libs`, outside the repository, so CI reuses them.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

KAFKA_VERSION = "4.1.1"
CACHE = Path(os.environ.get("CHISO766_CACHE", Path.home() / ".cache" / "chiso766"))
POM = Path(__file__).resolve().parents[1] / "deploy" / "kafka" / "pom.xml"
READY_TIMEOUT = 90.0


class StackError(RuntimeError):
    """Something the operator must fix; the message says what, and how."""


@dataclass
class StackInfo:
    name: str
    directory: str
    kafka_pid: int
    kafka_port: int
    controller_port: int
    redis_pid: int
    redis_port: int

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.kafka_port}"

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis_port}/0"


def stack_dir(name: str) -> Path:
    base = Path(os.environ.get("CHISO766_STACK_DIR", CACHE / "stack"))
    return base / name


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _require(binary: str, package: str) -> str:
    path = shutil.which(binary)
    if path is None:
        raise StackError(f"`{binary}` is not installed: apt-get install -y {package} "
                         "(or run deploy/setup-system.sh)")
    return path


def kafka_libs(version: str = KAFKA_VERSION) -> Path:
    """The broker's jars, fetched once through Maven from deploy/kafka/pom.xml."""
    libs = CACHE / f"kafka-{version}" / "libs"
    if libs.is_dir() and any(libs.glob("kafka_2.13-*.jar")):
        return libs
    mvn = _require("mvn", "maven")
    libs.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        [mvn, "-q", "-B", "-f", str(POM), f"-Dkafka.version={version}", "dependency:copy-dependencies",
         f"-DoutputDirectory={libs}"], capture_output=True, text=True, check=False)
    if done.returncode != 0 or not any(libs.glob("kafka_2.13-*.jar")):
        raise StackError(f"fetching Kafka {version} through Maven failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return libs


def _broker_properties(data: Path, port: int, controller_port: int) -> str:
    settings = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@127.0.0.1:{controller_port}",
        "listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{port}",
        "controller.listener.names": "CONTROLLER",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "inter.broker.listener.name": "PLAINTEXT",
        "log.dirs": str(data / "kafka-data"),
        "num.partitions": "4",
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "8",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "transaction.state.log.num.partitions": "4",
        "group.initial.rebalance.delay.ms": "0",
        "auto.create.topics.enable": "true",
        "message.max.bytes": str(16 * 1024 * 1024),
        "log.retention.hours": "168",
    }
    return "".join(f"{key}={value}\n" for key, value in settings.items())


def _java() -> str:
    return _require("java", "openjdk-17-jre-headless")


def _start_kafka(directory: Path, port: int, controller_port: int) -> int:
    libs = kafka_libs()
    java = _java()
    properties = directory / "server.properties"
    properties.write_text(_broker_properties(directory, port, controller_port))
    (directory / "log4j2.properties").write_text(
        "rootLogger.level=WARN\nrootLogger.appenderRef.file.ref=file\nappender.file.type=File\n"
        f"appender.file.name=file\nappender.file.fileName={directory / 'kafka.log'}\n"
        "appender.file.layout.type=PatternLayout\nappender.file.layout.pattern=[%d] %p %m (%c)%n\n")
    classpath = f"{libs}/*"
    cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    # `--cluster-id=ID`, not `-t ID`: one id in 64 starts with "-" and argparse takes it for an option.
    formatted = subprocess.run(
        [java, "-cp", classpath, "kafka.tools.StorageTool", "format", f"--cluster-id={cluster_id}",
         "-c", str(properties), "--ignore-formatted"], capture_output=True, text=True, check=False)
    if formatted.returncode != 0:
        raise StackError(f"formatting KRaft storage failed: {formatted.stderr[-2000:]}")
    log = (directory / "kafka.out").open("ab")
    process = subprocess.Popen(
        [java, "-Xms256m", "-Xmx768m", "-XX:+UseG1GC", f"-Dlog4j2.configurationFile={directory / 'log4j2.properties'}",
         "-cp", classpath, "kafka.Kafka", str(properties)],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    return process.pid


def _start_redis(directory: Path, port: int) -> int:
    server = _require("redis-server", "redis-server")
    log = (directory / "redis.out").open("ab")
    process = subprocess.Popen(
        [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(directory), "--logfile", str(directory / "redis.log")],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    return process.pid


async def _kafka_answers(bootstrap: str) -> None:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    try:
        await admin.start()
        await admin.list_topics()
    finally:
        await admin.close()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie child of this process is not alive
        waited, _ = os.waitpid(pid, os.WNOHANG)
        return waited == 0
    except ChildProcessError:
        return True


def _wait_ready(info: StackInfo) -> None:
    import logging

    import redis

    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)  # "connect failed" is expected while it boots
    deadline = time.monotonic() + READY_TIMEOUT
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        if not _alive(info.kafka_pid):
            raise StackError(f"the Kafka broker exited; see {info.directory}/kafka.out and kafka.log")
        if not _alive(info.redis_pid):
            raise StackError(f"redis-server exited; see {info.directory}/redis.log")
        try:
            redis.Redis.from_url(info.redis_url, socket_timeout=2).ping()
            asyncio.run(_kafka_answers(info.bootstrap))
            return
        except Exception as error:  # not up yet: connection refused, metadata timeout…
            last_error = error
            time.sleep(0.5)
    raise StackError(f"the stack did not answer within {READY_TIMEOUT:.0f}s: {last_error}")


def read_info(name: str) -> StackInfo | None:
    path = stack_dir(name) / "stack.json"
    if not path.exists():
        return None
    return StackInfo(**json.loads(path.read_text()))


def up(name: str = "default") -> StackInfo:
    """Start Kafka and Redis (or return the running stack of that name)."""
    known = read_info(name)
    if known is not None and _alive(known.kafka_pid) and _alive(known.redis_pid):
        return known
    if known is not None:
        down(name)
    directory = stack_dir(name)
    directory.mkdir(parents=True, exist_ok=True)
    kafka_port, controller_port, redis_port = free_port(), free_port(), free_port()
    redis_pid = _start_redis(directory, redis_port)
    kafka_pid = _start_kafka(directory, kafka_port, controller_port)
    info = StackInfo(name, str(directory), kafka_pid, kafka_port, controller_port, redis_pid, redis_port)
    (directory / "stack.json").write_text(json.dumps(asdict(info), indent=2))
    try:
        _wait_ready(info)
    except BaseException:
        down(name)
        raise
    return info


def _stop(pid: int, grace: float) -> None:
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.2)
    if _alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)


def down(name: str = "default", keep_data: bool = False) -> bool:
    """Stop the stack's processes and remove its data; False when nothing was running."""
    info = read_info(name)
    directory = stack_dir(name)
    if info is None:
        return False
    _stop(info.kafka_pid, 30)
    _stop(info.redis_pid, 10)
    if not keep_data:
        shutil.rmtree(directory, ignore_errors=True)
    return True


def status(name: str = "default") -> dict[str, object]:
    info = read_info(name)
    if info is None:
        return {"name": name, "running": False}
    return {"name": name, "running": _alive(info.kafka_pid) and _alive(info.redis_pid),
            "kafka": _alive(info.kafka_pid), "redis": _alive(info.redis_pid),
            "bootstrap": info.bootstrap, "redis_url": info.redis_url, "directory": info.directory}
