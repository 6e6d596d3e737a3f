"""Build the JSON Schema of the description and its human-readable pages.

`netbabel schema --write` regenerates `schema/network.schema.json` and one
Markdown page per object under `schema/`; a test checks they are current.
Every numeric field carries `x-unit` and a `description`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from netbabel import FORMAT_VERSION
from netbabel.description.catalogue import INF, MODELS, MULTICOMPARTMENT

SCHEMA_ID = "https://netbabel.org/schema/1/network.schema.json"
SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schema"
NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_.\-]*$"
RULES = ["all_to_all", "one_to_one", "pairwise_bernoulli", "fixed_indegree",
         "fixed_outdegree", "fixed_total_number", "explicit"]
INPUT_TYPES = ["poisson", "dc", "step_current", "spike_train"]


def _num(unit: str, description: str, minimum: float | None = None, exclusive: bool = False,
         expression: bool = True, distribution: bool = False) -> dict:
    """A numeric field: a number (optionally an expression string or a distribution)."""
    number: dict[str, Any] = {"type": "number"}
    if minimum is not None:
        number["exclusiveMinimum" if exclusive else "minimum"] = minimum
    options = [number]
    if expression:
        options.append({"$ref": "#/$defs/Expression"})
    if distribution:
        options.append({"$ref": "#/$defs/Distribution"})
    out: dict[str, Any] = {"description": description, "x-unit": unit}
    if len(options) == 1:
        out.update(number)
    else:
        out["anyOf"] = options
    return out


def _obj(description: str, properties: dict, required: list[str] | None = None, **extra) -> dict:
    out = {"type": "object", "description": description, "properties": properties,
           "additionalProperties": False}
    if required:
        out["required"] = required
    out.update(extra)
    return out


def _params_def(model: str) -> dict:
    spec = MODELS[model]
    props = {}
    for name, p in spec.params.items():
        if isinstance(p.default, bool):
            props[name] = {"type": "boolean", "description": p.description, "default": p.default}
        elif name == "spike_times":
            props[name] = {"description": p.description, "x-unit": p.unit, "type": "array",
                           "items": {"anyOf": [{"type": "number"},
                                               {"type": "array", "items": {"type": "number"}}]}}
        elif name == "spike_file":
            props[name] = {"type": "string", "description": p.description}
        else:
            field = _num(p.unit, p.description, minimum=_minimum(name))
            if p.default is not None and p.default not in (INF, -INF):
                field["default"] = p.default
            props[name] = field
    return _obj(f"Parameters of `{model}`: {spec.description} "
                f"Weights onto it are in {spec.weight_unit or 'n/a'}.", props)


def _minimum(name: str) -> float | None:
    if name in ("C_m", "tau_m", "tau_syn_ex", "tau_syn_in", "tau_w", "Delta_T"):
        return 0.0
    if name in ("t_ref", "rate", "g_L", "g_Na", "g_K", "start", "origin"):
        return 0.0
    return None


def _cell_type_def() -> dict:
    models = list(MODELS) + [MULTICOMPARTMENT]
    branches = [
        {"if": {"properties": {"model": {"const": m}}, "required": ["model"]},
         "then": {"properties": {"params": {"$ref": f"#/$defs/params_{m}"}}}}
        for m in MODELS
    ]
    branches.append({
        "if": {"properties": {"model": {"const": MULTICOMPARTMENT}}, "required": ["model"]},
        "then": {"required": ["sections"]},
        "else": {"not": {"anyOf": [{"required": ["sections"]}, {"required": ["synapses"]}]}},
    })
    return _obj(
        "A cell type: a point model from the catalogue, a spike source, or a multicompartment cell.",
        {
            "model": {"enum": models, "description": "Catalogue model name (NEST's names) or `multicompartment`."},
            "params": {"type": "object", "description": "Model parameters in the catalogue's units; missing ones take the catalogue default."},
            "sections": {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/Section"},
                         "description": "Multicompartment: the unbranched sections, parents before children."},
            "section_lists": {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "string"}},
                              "description": "Multicompartment: named lists of sections (soma, dend, apic, axon, all, ...)."},
            "mod_files": {"type": "array", "items": {"type": "string"},
                          "description": "NMODL files (paths relative to the description) the mechanisms need."},
            "spike_detection": {"$ref": "#/$defs/SpikeDetection"},
            "synapses": {"type": "object", "additionalProperties": {"$ref": "#/$defs/SynapseSite"},
                         "description": "Multicompartment: named synapse point processes."},
            "source": {"type": "object", "description": "Where the cell came from (for example the hoc template, file and arguments)."},
        },
        ["model"], allOf=branches,
    )


def build_schema() -> dict:
    """The whole network schema (draft 2020-12)."""
    value_def = {"anyOf": [{"type": "number"}, {"$ref": "#/$defs/Expression"}]}
    defs: dict[str, Any] = {
        "Expression": {"type": "string", "minLength": 1, "maxLength": 1000,
                       "description": "Arithmetic over parameter names: numbers, names, + - * / // % **, "
                                      "and the functions sqrt exp log log10 sin cos tan tanh abs floor ceil round min max."},
        "Value": value_def,
        "Distribution": _obj(
            "A random value drawn per connection or cell.",
            {
                "distribution": {"enum": ["normal", "lognormal", "uniform"], "description": "Distribution family."},
                "mean": _num("field unit", "Normal: mean."),
                "sd": _num("field unit", "Normal: standard deviation.", minimum=0),
                "mu": _num("1", "Lognormal: mean of the underlying normal (of log(value/unit))."),
                "sigma": _num("1", "Lognormal: sd of the underlying normal.", minimum=0),
                "low": _num("field unit", "Uniform: lower end; normal/lognormal: lower bound."),
                "high": _num("field unit", "Uniform: upper end; normal/lognormal: upper bound."),
                "bounds": {"enum": ["redraw", "clip"],
                           "description": "What happens to a draw outside [low, high]: drawn again, or clipped."},
            },
            ["distribution"],
            allOf=[
                {"if": {"properties": {"distribution": {"const": "normal"}}},
                 "then": {"required": ["mean", "sd"]}},
                {"if": {"properties": {"distribution": {"const": "lognormal"}}},
                 "then": {"required": ["mu", "sigma"]}},
                {"if": {"properties": {"distribution": {"const": "uniform"}}},
                 "then": {"required": ["low", "high"]}},
                {"if": {"anyOf": [{"required": ["low"]}, {"required": ["high"]}],
                        "properties": {"distribution": {"enum": ["normal", "lognormal"]}}},
                 "then": {"required": ["bounds"]}},
            ],
        ),
        "Provenance": _obj("One conversion step that produced this description.", {
            "tool": {"type": "string", "description": "Tool and version, e.g. `netbabel 0.1.0`."},
            "source": {"type": "string", "description": "The file converted."},
            "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$", "description": "SHA-256 of the source file."},
            "date": {"type": "string", "description": "ISO 8601 time of the conversion."},
            "format": {"type": "string", "description": "Format of the source."},
            "options": {"type": "object", "description": "Options of the conversion."},
        }, ["tool"]),
        "Metadata": _obj("Title, authors, references, license and provenance.", {
            "title": {"type": "string", "description": "Human-readable title."},
            "description": {"type": "string", "description": "What the model is."},
            "authors": {"type": "array", "items": {"type": "string"}, "description": "Authors of the model."},
            "references": {"type": "array", "items": {"type": "string"}, "description": "Citations (DOI preferred)."},
            "license": {"type": "string", "description": "License of the model description."},
            "provenance": {"type": "array", "items": {"$ref": "#/$defs/Provenance"},
                           "description": "Conversion history, oldest first."},
        }),
        "Section": _obj("An unbranched section of a multicompartment cell (NEURON's units).", {
            "name": {"type": "string", "description": "Section name, e.g. `soma` or `dend[3]`."},
            "parent": {"type": ["string", "null"], "description": "Parent section (none for the root)."},
            "parent_x": {"type": "number", "minimum": 0, "maximum": 1, "x-unit": "1",
                         "description": "Position on the parent where this section attaches."},
            "child_x": {"type": "number", "enum": [0, 1], "x-unit": "1",
                        "description": "End of this section attached to the parent (0 or 1)."},
            "nseg": {"type": "integer", "minimum": 1, "x-unit": "1", "description": "Number of segments."},
            "points": {"type": "array", "items": {"type": "array", "items": {"type": "number"}, "minItems": 4, "maxItems": 4},
                       "x-unit": "um", "description": "3-D points [x, y, z, diam] in um (pt3d)."},
            "L": {"type": "number", "exclusiveMinimum": 0, "x-unit": "um", "description": "Length (when no 3-D points)."},
            "diam": {"type": "number", "exclusiveMinimum": 0, "x-unit": "um", "description": "Diameter (when no 3-D points)."},
            "Ra": _num("ohm*cm", "Axial resistivity.", minimum=0, exclusive=True),
            "cm": _num("uF/cm2", "Specific membrane capacitance.", minimum=0),
            "mechanisms": {"type": "object", "x-unit": "NMODL units (S/cm2 for densities, mV, ms)",
                           "additionalProperties": {"type": "object"},
                           "description": "Density mechanisms and their parameters: a number (uniform) "
                                          "or a list of numbers, one per segment (non-uniform)."},
            "ions": {"type": "object", "x-unit": "mV (e*), mM (*i, *o)", "additionalProperties": {"type": "object"},
                     "description": "Ion settings, e.g. {\"na\": {\"ena\": 50}}."},
        }, ["name"]),
        "SynapseSite": _obj("A synapse point process on a multicompartment cell.", {
            "mechanism": {"type": "string", "description": "Point process, e.g. `ExpSyn` or `Exp2Syn`."},
            "section": {"type": "string", "description": "Section it sits on."},
            "x": {"type": "number", "minimum": 0, "maximum": 1, "x-unit": "1", "description": "Position on the section."},
            "params": {"type": "object", "x-unit": "NMODL units (tau in ms, e in mV)",
                       "description": "Parameters, e.g. {\"tau\": 2, \"e\": 0}."},
        }, ["mechanism", "section"]),
        "SpikeDetection": _obj("Where a multicompartment cell's spikes are detected.", {
            "section": {"type": "string", "description": "Section holding the detector."},
            "x": {"type": "number", "minimum": 0, "maximum": 1, "x-unit": "1", "description": "Position."},
            "threshold": {"type": "number", "x-unit": "mV", "description": "Voltage threshold."},
        }, ["section"]),
        "CellType": _cell_type_def(),
        "SynapseType": _obj("A synapse model and the receptor it targets.", {
            "model": {"enum": ["static", "tsodyks", "stdp"], "description": "Synapse dynamics (static for now)."},
            "receptor": {"type": "string", "description": "`excitatory`, `inhibitory`, or a named port."},
            "params": {"type": "object", "description": "Parameters of plastic synapses."},
            "site": {"type": "string", "description": "Named synapse of a multicompartment target cell."},
        }),
        "Positions": _obj("Cell positions in um.", {
            "type": {"enum": ["random", "grid", "file"], "description": "Uniform random in a box, a grid, or a file."},
            "low": {"type": "array", "items": {"type": "number"}, "minItems": 3, "maxItems": 3, "x-unit": "um",
                    "description": "random: lower corner of the box."},
            "high": {"type": "array", "items": {"type": "number"}, "minItems": 3, "maxItems": 3, "x-unit": "um",
                     "description": "random: upper corner of the box."},
            "shape": {"type": "array", "items": {"type": "integer", "minimum": 1}, "minItems": 1, "maxItems": 3,
                      "x-unit": "1", "description": "grid: points per axis."},
            "spacing": {"type": "array", "items": {"type": "number"}, "minItems": 1, "maxItems": 3, "x-unit": "um",
                        "description": "grid: distance between points per axis."},
            "origin": {"type": "array", "items": {"type": "number"}, "minItems": 3, "maxItems": 3, "x-unit": "um",
                       "description": "grid: position of the first point."},
            "file": {"type": "string", "description": "file: HDF5 (dataset `positions`, N x 3) or CSV (x,y,z)."},
        }, ["type"]),
        "Population": _obj("A group of cells of one type.", {
            "cell_type": {"type": "string", "description": "Name of a cell type."},
            "size": _num("1", "Number of cells (a positive integer after evaluation).", minimum=1),
            "positions": {"$ref": "#/$defs/Positions"},
            "v_init": _num("mV", "Initial membrane potential: a number or a distribution per cell.", distribution=True),
            "annotations": {"type": "object", "description": "Free annotations, e.g. {\"area\": \"V1\", \"layer\": \"L23\"}."},
        }, ["cell_type", "size"]),
        "Rule": _obj("How connections are drawn (NEST's semantics).", {
            "type": {"enum": RULES, "description": "Connection rule."},
            "indegree": _num("1", "fixed_indegree: sources per target.", minimum=0),
            "outdegree": _num("1", "fixed_outdegree: targets per source.", minimum=0),
            "n": _num("1", "fixed_total_number: number of connections.", minimum=0),
            "p": {"description": "pairwise_bernoulli: probability, or an expression of the distance `d` (um).",
                  "x-unit": "1", "anyOf": [{"type": "number", "minimum": 0, "maximum": 1}, {"$ref": "#/$defs/Expression"}]},
            "file": {"type": "string", "description": "explicit: HDF5 edges file (SONATA layout), relative path."},
            "population": {"type": "string", "description": "explicit: edge population in the file."},
        }, ["type"], allOf=[
            {"if": {"properties": {"type": {"const": t}}}, "then": {"required": req}}
            for t, req in [("fixed_indegree", ["indegree"]), ("fixed_outdegree", ["outdegree"]),
                           ("fixed_total_number", ["n"]), ("pairwise_bernoulli", ["p"]),
                           ("explicit", ["file"])]
        ]),
        "Projection": _obj("Connections from one population to another.", {
            "name": {"type": "string", "pattern": NAME_PATTERN, "description": "Unique name (default `source->target`)."},
            "source": {"type": "string", "description": "Source population."},
            "target": {"type": "string", "description": "Target population."},
            "synapse_type": {"type": "string", "description": "Synapse type (default: static, receptor by weight sign)."},
            "rule": {"$ref": "#/$defs/Rule"},
            "weight": _num("pA (current synapses), nS (conductance), mV (delta synapses), uS (multicompartment)",
                           "Synaptic weight; signed for current and delta synapses.", distribution=True),
            "delay": _num("ms", "Transmission delay (rounded to the dt grid, at least dt).", minimum=0, distribution=True),
            "autapses": {"type": "boolean", "description": "Allow a cell to connect to itself."},
            "multapses": {"type": "boolean", "description": "Allow several connections between one pair."},
        }, ["source", "target", "rule", "weight", "delay"]),
        "Input": _obj("External drive onto one population.", {
            "name": {"type": "string", "pattern": NAME_PATTERN, "description": "Unique name (default `type->target`)."},
            "type": {"enum": INPUT_TYPES, "description": "poisson: independent trains per cell; dc / step_current: injected current; spike_train: from a file."},
            "target": {"type": "string", "description": "Target population."},
            "rate": _num("Hz", "poisson: rate of each train.", minimum=0),
            "indegree": _num("1", "poisson: number of independent trains per cell.", minimum=0),
            "weight": _num("pA (current synapses), nS (conductance), mV (delta synapses), uS (multicompartment)",
                           "poisson / spike_train: synaptic weight.", distribution=True),
            "delay": _num("ms", "poisson / spike_train: delay.", minimum=0, distribution=True),
            "synapse_type": {"type": "string", "description": "Synapse type of the input connections."},
            "amplitude": _num("pA", "dc: current amplitude (nA on multicompartment cells is NEURON's unit; netbabel stores pA)."),
            "amplitudes": {"type": "array", "items": {"$ref": "#/$defs/Value"}, "x-unit": "pA",
                           "description": "step_current: amplitudes."},
            "times": {"type": "array", "items": {"$ref": "#/$defs/Value"}, "x-unit": "ms",
                      "description": "step_current: times at which the amplitudes start."},
            "start": _num("ms", "dc / poisson: start time.", minimum=0),
            "stop": _num("ms", "dc / poisson: stop time.", minimum=0),
            "section": {"type": "string", "description": "Multicompartment target: section of the electrode."},
            "x": {"type": "number", "minimum": 0, "maximum": 1, "x-unit": "1", "description": "Multicompartment target: position."},
            "file": {"type": "string", "description": "spike_train: SONATA spike file (relative path); node_ids are target cell indices."},
            "population": {"type": "string", "description": "spike_train: population in the spike file."},
        }, ["type", "target"], allOf=[
            {"if": {"properties": {"type": {"const": t}}}, "then": {"required": req}}
            for t, req in [("poisson", ["rate", "weight", "delay"]), ("dc", ["amplitude"]),
                           ("step_current", ["amplitudes", "times"]),
                           ("spike_train", ["file", "weight", "delay"])]
        ]),
        "VRecording": _obj("Membrane potential recording of chosen cells.", {
            "population": {"type": "string", "description": "Population."},
            "ids": {"type": "array", "items": {"type": "integer", "minimum": 0}, "description": "Cell indices in the population."},
        }, ["population", "ids"]),
        "Recording": _obj("What to record.", {
            "spikes": {"description": "`all` or a list of population names.",
                       "anyOf": [{"const": "all"}, {"type": "array", "items": {"type": "string"}}]},
            "v": {"type": "array", "items": {"$ref": "#/$defs/VRecording"}, "description": "Membrane potential recordings."},
        }),
        "Simulation": _obj("How to run the model.", {
            "duration": _num("ms", "Simulated time.", minimum=0, exclusive=True),
            "dt": _num("ms", "Integration time step (resolution).", minimum=0, exclusive=True),
            "seed": {"type": "integer", "minimum": 0, "maximum": 2**31 - 1, "x-unit": "1",
                     "description": "Master seed of every random number (connectivity, inputs, initial states)."},
            "temperature": _num("degC", "Temperature (celsius) for multicompartment cells."),
            "v_init": _num("mV", "Initial membrane potential of multicompartment cells."),
            "threads": {"type": "integer", "minimum": 1, "x-unit": "1", "description": "Threads per process (hint)."},
            "processes": {"type": "integer", "minimum": 1, "x-unit": "1", "description": "MPI processes (hint)."},
            "record": {"$ref": "#/$defs/Recording"},
        }),
    }
    for model in MODELS:
        defs[f"params_{model}"] = _params_def(model)
    name_map = {"type": "object", "propertyNames": {"pattern": NAME_PATTERN}}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "netbabel network description",
        "description": "A spiking network model: cells, synapses, populations, projections, inputs, simulation.",
        "type": "object",
        "additionalProperties": False,
        "required": ["netbabel", "name"],
        "properties": {
            "netbabel": {"const": FORMAT_VERSION, "description": "Format version."},
            "name": {"type": "string", "pattern": NAME_PATTERN, "maxLength": 200, "description": "Model name (an identifier)."},
            "metadata": {"$ref": "#/$defs/Metadata"},
            "parameters": {**name_map, "additionalProperties": {"$ref": "#/$defs/Value"},
                           "description": "Named numbers (or expressions over other names) used by other fields."},
            "cell_types": {**name_map, "additionalProperties": {"$ref": "#/$defs/CellType"}, "description": "Cell types by name."},
            "synapse_types": {**name_map, "additionalProperties": {"$ref": "#/$defs/SynapseType"}, "description": "Synapse types by name."},
            "populations": {**name_map, "additionalProperties": {"$ref": "#/$defs/Population"},
                            "description": "Populations by name, in creation order."},
            "projections": {"type": "array", "items": {"$ref": "#/$defs/Projection"}, "description": "Projections."},
            "inputs": {"type": "array", "items": {"$ref": "#/$defs/Input"}, "description": "External inputs."},
            "simulation": {"$ref": "#/$defs/Simulation"},
        },
        "$defs": defs,
    }


def render_pages(schema: dict) -> dict[str, str]:
    """One Markdown page per object (file name -> text), plus an index."""
    pages = {}
    index = ["# netbabel description reference (format version 1)", "",
             "Generated by `netbabel schema --write` from `netbabel/description/schema.py`; do not edit.", ""]
    objects = {"Description": schema} | {k: v for k, v in schema["$defs"].items() if v.get("type") == "object"}
    for name, obj in objects.items():
        index.append(f"- [{name}]({name}.md): {obj.get('description', '')}")
        lines = [f"# {name}", "", obj.get("description", ""), "",
                 "| field | type | unit | required | description |", "|---|---|---|---|---|"]
        required = set(obj.get("required", []))
        for field, spec in obj.get("properties", {}).items():
            lines.append(f"| `{field}` | {_type_name(spec)} | {spec.get('x-unit', '')} | "
                         f"{'yes' if field in required else ''} | {_describe(spec)} |")
        pages[f"{name}.md"] = "\n".join(lines) + "\n"
    pages["README.md"] = "\n".join(index) + "\n"
    return pages


def _type_name(spec: dict) -> str:
    if "$ref" in spec:
        ref = spec["$ref"].split("/")[-1]
        return f"[{ref}]({ref}.md)"
    if "enum" in spec:
        return "one of " + ", ".join(f"`{v}`" for v in spec["enum"])
    if "const" in spec:
        return f"`{spec['const']}`"
    if "anyOf" in spec:
        return " or ".join(_type_name(s) for s in spec["anyOf"])
    t = spec.get("type", "any")
    if t == "array" and "items" in spec:
        return f"array of {_type_name(spec['items'])}"
    if t == "object" and isinstance(spec.get("additionalProperties"), dict):
        return f"map of {_type_name(spec['additionalProperties'])}"
    return t if isinstance(t, str) else " or ".join(t)


def _describe(spec: dict) -> str:
    text = spec.get("description", "")
    if "default" in spec:
        text += f" Default: `{spec['default']}`."
    return text.replace("|", "\\|")


def write_schema(directory: Path = SCHEMA_DIR) -> list[Path]:
    """Regenerate the schema file and its pages; returns the files written."""
    schema = build_schema()
    directory.mkdir(parents=True, exist_ok=True)
    written = [directory / "network.schema.json"]
    written[0].write_text(json.dumps(schema, indent=1) + "\n")
    for name, text in render_pages(schema).items():
        (directory / name).write_text(text)
        written.append(directory / name)
    return written
