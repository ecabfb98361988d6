/// How topo writes an enum with associated values as JSON: `{"case": value}` for a case with one
/// unlabelled value, `{"case": {"label": value, …}}` for labelled ones, `{"case": {}}` for none — every
/// field named. Swift's synthesized form names an unlabelled value `_0`; topo before plan and journal
/// format 3 wrote that, and it is still read (a profile applied by an older topo can be taken down).
struct CaseKey: CodingKey, Hashable {
    var stringValue: String
    var intValue: Int? { nil }
    init(_ s: String) { stringValue = s }
    init?(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }

    static let legacyValue = CaseKey("_0")
}

extension KeyedDecodingContainer where Key == CaseKey {
    /// The one case key the object holds.
    func onlyCase(of type: String) throws -> String {
        guard allKeys.count == 1, let key = allKeys.first else {
            throw DecodingError.dataCorrupted(
                .init(codingPath: codingPath, debugDescription: "a \(type) is an object with exactly one key, its kind")
            )
        }
        return key.stringValue
    }

    /// A case's single value: the value itself, or (an older topo's) `{"_0": value}`.
    func single<T: Decodable>(_ type: T.Type, _ name: String) throws -> T {
        if let value = try? decode(T.self, forKey: CaseKey(name)) { return value }
        return try nestedContainer(keyedBy: CaseKey.self, forKey: CaseKey(name)).decode(T.self, forKey: .legacyValue)
    }

    /// A labelled value of a case's object; `legacy` is the name an older topo's synthesized form gave it.
    func labelled<T: Decodable>(_ type: T.Type, _ name: String, _ label: String, legacy: String? = nil) throws -> T {
        let nested = try nestedContainer(keyedBy: CaseKey.self, forKey: CaseKey(name))
        if let legacy, !nested.contains(CaseKey(label)) { return try nested.decode(T.self, forKey: CaseKey(legacy)) }
        return try nested.decode(T.self, forKey: CaseKey(label))
    }

    func labelledIfPresent<T: Decodable>(_ type: T.Type, _ name: String, _ label: String) throws -> T? {
        try nestedContainer(keyedBy: CaseKey.self, forKey: CaseKey(name)).decodeIfPresent(
            T.self, forKey: CaseKey(label))
    }
}

extension KeyedEncodingContainer where Key == CaseKey {
    mutating func single<T: Encodable>(_ value: T, _ name: String) throws { try encode(value, forKey: CaseKey(name)) }

    mutating func empty(_ name: String) throws { _ = nestedContainer(keyedBy: CaseKey.self, forKey: CaseKey(name)) }

    /// A case's labelled values, in order (nil ones left out).
    mutating func labelled(_ name: String, _ values: [(String, (any Encodable)?)]) throws {
        var nested = nestedContainer(keyedBy: CaseKey.self, forKey: CaseKey(name))
        for (label, value) in values { if let value { try nested.encode(value, forKey: CaseKey(label)) } }
    }
}
