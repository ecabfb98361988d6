/// Text renderings of a host and a plan for the terminal: a table and a picture of every CPU.
public enum TopologyPicture {
    /// Per NUMA node, each physical core as one cell with its sibling threads side by side:
    /// `[ 0 S  16 S]` is core 0 with threads 0 and 16, both given to the workload tagged S.
    /// With `style` enabled, each workload's CPUs and legend entry have the workload's colour.
    public static func render(
        host: HostTopology, plan: Plan? = nil, width: Int = 80, style: TextStyle = .plain
    ) -> String {
        var tags: [String: Character] = [:]
        var colors: [Character: Int] = [:]
        var legend: [String] = []
        if let plan {
            tags = Self.tags(plan.workloads.map(\.name))
            for (i, w) in plan.workloads.enumerated() { colors[tags[w.name]!] = i }
            legend = plan.workloads.enumerated().map { style.workload("\(tags[$1.name]!) \($1.name)", index: $0) }
        }
        var owner: [Int: Character] = [:]
        for w in plan?.workloads ?? [] {
            for cpu in w.cpus { owner[cpu] = owner[cpu] == nil ? tags[w.name]! : "*" }
        }
        let digits = String(host.cpus.last?.id ?? 0).count
        func mark(_ cpu: Int) -> Character {
            if let o = owner[cpu] { return o }
            if plan?.reserved.contains(cpu) == true { return "#" }
            if plan?.idle.contains(cpu) == true { return "~" }
            return "."
        }
        func pad(_ n: Int) -> String { String(repeating: " ", count: digits - String(n).count) + String(n) }

        var lines: [String] = []
        for node in host.nodes {
            var header = "node \(node.id)"
            let cores = host.cores.filter { $0.isSubset(of: node.cpus) && !$0.isEmpty }
            if node.isMemoryOnly {
                header += " · memory only"
            } else {
                header +=
                    " · \(cores.count) core\(cores.count == 1 ? "" : "s") · \(node.cpus.count) CPU\(node.cpus.count == 1 ? "" : "s")"
            }
            if let mem = node.memTotal { header += " · \(mem.approximate)" }
            if !node.distances.isEmpty {
                header += " · distances \(node.distances.map(String.init).joined(separator: " "))"
            }
            lines.append(header)
            // Each cell as shown and its width on screen (escape codes take none).
            let cells = cores.map { core -> (text: String, width: Int) in
                let parts = core.map { cpu -> (String, Int) in
                    let m = mark(cpu)
                    let plain = "\(pad(cpu)) \(m)"
                    return (colors[m].map { style.workload(plain, index: $0) } ?? plain, plain.count)
                }
                return (
                    "[" + parts.map(\.0).joined(separator: "  ") + "]",
                    parts.map(\.1).reduce(0, +) + 2 * (parts.count - 1) + 2
                )
            }
            var line = " "
            var lineWidth = 1
            for cell in cells {
                if lineWidth + cell.width + 1 > width && lineWidth > 1 {
                    lines.append(line)
                    line = " "
                    lineWidth = 1
                }
                line += " " + cell.text
                lineWidth += 1 + cell.width
            }
            if lineWidth > 1 { lines.append(line) }
        }
        let offline = host.allCPUs.subtracting(host.onlineCPUs)
        if !offline.isEmpty { lines.append("offline CPUs: \(offline)") }
        var keys = legend
        if plan != nil {
            if owner.values.contains("*") { keys.append("* shared") }
            if !(plan?.reserved.isEmpty ?? true) { keys.append("# reserved") }
            if !(plan?.idle.isEmpty ?? true) { keys.append("~ idle sibling") }
            keys.append(". free")
            lines.append("legend: " + keys.joined(separator: "  "))
        }
        return lines.joined(separator: "\n")
    }

    /// One distinct capital letter per workload: its initial when free, else another of its letters, else the alphabet.
    static func tags(_ names: [String]) -> [String: Character] {
        var used = Set<Character>()
        var result: [String: Character] = [:]
        for name in names {
            let candidates =
                name.uppercased().filter { $0.isLetter || $0.isNumber } + "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
            let tag = candidates.first { !used.contains($0) } ?? "?"
            used.insert(tag)
            result[name] = tag
        }
        return result
    }

    /// The plan as a table of workloads and links.
    public static func table(_ plan: Plan) -> String {
        var rows = [["WORKLOAD", "CPUS", "NODES", "MEMORY", "ISOLATION", "LIMITS"]]
        for w in plan.workloads {
            let memory = w.memoryPolicy == .local ? "local" : "\(w.memoryPolicy.rawValue) \(w.policyNodes)"
            let limits = w.cgroup.filter { $0.controller != .cpuset }.map { "\($0.file)=\(human($0))" }.joined(
                separator: " ")
            rows.append([
                w.name, w.cpus.description, w.cpuNodes.description, memory, w.isolation.rawValue,
                limits.isEmpty ? "-" : limits,
            ])
        }
        var text = columns(rows)
        if !plan.links.isEmpty {
            var linkRows = [["LINK", "SUBNET", "MTU", "SHAPING"]]
            for l in plan.links {
                let shaping =
                    l.shaping.isEmpty
                    ? "none"
                    : l.shaping.map { s in
                        "\(s.from)→\(s.to): " + s.netem.summary
                    }.joined(separator: "; ")
                linkRows.append([
                    "\(l.between[0])↔\(l.between[1])", l.subnet.description + (l.subnetChosen ? " (auto)" : ""),
                    String(l.mtu), shaping,
                ])
            }
            text += "\n\n" + columns(linkRows)
        }
        return text
    }

    static func human(_ s: CgroupSetting) -> String {
        s.humanValue.contains(" ") ? "\"\(s.humanValue)\"" : s.humanValue
    }

    public static func columns(_ rows: [[String]]) -> String {
        var widths = [Int](repeating: 0, count: rows.map(\.count).max() ?? 0)
        for row in rows { for (i, cell) in row.enumerated() { widths[i] = max(widths[i], cell.count) } }
        return rows.map { row in
            row.enumerated().map { i, cell in
                i == row.count - 1 ? cell : cell + String(repeating: " ", count: widths[i] - cell.count)
            }
            .joined(separator: "  ")
        }.joined(separator: "\n")
    }
}
