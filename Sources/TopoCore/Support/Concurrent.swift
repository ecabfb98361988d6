import Foundation

/// `transform` applied to every item on as many threads as the machine has CPUs, results in the
/// items' order. For independent, blocking work such as one `ip`/`tc` process per namespace.
func concurrentMap<T: Sendable, R: Sendable>(_ items: [T], _ transform: @Sendable (T) -> R) -> [R] {
    let slots = Slots<R>(count: items.count)
    DispatchQueue.concurrentPerform(iterations: items.count) { i in slots.set(i, transform(items[i])) }
    return slots.values
}

/// Results written from several threads, each to its own index.
private final class Slots<R: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [R?]
    init(count: Int) { items = Array(repeating: nil, count: count) }
    func set(_ i: Int, _ value: R) {
        lock.lock()
        items[i] = value
        lock.unlock()
    }
    var values: [R] {
        lock.lock()
        defer { lock.unlock() }
        return items.map { $0! }
    }
}

/// `work` started on another thread at once; `value` waits for its result.
final class Background<T: Sendable>: @unchecked Sendable {
    private let done = DispatchGroup()
    private var result: T?

    init(_ work: @escaping @Sendable () -> T) {
        done.enter()
        DispatchQueue.global().async { [self] in
            result = work()
            done.leave()
        }
    }

    /// The result, once `work` has returned (the group's wait orders the write before this read).
    var value: T {
        done.wait()
        return result!
    }
}
