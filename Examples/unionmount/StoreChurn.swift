import ArgumentParser
import SystemPackage
import UnionMount
import UnionMountStore

/// `unionmount store churn`: a load generator; mounts and unmounts shared containers at random, as many
/// processes would, and gives back every reference it took before it exits.
struct StoreChurn: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "churn",
        abstract: "Mount and unmount containers at random (a stress load); release every reference at the end.",
        discussion: """
            Run several at once against one store to exercise its cross-process locking: each operation opens \
            the store afresh, as a separate process would. With --json prints the operations done.
            """)

    @OptionGroup var store: StoreOptions
    @Option(name: .long, help: "A container to use (repeatable).")
    var container: [String]
    @Option(name: .long, help: "How many mount or unmount operations.")
    var operations = 100
    @Option(name: .long, help: "The random seed.")
    var seed: UInt64 = 1
    @OptionGroup var output: OutputOptions

    func validate() throws {
        if container.isEmpty { throw ValidationError("give at least one --container") }
    }

    struct Report: Encodable {
        var mounts = 0
        var unmounts = 0
    }

    func run() throws {
        let root = try store.open().root
        var random = seed &+ 0x9E37_79B9_7F4A_7C15
        func next(_ bound: Int) -> Int {
            random = random &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int((random >> 33) % UInt64(bound))
        }
        var held: [String: Int] = [:]
        var report = Report()
        try reportingFailures {
            for _ in 0..<operations {
                let store = try LayerStore(opening: root)
                let id = container[next(container.count)]
                if held[id, default: 0] > 0 && next(2) == 0 {
                    try store.unmount(container: id)
                    held[id, default: 0] -= 1
                    report.unmounts += 1
                } else {
                    let merged = try store.mount(container: id)
                    guard MountTable.isMountPoint(merged) else {
                        throw UnionMountError(
                            code: .notMounted, message: "\(merged) is not mounted after mount", input: id)
                    }
                    held[id, default: 0] += 1
                    report.mounts += 1
                }
            }
            let store = try LayerStore(opening: root)
            for (id, count) in held { for _ in 0..<count { try store.unmount(container: id) } }
            report.unmounts += held.values.reduce(0, +)
        }
        if output.json { try printJSON(report) } else { print("\(report.mounts) mounts, \(report.unmounts) unmounts") }
    }
}
