"""Reading FHIR R4: Bundles of any type, single resources, Bulk Data NDJSON, gzip and
directories, decoded into small structs holding only what the rules need."""

from .reader import ReadResult, iter_files, read_paths, read_source
from .record import RecordBuilder, build_records

__all__ = ["ReadResult", "RecordBuilder", "build_records", "iter_files", "read_paths",
           "read_source"]
