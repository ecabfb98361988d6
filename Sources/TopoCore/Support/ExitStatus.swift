/// topo's exit codes, the same for every command.
public enum ExitStatus: Int32, Sendable {
    case ok = 0
    /// A verification found the isolation not holding.
    case verifyFailed = 1
    /// The profile or the command line is invalid.
    case invalid = 2
    /// The host cannot satisfy the profile, or lacks a kernel feature or privilege.
    case hostCannot = 3
    /// Apply failed and what it made was rolled back.
    case applyFailed = 4
}

/// An error that carries the exit status it ends topo with.
public struct TopoFailure: Error, CustomStringConvertible, Sendable {
    public var status: ExitStatus
    public var message: String
    public init(_ status: ExitStatus, _ message: String) {
        self.status = status
        self.message = message
    }
    public var description: String { message }
}
