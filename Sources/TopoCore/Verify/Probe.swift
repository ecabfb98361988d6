import CNuma
import CTopoShim
import Foundation

/// The measurements `verify --active` makes from inside a workload: `topo __probe KIND` runs them,
/// started through the workload's runtime like `topo exec`, so each sees the workload's cgroup, CPUs,
/// memory policy, namespace, user and capabilities. Each prints one JSON object and is bounded in time
/// (an alarm ends it) and in memory (the verifier sizes its buffer).
public enum Probe {
    // MARK: memory placement

    public struct MemoryResult: Codable, Equatable, Sendable {
        public var pages: Int
        /// Pages per NUMA node, as move_pages(2) reports where they are.
        public var nodes: [String: Int]
        /// Pages the kernel could not place (a negative status).
        public var unplaced: Int
    }

    /// Maps `bytes` of anonymous memory, writes to every page (so the memory policy places it), then asks
    /// the kernel which node holds each page (move_pages with no target nodes only reports).
    public static func memory(bytes: Int) -> Result<MemoryResult, SystemError> {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let count = max(1, bytes / page)
        guard let base = mmap(nil, count * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
            base != MAP_FAILED
        else {
            return .failure(SystemError("mmap a buffer of", "\(count * page) bytes", errno: errno))
        }
        defer { munmap(base, count * page) }
        var pages: [UnsafeMutableRawPointer?] = (0..<count).map { i in
            let p = base + i * page
            p.storeBytes(of: UInt8(truncatingIfNeeded: i | 1), as: UInt8.self)
            return p
        }
        var status = [Int32](repeating: -1, count: count)
        guard numa_move_pages(0, UInt(count), &pages, nil, &status, 0) == 0 else {
            return .failure(SystemError("move_pages (query) for", "\(count) pages", errno: errno))
        }
        var nodes: [String: Int] = [:]
        var unplaced = 0
        for s in status {
            if s >= 0 { nodes[String(s), default: 0] += 1 } else { unplaced += 1 }
        }
        return .success(MemoryResult(pages: count, nodes: nodes, unplaced: unplaced))
    }

    // MARK: CPU placement

    public struct CPUResult: Codable, Equatable, Sendable {
        /// sched_getaffinity: where the kernel allows the probe to run.
        public var affinity: CPUSet
        /// Where its spinning threads were seen running (sched_getcpu), one thread per allowed CPU.
        public var ran: CPUSet
    }

    public static func cpu(milliseconds: Int) -> Result<CPUResult, SystemError> {
        guard let mask = numa_allocate_cpumask() else {
            return .failure(SystemError("allocate a CPU mask", "libnuma", errno: ENOMEM))
        }
        defer { numa_bitmask_free(mask) }
        guard numa_sched_getaffinity(0, mask) >= 0 else {
            return .failure(SystemError("sched_getaffinity", "self", errno: errno))
        }
        let allowed = (0..<Int(mask.pointee.size)).filter { numa_bitmask_isbitset(mask, UInt32($0)) != 0 }
        let affinity = CPUSet(allowed)
        let seen = SeenCPUs()
        let deadline = monotonicNanoseconds() + UInt64(milliseconds) * 1_000_000
        let threads = min(max(allowed.count, 1), 256)
        DispatchQueue.concurrentPerform(iterations: threads) { _ in
            var mine = Set<Int32>()
            while monotonicNanoseconds() < deadline { mine.insert(topo_sched_getcpu()) }
            seen.add(mine)
        }
        return .success(CPUResult(affinity: affinity, ran: CPUSet(seen.cpus.filter { $0 >= 0 }.map(Int.init))))
    }

    private final class SeenCPUs: @unchecked Sendable {
        private let lock = NSLock()
        private var set = Set<Int32>()
        func add(_ s: Set<Int32>) {
            lock.lock()
            set.formUnion(s)
            lock.unlock()
        }
        var cpus: Set<Int32> {
            lock.lock()
            defer { lock.unlock() }
            return set
        }
    }

    // MARK: links

    /// Round trips and throughput measured from one end of a link to the other.
    public struct LinkResult: Codable, Equatable, Sendable {
        public var sent: Int
        public var received: Int
        /// Round-trip times of the echoed datagrams, in microseconds: 10th, 50th and 90th percentile.
        public var rttMicroseconds: [Double]
        /// TCP throughput to the far end, measured by the receiver after a warm-up; nil when not asked.
        public var bitsPerSecond: Double?
        /// The same measured over this namespace's loopback: what the host can carry at all.
        public var loopbackBitsPerSecond: Double?
    }

    /// The far end of a link probe: echoes every UDP datagram and sinks TCP connections on one port,
    /// answering each connection's end with `{"bitsPerSecond": …}`. Prints `{"port": P}` once it listens.
    public static func serve(warmup: Double) -> Never {
        var udp: Int32 = -1
        var tcp: Int32 = -1
        var port: UInt16 = 0
        // An ephemeral UDP port, then the same number for TCP (tried again where another holds it).
        for attempt in 1...32 {
            udp = socket(AF_INET, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            tcp = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard udp >= 0, tcp >= 0 else { fail("socket", errno) }
            var udpAddress = sockaddr_in(family: AF_INET, port: 0, address: 0)
            guard bindAddress(udp, &udpAddress) == 0 else { fail("bind a UDP port", errno) }
            port = boundPort(udp)
            var one: Int32 = 1
            setsockopt(tcp, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
            var tcpAddress = sockaddr_in(family: AF_INET, port: port, address: 0)
            if bindAddress(tcp, &tcpAddress) == 0 { break }
            let e = errno
            close(udp)
            close(tcp)
            if attempt == 32 { fail("bind TCP port \(port)", e) }
        }
        guard listen(tcp, 4) == 0 else { fail("listen", errno) }
        print("{\"port\": \(port)}")
        fflush(nil)
        var buffer = [UInt8](repeating: 0, count: 1 << 18)
        var connection: Int32 = -1
        var sink = Sink(warmup: warmup)
        while true {
            var fds = [
                pollfd(fd: udp, events: Int16(POLLIN), revents: 0), pollfd(fd: tcp, events: Int16(POLLIN), revents: 0),
                pollfd(fd: connection, events: Int16(POLLIN), revents: 0),
            ]
            guard poll(&fds, connection >= 0 ? 3 : 2, -1) >= 0 || errno == EINTR else { fail("poll", errno) }
            if fds[0].revents & Int16(POLLIN) != 0 {
                var from = sockaddr_in()
                var length = socklen_t(MemoryLayout<sockaddr_in>.size)
                let n = withUnsafeMutablePointer(to: &from) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                        recvfrom(udp, &buffer, buffer.count, 0, $0, &length)
                    }
                }
                if n == Self.bye.count && Array(buffer[0..<n]) == Self.bye { exit(0) }  // the near end is done
                if n > 0 {
                    _ = withUnsafePointer(to: &from) {
                        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                            sendto(udp, buffer, n, Int32(MSG_NOSIGNAL), $0, length)
                        }
                    }
                }
            }
            if fds[1].revents & Int16(POLLIN) != 0 {
                let c = accept(tcp, nil, nil)
                if c >= 0 {
                    if connection >= 0 { close(connection) }
                    connection = c
                    sink = Sink(warmup: warmup)
                }
            }
            if connection >= 0 && fds[2].revents & Int16(POLLIN | POLLHUP | POLLERR) != 0 {
                let n = read(connection, &buffer, buffer.count)
                if n > 0 {
                    sink.received(n)
                } else if n == 0 || errno != EINTR {
                    let answer = Array("{\"bitsPerSecond\": \(sink.bitsPerSecond)}\n".utf8)
                    _ = send(connection, answer, answer.count, Int32(MSG_NOSIGNAL))
                    close(connection)
                    connection = -1
                }
            }
        }
    }

    /// The datagram that ends a far end (its alarm ends it otherwise): a runtime's `exec` may not pass
    /// on the kill its caller gets.
    static let bye = Array("topo-probe-bye".utf8)

    /// Counts what a receiver gets after a warm-up from its first byte (TCP's slow start left out).
    struct Sink {
        var warmup: Double
        var first: UInt64 = 0
        var counting: UInt64 = 0
        var bytes = 0
        init(warmup: Double) { self.warmup = warmup }

        mutating func received(_ n: Int) {
            let now = monotonicNanoseconds()
            if first == 0 { first = now }
            if counting == 0 {
                if Double(now - first) / 1e9 >= warmup { counting = now }
            } else {
                bytes += n
            }
        }

        var bitsPerSecond: Double {
            guard counting > 0 else { return 0 }
            let seconds = Double(monotonicNanoseconds() - counting) / 1e9
            return seconds > 0 ? Double(bytes) * 8 / seconds : 0
        }
    }

    /// The near end: `count` datagrams `interval` apart to `address:port` and their echoes, then, with
    /// `rateSeconds` > 0, TCP at full speed to the same port and, as a yardstick, over the loopback.
    public static func link(
        to address: IPv4Address, port: UInt16, count: Int, intervalMicroseconds: Int, rateSeconds: Double,
        warmup: Double
    ) -> Result<LinkResult, SystemError> {
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return .failure(SystemError("socket", "udp", errno: errno)) }
        defer { close(fd) }
        var peer = sockaddr_in(family: AF_INET, port: port, address: address.value)
        guard connectAddress(fd, &peer) == 0 else {
            return .failure(SystemError("connect udp to", "\(address):\(port)", errno: errno))
        }
        var rtts: [UInt64?] = Array(repeating: nil, count: count)
        var packet = [UInt8](repeating: 0, count: 64)
        var maxRTT: UInt64 = 0
        func receive(until deadline: UInt64) {
            while true {
                let now = monotonicNanoseconds()
                let wait = deadline > now ? Int32((deadline - now + 999_999) / 1_000_000) : 0
                var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                guard poll(&p, 1, wait) > 0 else { if monotonicNanoseconds() >= deadline { return } else { continue } }
                var reply = [UInt8](repeating: 0, count: 64)
                let n = recv(fd, &reply, reply.count, Int32(MSG_DONTWAIT))
                guard n >= 12 else { continue }
                let arrived = monotonicNanoseconds()
                let seq = reply.withUnsafeBytes { Int($0.loadUnaligned(fromByteOffset: 0, as: UInt32.self)) }
                let sentAt = reply.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 4, as: UInt64.self) }
                if seq < count, rtts[seq] == nil, arrived >= sentAt {
                    rtts[seq] = arrived - sentAt
                    maxRTT = max(maxRTT, arrived - sentAt)
                }
            }
        }
        let start = monotonicNanoseconds()
        for i in 0..<count {
            receive(until: start + UInt64(i * intervalMicroseconds) * 1_000)
            let now = monotonicNanoseconds()
            packet.withUnsafeMutableBytes {
                $0.storeBytes(of: UInt32(i), toByteOffset: 0, as: UInt32.self)
                $0.storeBytes(of: now, toByteOffset: 4, as: UInt64.self)
            }
            _ = send(fd, packet, packet.count, Int32(MSG_NOSIGNAL))
        }
        receive(until: monotonicNanoseconds() + max(1_000_000_000, 4 * maxRTT))
        defer { for _ in 0..<3 { _ = send(fd, Self.bye, Self.bye.count, Int32(MSG_NOSIGNAL)) } }
        let got = rtts.compactMap { $0 }.sorted()
        func percentile(_ q: Double) -> Double {
            got.isEmpty ? 0 : Double(got[min(got.count - 1, Int(Double(got.count) * q))]) / 1000
        }
        var result = LinkResult(
            sent: count, received: got.count, rttMicroseconds: [percentile(0.1), percentile(0.5), percentile(0.9)])
        if rateSeconds > 0 {
            switch throughput(to: address, port: port, seconds: rateSeconds) {
            case .success(let bps): result.bitsPerSecond = bps
            case .failure(let e): return .failure(e)
            }
            result.loopbackBitsPerSecond = try? loopbackThroughput(seconds: min(rateSeconds, 1.5), warmup: warmup).get()
        }
        return .success(result)
    }

    /// Sends zeros over TCP for `seconds`, then reads the receiver's measurement.
    static func throughput(to address: IPv4Address, port: UInt16, seconds: Double) -> Result<Double, SystemError> {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return .failure(SystemError("socket", "tcp", errno: errno)) }
        defer { close(fd) }
        var peer = sockaddr_in(family: AF_INET, port: port, address: address.value)
        guard connectAddress(fd, &peer) == 0 else {
            return .failure(SystemError("connect tcp to", "\(address):\(port)", errno: errno))
        }
        let chunk = [UInt8](repeating: 0, count: 1 << 16)
        let end = monotonicNanoseconds() + UInt64(seconds * 1e9)
        while monotonicNanoseconds() < end {
            if send(fd, chunk, chunk.count, Int32(MSG_NOSIGNAL)) < 0 && errno != EINTR {
                return .failure(SystemError("send tcp to", "\(address):\(port)", errno: errno))
            }
        }
        shutdown(fd, Int32(SHUT_WR))
        var answer = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 256)
        while true {
            let n = read(fd, &buffer, buffer.count)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            answer += buffer[0..<n]
        }
        guard let reply = try? JSONDecoder().decode([String: Double].self, from: Data(answer)),
            let bps = reply["bitsPerSecond"]
        else {
            return .failure(SystemError("read the receiver's measurement from", "\(address):\(port)", errno: EPROTO))
        }
        return .success(bps)
    }

    /// TCP over 127.0.0.1 inside the probe: a receiver thread and this sender, on the workload's CPUs.
    static func loopbackThroughput(seconds: Double, warmup: Double) -> Result<Double, SystemError> {
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard listener >= 0 else { return .failure(SystemError("socket", "loopback", errno: errno)) }
        var local = sockaddr_in(family: AF_INET, port: 0, address: 0x7f00_0001)
        guard bindAddress(listener, &local) == 0, listen(listener, 1) == 0 else {
            let e = errno
            close(listener)
            return .failure(SystemError("listen on", "127.0.0.1", errno: e))
        }
        let port = boundPort(listener)
        let receiver = Thread {
            let c = accept(listener, nil, nil)
            close(listener)
            guard c >= 0 else { return }
            var sink = Sink(warmup: warmup)
            var buffer = [UInt8](repeating: 0, count: 1 << 18)
            while true {
                let n = read(c, &buffer, buffer.count)
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { break }
                sink.received(n)
            }
            let answer = Array("{\"bitsPerSecond\": \(sink.bitsPerSecond)}\n".utf8)
            _ = send(c, answer, answer.count, Int32(MSG_NOSIGNAL))
            close(c)
        }
        receiver.start()
        return throughput(to: IPv4Address(0x7f00_0001), port: port, seconds: seconds)
    }

    // MARK: plumbing

    static func monotonicNanoseconds() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }

    static func bindAddress(_ fd: Int32, _ a: inout sockaddr_in) -> Int32 {
        withUnsafePointer(to: &a) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
    }

    static func connectAddress(_ fd: Int32, _ a: inout sockaddr_in) -> Int32 {
        withUnsafePointer(to: &a) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
    }

    static func boundPort(_ fd: Int32) -> UInt16 {
        var a = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &a) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return UInt16(bigEndian: a.sin_port)
    }

    /// A probe that cannot measure says why on stderr and exits 1.
    static func fail(_ what: String, _ err: Int32) -> Never {
        FileHandle.standardError.write(Data("topo probe: \(what): \(String(cString: strerror(err)))\n".utf8))
        exit(1)
    }
}

extension sockaddr_in {
    /// An IPv4 socket address from host-order values.
    init(family: Int32, port: UInt16, address: UInt32) {
        self.init()
        sin_family = sa_family_t(family)
        sin_port = port.bigEndian
        sin_addr = in_addr(s_addr: address.bigEndian)
    }
}
