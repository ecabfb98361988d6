// The profile format's JSON Schema (draft 2020-12), for editors: `topo schema` prints it, and
// docs/profile.schema.json is that output (a test keeps the two, and the decoder's keys, the same).

/// The keys each mapping of a profile may hold: the decoder accepts exactly these, and the schema
/// names exactly these (`$defs/NAME/properties`; the root's under `properties`).
public enum ProfileKeys {
    public static let profile = ["version", "name", "description", "host", "workloads", "links"]
    public static let host = ["require", "reserve", "smt", "tune"]
    public static let hostRequire = ["numaNodes", "cpus"]
    public static let hostTune = [
        "irqs", "irqbalance", "kernelThreads", "timerMigration", "statInterval", "thp", "governor",
        "frequency", "scope", "boost", "perfSampleRate", "aslr", "bestEffort",
    ]
    public static let frequency = ["min", "max"]
    public static let workload = ["cpus", "isolation", "memory", "cpu", "pids", "io", "run"]
    public static let cpuCount = ["count", "node"]
    public static let memory = ["policy", "nodes", "max", "high", "swap"]
    public static let cpu = ["quota", "weight"]
    public static let ioLimit = ["device", "rbps", "wbps", "riops", "wiops"]
    public static let run = ["command", "env", "workdir", "user", "capabilities", "runtime", "image"]
    public static let link = ["between", "subnet", "mtu", "netem"]
    public static let netem = [
        "from", "rate", "delay", "jitter", "distribution", "loss", "duplicate", "reorder", "corrupt", "limit",
    ]

    /// Each schema definition and the keys the decoder accepts there (`profile` is the schema's root).
    public static let byDefinition: [(definition: String, keys: [String])] = [
        ("profile", profile), ("host", host), ("hostRequire", hostRequire), ("hostTune", hostTune),
        ("frequency", frequency), ("workload", workload), ("cpuCount", cpuCount),
        ("memory", memory), ("cpu", cpu), ("ioLimit", ioLimit), ("run", run), ("link", link), ("netem", netem),
    ]
}

public enum ProfileSchema {
    /// The schema, as `topo schema` prints it.
    public static let json = #"""
        {
          "$schema": "https://json-schema.org/draft/2020-12/schema",
          "title": "topo profile, format version 1",
          "description": "A topo profile: the workloads of one benchmark, the CPUs and NUMA memory each gets, its cgroup limits, the command it runs and the shaped links between them. `topo validate PROFILE` checks everything this schema cannot (CPU lists that overlap, a link to an unknown workload, netem bounds).",
          "type": "object",
          "required": ["version", "name", "workloads"],
          "properties": {
            "version": {
              "description": "The profile format. Only 1 exists.",
              "const": 1
            },
            "name": {
              "description": "Names everything topo makes for the profile: cgroups topo/NAME/…, namespaces topo-NAME-…, state in /run/topo/NAME. A lowercase letter, then lowercase letters, digits or '-', at most 24.",
              "type": "string",
              "pattern": "^[a-z][a-z0-9-]{0,23}$",
              "not": { "enum": ["images", "lock"] },
              "examples": ["api-gateway"]
            },
            "description": {
              "description": "Free text for people; shown in reports.",
              "type": "string"
            },
            "host": { "$ref": "#/$defs/host" },
            "workloads": {
              "description": "The workloads, by name (a lowercase letter, then lowercase letters, digits or '-', at most 12), in the order topo places and starts them.",
              "type": "object",
              "minProperties": 1,
              "propertyNames": { "pattern": "^[a-z][a-z0-9-]{0,11}$" },
              "additionalProperties": { "$ref": "#/$defs/workload" }
            },
            "links": {
              "description": "veth links between pairs of workloads, each end in its workload's own network namespace, optionally shaped by netem.",
              "type": "array",
              "items": { "$ref": "#/$defs/link" }
            }
          },
          "patternProperties": {
            "^x-": { "description": "Left for you: a place for YAML anchors (&name) that workloads merge with <<: *name." }
          },
          "additionalProperties": false,
          "$defs": {
            "cpulist": {
              "description": "A Linux cpulist: ids and ranges separated by commas.",
              "type": "string",
              "pattern": "^ *[0-9]{1,4}(-[0-9]{1,4})?(,[0-9]{1,4}(-[0-9]{1,4})?)* *$",
              "examples": ["0-3", "0-3,8-11", "5"]
            },
            "size": {
              "description": "A size in bytes: a byte count, or a number with K, M, G or T, each a power of 1024 (Ki/KiB, Mi/MiB, Gi/GiB and Ti/TiB mean the same), any case. GB is refused as ambiguous (docker reads it as GiB, Kubernetes as 10^9).",
              "anyOf": [
                { "type": "integer", "minimum": 0 },
                { "type": "string", "pattern": "^ *[0-9]*(\\.[0-9]+)?([kKmMgGtT]([iI]([bB])?)?|[bB])? *$" }
              ],
              "examples": ["512M", "4G", "1Gi", 1048576]
            },
            "sizeLimit": {
              "description": "A size, or max for no limit.",
              "anyOf": [{ "$ref": "#/$defs/size" }, { "const": "max" }]
            },
            "countLimit": {
              "description": "A count, or max for no limit.",
              "anyOf": [{ "type": "integer", "minimum": 0 }, { "const": "max" }]
            },
            "duration": {
              "description": "A time: a number with ns, us (or µs), ms or s; 0 alone means none.",
              "anyOf": [
                { "const": 0 },
                { "type": "string", "pattern": "^ *([0-9]*(\\.[0-9]+)?([nNuUmM]?[sS]|µ[sS])|0) *$" }
              ],
              "examples": ["200us", "5ms", "1.5s"]
            },
            "rate": {
              "description": "A rate in bits per second: a number with bit, kbit, mbit, gbit or tbit (powers of 1000), any case.",
              "type": "string",
              "pattern": "^ *[0-9]*(\\.[0-9]+)?([kKmMgGtT])?[bB][iI][tT] *$",
              "examples": ["100mbit", "1gbit"]
            },
            "percent": {
              "description": "A percentage from 0 to 100, with or without %.",
              "anyOf": [
                { "type": "number", "minimum": 0, "maximum": 100 },
                { "type": "string", "pattern": "^ *[0-9]*(\\.[0-9]+)?%? *$" }
              ],
              "examples": ["0.1%", "5%"]
            },
            "host": {
              "description": "What the host must offer, and how topo may use it.",
              "type": ["object", "null"],
              "properties": {
                "require": { "$ref": "#/$defs/hostRequire" },
                "reserve": {
                  "description": "CPUs topo never gives to a workload (leave them to the host, its interrupts and topo itself), as a quoted cpulist: \"0\", not 0.",
                  "$ref": "#/$defs/cpulist"
                },
                "smt": {
                  "description": "whole-cores (the default): no physical core is split between two workloads, and a workload's count is whole cores' worth. any: threads of one core may go to different workloads.",
                  "enum": ["whole-cores", "any"]
                },
                "tune": { "$ref": "#/$defs/hostTune" }
              },
              "additionalProperties": false
            },
            "hostTune": {
              "description": "Noise sources to quiet while the profile is applied. Each value is read before topo changes it and restored exactly when the last profile that set it goes; two applied profiles may not set one setting to different values.",
              "type": ["object", "null"],
              "properties": {
                "irqs": { "description": "away: move every interrupt the kernel lets move off the CPUs of exclusive and partition workloads (/proc/irq/N/smp_affinity_list).", "enum": ["away"] },
                "irqbalance": { "description": "warn (the default): say that a running irqbalance will move interrupts back. stop: stop its systemd unit while the profile is applied.", "enum": ["warn", "stop"] },
                "kernelThreads": { "description": "away: unbound workqueues (their cpumask files) and kernel threads that are not per-CPU, off the CPUs of exclusive and partition workloads.", "enum": ["away"] },
                "timerMigration": { "description": "kernel.timer_migration.", "$ref": "#/$defs/switch" },
                "statInterval": { "description": "vm.stat_interval, in seconds.", "type": "integer", "minimum": 1, "maximum": 3600 },
                "thp": { "description": "Transparent huge pages (and their defrag setting): never, madvise or always.", "enum": ["never", "madvise", "always"] },
                "governor": { "description": "cpufreq scaling governor for the scope's CPUs, e.g. performance.", "type": "string", "pattern": "^[a-z][a-z0-9_]{0,14}$", "examples": ["performance"] },
                "frequency": { "$ref": "#/$defs/frequency" },
                "scope": { "description": "The CPUs governor and frequency apply to: workloads (the default, the CPUs the profile's workloads hold) or all.", "enum": ["workloads", "all"] },
                "boost": { "description": "Turbo boost: intel_pstate/no_turbo or cpufreq/boost.", "$ref": "#/$defs/switch" },
                "perfSampleRate": { "description": "kernel.perf_event_max_sample_rate.", "type": "integer", "minimum": 1, "maximum": 1000000 },
                "aslr": { "description": "kernel.randomize_va_space: off (0) or on (2).", "$ref": "#/$defs/switch" },
                "bestEffort": { "description": "true: a setting this host cannot make is a warning in apply and verify instead of a refusal (exit 3).", "type": "boolean" }
              },
              "additionalProperties": false
            },
            "frequency": {
              "description": "cpufreq's scaling_min_freq and scaling_max_freq for the scope's CPUs.",
              "type": "object",
              "properties": {
                "min": { "$ref": "#/$defs/frequencyValue" },
                "max": { "$ref": "#/$defs/frequencyValue" }
              },
              "additionalProperties": false
            },
            "switch": {
              "description": "off or on (YAML 1.1 readers take these for false and true, which mean the same).",
              "enum": ["off", "on", false, true]
            },
            "frequencyValue": {
              "description": "A CPU frequency: a number with GHz, MHz or kHz (powers of 1000), any case.",
              "type": "string",
              "pattern": "^ *[0-9]*(\\.[0-9]+)?([gGmMkK])[hH][zZ] *$",
              "examples": ["2.4GHz", "2400MHz"]
            },
            "hostRequire": {
              "description": "Refuse (exit 3) a host with fewer NUMA nodes or online CPUs than this.",
              "type": ["object", "null"],
              "properties": {
                "numaNodes": { "description": "At least this many NUMA nodes.", "type": "integer", "minimum": 0 },
                "cpus": { "description": "At least this many online CPUs.", "type": "integer", "minimum": 1, "maximum": 4096 }
              },
              "additionalProperties": false
            },
            "workload": {
              "description": "One workload: its CPUs, memory, limits and the command it runs.",
              "type": "object",
              "required": ["cpus"],
              "properties": {
                "cpus": {
                  "description": "The CPUs: a cpulist of exactly these, or { count, node } for topo to choose.",
                  "anyOf": [{ "$ref": "#/$defs/cpulist" }, { "$ref": "#/$defs/cpuCount" }],
                  "examples": ["0-3", { "count": 4, "node": 0 }]
                },
                "isolation": {
                  "description": "exclusive (the default): no other workload on these CPUs. shared: other shared workloads may use them too. partition: a cgroup v2 cpuset partition, so nothing else on the host runs there.",
                  "enum": ["exclusive", "shared", "partition"]
                },
                "memory": { "$ref": "#/$defs/memory" },
                "cpu": { "$ref": "#/$defs/cpu" },
                "pids": {
                  "description": "pids.max: at most this many processes and threads.",
                  "$ref": "#/$defs/countLimit"
                },
                "io": {
                  "description": "io.max: per block device, bytes and operations per second.",
                  "type": "array",
                  "items": { "$ref": "#/$defs/ioLimit" }
                },
                "run": { "$ref": "#/$defs/run" }
              },
              "additionalProperties": false
            },
            "cpuCount": {
              "description": "Let topo choose: count CPUs, on one node or wherever they fit.",
              "type": "object",
              "required": ["count"],
              "properties": {
                "count": { "description": "How many CPUs.", "type": "integer", "minimum": 1, "maximum": 4096 },
                "node": {
                  "description": "The NUMA node to take them from, or auto (the default).",
                  "anyOf": [{ "type": "integer", "minimum": 0, "maximum": 1023 }, { "const": "auto" }, { "type": "null" }]
                }
              },
              "additionalProperties": false
            },
            "memory": {
              "description": "The memory policy (set through libnuma) and the cgroup's memory limits.",
              "type": ["object", "null"],
              "properties": {
                "policy": {
                  "description": "bind (the default): only on nodes. preferred: nodes (one) first. interleave: round-robin over nodes. local: the node of the CPU that runs the thread.",
                  "enum": ["bind", "preferred", "interleave", "local"]
                },
                "nodes": {
                  "description": "The NUMA nodes for the policy, as a list (\"0-1\", or one node's number); by default the nodes of the workload's CPUs.",
                  "anyOf": [{ "$ref": "#/$defs/cpulist" }, { "type": "integer", "minimum": 0, "maximum": 1023 }]
                },
                "max": { "description": "memory.max: the hard limit.", "$ref": "#/$defs/sizeLimit" },
                "high": { "description": "memory.high: reclaim starts above it.", "$ref": "#/$defs/sizeLimit" },
                "swap": { "description": "memory.swap.max.", "$ref": "#/$defs/sizeLimit" }
              },
              "additionalProperties": false
            },
            "cpu": {
              "description": "The cgroup's CPU controller.",
              "type": ["object", "null"],
              "properties": {
                "quota": {
                  "description": "cpu.max: at most this many CPUs' worth of time (0.01 or more, at most 5 decimals).",
                  "anyOf": [
                    { "type": "number", "minimum": 0.01, "maximum": 4096 },
                    { "type": "string", "pattern": "^[0-9]*(\\.[0-9]{1,5})?$" }
                  ],
                  "examples": [0.5, 2]
                },
                "weight": { "description": "cpu.weight, from 1 to 10000 (100 is the kernel's default).", "type": "integer", "minimum": 1, "maximum": 10000 }
              },
              "additionalProperties": false
            },
            "ioLimit": {
              "description": "io.max for one block device; each limit left out stays unlimited.",
              "type": "object",
              "required": ["device"],
              "properties": {
                "device": { "description": "MAJOR:MINOR, as lsblk shows it.", "type": "string", "pattern": "^[0-9]+:[0-9]+$", "examples": ["8:0"] },
                "rbps": { "description": "Read bytes per second.", "$ref": "#/$defs/sizeLimit" },
                "wbps": { "description": "Written bytes per second.", "$ref": "#/$defs/sizeLimit" },
                "riops": { "description": "Read operations per second.", "$ref": "#/$defs/countLimit" },
                "wiops": { "description": "Write operations per second.", "$ref": "#/$defs/countLimit" }
              },
              "additionalProperties": false
            },
            "run": {
              "description": "The command topo starts in the workload, and how.",
              "type": "object",
              "required": ["command"],
              "properties": {
                "command": {
                  "description": "The program and its arguments, as a list: topo runs no shell (write [\"/bin/sh\", \"-c\", \"…\"] for one).",
                  "type": "array",
                  "minItems": 1,
                  "items": { "type": ["string", "number", "boolean"] },
                  "examples": [["/usr/bin/iperf3", "--server"]]
                },
                "env": {
                  "description": "Environment variables added to topo's own (TOPO_PROFILE, TOPO_WORKLOAD, TOPO_CPUS, …); a value here replaces topo's of the same name.",
                  "type": "object",
                  "propertyNames": { "pattern": "^[A-Za-z_][A-Za-z0-9_]{0,255}$" },
                  "additionalProperties": { "type": ["string", "number", "boolean"] }
                },
                "workdir": { "description": "The working directory, an absolute path.", "type": "string", "pattern": "^/" },
                "user": {
                  "description": "Run as this user: a name, a uid, or uid:gid. Without it the command runs as 65534:65534 (nobody), which owns nothing on the host; root only as user: root (or 0), and then with /proc/sys, /sys and the host's /run out of its reach. Either way it keeps only the capabilities listed.",
                  "type": ["string", "integer"],
                  "examples": ["nobody", "65534:65534"]
                },
                "capabilities": {
                  "description": "Capabilities the command keeps; every other one is dropped.",
                  "type": "array",
                  "items": { "type": "string", "pattern": "^(CAP_)?[A-Z_]+$" },
                  "examples": [["NET_RAW"]]
                },
                "runtime": {
                  "description": "process (the default): topo starts the command itself. crun, runc: an OCI bundle topo makes. podman: an image from podman's storage.",
                  "enum": ["process", "crun", "runc", "podman"]
                },
                "image": {
                  "description": "For crun, runc and podman: the root filesystem directory, / for the host's, an OCI layout, or (podman) an image reference.",
                  "type": "string"
                }
              },
              "additionalProperties": false
            },
            "link": {
              "description": "A veth pair between two workloads, with addresses from subnet (by default a free /30 of 10.77.0.0/16).",
              "type": "object",
              "required": ["between"],
              "properties": {
                "between": {
                  "description": "The two workloads it joins; each reaches the other by its name.",
                  "type": "array",
                  "minItems": 2,
                  "maxItems": 2,
                  "items": { "type": "string", "pattern": "^[a-z][a-z0-9-]{0,11}$" }
                },
                "subnet": {
                  "description": "The link's IPv4 subnet; its first two host addresses go to the two ends.",
                  "type": "string",
                  "pattern": "^[0-9]{1,3}(\\.[0-9]{1,3}){3}/[0-9]{1,2}$",
                  "examples": ["10.77.5.0/30"]
                },
                "mtu": { "description": "The MTU of both ends.", "type": "integer", "minimum": 68, "maximum": 65535 },
                "netem": { "$ref": "#/$defs/netem" }
              },
              "additionalProperties": false
            },
            "netem": {
              "description": "tc netem shaping, on both ends unless from names one.",
              "type": ["object", "null"],
              "properties": {
                "from": { "description": "Shape only packets this workload sends.", "type": "string", "pattern": "^[a-z][a-z0-9-]{0,11}$" },
                "rate": { "$ref": "#/$defs/rate" },
                "delay": { "description": "Added one-way delay (the mean when jitter is given).", "$ref": "#/$defs/duration" },
                "jitter": { "description": "Random variation of the delay; without a delay, the delay is the jitter.", "$ref": "#/$defs/duration" },
                "distribution": { "description": "The jitter's distribution (needs jitter).", "enum": ["uniform", "normal", "pareto", "paretonormal"] },
                "loss": { "description": "Packets dropped.", "$ref": "#/$defs/percent" },
                "duplicate": { "description": "Packets sent twice.", "$ref": "#/$defs/percent" },
                "reorder": { "description": "Packets sent at once instead of delayed (needs a delay).", "$ref": "#/$defs/percent" },
                "corrupt": { "description": "Packets with one bit flipped.", "$ref": "#/$defs/percent" },
                "limit": { "description": "The queue's length in packets (by default sized from rate × delay).", "type": "integer", "minimum": 1, "maximum": 4294967295 }
              },
              "additionalProperties": false
            }
          }
        }
        """#
}
