"""The network description: object model, load/save, validation, expressions."""

from netbabel.description.io import dumps, load, read_data, save
from netbabel.description.model import (
    CellType, Description, Distribution, Input, Metadata, Population, Projection,
    Provenance, Rule, Simulation, SynapseType,
)
from netbabel.description.validate import check

__all__ = [
    "CellType", "Description", "Distribution", "Input", "Metadata", "Population", "Projection",
    "Provenance", "Rule", "Simulation", "SynapseType", "check", "dumps", "load", "read_data", "save",
]
