"""The network twin: model types, validation, file I/O and importers of real formats."""

from netpilot.model.demands import DemandSeries, matrix_from_demands
from netpilot.model.graph import from_networkx, to_networkx
from netpilot.model.io import dumps_network, load_network, network_json_schema, save_network
from netpilot.model.network import (
    CellSite,
    Demand,
    EdgeSite,
    Link,
    Location,
    Network,
    NetworkArrays,
    Router,
    link_id,
)
from netpilot.model.validate import check_network

__all__ = [
    "CellSite", "Demand", "DemandSeries", "EdgeSite", "Link", "Location", "Network", "NetworkArrays", "Router",
    "check_network", "dumps_network", "from_networkx", "link_id", "load_network", "matrix_from_demands",
    "network_json_schema", "save_network", "to_networkx",
]
