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
    func set(_ i: Int, _ value: R) { lock.lock(); items[i] = value; lock.unlock() }
    var values: [R] { lock.lock(); defer { lock.unlock() }; return items.map { $0! } }
}
