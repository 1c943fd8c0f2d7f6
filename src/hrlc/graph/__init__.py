"""openEO process graphs evaluated on hrlc's catalogue and Data Lake.

The standard processes come from openeo-processes-dask and are wired by openeo-pg-parser-networkx
(`registry`); hrlc adds `load_collection` over its catalogue with odc-stac (`load`) and `save_result` into
the lake with a STAC Item per file (`save`). `evaluate` runs a graph and maps failures to openEO error codes.
Synchronous `POST /result` and the `process-graph` processor of batch jobs both go through `evaluate`.
"""

from hrlc.graph.evaluate import GraphEnv, GraphError, Result, evaluate

__all__ = ["GraphEnv", "GraphError", "Result", "evaluate"]
