import CTopoShim
import Foundation

/// What the kernel says about a netem qdisc (its rtnetlink dump), typed, and how it differs from a plan.
public enum NetemReadback {
    /// A netem qdisc as the kernel reports it, in topo's units.
    public struct Kernel: Equatable, Sendable {
        public var delay: Duration
        public var jitter: Duration
        public var rate: BitRate
        public var limit: Int
        public var loss: Percent
        public var duplicate: Percent
        public var reorder: Percent
        public var corrupt: Percent

        public var summary: String {
            var n = Netem(
                delay: delay, jitter: jitter, distribution: nil, loss: loss.isZero ? nil : loss,
                duplicate: duplicate.isZero ? nil : duplicate,
                reorder: reorder.isZero ? nil : reorder, corrupt: corrupt.isZero ? nil : corrupt,
                rate: rate.bitsPerSecond == 0 ? nil : rate, limit: limit, limitChosen: false)
            if jitter == .zero { n.jitter = nil }
            return n.summary
        }
    }

    /// The kernel's netem options: times in nanoseconds, probabilities scaled to 2^32 - 1 (tc's
    /// `percent / 100 * UINT32_MAX`), the rate in bytes per second.
    static func kernel(_ q: topo_nl_netem) -> Kernel {
        func percent(_ p: UInt32) -> Percent {
            Percent(micro: UInt64((Double(p) / Double(UInt32.max) * 1e8).rounded()))
        }
        return Kernel(
            delay: Duration(nanoseconds: q.latency_ns), jitter: Duration(nanoseconds: q.jitter_ns),
            rate: BitRate(bitsPerSecond: q.rate_bytes.multipliedReportingOverflow(by: 8).partialValue),
            limit: Int(q.limit),
            loss: percent(q.loss), duplicate: percent(q.duplicate), reorder: percent(q.reorder),
            corrupt: percent(q.corrupt))
    }

    /// Where the kernel's qdisc differs from the plan; empty when they match. tc hands the kernel times
    /// in microseconds with three decimals, the rate in whole bytes per second and probabilities scaled
    /// to 2^32: each comparison allows that rounding.
    public static func differences(planned n: Netem, kernel k: Kernel) -> [String] {
        var diffs: [String] = []
        func check<T: CustomStringConvertible>(_ name: String, _ want: T, _ got: T, _ close: Bool) {
            if !close { diffs.append("\(name): planned \(want), kernel has \(got)") }
        }
        func near(_ a: UInt64, _ b: UInt64, _ tolerance: UInt64) -> Bool { (a > b ? a - b : b - a) <= tolerance }
        let delay = n.delay ?? .zero
        let jitter = n.jitter ?? .zero
        check("delay", delay, k.delay, near(delay.nanoseconds, k.delay.nanoseconds, 2_000))
        check("jitter", jitter, k.jitter, near(jitter.nanoseconds, k.jitter.nanoseconds, 2_000))
        let rate = n.rate ?? BitRate(bitsPerSecond: 0)
        check("rate", rate, k.rate, rate.bytesPerSecond == k.rate.bytesPerSecond)
        check("limit", n.limit, k.limit, n.limit == k.limit)
        for (name, want, got) in [
            ("loss", n.loss, k.loss), ("duplicate", n.duplicate, k.duplicate), ("reorder", n.reorder, k.reorder),
            ("corrupt", n.corrupt, k.corrupt),
        ] {
            let w = want ?? .zero
            check(name, w, got, near(w.micro, got.micro, 100))
        }
        return diffs
    }
}
