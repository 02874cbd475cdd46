"""Screen work units inside Spark executors: the same ``run_unit`` as local workers, so the
unit files — and therefore the outputs — are byte-identical to a local run.

Units go to executors in waves (a few per core) and their results come back to the driver,
which writes them like local units; memory on the driver is one wave, and a killed run resumes
from the last completed wave. With a cluster master (``spark://...``, ``yarn``) the inputs and
``OUT/.work`` must be on storage every executor can read.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from .plan import Unit
from .work import Job, run_unit


def _task(unit: dict[str, Any], job: Job) -> tuple[str, bytes]:
    return unit["id"], run_unit(unit, job)


def spark_session(master: str | None, workers: int) -> Any:
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    from pyspark.sql import SparkSession

    builder = (SparkSession.builder.master(master or f"local[{max(1, workers)}]")
               .appName("msc-screen batch")
               .config("spark.ui.enabled", "false")
               .config("spark.ui.showConsoleProgress", "false")
               .config("spark.python.worker.reuse", "true")
               .config("spark.driver.maxResultSize", "2g"))
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def execute_spark(pending: list[Unit], job: Job, master: str | None, workers: int,
                  done: Callable[[str, bytes | None, int], None]) -> None:
    from .runner import count_patients

    spark = spark_session(master, workers)
    try:
        sc = spark.sparkContext
        wave = max(8, 4 * sc.defaultParallelism)
        items = [asdict(u) for u in pending]
        for start in range(0, len(items), wave):
            chunk = items[start:start + wave]
            rdd = sc.parallelize(chunk, numSlices=len(chunk))
            for unit_id, data in rdd.map(lambda u, j=job: _task(u, j)).collect():
                done(unit_id, data, count_patients(data))
    finally:
        spark.stop()
