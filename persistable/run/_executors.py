"""Executors of a run: the worker-side node function and the backends that submit it.

Every backend runs the same module-level :func:`execute_batch` on a list of (pickled,
for processes and Dask) persistables: each goes through :func:`execute_node`, which
generates it under the store's per-key lock, writes straight to the store and returns
a small :class:`NodeOutcome` (status and timings, never the payload). A batch holds
one node unless the nodes are short: then the scheduler sends several at once, so a
task's round trip (pickling, pipes, the Dask scheduler) is paid once per batch.
Backends only differ in how they submit and wait: ``concurrent.futures`` executors
(serial, threads, processes, or one the user built) and Dask distributed (a started
``LocalCluster``, a ``Client`` or a scheduler address).
"""

from __future__ import annotations

import concurrent.futures
import contextvars
import dataclasses
import importlib
import logging
import os
import pickle
import queue
import sys
import time
import weakref
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, cast

from persistable import _lineage_feed
from persistable._forkserver import preload_in_forkserver
from persistable._ids import hostname, random_hex
from persistable._keys import current_epoch, resolved_keys
from persistable._persistable import Persistable, key_cache
from persistable.exceptions import KeyMismatchError, MissingDependencyError
from persistable.run._shipment import Shipment

__all__ = [
    "Backend",
    "DaskBackend",
    "FuturesBackend",
    "NodeOutcome",
    "SerialExecutor",
    "check_executor",
    "dumps_node",
    "execute_batch",
    "execute_node",
    "execute_task",
    "failed_outcome",
    "make_backend",
]

logger = logging.getLogger(__name__)

#: The executor names ``persistable.run`` accepts (anything else with ``:`` is a scheduler address).
EXECUTOR_NAMES = ("serial", "threads", "processes", "dask")
#: Seconds of work a task carries on a process pool when nodes are short (a task's round
#: trip, pickles and two pipes, costs about a millisecond: 0.05 s sent 20 ms nodes alone).
POOL_BATCH_SECONDS = 0.1
#: The same on Dask, where a task's round trip through the scheduler costs several ms of
#: this process's CPU (with a LocalCluster the scheduler runs here, beside the workers):
#: at 0.2 s, 2,000 no-op nodes cost this process as much CPU as a serial run of them.
DASK_BATCH_SECONDS = 0.5


def _format_exc() -> str:
    import traceback  # only needed when a node fails

    return traceback.format_exc()


def _format_exception(*args: Any) -> list[str]:
    import traceback

    return traceback.format_exception(*args)


@dataclass(frozen=True)
class NodeOutcome:
    """What a worker sends back for one node: status and timings, no payload."""

    payload_name: str
    key: str
    status: str  # "generated", "loaded" or "failed"
    duration_s: float
    worker: str
    error: str | None = None
    traceback: str | None = None
    #: (payload name, key, params.json) of what the node committed to its store, for the
    #: caller to add to the store's lineage index (see :mod:`persistable._lineage_feed`).
    lineages: tuple[tuple[str, str, bytes], ...] = ()


def execute_node(
    persistable: Persistable[Any, Any], expected_key: str | None = None
) -> NodeOutcome:
    """Generate one node in this worker unless its artifact exists; never raises for its errors.

    It takes the same per-key lock and checks as ``load_generate`` (without loading the
    payload): if another worker or machine commits the key meanwhile, this one reports
    "loaded".
    The payload is dropped from memory afterwards; dependents load it from the store.
    """
    started = time.perf_counter()
    worker = f"{hostname()}:{os.getpid()}"
    payload_name = persistable.payload_name
    key = ""
    had_payload = persistable.has_payload
    try:
        with key_cache():  # generate() itself runs without it (see Persistable)
            key = persistable.persist_hash  # upstream first, each once, no recursion
            if expected_key is not None and key != expected_key:
                raise KeyMismatchError(
                    f"{payload_name} has key {key} in worker {worker} but {expected_key} where "
                    "the run was resolved; the worker's environment (package versions, code) "
                    "differs, install the same versions on every worker."
                )
            logger.debug("Node %s key %s in %s", payload_name, key, worker)
            with _lineage_feed.capture() as captured:
                status = persistable.ensure_committed()
        return NodeOutcome(
            payload_name,
            key,
            status,
            time.perf_counter() - started,
            worker,
            lineages=_sent_back(persistable, captured),
        )
    except Exception as error:
        return NodeOutcome(
            payload_name,
            key,
            "failed",
            time.perf_counter() - started,
            worker,
            error=f"{type(error).__name__}: {error}",
            traceback=_format_exc(),
        )
    finally:
        if not had_payload:
            persistable.reset_payload()


def _sent_back(
    persistable: Persistable[Any, Any], captured: list[_lineage_feed.Record]
) -> tuple[tuple[str, str, bytes], ...]:
    """What the node committed to its own store, to go back with its outcome.

    Commits to other stores (rare: user code generating elsewhere) are buffered here.
    """
    own, other = [], []
    for item in captured:
        store = item[0]
        if store is persistable.store or store.url == persistable.store.url:
            own.append(item[1:])
        else:
            other.append(item)
    if other:
        _lineage_feed.add(other)
    return tuple(own)


def dumps_node(persistable: object) -> bytes:
    """Pickle a node, or a list of nodes, in the submitting process (cloudpickle when present).

    Workers then unpickle inside :func:`execute_task` / :func:`execute_batch`, so a node
    that cannot be unpickled there fails alone, with its traceback, instead of breaking
    the pool. One pickle of a whole batch stores what its nodes share (store, FileIO,
    upstream) once.
    """
    try:
        cloudpickle: Any = importlib.import_module("cloudpickle")
    except ImportError:
        return pickle.dumps(persistable, protocol=pickle.HIGHEST_PROTOCOL)
    data: bytes = cloudpickle.dumps(persistable, protocol=pickle.HIGHEST_PROTOCOL)
    return data


def execute_task(task: Persistable[Any, Any] | bytes, payload_name: str, key: str) -> NodeOutcome:
    """Worker entry point: unpickle the node if it comes as bytes, then :func:`execute_node`."""
    if isinstance(task, bytes):
        try:
            # The bytes were pickled by this run's own submitting process.
            task = pickle.loads(task)  # noqa: S301
        except Exception as error:
            outcome = failed_outcome(payload_name, key, error)
            return dataclasses.replace(outcome, worker=f"{hostname()}:{os.getpid()}")
    return execute_node(cast(Persistable[Any, Any], task), key)


def execute_batch(
    task: list[Persistable[Any, Any]] | Shipment | bytes, identities: list[tuple[str, str]]
) -> list[NodeOutcome] | None:
    """Worker entry point for a batch: :func:`execute_node` on each node, in order.

    ``identities`` holds each node's ``(payload_name, key)`` as resolved by the run.
    Returns None when a pickled batch of several nodes cannot be unpickled here: the
    run then sends its nodes one by one, so that only the node at fault fails.
    """
    if isinstance(task, bytes):
        try:
            # The bytes were pickled by this run's own submitting process.
            task = pickle.loads(task)  # noqa: S301
        except Exception as error:
            if len(identities) > 1:
                return None
            outcome = failed_outcome(*identities[0], error)
            return [dataclasses.replace(outcome, worker=f"{hostname()}:{os.getpid()}")]
    if isinstance(task, Shipment):
        nodes, memo = task.unpack()
        # The upstream keys the run resolved, trusted while nothing is assigned.
        with resolved_keys(memo, current_epoch()):
            return _execute_all(nodes, identities)
    return _execute_all(cast(list[Persistable[Any, Any]], task), identities)


def _execute_all(
    nodes: list[Persistable[Any, Any]], identities: list[tuple[str, str]]
) -> list[NodeOutcome]:
    return [execute_node(node, key) for node, (_, key) in zip(nodes, identities, strict=True)]


def failed_outcome(payload_name: str, key: str, error: BaseException) -> NodeOutcome:
    """A failed outcome for an error outside the node's own code (pickling, a lost worker)."""
    text = "".join(_format_exception(type(error), error, error.__traceback__))
    return NodeOutcome(
        payload_name,
        key,
        "failed",
        0.0,
        "",
        error=f"{type(error).__name__}: {error}",
        traceback=text,
    )


class SerialExecutor(concurrent.futures.Executor):
    """Runs each submitted call at once in the calling thread (a ``KeyboardInterrupt`` propagates)."""

    def submit(
        self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any
    ) -> concurrent.futures.Future[Any]:
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        future.set_running_or_notify_cancel()
        try:
            future.set_result(fn(*args, **kwargs))
        except Exception as error:
            future.set_exception(error)
        return future


class Backend(ABC):
    """How a run submits nodes and waits for them."""

    #: Shown in the report, e.g. ``"processes (2 workers)"``.
    description: str = ""
    #: How many nodes may be submitted and not yet done.
    capacity: int = 1
    #: Whether nodes are pickled to other processes (payloads are stripped before).
    crosses_processes: bool = False
    #: Short nodes are sent together, about this many seconds of work per task (0: never).
    batch_seconds: float = 0.0

    @abstractmethod
    def submit(
        self, task: list[Persistable[Any, Any]] | bytes, identities: list[tuple[str, str]]
    ) -> Any:
        """Start :func:`execute_batch` on nodes (pickled when crossing processes); returns a future."""

    @abstractmethod
    def wait_any(self, futures: Iterable[Any]) -> list[Any]:
        """Block until at least one of ``futures`` is done; return the done ones."""

    @abstractmethod
    def result(self, future: Any) -> list[NodeOutcome] | None:
        """The outcomes of a done future, as :func:`execute_batch` returned them (raises what
        the executor raised)."""

    @abstractmethod
    def cancel(self, futures: Iterable[Any]) -> list[Any]:
        """Cancel the futures that have not started; return the cancelled ones."""

    @abstractmethod
    def wait_all(self, futures: Iterable[Any]) -> None:
        """Block until every future is done."""

    @abstractmethod
    def close(self) -> None:
        """Release what the backend started (pools, clusters)."""


class FuturesBackend(Backend):
    """A ``concurrent.futures.Executor``: serial, threads, processes or the user's own."""

    def __init__(
        self,
        executor: concurrent.futures.Executor,
        *,
        description: str,
        capacity: int,
        crosses_processes: bool,
        owned: bool,
    ) -> None:
        self.executor = executor
        self.description = description
        self.capacity = capacity
        self.crosses_processes = crosses_processes
        self.batch_seconds = POOL_BATCH_SECONDS if crosses_processes else 0.0
        self._owned = owned

    def submit(
        self, task: list[Persistable[Any, Any]] | bytes, identities: list[tuple[str, str]]
    ) -> Any:
        if isinstance(self.executor, concurrent.futures.ThreadPoolExecutor):
            # A pool thread starts with an empty context: give it the run's resolved keys.
            context = contextvars.copy_context()
            return self.executor.submit(context.run, execute_batch, task, identities)
        return self.executor.submit(execute_batch, task, identities)

    def wait_any(self, futures: Iterable[Any]) -> list[Any]:
        done, _ = concurrent.futures.wait(
            list(futures), return_when=concurrent.futures.FIRST_COMPLETED
        )
        return list(done)

    def result(self, future: Any) -> list[NodeOutcome] | None:
        outcomes: list[NodeOutcome] | None = future.result()
        return outcomes

    def cancel(self, futures: Iterable[Any]) -> list[Any]:
        return [future for future in futures if future.cancel()]

    def wait_all(self, futures: Iterable[Any]) -> None:
        concurrent.futures.wait(list(futures))

    def close(self) -> None:
        if self._owned:
            self.executor.shutdown(wait=True, cancel_futures=True)


def next_completions(completions: Any) -> list[tuple[Any, Any]]:
    """Block until a task that ``completions`` (an ``as_completed``) tracks is done; its (future, result) and any others.

    It blocks on ``as_completed``'s own queue of completions: its ``next_batch`` checks
    that queue, then waits on a condition with a 0.1 s timeout, and a completion that
    lands between the two waits out the timeout (seen in about one run in three on
    a run of 200 short nodes). A blocking ``get`` cannot miss the put, and Ctrl-C
    still interrupts it.
    """
    waiting = completions.queue
    batch = [waiting.get()]
    while True:
        try:
            batch.append(waiting.get_nowait())
        except queue.Empty:
            return batch


class DaskBackend(Backend):
    """A ``distributed.Client``: nodes are tasks, completions come from ``as_completed``."""

    crosses_processes = True

    def __init__(
        self,
        client: Any,
        *,
        cluster: Any = None,
        owned_client: bool = False,
        threads: int | None = None,
    ) -> None:
        self._distributed = _import_distributed()
        self.client = client
        self._cluster = cluster
        self._owned_client = owned_client
        # Results travel back in the client's event loop as tasks finish: taking one
        # costs this thread no round trip to its worker (errors are raised by result()).
        self._as_completed = self._distributed.as_completed(with_results=True, raise_errors=False)
        self._done: dict[Any, Any] = {}
        if threads is None:  # the user's cluster (the run's own: processes, known threads)
            nthreads = client.nthreads()
            threads = sum(nthreads.values()) or 1
            self.crosses_processes = _workers_elsewhere(client, frozenset(nthreads))
        # Two tasks per thread keep every thread busy while results travel back; the
        # rest waits here, where it can still be batched (a task's round trip through
        # the scheduler costs several milliseconds).
        self.capacity = 2 * threads
        self.batch_seconds = DASK_BATCH_SECONDS
        where = "LocalCluster" if cluster is not None else str(client.scheduler.address)
        self.description = f"dask ({where}, {threads} threads)"

    def submit(
        self, task: list[Persistable[Any, Any]] | bytes, identities: list[tuple[str, str]]
    ) -> Any:
        payload_name = identities[0][0]
        more = f"-and-{len(identities) - 1}" if len(identities) > 1 else ""
        future = self.client.submit(
            execute_batch,
            task,
            identities,
            key=f"persistable-{payload_name}{more}-{random_hex(6)}",
        )
        self._as_completed.add(future)
        return future

    def wait_any(self, futures: Iterable[Any]) -> list[Any]:
        # The run passes its in-flight dict: no copy per completion when thousands wait.
        wanted = futures if isinstance(futures, (set, dict)) else set(futures)
        while True:
            ready = [future for future in self._done if future in wanted]
            if ready:
                return ready
            self._done.update(next_completions(self._as_completed))

    def result(self, future: Any) -> list[NodeOutcome] | None:
        outcomes = self._done.pop(future, None)
        if outcomes is None or future.status != "finished":
            # An error or a cancellation (raised from the future itself), or a future
            # done (wait_all) before as_completed had its result.
            outcomes = future.result()
        return cast("list[NodeOutcome] | None", outcomes)

    def cancel(self, futures: Iterable[Any]) -> list[Any]:
        # Dask cannot tell queued from running tasks here: a task already running on a
        # worker finishes there (and commits atomically) although its future is cancelled.
        cancelled = list(futures)
        if cancelled:
            self.client.cancel(cancelled)
        return cancelled

    def wait_all(self, futures: Iterable[Any]) -> None:
        self._distributed.wait(list(futures))

    def close(self) -> None:
        self._as_completed.clear()
        self._done.clear()
        if self._owned_client:
            self.client.close()
        if self._cluster is not None:
            self._cluster.close()


#: Per client, the worker addresses last asked and whether they run in other processes.
_ELSEWHERE: weakref.WeakKeyDictionary[Any, tuple[frozenset[str], bool]] = (
    weakref.WeakKeyDictionary()
)


def _workers_elsewhere(client: Any, workers: frozenset[str]) -> bool:
    """Whether the workers of ``client`` run in other processes than this one.

    In-process clusters (``processes=False``) share this process's memory. Asking costs
    a round trip to every worker (``client.run``): the answer is kept per client while
    its workers stay the same ones, so runs after the first on one cluster skip it.
    """
    known = _ELSEWHERE.get(client)
    if known is not None and known[0] == workers:
        return known[1]
    pids = set(client.run(os.getpid).values())
    elsewhere = pids != {os.getpid()}
    _ELSEWHERE[client] = (workers, elsewhere)
    return elsewhere


def _ignore_sigint() -> None:
    # Ctrl-C reaches the whole process group: the pool's workers finish their node and
    # the main process, which alone handles it, stops scheduling.
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _is_dask_client(executor: object) -> bool:
    distributed = sys.modules.get("distributed")
    return distributed is not None and isinstance(executor, distributed.Client)


def _import_distributed() -> Any:
    try:
        distributed = importlib.import_module("distributed")
    except ImportError as error:
        raise MissingDependencyError(
            "The dask executor needs dask.distributed, which is not installed; "
            "install it with `pip install 'persistable[dask]'`."
        ) from error
    return distributed


#: What Dask workers import: the forkserver preloads them (with persistable) for the run's
#: own LocalCluster.
_DASK_WORKER_MODULES = ("distributed", "dask", "msgpack", "tornado", "toolz")


def _start_local_cluster(distributed: Any, workers: int) -> Any:
    """A ``LocalCluster`` of ``workers`` worker processes of one thread each, no dashboard,
    its scheduler's HTTP server on a free loopback port.

    Where the platform has it, workers fork from the forkserver with distributed and
    persistable preloaded instead of each starting a fresh interpreter (Dask's default,
    ``spawn``), which also makes closing the cluster quick (spawned workers took 1 to
    1.8 s to shut down). distributed's own forkserver set-up would first import numpy,
    pandas and lz4 into this process to preload them; the flag that tells it its
    preloads are set is set instead, since ours name what the workers need. The workers'
    statistical profiler (a thread that takes the GIL every 10 ms to sample the task's
    stack) is off: nobody reads its output here.
    """
    import multiprocessing

    import dask

    settings: dict[str, object] = {"distributed.worker.profile.enabled": False}
    if "forkserver" in multiprocessing.get_all_start_methods():
        preload_in_forkserver([*_DASK_WORKER_MODULES, __name__])
        utils = sys.modules.get("distributed.utils")
        if utils is not None and hasattr(utils, "_forkserver_preload_set"):
            setattr(utils, "_forkserver_preload_set", True)  # noqa: B010
        settings["distributed.worker.multiprocessing-method"] = "forkserver"
    with dask.config.set(settings):
        return distributed.LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            # The scheduler's HTTP server (health, metrics) starts even without a dashboard,
            # on 8787 by default: where that port is taken (another cluster, a dashboard),
            # Dask warns and moves. A free port on loopback from the start says nothing.
            scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
        )


def check_executor(executor: object, max_workers: int | None) -> None:
    """Raise ValueError now, before resolving, for an executor that :func:`make_backend` refuses."""
    if max_workers is not None and (type(max_workers) is not int or max_workers < 1):
        raise ValueError(f"max_workers must be a positive int or None (got {max_workers!r}).")
    known = executor in EXECUTOR_NAMES or (isinstance(executor, str) and ":" in executor)
    if not (
        known or isinstance(executor, concurrent.futures.Executor) or _is_dask_client(executor)
    ):
        raise ValueError(
            f"executor must be one of {', '.join(map(repr, EXECUTOR_NAMES))}, a dask scheduler "
            "address like 'tcp://host:8786', a distributed.Client or a concurrent.futures."
            f"Executor (got {executor!r:.80})."
        )


def make_backend(executor: object, max_workers: int | None) -> Backend:
    """Turn the ``executor`` argument of ``persistable.run`` into a backend.

    Raises
    ------
    ValueError
        ``executor`` is neither a known name, a scheduler address, a
        ``concurrent.futures.Executor`` nor a ``distributed.Client``.
    """
    check_executor(executor, max_workers)
    workers = max_workers or os.cpu_count() or 1
    if executor == "serial":
        return FuturesBackend(
            SerialExecutor(),
            description="serial",
            capacity=1,
            crosses_processes=False,
            owned=True,
        )
    if executor == "threads":
        return FuturesBackend(
            concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="persistable"),
            description=f"threads ({workers} workers)",
            capacity=2 * workers,
            crosses_processes=False,
            owned=True,
        )
    if executor == "processes":
        # forkserver (the default from Python 3.14) never forks a process that runs threads
        # (tqdm, Dask clients, pools); nodes travel cloudpickled, so __main__ classes work.
        import multiprocessing

        methods = multiprocessing.get_all_start_methods()
        context = multiprocessing.get_context("forkserver" if "forkserver" in methods else None)
        preload_in_forkserver([__name__])  # workers fork with persistable imported
        return FuturesBackend(
            concurrent.futures.ProcessPoolExecutor(
                workers, mp_context=context, initializer=_ignore_sigint
            ),
            description=f"processes ({workers} workers)",
            capacity=2 * workers,
            crosses_processes=True,
            owned=True,
        )
    if isinstance(executor, concurrent.futures.Executor):
        crosses = isinstance(executor, concurrent.futures.ProcessPoolExecutor)
        return FuturesBackend(
            executor,
            description=type(executor).__name__,
            capacity=2 * workers,
            crosses_processes=crosses,
            owned=False,
        )
    if executor == "dask":
        distributed = _import_distributed()
        cluster = _start_local_cluster(distributed, workers)
        try:
            client = distributed.Client(cluster)
        except BaseException:
            cluster.close()
            raise
        return DaskBackend(client, cluster=cluster, owned_client=True, threads=workers)
    if _is_dask_client(executor):
        return DaskBackend(executor)
    distributed = _import_distributed()
    return DaskBackend(distributed.Client(executor), owned_client=True)
