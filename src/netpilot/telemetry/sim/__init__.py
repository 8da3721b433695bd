"""A fluid simulator of the network over time, with faults whose ground truth it keeps."""
