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
from dataclasses import asdict, dataclass, field
from pathlib import Path

KAFKA_VERSION = "4.1.1"
CACHE = Path(os.environ.get("CHISO766_CACHE", Path.home() / ".cache" / "chiso766"))
POM = Path(__file__).resolve().parents[1] / "deploy" / "kafka" / "pom.xml"
READY_TIMEOUT = 90.0


class StackError(RuntimeError):
    """Something the operator must fix; the message says what, and how."""


@dataclass
class BrokerInfo:
    node: int
    pid: int
    port: int
    controller_port: int


@dataclass
class StackInfo:
    name: str
    directory: str
    kafka_pid: int  # the first broker's, as in one-broker stacks
    kafka_port: int
    controller_port: int
    redis_pid: int
    redis_port: int
    brokers: list[BrokerInfo] = field(default_factory=list)  # every node (empty in stacks made before them)
    cluster_id: str = ""
    persist_redis: bool = False

    def __post_init__(self) -> None:
        self.brokers = [BrokerInfo(**broker) if isinstance(broker, dict) else broker for broker in self.brokers]
        if not self.brokers:
            self.brokers = [BrokerInfo(1, self.kafka_pid, self.kafka_port, self.controller_port)]

    @property
    def bootstrap(self) -> str:
        return ",".join(f"127.0.0.1:{broker.port}" for broker in self.brokers)

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis_port}/0"

    def broker(self, node: int) -> BrokerInfo:
        for broker in self.brokers:
            if broker.node == node:
                return broker
        raise StackError(f"stack {self.name} has no broker {node} (nodes: {[b.node for b in self.brokers]})")


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


def _node_dir(directory: Path, node: int, brokers: int) -> Path:
    """Where a broker keeps its properties, data and logs: the stack directory itself for a single
    broker (as stacks always had), `broker-N/` in a cluster."""
    return directory if brokers == 1 else directory / f"broker-{node}"


def _broker_properties(data: Path, port: int, controller_port: int, node: int = 1,
                       voters: str | None = None, brokers: int = 1) -> str:
    # Internal topics as replicated as the cluster allows: 3 copies, 2 in sync, in a 3-node stack.
    replication, in_sync = (3, 2) if brokers >= 3 else (brokers, 1)
    settings = {
        "process.roles": "broker,controller",
        "node.id": str(node),
        "controller.quorum.voters": voters or f"{node}@127.0.0.1:{controller_port}",
        "listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{port}",
        "controller.listener.names": "CONTROLLER",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "inter.broker.listener.name": "PLAINTEXT",
        "log.dirs": str(data / "kafka-data"),
        "num.partitions": "4",
        "default.replication.factor": str(replication),
        "min.insync.replicas": str(in_sync),
        "offsets.topic.replication.factor": str(replication),
        "offsets.topic.num.partitions": "8",
        "transaction.state.log.replication.factor": str(replication),
        "transaction.state.log.min.isr": str(in_sync),
        "transaction.state.log.num.partitions": "4",
        "group.initial.rebalance.delay.ms": "0",
        "auto.create.topics.enable": "true",
        "message.max.bytes": str(16 * 1024 * 1024),
        "replica.fetch.max.bytes": str(16 * 1024 * 1024),
        "log.retention.hours": "168",
    }
    return "".join(f"{key}={value}\n" for key, value in settings.items())


def _java() -> str:
    return _require("java", "openjdk-17-jre-headless")


def _new_cluster_id() -> str:
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


def _format_kafka(directory: Path, cluster_id: str, port: int, controller_port: int, node: int = 1,
                  voters: str | None = None, brokers: int = 1) -> None:
    """Write a node's properties and format its storage (kept when formatted already)."""
    directory.mkdir(parents=True, exist_ok=True)
    properties = directory / "server.properties"
    properties.write_text(_broker_properties(directory, port, controller_port, node, voters, brokers))
    (directory / "log4j2.properties").write_text(
        "rootLogger.level=WARN\nrootLogger.appenderRef.file.ref=file\nappender.file.type=File\n"
        f"appender.file.name=file\nappender.file.fileName={directory / 'kafka.log'}\n"
        "appender.file.layout.type=PatternLayout\nappender.file.layout.pattern=[%d] %p %m (%c)%n\n")
    # `--cluster-id=ID`, not `-t ID`: one id in 64 starts with "-" and argparse takes it for an option.
    formatted = subprocess.run(
        [_java(), "-cp", f"{kafka_libs()}/*", "kafka.tools.StorageTool", "format", f"--cluster-id={cluster_id}",
         "-c", str(properties), "--ignore-formatted"], capture_output=True, text=True, check=False)
    if formatted.returncode != 0:
        raise StackError(f"formatting KRaft storage failed: {formatted.stderr[-2000:]}")


def _launch_kafka(directory: Path, heap: str = "768m") -> int:
    log = (directory / "kafka.out").open("ab")
    process = subprocess.Popen(
        [_java(), "-Xms256m", f"-Xmx{heap}", "-XX:+UseG1GC",
         f"-Dlog4j2.configurationFile={directory / 'log4j2.properties'}",
         "-cp", f"{kafka_libs()}/*", "kafka.Kafka", str(directory / "server.properties")],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    return process.pid


def _start_cluster(directory: Path, brokers: int, started: list[int]) -> tuple[str, list[BrokerInfo]]:
    """`brokers` combined broker+controller nodes: one cluster id, one static voter list. Each
    node's pid goes to `started` as soon as it runs, for the caller to stop should this not finish."""
    cluster_id = _new_cluster_id()
    ports = [(node, free_port(), free_port()) for node in range(1, brokers + 1)]
    voters = ",".join(f"{node}@127.0.0.1:{controller}" for node, _, controller in ports)
    for node, port, controller in ports:
        _format_kafka(_node_dir(directory, node, brokers), cluster_id, port, controller, node, voters, brokers)
    heap = "768m" if brokers == 1 else "512m"  # three JVMs on a 2-core, 24 GB machine
    nodes = []
    for node, port, controller in ports:
        nodes.append(BrokerInfo(node, _launch_kafka(_node_dir(directory, node, brokers), heap), port, controller))
        started.append(nodes[-1].pid)
    return cluster_id, nodes


def _start_redis(directory: Path, port: int, persist: bool = False) -> int:
    """redis-server on `port`; with `persist`, an append-only file fsynced before each reply, so that a
    killed and restarted server comes back with every write it acknowledged. (With `everysec`, the
    common production setting, a crash loses up to a second of writes; workers repair that with the
    rebuild they queue on seeing a restarted server, as long as one is running.)"""
    server = _require("redis-server", "redis-server")
    log = (directory / "redis.out").open("ab")
    durability = ["--appendonly", "yes", "--appendfsync", "always"] if persist else ["--appendonly", "no"]
    process = subprocess.Popen(
        [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", *durability,
         "--dir", str(directory), "--logfile", str(directory / "redis.log")],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    return process.pid


@dataclass
class LoneRedis:
    """A redis-server of its own, no Kafka (its data in `directory`, fsynced on every write): for the
    API's load test, which stops it mid-run and starts it again on the same port."""

    directory: Path
    port: int = field(default_factory=lambda: free_port())
    pid: int | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 30.0) -> None:
        import redis

        self.directory.mkdir(parents=True, exist_ok=True)
        self.pid = _start_redis(self.directory, self.port, persist=True)
        deadline = time.monotonic() + timeout
        while True:
            try:
                redis.Redis.from_url(self.url, socket_timeout=1).ping()
                return
            except redis.RedisError:
                if not _alive(self.pid) or time.monotonic() > deadline:
                    raise StackError(f"redis-server did not start; see {self.directory}/redis.log") from None
                time.sleep(0.05)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, sig)
            _stop(self.pid, 10)
            self.pid = None


async def _kafka_answers(bootstrap: str, brokers: int = 1) -> None:
    """The cluster answers a metadata request, with every one of its `brokers` registered."""
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    try:
        await admin.start()
        await admin.list_topics()
        registered = len((await admin.describe_cluster())["brokers"])
        if registered < brokers:
            raise StackError(f"{registered} of {brokers} brokers registered")
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


def _wait_ready(info: StackInfo, timeout: float = READY_TIMEOUT) -> None:
    import logging

    import redis

    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)  # "connect failed" is expected while it boots
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        for broker in info.brokers:
            if not _alive(broker.pid):
                where = _node_dir(Path(info.directory), broker.node, len(info.brokers))
                raise StackError(f"Kafka broker {broker.node} exited; see {where}/kafka.out and kafka.log")
        if not _alive(info.redis_pid):
            raise StackError(f"redis-server exited; see {info.directory}/redis.log")
        try:
            redis.Redis.from_url(info.redis_url, socket_timeout=2).ping()
            asyncio.run(_kafka_answers(info.bootstrap, len(info.brokers)))
            return
        except Exception as error:  # not up yet: connection refused, metadata timeout…
            last_error = error
            time.sleep(0.5)
    raise StackError(f"the stack did not answer within {timeout:.0f}s: {last_error}")


def read_info(name: str) -> StackInfo | None:
    path = stack_dir(name) / "stack.json"
    if not path.exists():
        return None
    return StackInfo(**json.loads(path.read_text()))


def _save(info: StackInfo) -> None:
    (Path(info.directory) / "stack.json").write_text(json.dumps(asdict(info), indent=2))


def up(name: str = "default", brokers: int = 1, persist_redis: bool = False) -> StackInfo:
    """Start Kafka (`brokers` combined KRaft nodes) and Redis, or return the running stack of that name."""
    if brokers not in (1, 3):
        raise StackError("--brokers is 1 or 3 (a 3-node quorum survives one node down; 2 would not)")
    known = read_info(name)
    if known is not None and all(_alive(b.pid) for b in known.brokers) and _alive(known.redis_pid):
        if len(known.brokers) != brokers:
            raise StackError(f"stack {name} runs {len(known.brokers)} broker(s), not {brokers}: "
                             f"`chiso766 stack down --name {name}` first")
        return known
    if known is not None:
        down(name)
    directory = stack_dir(name)
    directory.mkdir(parents=True, exist_ok=True)
    redis_port = free_port()
    redis_pid = _start_redis(directory, redis_port, persist_redis)
    started = [redis_pid]
    try:  # nothing names these processes until the info is saved: an interrupt here must stop them
        cluster_id, nodes = _start_cluster(directory, brokers, started)
    except BaseException:
        _stop_all(started, 10)
        shutil.rmtree(directory, ignore_errors=True)
        raise
    first = nodes[0]
    info = StackInfo(name, str(directory), first.pid, first.port, first.controller_port, redis_pid, redis_port,
                     nodes, cluster_id, persist_redis)
    _save(info)
    try:
        _wait_ready(info, READY_TIMEOUT * (1 if brokers == 1 else 2))
    except BaseException:
        down(name)
        raise
    return info


def _stop(pid: int, grace: float) -> None:
    _stop_all([pid], grace)


def _stop_all(pids: list[int], grace: float) -> None:
    """SIGTERM every process group at once, SIGKILL what is left after `grace` seconds."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(_alive(pid) for pid in pids):
        time.sleep(0.2)
    for pid in pids:
        if _alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)


def down(name: str = "default", keep_data: bool = False) -> bool:
    """Stop the stack's processes and remove its data; False when nothing was running."""
    info = read_info(name)
    directory = stack_dir(name)
    if info is None:
        return False
    _stop_all([broker.pid for broker in info.brokers], 30)
    _stop(info.redis_pid, 10)
    if not keep_data:
        shutil.rmtree(directory, ignore_errors=True)
    return True


def _node(info: StackInfo, node: str) -> int | None:
    """`redis` (None) or `kafka-N` / `N` (broker N)."""
    if node == "redis":
        return None
    try:
        number = int(node.removeprefix("kafka-"))
    except ValueError:
        raise StackError(f"a node is redis or kafka-N, not {node!r}") from None
    return info.broker(number).node


def _info(name: str) -> StackInfo:
    info = read_info(name)
    if info is None:
        raise StackError(f"no stack named {name}: `chiso766 stack up --name {name}` first")
    return info


def kill_node(name: str, node: str, sig: int = signal.SIGKILL) -> int:
    """Send `sig` (default SIGKILL: a crash) to one node of the stack; returns its pid. For fault tests."""
    info = _info(name)
    number = _node(info, node)
    pid = info.redis_pid if number is None else info.broker(number).pid
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, sig)
    if sig in (signal.SIGKILL, signal.SIGTERM):
        deadline = time.monotonic() + 60
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
    return pid


def start_node(name: str, node: str, wipe: bool = False) -> int:
    """Start a stopped node again on its ports, with its data (or, with `wipe`, without it: a broker
    then re-formats and copies its partitions back from the others; Redis comes back empty). Waits
    until the stack answers with every broker registered; returns the new pid."""
    info = _info(name)
    number = _node(info, node)
    directory = Path(info.directory)
    if number is None:
        if _alive(info.redis_pid):
            raise StackError(f"redis of stack {name} is running (pid {info.redis_pid})")
        if wipe:
            for path in [directory / "appendonlydir", directory / "dump.rdb"]:
                shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
        info.redis_pid = _start_redis(directory, info.redis_port, info.persist_redis)
        pid = info.redis_pid
    else:
        broker = info.broker(number)
        if _alive(broker.pid):
            raise StackError(f"broker {number} of stack {name} is running (pid {broker.pid})")
        where = _node_dir(directory, number, len(info.brokers))
        if wipe:
            if not info.cluster_id:
                raise StackError("this stack predates cluster ids in stack.json: cannot re-format a broker")
            shutil.rmtree(where / "kafka-data", ignore_errors=True)
            voters = ",".join(f"{b.node}@127.0.0.1:{b.controller_port}" for b in info.brokers)
            _format_kafka(where, info.cluster_id, broker.port, broker.controller_port, number, voters,
                          len(info.brokers))
        broker.pid = _launch_kafka(where, "768m" if len(info.brokers) == 1 else "512m")
        if number == info.brokers[0].node:
            info.kafka_pid = broker.pid
        pid = broker.pid
    _save(info)
    _wait_ready(info)
    return pid


def status(name: str = "default") -> dict[str, object]:
    info = read_info(name)
    if info is None:
        return {"name": name, "running": False}
    kafka = all(_alive(broker.pid) for broker in info.brokers)
    return {"name": name, "running": kafka and _alive(info.redis_pid),
            "kafka": kafka, "redis": _alive(info.redis_pid),
            "brokers": [{"node": broker.node, "port": broker.port, "pid": broker.pid, "alive": _alive(broker.pid)}
                        for broker in info.brokers],
            "redis_pid": info.redis_pid, "bootstrap": info.bootstrap, "redis_url": info.redis_url,
            "directory": info.directory}
