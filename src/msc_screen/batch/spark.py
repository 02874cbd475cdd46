"""Screen work units inside Spark executors: the same ``run_unit`` as local workers, so the
unit files — and therefore the outputs — are byte-identical to a local run.

Units go to executors in waves (a few per core) and their results come back to the driver,
which writes them like local units; memory on the driver is one wave, and a killed run resumes
from the last completed wave. With a cluster master (``spark://...``, ``yarn``) the inputs and
``OUT/.work`` must be on storage every executor can read.
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import os
import re
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from typing import IO, Any

from .plan import Unit
from .work import Job, engine_for, run_unit, unit_patients

_frozen = False  # in an executor's Python worker: engine loaded and frozen (``gc.freeze``)


def _task(unit: dict[str, Any], job: Job) -> tuple[str, bytes]:
    global _frozen
    if not _frozen:  # as a local worker does (``runner._init_worker``), before its first unit
        engine_for(job.policy)
        gc.freeze()
        _frozen = True
    return unit["id"], b"".join(run_unit(unit, job))


# The JVM logs only errors, to stderr: Spark's default profile logs WARN lines (native-hadoop,
# loopback address, ...) and a banner on start-up, before ``setLogLevel`` could run. The REPL
# logger set to the root's level stops the "Setting default log level" notice for PySpark.
LOG4J2 = """\
rootLogger.level = error
rootLogger.appenderRef.stderr.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{yy/MM/dd HH:mm:ss} %p %c{1}: %m%n
logger.repl.name = org.apache.spark.repl.Main
logger.repl.level = error
"""


_log4j2_path: str | None = None


def _log4j2_file() -> str:
    """The log configuration in a private file (mkstemp: mode 0600, unpredictable name): a
    fixed name in a shared temp directory could be swapped by another user for a log4j
    configuration of their own. Removed at interpreter exit."""
    global _log4j2_path
    if _log4j2_path is None:
        fd, path = tempfile.mkstemp(prefix="msc-screen-log4j2-", suffix=".properties")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(LOG4J2)
        atexit.register(_remove, path)
        _log4j2_path = path
    return _log4j2_path


def _remove(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


# Start-up notices the JVM prints straight to stderr, whatever the log configuration (PySpark
# counts as a Spark shell: "Setting default log level"; Spark's JVM options: incubator modules).
NOTICE = re.compile(r"^(Setting default log level|To adjust logging level|"
                    r"WARNING: Using incubator modules)")
_jvm_err: tuple[IO[bytes], int] | None = None  # the JVM's stderr file, and how much is relayed


@contextmanager
def _jvm_stderr() -> Iterator[None]:
    """Start the JVM with its stderr on a temporary file (the child keeps the fd it was
    started with); ``relay_jvm_stderr`` passes on everything but the start-up notices."""
    global _jvm_err
    if _jvm_err is None:
        # open for the JVM's lifetime (it outlives this call), closed at interpreter exit
        _jvm_err = (tempfile.TemporaryFile(prefix="msc-screen-jvm-"), 0)  # noqa: SIM115
    sys.stderr.flush()
    saved = os.dup(2)
    os.dup2(_jvm_err[0].fileno(), 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def relay_jvm_stderr() -> None:
    global _jvm_err
    if _jvm_err is None:
        return
    f, offset = _jvm_err
    data = os.pread(f.fileno(), 1 << 24, offset)
    _jvm_err = (f, offset + len(data))
    for line in data.decode("utf-8", "replace").splitlines():
        if not NOTICE.match(line):
            print(line, file=sys.stderr)


def spark_session(master: str | None, workers: int) -> Any:
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    from pyspark.sql import SparkSession

    quiet = f"-Dlog4j2.configurationFile=file:{_log4j2_file()}"
    builder = (SparkSession.builder.master(master or f"local[{max(1, workers)}]")
               .appName("msc-screen batch")
               .config("spark.driver.extraJavaOptions", quiet)
               .config("spark.ui.enabled", "false")
               .config("spark.ui.showConsoleProgress", "false")
               .config("spark.python.worker.reuse", "true")
               .config("spark.driver.maxResultSize", "2g"))
    with _jvm_stderr():
        spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def execute_spark(pending: list[Unit], job: Job, master: str | None, workers: int,
                  done: Callable[[str, bytes | None, int], None]) -> None:
    spark = spark_session(master, workers)
    try:
        sc = spark.sparkContext
        wave = max(8, 4 * sc.defaultParallelism)
        items = [asdict(u) for u in pending]
        for start in range(0, len(items), wave):
            chunk = items[start:start + wave]
            rdd = sc.parallelize(chunk, numSlices=len(chunk))
            for unit_id, data in rdd.map(lambda u, j=job: _task(u, j)).collect():
                done(unit_id, data, unit_patients(data))
    finally:
        spark.stop()
        relay_jvm_stderr()
