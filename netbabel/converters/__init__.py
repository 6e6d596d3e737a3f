"""Translation tables between the description and simulators: units, model and parameter names.

`units` holds every unit factor; `nest` and `pynn` map the catalogue to NEST model names and
PyNN standard cells. Other exporters import from here rather than scaling numbers themselves.
"""
