import CYaml

/// Bounds checked on a profile before Yams builds its tree, from libyaml's own event stream (the
/// parser Yams uses, run once more without building anything): what the guard counts is exactly what
/// the composer would see, so no quote, comment or block-scalar trick can hide an alias from it.
///
/// The composer builds its tree recursively and expands aliases by value, so deep nesting would
/// exhaust the stack, and aliases (above all aliases used as mapping keys, which are hashed whole)
/// make the work exponential. A profile is a small, shallow document; these bounds are far above any
/// real one and far below what could hurt.
enum YAMLGuard {
    static let maxBytes = 1 << 20
    static let maxDepth = 128
    static let maxAliases = 16

    /// Nil when the text is within bounds, otherwise what is wrong and the line it was found on.
    /// A syntax error is left to the decoder, which reports it with its location: up to the error
    /// every bound was kept, and the composer stops at the same place.
    static func check(_ text: String) -> (line: Int, message: String, fix: String)? {
        let bytes = Array(text.utf8)
        if bytes.count > maxBytes {
            return (
                1, "the profile is \(bytes.count) bytes; topo reads profiles of at most \(maxBytes) bytes",
                "split it into smaller profiles"
            )
        }
        var parser = yaml_parser_t()
        guard yaml_parser_initialize(&parser) == 1 else { return nil }
        defer { yaml_parser_delete(&parser) }
        return bytes.withUnsafeBufferPointer { buffer -> (line: Int, message: String, fix: String)? in
            yaml_parser_set_input_string(&parser, buffer.baseAddress, buffer.count)
            yaml_parser_set_encoding(&parser, YAML_UTF8_ENCODING)
            /// Per open collection: whether it is a mapping, and whether its next node is a key.
            var open: [(mapping: Bool, atKey: Bool)] = []
            var aliases = 0
            while true {
                var event = yaml_event_t()
                guard yaml_parser_parse(&parser, &event) == 1 else {
                    // libyaml's scanner looks ahead and has a nesting limit of its own (1000): say it in topo's words.
                    if let problem = parser.problem, String(cString: problem).contains("nesting level") {
                        return (
                            Int(parser.problem_mark.line) + 1, "the profile nests deeper than \(maxDepth) levels",
                            "flatten it; a topo profile needs only a few levels"
                        )
                    }
                    return nil
                }
                defer { yaml_event_delete(&event) }
                let line = Int(event.start_mark.line) + 1
                let type = event.type
                if type == YAML_STREAM_END_EVENT { return nil }
                if type == YAML_SEQUENCE_END_EVENT || type == YAML_MAPPING_END_EVENT {
                    open.removeLast()
                    continue
                }
                guard
                    type == YAML_SCALAR_EVENT || type == YAML_ALIAS_EVENT || type == YAML_SEQUENCE_START_EVENT
                        || type == YAML_MAPPING_START_EVENT
                else { continue }
                // A node: in a mapping, keys and values alternate.
                if let top = open.last, top.mapping {
                    if top.atKey && type != YAML_SCALAR_EVENT {
                        return (
                            line,
                            "a mapping key is \(type == YAML_ALIAS_EVENT ? "an alias" : "a collection"); topo's keys are plain names",
                            "write the key as a plain name (an alias or collection cannot name a field)"
                        )
                    }
                    open[open.count - 1].atKey.toggle()
                }
                if type == YAML_ALIAS_EVENT {
                    aliases += 1
                    if aliases > maxAliases {
                        return (
                            line, "the profile uses more than \(maxAliases) aliases",
                            "repeat the values instead of aliasing them"
                        )
                    }
                } else if type == YAML_SEQUENCE_START_EVENT || type == YAML_MAPPING_START_EVENT {
                    open.append((type == YAML_MAPPING_START_EVENT, true))
                    if open.count > maxDepth {
                        return (
                            line, "the profile nests deeper than \(maxDepth) levels",
                            "flatten it; a topo profile needs only a few levels"
                        )
                    }
                }
            }
        }
    }
}
