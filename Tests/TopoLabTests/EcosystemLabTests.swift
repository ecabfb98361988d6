import Foundation
import Testing
import TopoCore

/// The dry run against the real apply, and completion of what is applied, on a real kernel.
extension LabTests {
    @Suite struct EcosystemLabTests {
        /// The step lines of a dry run or a verbose apply: from the first numbered step to the last line
        /// that belongs to a step (a number, or the continuation indent).
        func steps(_ output: String) -> [String] {
            output.split(separator: "\n").map(String.init).filter { line in
                let t = line.drop { $0 == " " }
                if line.hasPrefix("      ") { return true }
                guard line.hasPrefix(" "), let dot = t.firstIndex(of: ".") else { return false }
                return Int(t[..<dot]) != nil
            }
        }

        /// `apply --dry-run` then `apply -v`: the same steps, and the kernel holds what each names — every
        /// file holds the value written, every cgroup and namespace is there with topo's mark, every
        /// address and qdisc is on its interface, every workload runs.
        @Test func dryRunAndVerboseApplyNameTheSameStepsAndTheKernelHoldsThem() throws {
            let path = try Lab.profile(
                "dry",
                """
                version: 1
                name: dry
                workloads:
                  a: { cpus: { count: 1 }, memory: { max: 96M }, pids: 77, run: { command: ["/bin/sleep", "1041"] } }
                  b: { cpus: { count: 1 }, isolation: shared, cpu: { weight: 50 }, run: { command: ["/bin/sleep", "1041"], capabilities: [NET_RAW] } }
                links:
                  - { between: [a, b], mtu: 1400, netem: { delay: 2ms, loss: 1% } }
                """)
            let dry = try Lab.topo("apply", "--dry-run", path)
            #expect(dry.status == 0, "\(dry)")
            #expect(
                !FileManager.default.fileExists(atPath: "/sys/fs/cgroup/topo/dry")
                    && !FileManager.default.fileExists(atPath: "/run/topo/dry"))
            let applied = try Lab.topo("apply", "-v", path)
            #expect(applied.status == 0, "\(applied)")
            defer { _ = try? Lab.topo("down", "dry") }
            let planned = steps(dry.stdout)
            let done = steps(applied.stdout)
            #expect(planned.count >= 20)
            #expect(
                planned == done,
                "dry run and -v differ:\n\(planned.joined(separator: "\n"))\n---\n\(done.joined(separator: "\n"))")

            var checked = 0
            for line in done.map({ $0.trimmingCharacters(in: .whitespaces) }) {
                let body = line.drop { $0.isNumber || $0 == "." || $0 == " " }
                if body.hasPrefix("write \""), !body.contains("conditional"), let to = body.range(of: "\" to ") {
                    let value = String(body[body.index(body.startIndex, offsetBy: 7)..<to.lowerBound])
                    let file = String(body[to.upperBound...])
                    let kernel = (Lab.read(file) ?? "?").trimmingCharacters(in: .whitespacesAndNewlines)
                    if file.hasSuffix("cgroup.subtree_control") {
                        let enabled = Set(kernel.split(separator: " ").map(String.init))
                        #expect(
                            Set(value.split(separator: " ").map { String($0.dropFirst()) }).isSubset(of: enabled),
                            "\(file): \(kernel)")
                    } else {
                        #expect(kernel == value, "\(file) holds \(kernel), the step wrote \(value)")
                    }
                    checked += 1
                } else if body.hasPrefix("mkdir "), let comma = body.firstIndex(of: ","),
                    let mark = body.range(of: "trusted.topo.owner=")
                {
                    let dir = String(body[body.index(body.startIndex, offsetBy: 6)..<comma])
                    let owner = String(body[mark.upperBound...].prefix { $0 != " " })
                    var isDirectory: ObjCBool = false
                    #expect(
                        FileManager.default.fileExists(atPath: dir, isDirectory: &isDirectory) && isDirectory.boolValue,
                        "\(dir)")
                    // The hosts files' filesystem may keep no extended attributes; topo's cgroups always carry the mark.
                    let mark = Sys.getxattr(dir, "trusted.topo.owner")
                    #expect(
                        mark == owner || (mark == nil && dir.hasPrefix("/etc/")),
                        "\(dir) is marked \(mark ?? "nothing"), not \(owner)")
                    checked += 1
                } else if body.hasPrefix("create network namespace "), let comma = body.firstIndex(of: ",") {
                    let name = String(body[body.index(body.startIndex, offsetBy: 25)..<comma])
                    #expect(FileManager.default.fileExists(atPath: "/run/netns/\(name)"), "\(name)")
                    checked += 1
                } else if body.hasPrefix("add address "), let on = body.range(of: " to "),
                    let inNS = body.range(of: " in ")
                {
                    let address = String(body[body.index(body.startIndex, offsetBy: 12)..<on.lowerBound])
                    let interface = String(body[on.upperBound..<inNS.lowerBound])
                    let ns = String(body[inNS.upperBound...].prefix { $0 != "," })
                    let shown = try Lab.run("ip", ["-n", ns, "-o", "addr", "show", "dev", interface]).stdout
                    #expect(shown.contains("inet \(address)"), "\(ns) \(interface): \(shown)")
                    checked += 1
                } else if body.hasPrefix("add root qdisc netem on "), let inNS = body.range(of: " in ") {
                    let interface = String(body[body.index(body.startIndex, offsetBy: 24)..<inNS.lowerBound])
                    let ns = String(body[inNS.upperBound...].prefix { $0 != " " })
                    let shown = try Lab.run("tc", ["-n", ns, "qdisc", "show", "dev", interface]).stdout
                    #expect(
                        shown.contains("netem") && shown.contains("delay 2ms") && shown.contains("loss 1%"),
                        "\(ns) \(interface): \(shown)")
                    checked += 1
                } else if body.hasPrefix("start workload ") {
                    checked += 1
                }
            }
            #expect(checked >= 20, "only \(checked) steps were checked against the kernel")
            #expect(Lab.processes(containing: "sleep 1041").count == 2)
        }

        /// `topo down <TAB>` in bash, with two profiles applied, offers both names.
        @Test func bashCompletesTheAppliedProfiles() throws {
            for name in ["compa", "compb"] {
                let path = try Lab.profile(
                    name,
                    "version: 1\nname: \(name)\nworkloads:\n  w: { cpus: { count: 1 }, isolation: shared, run: { command: [\"/bin/sleep\", \"1043\"] } }\n"
                )
                #expect(try Lab.topo("apply", path).status == 0)
            }
            defer { for name in ["compa", "compb"] { _ = try? Lab.topo("down", name) } }
            let script = try Lab.topo("--generate-completion-script", "bash").stdout
            let file = "/tmp/topo-completion-\(getpid()).bash"
            try script.write(toFile: file, atomically: false, encoding: .utf8)
            defer { try? FileManager.default.removeItem(atPath: file) }
            let bin = URL(fileURLWithPath: Lab.topo).deletingLastPathComponent().path
            func complete(_ line: String) throws -> [String] {
                let r = try Lab.run(
                    "/bin/bash",
                    [
                        "-c",
                        """
                        source \(file)
                        PATH=\(bin):$PATH
                        read -ra COMP_WORDS <<< '\(line)'; [[ '\(line)' == *' ' ]] && COMP_WORDS+=('')
                        COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); COMP_LINE='\(line)'; COMP_POINT=${#COMP_LINE}
                        _topo topo "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
                        printf '%s\\n' "${COMPREPLY[@]}"
                        """,
                    ])
                return r.stdout.split(separator: "\n").map(String.init)
            }
            let names = try complete("topo down ")
            #expect(names.contains("compa") && names.contains("compb"), "\(names)")
            #expect(try complete("topo verify compb").first == "compb", "topo verify compb<TAB>")
            #expect(try complete("topo exec compa ") == ["w"])
        }

        /// `--cgroup-root` and `--state-dir` for another layout: the hierarchy mounted a second time elsewhere,
        /// and state in another directory. Every command finds the profile there; the kernel puts the
        /// workload in the same cgroup; nothing lands in /run/topo; `down` leaves both places empty.
        @Test func anotherCgroupMountAndStateDirectory() throws {
            let mount = "/tmp/topo-cg2-\(getpid())"
            let state = "/tmp/topo-state-\(getpid())"
            try FileManager.default.createDirectory(atPath: mount, withIntermediateDirectories: true)
            defer {
                try? FileManager.default.removeItem(atPath: mount)
                try? FileManager.default.removeItem(atPath: state)
            }
            #expect(try Lab.run("mount", ["-t", "cgroup2", "none", mount]).status == 0)
            defer { _ = try? Lab.run("umount", [mount]) }
            let paths = ["--cgroup-root", mount, "--state-dir", state]
            let path = try Lab.profile(
                "elsewhere",
                """
                version: 1
                name: elsewhere
                workloads:
                  app: { cpus: { count: 1 }, memory: { max: 32M }, run: { command: ["/bin/sleep", "1047"] } }
                """)
            let apply = try Lab.run(Lab.topo, ["apply", path] + paths)
            #expect(apply.status == 0, "\(apply)")
            defer { _ = try? Lab.run(Lab.topo, ["down", "elsewhere"] + paths) }
            #expect(FileManager.default.fileExists(atPath: "\(state)/elsewhere/journal.jsonl"))
            #expect(!FileManager.default.fileExists(atPath: "/run/topo/elsewhere"))
            // The same hierarchy: the workload's cgroup is seen at both mounts, with its limit.
            #expect(Lab.read("\(mount)/topo/elsewhere/app/memory.max") == "33554432\n")
            let pids = try #require(Lab.read("\(mount)/topo/elsewhere/app/cgroup.procs")).split(separator: "\n")
                .compactMap { Int32($0) }
            #expect(pids.count == 1)
            #expect(Lab.read("/proc/\(pids.first ?? 0)/cgroup") == "0::/topo/elsewhere/app\n")
            // the default state directory knows nothing of it
            #expect(try Lab.topo("status").stdout == "nothing is applied\n")
            let status = try Lab.run(Lab.topo, ["status", "elsewhere", "--json"] + paths)
            #expect(status.status == 0 && status.stdout.contains("\"state\" : \"running\""), "\(status)")
            #expect(try Lab.run(Lab.topo, ["verify", "elsewhere"] + paths).status == 0)
            let logs = try Lab.run(Lab.topo, ["logs", "elsewhere", "app", "--json"] + paths)
            #expect(logs.status == 0, "\(logs)")
            let down = try Lab.run(Lab.topo, ["down", "elsewhere"] + paths)
            #expect(down.status == 0, "\(down)")
            #expect(
                !FileManager.default.fileExists(atPath: "\(mount)/topo/elsewhere")
                    && !FileManager.default.fileExists(atPath: "\(state)/elsewhere"))
            #expect(Lab.processes(containing: "sleep 1047") == [])
            // Not a cgroup v2 directory: refused before anything is made.
            let refused = try Lab.run(Lab.topo, ["apply", path, "--cgroup-root", "/tmp", "--state-dir", state])
            #expect(
                refused.status == 3 && refused.stderr.contains("/tmp is not a directory of a cgroup v2 filesystem"),
                "\(refused)")
        }

        /// `--cgroup-root` a cgroup made beforehand below the hierarchy's root, its controllers enabled:
        /// apply, verify (every check passes: a process's /proc/PID/cgroup names its cgroup from the
        /// hierarchy's root, above topo's cgroup root) and down, which leaves that cgroup as it found it.
        @Test func aCgroupRootBelowTheHierarchysRootVerifiesAndIsLeftAsFound() throws {
            let root = "/sys/fs/cgroup"
            let name = "somewhere-\(getpid())"
            let somewhere = "\(root)/\(name)"
            let state = "/tmp/topo-below-state-\(getpid())"
            let words = { (path: String) in
                Set((Lab.read(path) ?? "").split(whereSeparator: \.isWhitespace).map(String.init))
            }
            let rootBefore = words("\(root)/cgroup.subtree_control")
            try "+cpuset +cpu +memory +pids".write(
                toFile: "\(root)/cgroup.subtree_control", atomically: false, encoding: .utf8)
            try FileManager.default.createDirectory(atPath: somewhere, withIntermediateDirectories: false)
            defer {
                try? FileManager.default.removeItem(atPath: somewhere)  // rmdir of an empty cgroup
                let added = words("\(root)/cgroup.subtree_control").subtracting(rootBefore)
                if !added.isEmpty {
                    try? added.map { "-\($0)" }.joined(separator: " ").write(
                        toFile: "\(root)/cgroup.subtree_control", atomically: false, encoding: .utf8)
                }
                try? FileManager.default.removeItem(atPath: state)
            }
            try "+cpuset +memory".write(
                toFile: "\(somewhere)/cgroup.subtree_control", atomically: false, encoding: .utf8)
            let found = words("\(somewhere)/cgroup.subtree_control")
            #expect(found == ["cpuset", "memory"])
            let paths = ["--cgroup-root", somewhere, "--state-dir", state]
            let path = try Lab.profile(
                "below",
                """
                version: 1
                name: below
                workloads:
                  app: { cpus: { count: 1 }, memory: { max: 32M }, pids: 64, run: { command: ["/bin/sleep", "1063"] } }
                """)
            let apply = try Lab.run(Lab.topo, ["apply", path] + paths)
            #expect(apply.status == 0, "\(apply)")
            defer { _ = try? Lab.run(Lab.topo, ["down", "below"] + paths) }
            let pid = try #require(Lab.pids(inCgroup: "\(somewhere)/topo/below/app").first)
            #expect(Lab.read("/proc/\(pid)/cgroup") == "0::/\(name)/topo/below/app\n")
            let verify = try Lab.run(Lab.topo, ["verify", "below", "--json"] + paths)
            #expect(verify.status == 0, "\(verify)")
            #expect(verify.stdout.contains("\"tasks.escaped\""), "\(verify.stdout)")
            let down = try Lab.run(Lab.topo, ["down", "below"] + paths)
            #expect(down.status == 0, "\(down)")
            #expect(Sys.isDirectory(somewhere) && words("\(somewhere)/cgroup.subtree_control") == found)
            #expect(Sys.subdirectories(somewhere).isEmpty && Lab.processes(containing: "sleep 1063") == [])
        }
    }
}
