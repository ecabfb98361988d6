import Testing

@testable import TopoCore

@Suite struct PictureTests {
    @Test func siblingsSideBySideWithWorkloadTags() throws {
        let host = try fixtureHost("offline-cpus")
        let plan = try Planner(host: host).plan(
            try profile(
                "version: 1\nname: x\nhost: { reserve: \"2\" }\nworkloads: { sa: { cpus: { count: 1 } }, sb: { cpus: { count: 2 } } }"
            )
        ).get()
        #expect(
            TopologyPicture.render(host: host, plan: plan) == """
                node 0 · 3 cores · 5 CPUs · 8.0 GiB · distances 10
                  [0 S  4 ~] [1 B  5 B] [2 #]
                offline CPUs: 3,6-7
                legend: S sa  B sb  # reserved  ~ idle sibling  . free
                """)
    }

    @Test func tagsAreDistinct() {
        let tags = TopologyPicture.tags(["server", "sidecar", "s2", "stats"])
        #expect(Set(tags.values).count == 4)
        #expect(tags["server"] == "S")
    }

    @Test func longNodesWrap() throws {
        let host = try fixtureHost("2s-8c-ht")
        for line in TopologyPicture.render(host: host, width: 80).split(separator: "\n") {
            #expect(line.count <= 80)
        }
    }
}
