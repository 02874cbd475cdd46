"""Population screening at scale: many patients in, one assessment each, a summary and a report
out — crash-safe, deterministic whatever the parallelism, locally or on Spark."""

from .runner import BatchOptions, BatchResult, OptionError, ResumeError, WorkerDied, run_batch

__all__ = ["BatchOptions", "BatchResult", "OptionError", "ResumeError", "WorkerDied",
           "run_batch"]
