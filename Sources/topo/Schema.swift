import ArgumentParser
import TopoCore

struct Schema: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "schema",
        abstract: "Print the profile format's JSON Schema, for editors that validate YAML as you type.",
        discussion: """
            The schema (draft 2020-12) names every key of profile format version 1, its type, units and choices, with descriptions. It is also in the repository as docs/profile.schema.json. Point an editor with the YAML language server (VS Code's YAML extension, Neovim, Helix) at it with a first line in the profile:
              # yaml-language-server: $schema=/usr/local/share/topo/profile.schema.json
            A schema cannot see everything: `topo validate` also checks overlapping CPU lists, links to unknown workloads and netem's bounds.

            Examples:
              topo schema > profile.schema.json
            """
    )

    @OptionGroup var color: ColorOptions

    func run() throws {
        print(ProfileSchema.json)
    }
}
